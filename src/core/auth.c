/*
** auth.c -- bearer-token providers: static (TokenAuth), token file,
** caller callback, OAuth2 client credentials (oauth.c). Reference counted;
** all kinds are safe to share between threads (a callback as far as the
** callback itself is).
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 65536

enum auth_kind { AUTH_STATIC, AUTH_CALLBACK, AUTH_OAUTH };

struct ac_auth {
  atomic_int refs;
  enum auth_kind kind;
  char *token;                        /* AUTH_STATIC */
  ac_token_fn fn;                     /* AUTH_CALLBACK */
  void *ud;
  void (*free_ud)(void *ud);
  struct ac_oauth *oauth;             /* AUTH_OAUTH */
};

/* A provider of one reference, or NULL when out of memory. */
static ac_auth *auth_alloc(enum auth_kind kind) {
  ac_auth *a = calloc(1, sizeof *a);
  if (a == NULL)
    return NULL;
  atomic_init(&a->refs, 1);
  a->kind = kind;
  return a;
}

enum ac_code ac_auth_new_token(const char *token, ac_auth **out,
                               struct ac_error *err) {
  ac_auth *a;
  *out = NULL;
  if (token == NULL || token[0] == '\0')
    return ac_error_set(err, AC_EINVAL, "Token must not be empty");
  if (strpbrk(token, "\r\n") != NULL)
    return ac_error_set(err, AC_EINVAL, "token contains a line break");
  a = auth_alloc(AUTH_STATIC);
  if (a == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  a->token = strdup(token);
  if (a->token == NULL) {
    free(a);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  *out = a;
  return AC_OK;
}

enum ac_code ac_read_token_file(const char *path, char **token,
                                struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct ac_buf b;
  char chunk[4096];
  size_t start = 0, end;
  int fd;
  *token = NULL;
  ac_buf_init(&b, TOKEN_FILE_MAX);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return ac_error_set(err, AC_ENOTFOUND, "token file %s not found",
                          path);
    return ac_error_errno(err, AC_EAUTH, errno, "cannot open token file %s",
                          path);
  }
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = ac_error_errno(err, AC_EAUTH, errno, "cannot read token file %s",
                          path);
      goto out;
    }
    if (n == 0)
      break;
    if (ac_buf_add(&b, chunk, (size_t)n) != AC_OK) {
      rc = ac_error_set(err, AC_EAUTH, "token file %s is too large", path);
      goto out;
    }
  }
  /* Python's str.strip(): ASCII whitespace (and a few more) both ends. */
  end = b.len;
  while (start < end && strchr(" \t\n\r\v\f", b.data[start]) != NULL)
    start++;
  while (end > start && strchr(" \t\n\r\v\f", b.data[end - 1]) != NULL)
    end--;
  *token = strndup(end > start ? b.data + start : "", end - start);
  if (*token == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
out:
  close(fd);
  ac_buf_free(&b);
  return rc;
}

enum ac_code ac_auth_new_token_file(const char *path, ac_auth **out,
                                    struct ac_error *err) {
  enum ac_code rc;
  char *tok = NULL;
  *out = NULL;
  if (path == NULL)
    return ac_error_set(err, AC_EINVAL, "token file path is NULL");
  rc = ac_read_token_file(path, &tok, err);
  if (rc != AC_OK)
    return rc;
  assert(tok != NULL);                /* AC_OK comes with the token */
  if (tok[0] == '\0') {
    free(tok);
    return ac_error_set(err, AC_ENOTFOUND, "token file %s is empty", path);
  }
  rc = ac_auth_new_token(tok, out, err);
  free(tok);
  return rc;
}

enum ac_code ac_auth_new_callback(ac_token_fn fn, void *ud,
                                  void (*free_ud)(void *ud), ac_auth **out,
                                  struct ac_error *err) {
  ac_auth *a;
  *out = NULL;
  if (fn == NULL)
    return ac_error_set(err, AC_EINVAL, "token callback is NULL");
  a = auth_alloc(AUTH_CALLBACK);
  if (a == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  a->fn = fn;
  a->ud = ud;
  a->free_ud = free_ud;
  *out = a;
  return AC_OK;
}

enum ac_code ac_auth_new_oauth(const struct ac_oauth_config *cfg,
                               ac_auth **out, struct ac_error *err) {
  enum ac_code rc;
  struct ac_oauth *o = NULL;
  ac_auth *a;
  *out = NULL;
  rc = ac_oauth_new(cfg, &o, err);
  if (rc != AC_OK)
    return rc;
  a = auth_alloc(AUTH_OAUTH);
  if (a == NULL) {
    ac_oauth_free(o);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  a->oauth = o;
  *out = a;
  return AC_OK;
}

ac_auth *ac_auth_ref(ac_auth *a) {
  if (a != NULL)
    atomic_fetch_add(&a->refs, 1);
  return a;
}

void ac_auth_unref(ac_auth *a) {
  if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1)
    return;
  free(a->token);
  if (a->free_ud != NULL)
    a->free_ud(a->ud);
  ac_oauth_free(a->oauth);
  free(a);
}

enum ac_code ac_auth_get_token(ac_auth *a, char **token,
                               struct ac_error *err) {
  enum ac_code rc = AC_OK;
  *token = NULL;
  if (a == NULL)
    return ac_error_set(err, AC_EINVAL, "no auth provider");
  switch (a->kind) {
  case AUTH_STATIC:
    *token = strdup(a->token);
    if (*token == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
    return AC_OK;
  case AUTH_CALLBACK:
    ac_error_clear(err);
    rc = a->fn(a->ud, token, err);
    if (rc != AC_OK) {
      free(*token);
      *token = NULL;
      if (err != NULL && (err->code != rc || err->msg[0] == '\0'))
        ac_error_set(err, rc, "token callback failed");
      return rc;
    }
    break;
  case AUTH_OAUTH:
    rc = ac_oauth_token(a->oauth, token, err);
    if (rc != AC_OK)
      return rc;
    break;
  }
  if (*token == NULL || (*token)[0] == '\0' ||
      strpbrk(*token, "\r\n") != NULL) {
    free(*token);
    *token = NULL;
    return ac_error_set(err, AC_EAUTH,
                        "auth provider returned an empty or invalid token");
  }
  return AC_OK;
}

enum ac_code ac_auth_add_header(ac_auth *a, struct curl_slist **headers,
                                struct ac_error *err) {
  enum ac_code rc;
  char *tok = NULL, *line = NULL;
  struct curl_slist *n;
  if (a == NULL)
    return AC_OK;
  rc = ac_auth_get_token(a, &tok, err);
  if (rc != AC_OK)
    return rc;
  if (asprintf(&line, "Authorization: Bearer %s", tok) < 0) {
    line = NULL;
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  n = curl_slist_append(*headers, line);
  if (n == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  *headers = n;
out:
  free(line);
  if (tok != NULL) {
    explicit_bzero(tok, strlen(tok));
    free(tok);
  }
  return rc;
}
