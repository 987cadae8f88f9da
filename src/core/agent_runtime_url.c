/*
** agent_runtime_url.c -- where an invocation goes (agent_runtime.h).
**
** The SDK joins its path to the base with urljoin and hands the URL to
** requests: urllib3 encodes per component what a URL cannot hold
** (uppercasing existing escapes, or encoding every '%' when one of them
** does not start an escape), then requests decodes the escapes of
** unreserved characters. Both steps are redone here on the path and the
** query of the relative reference; libcurl's URL parser resolves it
** against the base (dot segments included), as urljoin does. A fragment
** is never sent, so it is dropped.
*/
#include "agent_runtime.h"

#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Whether s[i..] (n bytes in all) is "%XX". */
static int escape_at(const char *s, size_t i, size_t n) {
  return s[i] == '%' && n - i >= 3 && hexval((unsigned char)s[i + 1]) >= 0 &&
         hexval((unsigned char)s[i + 2]) >= 0;
}

/* What urllib3 leaves raw in a path, and in a query. */
static int raw_ok(unsigned char c, int query) {
  return unreserved(c) || (c != 0 && strchr("!$&'()*+,;=:@/", c) != NULL) ||
         (query && c == '?');
}

static enum ac_code add_byte_escaped(struct ac_buf *b, unsigned char c) {
  static const char hex[] = "0123456789ABCDEF";
  char e[3] = { '%', hex[c >> 4], hex[c & 15] };
  return ac_buf_add(b, e, 3);
}

/* One component (n bytes of s) as urllib3 then requests leave it. */
static enum ac_code quote_component(struct ac_buf *b, const char *s,
                                    size_t n, int query) {
  enum ac_code rc = AC_OK;
  size_t i, pct = 0, esc = 0;
  for (i = 0; i < n; i++)
    if (s[i] == '%') {
      pct++;
      esc += escape_at(s, i, n);
    }
  for (i = 0; i < n && rc == AC_OK; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%' && escape_at(s, i, n)) {
      unsigned char v = (unsigned char)(hexval((unsigned char)s[i + 1]) * 16
                                        + hexval((unsigned char)s[i + 2]));
      if (pct != esc) {               /* "%2f" -> "%252F" */
        static const char hex[] = "0123456789ABCDEF";
        char e[5] = { '%', '2', '5', hex[v >> 4], hex[v & 15] };
        rc = ac_buf_add(b, e, 5);
      } else {
        rc = unreserved(v) ? ac_buf_add(b, &v, 1) : add_byte_escaped(b, v);
      }
      i += 2;
    } else if (c < 128 && raw_ok(c, query)) {
      rc = ac_buf_add(b, &s[i], 1);
    } else {
      rc = add_byte_escaped(b, c);
    }
  }
  return rc;
}

enum ac_code ac_agent_url(const char *base, const char *path, char **out,
                          struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct ac_buf rel;
  const char *q, *end;
  CURLU *u = NULL;
  char *s = NULL;

  *out = NULL;
  while (*path == '/')
    path++;
  end = path + strcspn(path, "#");
  q = memchr(path, '?', (size_t)(end - path));
  ac_buf_init(&rel, 0);
  if (quote_component(&rel, path, (size_t)((q ? q : end) - path), 0)
      != AC_OK ||
      (q != NULL && q + 1 < end &&
       (ac_buf_add(&rel, "?", 1) != AC_OK ||
        quote_component(&rel, q + 1, (size_t)(end - q - 1), 1) != AC_OK))) {
    ac_buf_free(&rel);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  if (rel.len == 0) {
    ac_buf_free(&rel);
    *out = strdup(base);
    return *out ? AC_OK : ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  u = curl_url();
  if (u == NULL ||
      curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, ac_buf_str(&rel), 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
    rc = ac_error_set(err, AC_EINVAL, "invocation path '%s' does not make "
                      "a URL", path);
  } else if (strncmp(s, base, strlen(base)) != 0) {
    rc = ac_error_set(err, AC_EINVAL, "invocation path '%s' leaves %s",
                      path, base);
  } else if ((*out = strdup(s)) == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  curl_free(s);
  curl_url_cleanup(u);
  ac_buf_free(&rel);
  return rc;
}
