/*
** serve.h -- `agentcube serve`: the local AgentCube runtime.
*/
#ifndef AGENTCUBE_SERVE_H
#define AGENTCUBE_SERVE_H

/* Runs the subcommand; argv[0] is "serve". Returns the process exit
** status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a usage
** or configuration error. */
int ac_serve_main(int argc, char **argv);

/* The default state directory is libagentcube's ac_local_home: the
** server, the host and the Lua module find the same one. */

#endif
