/*
** budget.h -- how much memory a request may make the server spend, bounded
** by limits that do not depend on what the request or the sandbox sends.
**
**  - A JSON body is parsed only when its nesting depth and its number of
**    values are within bounds (a body of empty objects would otherwise
**    cost 78 times its size); each route has its own body size limit.
**  - Command output in a JSON answer is cut where its encoded form would
**    pass the output limit (a control byte costs six bytes as \u0001).
**  - Every request's buffered body and every execute answer draw on one
**    server-wide pool (maxRequestMemory); a request that cannot get its
**    share is refused with 503 instead of growing the server.
*/
#ifndef AGENTCUBE_BUDGET_H
#define AGENTCUBE_BUDGET_H

#include <jansson.h>
#include <stddef.h>

struct ac_config;

/* Why a body was refused before parsing, or NULL when it may be parsed. */
const char *budget_json_check(const char *buf, size_t len, unsigned max_depth,
                              unsigned long max_nodes);

/* json_loadb after budget_json_check. On failure returns NULL and sets
** *why to a message (static or in jerr->text). */
json_t *budget_json_load(const struct ac_config *cfg, const char *buf,
                         size_t len, json_error_t *jerr, const char **why);

/* The longest prefix of the valid UTF-8 text s[0..len) whose JSON string
** encoding (as jansson writes it) takes at most budget bytes, cut on a
** character boundary. */
size_t budget_json_fit(const char *s, size_t len, size_t budget);

/* The JSON-encoded size of s[0..len), quotes excluded. */
size_t budget_json_size(const char *s, size_t len);

/* The server-wide pool: set its size once (0 = unlimited); take returns 1
** when n bytes were reserved, 0 when the pool cannot give them. */
void budget_pool_init(unsigned long long bytes);
int budget_pool_take(size_t n);
void budget_pool_give(size_t n);
unsigned long long budget_pool_used(void);

#endif
