/*
** mcp_stdio.c -- the stdio transport: one JSON-RPC message per line on
** stdin, one per line on stdout (nothing else is ever written there; logs
** go to stderr). The client disconnecting is stdin reaching EOF, or
** SIGTERM/SIGINT/SIGHUP: then calls in flight are cancelled and the
** sessions this server created are deleted (unless --keep).
*/
#include "mcp.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (64u << 20)

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  stop_signal = sig;
}

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void out_send(struct mcp_sink *s, const char *text, int final) {
  (void)s;
  (void)final;
  if (text == NULL)
    return;
  pthread_mutex_lock(&out_mu);
  fputs(text, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&out_mu);
}

static void out_ref(struct mcp_sink *s) {
  (void)s;
}

static struct mcp_sink out_sink = { out_send, out_ref, out_ref };

int mcp_stdio_run(const struct mcp_options *o, struct mcp_backend *b,
                  struct mcp_hostdir *hostdir) {
  struct sigaction sa;
  struct mcp_conn *c = mcp_conn_new(b, hostdir);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int status = 0;

  (void)o;
  if (c == NULL) {
    fputs("agentcube mcp: out of memory\n", stderr);
    return 1;
  }
  /* No SA_RESTART: a signal ends the blocking read so we can clean up. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  while (!stop_signal) {
    errno = 0;
    n = getline(&line, &cap, stdin);
    if (n < 0) {
      if (errno == EINTR && !stop_signal) {
        clearerr(stdin);
        continue;
      }
      break;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (n == 0)
      continue;
    if ((size_t)n > LINE_MAX_BYTES) {
      json_t *e = mcp_rpc_error(NULL, MCP_INVALID_REQUEST,
                                "message too large");
      char *t = json_dumps(e, JSON_COMPACT);
      out_send(&out_sink, t, 1);
      free(t);
      json_decref(e);
      continue;
    }
    mcp_conn_handle(c, line, (size_t)n, &out_sink);
  }
  free(line);
  if (stop_signal)
    status = 128 + stop_signal;
  mcp_conn_close(c);
  return status == 128 + SIGINT || status == 128 + SIGTERM ? 0 : status;
}
