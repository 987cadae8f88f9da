/*
** conns.h -- the server's connections and their budgets.
**
** libmicrohttpd tells us when a connection opens and closes; this unit
** keeps one record per connection and enforces what libmicrohttpd does not:
**   - a cap on connections in total and per client address: a connection
**     over a cap is still accepted, so that its request gets a clear
**     refusal (503 or 429, then the connection is closed) rather than a
**     silent reset, and it is closed after a short grace if it sends none;
**   - a header timeout: a connection must send a complete request header
**     within it of being opened or of its previous answer (slow or idle
**     clients are closed; idle time *inside* a body is libmicrohttpd's
**     connection timeout);
**   - hang-up detection while a request is suspended (libmicrohttpd does
**     not watch suspended connections): the owner learns at once that the
**     client went away, so that the command it runs can be cancelled;
**   - closing every connection that serves a given session (a DELETE ends
**     the session's requests in flight, trickling uploads included).
** One background thread does the timing and the watching.
*/
#ifndef AGENTCUBE_HTTP_CONNS_H
#define AGENTCUBE_HTTP_CONNS_H

#include <sys/socket.h>

struct conns;
struct conn;

struct conns_limits {
  unsigned max_total;        /* beyond: 503 */
  unsigned max_per_addr;     /* beyond: 429 */
  unsigned header_timeout_ms;
};

enum conn_refusal { CONN_OK, CONN_OVER_TOTAL, CONN_OVER_ADDR };

struct conns *conns_start(const struct conns_limits *lim);
void conns_stop(struct conns *c);

/* A connection opened (fd, peer address) / closed. Opening returns NULL
** when out of memory (the caller then closes the connection). */
struct conn *conns_open(struct conns *c, int fd, const struct sockaddr *sa);
void conns_close(struct conns *c, struct conn *k);

/* Why the connection is over a cap (CONN_OK: it is not). */
enum conn_refusal conn_refusal(const struct conn *k);
/* The peer address as text, for messages. */
const char *conn_addr(const struct conn *k);

/* A request's header arrived (the header timeout stops) / its answer was
** sent (the header timeout of the next request starts; its watch and abort
** callback are gone after end returns). */
void conns_request_begin(struct conns *c, struct conn *k);
void conns_request_end(struct conns *c, struct conn *k);
/* Names what the current request serves (its session) for
** conns_abort_key. */
void conns_set_key(struct conns *c, struct conn *k, const void *key);

/* Calls on_hangup(ud) once from the background thread if the client
** closes or resets the connection before conns_unwatch. on_hangup must not
** call back into this unit. */
void conns_watch(struct conns *c, struct conn *k,
                 void (*on_hangup)(void *ud), void *ud);
void conns_unwatch(struct conns *c, struct conn *k);

/* Ends every connection whose request serves key: calls its on_abort(ud)
** (set with conns_on_abort; it must not call back into this unit) and
** shuts the socket down, so libmicrohttpd closes it at once (or when the
** suspended request resumes). Returns how many were ended. */
void conns_on_abort(struct conns *c, struct conn *k,
                    void (*on_abort)(void *ud), void *ud);
unsigned conns_abort_key(struct conns *c, const void *key);

#endif
