/*
** http_server.h -- the local runtime's HTTP API on one address:
** WorkloadManager, Router and PicoD routes merged (PROTOCOL.md).
*/
#ifndef AGENTCUBE_HTTP_SERVER_H
#define AGENTCUBE_HTTP_SERVER_H

#include "ac_error.h"
#include "config.h"
#include "store.h"

#include <stdio.h>

struct ac_server;

struct ac_server_options {
  const char *listen;            /* "ADDR:PORT", "[v6]:PORT"; port 0 = any */
  const char *token;             /* NULL: no authentication */
  FILE *access_log;              /* NULL: none */
};

/* Starts serving. url receives "http://ADDR:PORT" with the real port.
** The server borrows store and cfg; both must outlive it. */
enum ac_code ac_server_start(const struct ac_server_options *opt,
                             const struct ac_config *cfg,
                             struct ac_store *store, struct ac_server **out,
                             char *url, size_t urlsz, struct ac_error *err);

/* Prints the HTTP server's budgets (connection caps, timeouts, request
** limits) for `agentcube serve --check`. */
void ac_server_report_budgets(const struct ac_config *cfg, FILE *out);

/* Stops accepting connections, so that a restart can bind the port. */
void ac_server_quiesce(struct ac_server *srv);

/* Waits for running requests and frees the server. NULL is allowed. */
void ac_server_stop(struct ac_server *srv);

#endif
