/*
** oauth.c -- OAuth2 client-credentials tokens (the SDK's
** ServiceAccountAuth): a form POST to the token endpoint, the token cached
** for max(expires_in - 30, expires_in // 2) seconds on CLOCK_MONOTONIC,
** refreshed lazily by the next caller, fetches serialised by a mutex.
*/
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REFRESH_BUFFER_S 30
#define DEFAULT_EXPIRES_S 3600
#define TOKEN_BODY_MAX (1024 * 1024)

struct ac_oauth {
  pthread_mutex_t mu;
  char *url;
  char *form;                         /* the request body, secret included */
  struct curl_slist *headers;
  long connect_timeout_ms;
  long timeout_ms;
  struct ac_http *http;
  char *token;                        /* cached access token, or NULL */
  long long expires_ms;               /* ac_mono_ms() deadline */
};

static enum ac_code add_field(struct ac_buf *b, const char *k, const char *v) {
  enum ac_code rc = AC_OK;
  if (b->len > 0)
    rc = ac_buf_add(b, "&", 1);
  if (rc == AC_OK)
    rc = ac_url_encode(b, k, 1);
  if (rc == AC_OK)
    rc = ac_buf_add(b, "=", 1);
  if (rc == AC_OK)
    rc = ac_url_encode(b, v, 1);
  return rc;
}

static void wipe(char *s) {
  if (s != NULL)
    explicit_bzero(s, strlen(s));
  free(s);
}

void ac_oauth_free(struct ac_oauth *o) {
  if (o == NULL)
    return;
  ac_http_free(o->http);
  curl_slist_free_all(o->headers);
  wipe(o->form);
  wipe(o->token);
  free(o->url);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

enum ac_code ac_oauth_new(const struct ac_oauth_config *cfg,
                          struct ac_oauth **out, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct ac_oauth *o = NULL;
  struct ac_http_policy pol;
  struct ac_buf form;
  int has_ctype = 0;

  *out = NULL;
  ac_buf_init(&form, 0);
  if (cfg == NULL || cfg->token_url == NULL || cfg->client_id == NULL ||
      cfg->client_secret == NULL)
    return ac_error_set(err, AC_EINVAL,
                        "token_url, client_id and client_secret are "
                        "required");
  rc = ac_url_check(cfg->token_url, "token_url", err);
  if (rc != AC_OK)
    return rc;
  o = calloc(1, sizeof *o);
  if (o == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (pthread_mutex_init(&o->mu, NULL) != 0) {
    free(o);
    return ac_error_set(err, AC_ESYSTEM, "pthread_mutex_init failed");
  }
  o->connect_timeout_ms = cfg->connect_timeout_ms > 0
                        ? cfg->connect_timeout_ms : 5000;
  o->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
  o->url = strdup(cfg->token_url);
  if (o->url == NULL)
    goto nomem;

  /* The body python-requests builds from the dict, in the SDK's order. */
  if (add_field(&form, "grant_type", "client_credentials") != AC_OK ||
      add_field(&form, "client_id", cfg->client_id) != AC_OK ||
      add_field(&form, "client_secret", cfg->client_secret) != AC_OK ||
      (cfg->scope != NULL && cfg->scope[0] != '\0' &&
       add_field(&form, "scope", cfg->scope) != AC_OK))
    goto nomem;
  o->form = ac_buf_steal(&form, NULL);
  if (o->form == NULL)
    goto nomem;

  for (size_t i = 0; i < cfg->nheaders; i++) {
    const struct ac_header *hd = &cfg->headers[i];
    if (hd->name == NULL || hd->value == NULL ||
        strpbrk(hd->name, "\r\n:") != NULL ||
        strpbrk(hd->value, "\r\n") != NULL) {
      rc = ac_error_set(err, AC_EINVAL, "invalid extra header #%zu", i);
      goto fail;
    }
    if (strcasecmp(hd->name, "Content-Type") == 0)
      has_ctype = 1;
    rc = ac_http_add_header(&o->headers, hd->name, hd->value, err);
    if (rc != AC_OK)
      goto fail;
  }
  /* requests adds the form Content-Type unless the caller set one. */
  if (!has_ctype)
    rc = ac_http_add_header(&o->headers, "Content-Type",
                            "application/x-www-form-urlencoded", err);
  if (rc == AC_OK)
    rc = ac_http_add_header(&o->headers, "Expect", "", err);
  if (rc != AC_OK)
    goto fail;

  memset(&pol, 0, sizeof pol);
  pol.verbose = cfg->verbose;
  pol.max_retries = 3;
  pol.retry_base_ms = 200;
  pol.retry_max_ms = 2000;
  rc = ac_http_new(&pol, &o->http, err);
  if (rc != AC_OK)
    goto fail;
  *out = o;
  return AC_OK;
nomem:
  rc = ac_error_set(err, AC_ENOMEM, "out of memory");
fail:
  ac_buf_free(&form);
  ac_oauth_free(o);
  return rc;
}

/* int(body.get("expires_in", 3600)) for the JSON types int() accepts. */
static int expires_in(json_t *v, long long *out) {
  if (v == NULL) {
    *out = DEFAULT_EXPIRES_S;
    return 1;
  }
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 1;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != d || d > 9e18 || d < -9e18)
      return 0;
    *out = (long long)d;              /* int() truncates */
    return 1;
  }
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 1;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
      end++;
    return errno == 0 && end != s && *end == '\0';
  }
  return 0;
}

