/*
** ctx_drivers.h -- the command line that starts a language context's
** interpreter with our driver (ctx_drivers.c has the protocol).
*/
#ifndef AGENTCUBE_CTX_DRIVERS_H
#define AGENTCUBE_CTX_DRIVERS_H

/* Fills argv (NULL-terminated, static strings) for "python", "bash" or
** "lua"; -1 for any other language. */
int ctx_driver_argv(const char *language, const char *argv[5]);

#endif
