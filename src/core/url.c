/*
** url.c -- URL building: percent-encoding, remote file paths, endpoints.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

static enum ac_code encode_n(struct ac_buf *b, const char *s, size_t n,
                             int form) {
  static const char hex[] = "0123456789ABCDEF";
  enum ac_code rc = AC_OK;
  size_t i;
  for (i = 0; i < n && rc == AC_OK; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      rc = ac_buf_add(b, &s[i], 1);
    } else if (form && c == ' ') {
      rc = ac_buf_add(b, "+", 1);
    } else {
      char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
      rc = ac_buf_add(b, esc, 3);
    }
  }
  return rc;
}

enum ac_code ac_url_encode(struct ac_buf *b, const char *s, int form) {
  return encode_n(b, s, strlen(s), form);
}

enum ac_code ac_url_remote_path(struct ac_buf *b, const char *path,
                                struct ac_error *err) {
  enum ac_code rc = AC_OK;
  size_t start = b->len;
  const char *p = path;
  while (*p != '\0') {
    const char *e;
    size_t n;
    while (*p == '/')
      p++;
    if (*p == '\0')
      break;
    e = strchr(p, '/');
    n = e ? (size_t)(e - p) : strlen(p);
    if (n == 1 && p[0] == '.') {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      char *slash;
      if (b->len == start) {
        b->len = start;
        if (b->data)
          b->data[start] = '\0';
        return ac_error_set(err, AC_EINVAL,
                            "remote path '%s' goes above the root", path);
      }
      b->data[b->len] = '\0';
      slash = strrchr(b->data + start, '/');
      b->len = slash ? (size_t)(slash - b->data) : start;
      b->data[b->len] = '\0';
    } else {
      if (b->len > start)
        rc = ac_buf_add(b, "/", 1);
      if (rc == AC_OK)
        rc = encode_n(b, p, n, 0);
      if (rc != AC_OK)
        return ac_error_set(err, rc, "remote path too long");
    }
    p += n;
  }
  return AC_OK;
}

enum ac_code ac_url_check(const char *url, const char *what,
                          struct ac_error *err) {
  enum ac_code rc = AC_OK;
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  if (u == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      host[0] == '\0') {
    rc = ac_error_set(err, AC_ECONFIG, "%s '%s' is not an absolute URL",
                      what, url);
    goto out;
  }
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
    rc = ac_error_set(err, AC_ECONFIG, "%s '%s' is not an http(s) URL",
                      what, url);
out:
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

enum ac_code ac_url_with_path(const char *base, const char *abs_path,
                              char **out, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  CURLU *u = curl_url();
  char *s = NULL;
  *out = NULL;
  if (u == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_PATH, abs_path, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
    rc = ac_error_set(err, AC_ECONFIG, "cannot build a URL from '%s'", base);
    goto out;
  }
  *out = strdup(s);
  if (*out == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
out:
  curl_free(s);
  curl_url_cleanup(u);
  return rc;
}
