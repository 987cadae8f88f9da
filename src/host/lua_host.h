/*
** lua_host.h -- the host's Lua state: built like lua.c's, with agentcube
** and its Lua modules preloaded, a message handler that prints error
** objects through __tostring, and Ctrl-C turned into a Lua error.
*/
#ifndef AGENTCUBE_LUA_HOST_H
#define AGENTCUBE_LUA_HOST_H

#include <lua.h>
#include <signal.h>

/* Set by SIGINT/SIGTERM while a chunk runs; libagentcube polls it during
** transfers, so that ^C interrupts a blocked request too. */
extern volatile sig_atomic_t ac_host_interrupted;

/* A new state with the standard libraries, agentcube.core and the embedded
** Lua modules in package.preload (AGENTCUBE_LUA_DIR first, when set, so
** that development copies win). NULL when out of memory. */
lua_State *ac_host_newstate(void);

/* The same, with every allocation of the state counted and refused past
** limit bytes (a "not enough memory" error in Lua): for `check`, which
** evaluates files people are sent. */
lua_State *ac_host_newstate_capped(size_t limit);

/* Runs the function below narg arguments in protected mode with the
** traceback handler and the interrupt hooks, like lua.c's docall. */
int ac_host_docall(lua_State *L, int narg, int nres);

/* With polled set, an interrupt only sets ac_host_interrupted (for code
** that checks it between steps); otherwise it also raises "interrupted!"
** at the next Lua instruction, as lua.c does. */
void ac_host_polled_interrupts(int polled);

/* Prints the error on top of the stack (a string or an object with
** __tostring) to stderr, prefixed with progname, and pops it. */
void ac_host_report(lua_State *L, const char *progname);

/* The exit status for a Lua error value: 130 for an interruption, 1
** otherwise. */
int ac_host_error_status(lua_State *L, int idx);

/* Builds the global `arg` table the way lua.c does: script at index 0. */
void ac_host_argtable(lua_State *L, char **argv, int argc, int script);

#endif
