/*
** async.h -- agentcube.async: every operation as a job on the libagentcube
** engine, so that one Lua state drives several sessions at once without
** blocking (the workflow engine's parallel steps, a host's frame loop).
** See async.c for the Lua API. No thread is involved: jobs move and
** callbacks run only inside async.poll, async.wait_any and job:result.
*/
#ifndef AGENTCUBE_ASYNC_H
#define AGENTCUBE_ASYNC_H

#include <lua.h>

/* Jobs running at once per Lua state (more wait in a queue): the default
** and the most async.configure{threads = n} accepts. */
#define ACASYNC_THREADS      8
#define ACASYNC_MAX_THREADS  64

/* Opens module agentcube.async. [-0, +1, m]. Needs agentcube.core opened
** in the same state first (sessions are its agentcube.Session userdata).
** Not exported by agentcube.core's shared object; the core module
** registers it in package.preload. */
int luaopen_agentcube_async(lua_State *L);

#endif
