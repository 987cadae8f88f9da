/*
** repl.h -- the interactive loop (libedit), like lua.c's.
*/
#ifndef AGENTCUBE_REPL_H
#define AGENTCUBE_REPL_H

#include <lua.h>

/* Reads, evaluates and prints until end of input. History lives in
** $AGENTCUBE_HOME/history; Tab completes globals, fields and methods. */
int ac_repl_loop(lua_State *L);

/* Runs all of standard input as one chunk (input is not a terminal). */
int ac_repl_stdin(lua_State *L);

#endif
