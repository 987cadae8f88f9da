/*
** mcp_toolkit.c -- argument checks, results as MCP content, and the
** session rules of AgentCube's MCP server (see mcp_toolkit.h).
*/
#include "mcp_toolkit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ---- arguments ---- */

static int bad(struct mcp_argerr *why, const char *key, const char *what) {
  snprintf(why->msg, sizeof why->msg, "invalid arguments: '%s' %s", key,
           what);
  return 0;
}

int mcp_arg_string(json_t *args, const char *key, int required,
                   const char **out, struct mcp_argerr *why) {
  json_t *v = json_object_get(args, key);
  if (v == NULL || json_is_null(v))
    return required ? bad(why, key, "is required") : 1;
  if (!json_is_string(v))
    return bad(why, key, "must be a string");
  *out = json_string_value(v);
  return 1;
}

int mcp_arg_bool(json_t *args, const char *key, int *out,
                 struct mcp_argerr *why) {
  json_t *v = json_object_get(args, key);
  if (v == NULL || json_is_null(v))
    return 1;
  if (!json_is_boolean(v))
    return bad(why, key, "must be true or false");
  *out = json_is_true(v);
  return 1;
}

int mcp_arg_number(json_t *args, const char *key, double min, double max,
                   double *out, struct mcp_argerr *why) {
  json_t *v = json_object_get(args, key);
  double d;
  char what[96];
  if (v == NULL || json_is_null(v))
    return 1;
  if (!json_is_number(v))
    return bad(why, key, "must be a number");
  d = json_number_value(v);
  if (!isfinite(d) || d < min || d > max) {
    snprintf(what, sizeof what, "must be between %g and %g", min, max);
    return bad(why, key, what);
  }
  *out = d;
  return 1;
}

int mcp_arg_env(json_t *args, const char *key, struct ac_kv **kv,
                size_t *n, struct mcp_argerr *why) {
  json_t *v = json_object_get(args, key), *val;
  const char *k;
  size_t i = 0;

  *kv = NULL;
  *n = 0;
  if (v == NULL || json_is_null(v))
    return 1;
  if (!json_is_object(v))
    return bad(why, key, "must be an object of strings");
  json_object_foreach(v, k, val)
    if (!json_is_string(val) || !*k || strchr(k, '='))
      return bad(why, key, "must map variable names (no '=') to strings");
  if (json_object_size(v) == 0)
    return 1;
  *kv = calloc(json_object_size(v), sizeof **kv);
  if (*kv == NULL)
    return bad(why, key, "is too large (out of memory)");
  json_object_foreach(v, k, val) {
    (*kv)[i].key = k;
    (*kv)[i].value = json_string_value(val);
    i++;
  }
  *n = i;
  return 1;
}

int mcp_arg_known(json_t *args, const char *const *keys,
                  struct mcp_argerr *why) {
  const char *k;
  json_t *v;
  json_object_foreach(args, k, v) {
    int ok = 0;
    for (size_t i = 0; keys[i] != NULL && !ok; i++)
      ok = !strcmp(k, keys[i]);
    if (!ok && keys[0] == NULL) {
      snprintf(why->msg, sizeof why->msg, "invalid arguments: unknown "
               "argument '%.60s' (the tool takes none)", k);
      return 0;
    } else if (!ok) {
      size_t used;
      used = (size_t)snprintf(why->msg, sizeof why->msg,
                              "invalid arguments: unknown argument '%.60s' "
                              "(valid:", k);
      for (size_t i = 0; keys[i] != NULL && used < sizeof why->msg; i++)
        used += (size_t)snprintf(why->msg + used, sizeof why->msg - used,
                                 " %s", keys[i]);
      if (used < sizeof why->msg)
        snprintf(why->msg + used, sizeof why->msg - used, ")");
      return 0;
    }
  }
  (void)v;
  return 1;
}

/* ---- text and bytes ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len;
  unsigned cp;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4, cp = s[0] & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

json_t *mcp_text(const char *s, size_t n) {
  json_t *j;
  char *clean, *o;
  const unsigned char *u = (const unsigned char *)s;

  if (s == NULL)
    return json_string("");
  j = json_stringn(s, n);
  if (j != NULL)
    return j;
  clean = malloc(n * 3 + 1);
  if (clean == NULL)
    return NULL;
  o = clean;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(u + i, n - i);
    if (l == 0) {
      memcpy(o, "\xef\xbf\xbd", 3);     /* U+FFFD */
      o += 3;
      i++;
    } else {
      memcpy(o, s + i, l);
      o += l;
      i += l;
    }
  }
  j = json_stringn(clean, (size_t)(o - clean));
  free(clean);
  return j;
}

json_t *mcp_base64(const void *data, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  json_t *j;
  if (out == NULL || n > 0x3fffffff) {
    free(out);
    return NULL;
  }
  EVP_EncodeBlock((unsigned char *)out, data, (int)n);
  j = json_string(out);
  free(out);
  return j;
}

