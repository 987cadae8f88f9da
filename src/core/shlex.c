/*
** shlex.c -- Python's shlex.split(s, posix=True) and shlex.join, which the
** SDK uses to turn a command string into argv. The splitter is the state
** machine of Python's shlex in POSIX mode with whitespace_split and no
** comment characters: whitespace " \t\r\n" separates words; '...' keeps
** everything; "..." lets a backslash escape only '"' and '\'; outside
** quotes a backslash escapes any character; '' gives an empty word.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct words {
  char **v;
  size_t n, cap;
};

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum ac_code push_word(struct words *w, struct ac_buf *tok) {
  char *s;
  if (w->n + 2 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 8;
    char **v = realloc(w->v, cap * sizeof *v);
    if (v == NULL)
      return AC_ENOMEM;
    w->v = v;
    w->cap = cap;
  }
  s = ac_buf_steal(tok, NULL);
  if (s == NULL)
    return AC_ENOMEM;
  w->v[w->n++] = s;
  w->v[w->n] = NULL;
  return AC_OK;
}

void ac_argv_free(char **argv) {
  if (argv == NULL)
    return;
  for (char **p = argv; *p != NULL; p++)
    free(*p);
  free(argv);
}

enum ac_code ac_shlex_split(const char *s, char ***argv, size_t *argc,
                            struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct words w = { NULL, 0, 0 };
  struct ac_buf tok;
  char state = ' ', escaped = ' ';
  int quoted = 0;
  size_t i = 0;

  *argv = NULL;
  *argc = 0;
  ac_buf_init(&tok, 0);
  for (;;) {
    char c = s[i];                    /* '\0': end of input */
    if (c != '\0')
      i++;
    if (state == ' ' || state == 'a') {
      if (c == '\0' || is_ws(c)) {
        if (tok.len > 0 || quoted) {
          rc = push_word(&w, &tok);
          if (rc != AC_OK)
            goto fail;
        }
        ac_buf_reset(&tok);
        quoted = 0;
        state = ' ';
        if (c == '\0')
          break;
      } else if (c == '\\') {
        escaped = 'a';
        state = '\\';
      } else if (c == '\'' || c == '"') {
        state = c;
      } else {
        state = 'a';
        rc = ac_buf_add(&tok, &c, 1);
      }
    } else if (state == '\'' || state == '"') {
      quoted = 1;
      if (c == '\0') {
        rc = ac_error_set(err, AC_EINVAL,
                          "cannot split command: No closing quotation");
        goto fail;
      }
      if (c == state) {
        state = 'a';
      } else if (c == '\\' && state == '"') {
        escaped = state;
        state = '\\';
      } else {
        rc = ac_buf_add(&tok, &c, 1);
      }
    } else {                          /* after a backslash */
      if (c == '\0') {
        rc = ac_error_set(err, AC_EINVAL,
                          "cannot split command: No escaped character");
        goto fail;
      }
      /* Inside double quotes only '"' and '\' can be escaped. */
      if (escaped == '"' && c != '\\' && c != '"')
        rc = ac_buf_add(&tok, "\\", 1);
      if (rc == AC_OK)
        rc = ac_buf_add(&tok, &c, 1);
      state = escaped;
    }
    if (rc != AC_OK)
      goto fail;
  }
  if (w.v == NULL) {                  /* no words: an empty argv */
    w.v = calloc(1, sizeof *w.v);
    if (w.v == NULL) {
      rc = AC_ENOMEM;
      goto fail;
    }
  }
  ac_buf_free(&tok);
  *argv = w.v;
  *argc = w.n;
  return AC_OK;
fail:
  if (rc == AC_ENOMEM)
    ac_error_set(err, AC_ENOMEM, "out of memory");
  ac_buf_free(&tok);
  if (w.v != NULL)
    w.v[w.n] = NULL;
  ac_argv_free(w.v);
  return rc;
}

static int safe_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c) != NULL;
}

/* shlex.quote: as is when every byte is safe, else in single quotes with
** each ' written as '"'"'. */
static enum ac_code quote_into(struct ac_buf *b, const char *a) {
  enum ac_code rc = AC_OK;
  const char *p;
  int safe = a[0] != '\0';
  for (p = a; *p != '\0' && safe; p++)
    safe = safe_char((unsigned char)*p);
  if (safe)
    return ac_buf_addstr(b, a);
  rc = ac_buf_add(b, "'", 1);
  for (p = a; *p != '\0' && rc == AC_OK; p++)
    rc = *p == '\'' ? ac_buf_addstr(b, "'\"'\"'") : ac_buf_add(b, p, 1);
  if (rc == AC_OK)
    rc = ac_buf_add(b, "'", 1);
  return rc;
}

enum ac_code ac_shlex_join(const char *const *argv, size_t argc, char **out,
                           struct ac_error *err) {
  struct ac_buf b;
  enum ac_code rc = AC_OK;
  *out = NULL;
  ac_buf_init(&b, 0);
  for (size_t i = 0; i < argc && rc == AC_OK; i++) {
    if (i > 0)
      rc = ac_buf_add(&b, " ", 1);
    if (rc == AC_OK)
      rc = quote_into(&b, argv[i]);
  }
  if (rc == AC_OK) {
    *out = ac_buf_steal(&b, NULL);
    if (*out == NULL)
      rc = AC_ENOMEM;
  }
  ac_buf_free(&b);
  if (rc != AC_OK)
    return ac_error_set(err, rc, "out of memory");
  return AC_OK;
}