long long ac_oauth_lifetime(long long e) {
  long long half = e >= 0 ? e / 2 : -((-e + 1) / 2);   /* e // 2 */
  long long life = e - REFRESH_BUFFER_S;
  return half > life ? half : life;
}

/* Called with o->mu held. */
static enum ac_code fetch(struct ac_oauth *o, struct ac_error *err) {
  enum ac_code rc;
  struct ac_http_req req;
  struct ac_http_resp resp;
  json_t *j = NULL, *tok;
  long long e, life;

  memset(&req, 0, sizeof req);
  req.op = "fetch token";
  req.method = "POST";
  req.url = o->url;
  req.headers = o->headers;
  req.body = o->form;
  req.body_len = strlen(o->form);
  req.connect_timeout_ms = o->connect_timeout_ms;
  req.timeout_ms = o->timeout_ms;
  req.max_body = TOKEN_BODY_MAX;
  ac_http_resp_init(&resp);
  rc = ac_http_do(o->http, &req, &resp, err);
  if (rc == AC_EHTTP) {
    rc = AC_EAUTH;
    if (err != NULL)
      err->code = AC_EAUTH;
  }
  if (rc != AC_OK)
    goto out;
  j = json_loadb(ac_buf_str(&resp.body), resp.body.len, 0, NULL);
  if (!json_is_object(j)) {
    rc = ac_error_set(err, AC_EAUTH,
                      "fetch token: response is not a JSON object");
    goto out;
  }
  tok = json_object_get(j, "access_token");
  if (!json_is_string(tok) || json_string_length(tok) == 0) {
    rc = ac_error_set(err, AC_EAUTH,
                      "fetch token: response has no access_token");
    goto out;
  }
  if (!expires_in(json_object_get(j, "expires_in"), &e)) {
    rc = ac_error_set(err, AC_EAUTH,
                      "fetch token: expires_in is not an integer");
    goto out;
  }
  life = ac_oauth_lifetime(e);
  if (life > 100LL * 365 * 86400)
    life = 100LL * 365 * 86400;
  wipe(o->token);
  o->token = strdup(json_string_value(tok));
  if (o->token == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  o->expires_ms = ac_mono_ms() + life * 1000;
out:
  json_decref(j);
  if (resp.body.data != NULL)
    explicit_bzero(resp.body.data, resp.body.len);
  ac_http_resp_free(&resp);
  return rc;
}

enum ac_code ac_oauth_token(struct ac_oauth *o, char **token,
                            struct ac_error *err) {
  enum ac_code rc = AC_OK;
  *token = NULL;
  pthread_mutex_lock(&o->mu);
  if (o->token == NULL || ac_mono_ms() >= o->expires_ms)
    rc = fetch(o, err);
  if (rc == AC_OK) {
    *token = strdup(o->token);
    if (*token == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  pthread_mutex_unlock(&o->mu);
  return rc;
}
