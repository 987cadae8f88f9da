/*
** token.h -- the server's bearer token: created once, compared in constant
** time.
*/
#ifndef AGENTCUBE_TOKEN_H
#define AGENTCUBE_TOKEN_H

#include "ac_error.h"

#include <stddef.h>

#define AC_TOKEN_LEN 64   /* hex characters of 32 random bytes */

/* Reads <state_dir>/token, creating it (mode 0600, 32 random bytes as hex)
** when missing. out must hold AC_TOKEN_LEN + 1 bytes. */
enum ac_code ac_token_load(const char *state_dir, char *out,
                           struct ac_error *err);

/* 1 when the presented token equals the expected one; the time taken does
** not depend on where they differ. */
int ac_token_equal(const char *expected, const char *presented, size_t len);

#endif