int mcp_unbase64(const char *text, unsigned char **out, size_t *n) {
  size_t len = strlen(text), pad = 0;
  int got;
  *out = NULL;
  *n = 0;
  if (len % 4 != 0 || len > 0x3fffffff)
    return 0;
  *out = malloc(len / 4 * 3 + 1);
  if (*out == NULL)
    return 0;
  if (len == 0)
    return 1;
  got = EVP_DecodeBlock(*out, (const unsigned char *)text, (int)len);
  if (got < 0) {
    free(*out);
    *out = NULL;
    return 0;
  }
  /* EVP_DecodeBlock counts the padding as zero bytes. */
  while (pad < 2 && text[len - 1 - pad] == '=')
    pad++;
  *n = (size_t)got - pad;
  return 1;
}

int mcp_is_png(const void *data, size_t n) {
  return n >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8);
}

/* ---- results ---- */

json_t *mcp_result(json_t *payload, json_t *extra, int is_error) {
  char *text = json_dumps(payload, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_t *content = json_array(), *r;
  size_t i;
  json_t *v;

  json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text",
                                           "text", text ? text : "{}"));
  free(text);
  json_array_foreach(extra, i, v)
    json_array_append(content, v);
  json_decref(extra);
  r = json_pack("{s:o, s:o, s:b}", "content", content, "structuredContent",
                payload, "isError", is_error);
  return r;
}

json_t *mcp_result_error(const struct ac_error *err, const char *session_id) {
  json_t *p = json_pack("{s:s, s:s}", "error", err->msg, "code",
                        ac_codename(err->code));
  if (err->http_status)
    json_object_set_new(p, "http_status", json_integer(err->http_status));
  if (session_id != NULL)
    json_object_set_new(p, "session_id", json_string(session_id));
  return mcp_result(p, NULL, 1);
}

json_t *mcp_result_argerr(const struct mcp_argerr *why) {
  return mcp_result(json_pack("{s:s, s:s}", "error", why->msg, "code",
                              "EINVAL"), NULL, 1);
}

/* ---- sessions ---- */

json_t *mcp_plan_begin(struct mcp_plan *p, const struct mcp_tools_ctx *ctx,
                       json_t *args) {
  const char *sid = NULL;
  struct mcp_argerr why;
  struct ac_error err;
  json_t *reuse = json_object_get(args, "session_reuse");

  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  if (!mcp_arg_string(args, "session_id", 0, &sid, &why) ||
      !mcp_arg_bool(args, "session_reuse", &p->reuse, &why))
    return mcp_result_argerr(&why);
  if (sid != NULL && *sid) {
    p->given = 1;
    p->id = strdup(sid);
    if (p->id == NULL) {
      ac_error_set(&err, AC_ENOMEM, "out of memory");
      return mcp_result_error(&err, NULL);
    }
    /* A session from create_session stays unless the call says
    ** session_reuse=false; any other follows AgentCube's rule (torn down
    ** after the call unless session_reuse=true). */
    if (!json_is_boolean(reuse) && mcp_backend_pinned(ctx->backend, sid))
      p->reuse = 1;
    mcp_backend_touch(ctx->backend, ctx->owner, sid);
    return NULL;
  }
  /* Creation is not cancelled half-way: a server that completes it after
  ** the client left would keep a session nobody deletes. */
  if (mcp_backend_create(ctx->backend, ctx->owner, 0, NULL, &p->id,
                         &err) != AC_OK)
    return mcp_result_error(&err, NULL);
  return NULL;
}

/* Whether err says the session itself is gone: 410, or the Router's 404
** for a session it does not know, which names the resource (`sessions.
** agentcube.volcano.sh "ID" not found`, a Kubernetes NotFound). A 404 the
** sandbox answers itself (a missing file or directory) is not: replacing
** the session then would lose the caller's workspace for nothing. */
static int session_gone(const struct ac_error *err) {
  if (err->code != AC_EHTTP)
    return 0;
  return err->http_status == 410 ||
         (err->http_status == 404 &&
          strstr(err->msg, "sessions.agentcube.volcano.sh") != NULL);
}

int mcp_plan_recover(struct mcp_plan *p, const struct ac_error *err) {
  struct ac_error e2;
  char *fresh;
  if (!p->given || p->previous != NULL || !session_gone(err))
    return 0;
  if (mcp_backend_create(p->ctx->backend, p->ctx->owner, 0, NULL, &fresh,
                         &e2) != AC_OK)
    return 0;
  p->previous = p->id;
  p->id = fresh;
  return 1;
}

void mcp_plan_end(struct mcp_plan *p, json_t *payload) {
  struct ac_error err;
  if (payload != NULL && p->id != NULL) {
    json_object_set_new(payload, "session_id", json_string(p->id));
    if (p->previous != NULL) {
      json_object_set_new(payload, "session_recovered", json_true());
      json_object_set_new(payload, "previous_session_id",
                          json_string(p->previous));
      json_object_set_new(payload, "hint", json_string(
        "Old session expired or missing; new sandbox below. "));
    }
  }
  if (p->id != NULL && !p->reuse &&
      mcp_backend_stop(p->ctx->backend, p->id, &err) != AC_OK)
    fprintf(stderr, "agentcube mcp: could not delete session %s: %s\n",
            p->id, err.msg);
  free(p->id);
  free(p->previous);
  p->id = p->previous = NULL;
}
