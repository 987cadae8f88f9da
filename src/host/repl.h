/*
** repl.h -- the interactive loop (libedit), like lua.c's, and its parts:
** completion (repl_complete.c), showing values (repl_print.c) and live
** command output (repl_stream.c).
*/
#ifndef AGENTCUBE_REPL_H
#define AGENTCUBE_REPL_H

#include <lua.h>

/* Reads, evaluates and shows until end of input (Ctrl-D). History lives
** in the state directory; Tab completes globals, fields and methods;
** Ctrl-C clears the line at the prompt and cancels a running call. */
int ac_repl_loop(lua_State *L);

/* Runs all of standard input as one chunk (input is not a terminal). */
int ac_repl_stdin(lua_State *L);

/* The completions of text ("ci:exe", "string.f", "a.b.c"), sorted, as a
** malloc'd NULL-terminated array of malloc'd strings; NULL when there is
** nothing (or no memory). Runs no Lua code. */
char **ac_repl_complete(lua_State *L, const char *text);

/* A lua_CFunction: shows its arguments on stdout, tab-separated, the way
** the REPL shows results (strings quoted, tables nested and sorted). */
int ac_repl_show(lua_State *L);

/* Makes the command methods of agentcube.Session show their output live
** when the caller gives no callbacks (see repl_stream.c). */
void ac_repl_stream_install(lua_State *L);

/* Whether live output left the cursor in the middle of a line since the
** last call (and forgets it). */
int ac_repl_stream_midline(void);

#endif
