/*
** duration.h -- Go time.Duration strings, as PicoD and the CRDs use them.
*/
#ifndef AGENTCUBE_DURATION_H
#define AGENTCUBE_DURATION_H

#include "ac_error.h"

/* Parses "300ms", "-1.5h", "2h45m", "1m30s", "0" like Go's
** time.ParseDuration into nanoseconds. On failure err->msg holds Go's text,
** e.g. `time: missing unit in duration "10"`. */
enum ac_code ac_duration_parse(const char *s, long long *ns,
                               struct ac_error *err);

#endif
