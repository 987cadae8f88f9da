/*
** async.h -- agentcube.async: libagentcube calls run by a pool of worker
** threads, so that one Lua state can drive several sessions at once (the
** workflow engine's parallel steps). See async.c for the Lua API.
**
** Workers never touch a lua_State: arguments are converted to C before a
** job is queued, and results are converted to Lua values by the thread
** that asks for them.
*/
#ifndef AGENTCUBE_ASYNC_H
#define AGENTCUBE_ASYNC_H

#include <lua.h>

/* Worker threads per Lua state: the default and the most
** async.configure{threads = n} accepts. */
#define ACASYNC_THREADS      8
#define ACASYNC_MAX_THREADS  64

/* Opens module agentcube.async. [-0, +1, m]. Needs agentcube.core opened
** in the same state first (sessions are its agentcube.Session userdata).
** Not exported by agentcube.core's shared object; the core module
** registers it in package.preload. */
int luaopen_agentcube_async(lua_State *L);

#endif
