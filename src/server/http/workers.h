/*
** workers.h -- a small pool of threads for the work that must block (a
** session create mounting its image, file I/O, the blocking sandbox
** calls), so that the HTTP event loop never does. The pool keeps `min`
** threads and grows up to `max` while every thread is busy; threads above
** `min` leave after a few idle seconds. Jobs run in submission order.
*/
#ifndef AGENTCUBE_HTTP_WORKERS_H
#define AGENTCUBE_HTTP_WORKERS_H

#include <stddef.h>

struct workers;

/* Returns NULL when out of memory or when no thread can be started. */
struct workers *workers_start(unsigned min, unsigned max);

/* Queues fn(arg). Returns 0, or -1 when out of memory (fn not queued). */
int workers_submit(struct workers *w, void (*fn)(void *), void *arg);

/* Runs what is queued, waits for it, joins the threads. NULL is allowed. */
void workers_stop(struct workers *w);

#endif
