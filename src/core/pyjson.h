/*
** pyjson.h -- JSON text exactly as Python's json.dumps writes it with its
** defaults (what requests sends for `json=`): ", " and ": " separators,
** ensure_ascii (every byte outside space..'~' escaped, \u with lowercase
** hex, surrogate pairs above U+FFFF), floats as repr(), keys in the order
** they are stored. Private to libagentcube.
*/
#ifndef AGENTCUBE_CORE_PYJSON_H
#define AGENTCUBE_CORE_PYJSON_H

#include "buf.h"
#include "agentcube.h"

#include <jansson.h>

/* Python's repr() of a finite double ("0.7", "1e+16", "30.0") into out
** (pyfmt.c). */
AC_INTERNAL void ac_py_float_repr(double v, char *out, size_t size);

/* Appends json.dumps(j) to b. A non-finite real is AC_EINVAL (requests
** refuses NaN: allow_nan=False); a body over b's cap is AC_ETOOBIG. */
AC_INTERNAL enum ac_code ac_pyjson_dump(const json_t *j, struct ac_buf *b,
                                        struct ac_error *err);

#endif
