/* libagentcube text helpers: shlex split/join (Python shlex, POSIX mode),
** "<t>s" timeout formatting (Python int/float formatting), the SDK's
** double-escaped newline fix, URL encoding of remote paths. */
#include "internal.h"
#include "tap.h"

#include <stdlib.h>

/* Splits s and compares with the expected words (NULL-terminated). */
static void split_is(const char *s, const char *const *want,
                     const char *name) {
  tcase("shlex: %s", name);
  char **argv = NULL;
  size_t argc = 0, n = 0;
  struct ac_error e;
  int same;
  enum ac_code rc = ac_shlex_split(s, &argv, &argc, &e);
  while (want[n] != NULL)
    n++;
  same = rc == AC_OK && argc == n;
  for (size_t i = 0; same && i < n; i++)
    same = strcmp(argv[i], want[i]) == 0;
  if (!ok(same, "shlex: %s", name)) {
    printf("#   rc %d, %zu words:", rc, argc);
    for (size_t i = 0; rc == AC_OK && i < argc; i++)
      printf(" [%s]", argv[i]);
    printf("\n");
  }
  if (rc == AC_OK)
    ok(argv[argc] == NULL, "shlex: %s: argv is NULL-terminated", name);
  ac_argv_free(argv);
}

static void split_fails(const char *s, const char *msg, const char *name) {
  tcase("shlex: %s fails", name);
  char **argv = (char **)1;
  size_t argc = 7;
  struct ac_error e;
  is_int(ac_shlex_split(s, &argv, &argc, &e), AC_EINVAL, "shlex: %s", name);
  ok(strstr(e.msg, msg) != NULL, "shlex: %s: message '%s'", name, e.msg);
  ok(argv == NULL && argc == 0, "shlex: %s: no output", name);
}

static void timeout_is(double t, int is_float, const char *want) {
  char buf[64];
  struct ac_error e;
  enum ac_code rc = ac_format_timeout(t, is_float, buf, sizeof buf, &e);
  is_int(rc, AC_OK, "timeout %.17g (%s) formats", t, is_float ? "float"
                                                              : "int");
  is_str(buf, want, "timeout %.17g (%s) text", t, is_float ? "float"
                                                            : "int");
}

static void pyfix_is(const char *code, const char *want, const char *name) {
  char *out = NULL;
  size_t len = 0;
  int r = ac_pyfix_newlines(code, strlen(code), &out, &len);
  if (want == NULL) {
    ok(r == 0 && out == NULL, "pyfix: %s: unchanged", name);
  } else {
    ok(r == 1, "pyfix: %s: fixed", name);
    is_str(out, want, "pyfix: %s: text", name);
    is_int(len, strlen(want), "pyfix: %s: length", name);
  }
  free(out);
}

static void remote_is(const char *path, const char *want) {
  struct ac_buf b;
  struct ac_error e;
  ac_buf_init(&b, 0);
  if (want == NULL) {
    is_int(ac_url_remote_path(&b, path, &e), AC_EINVAL,
           "remote path '%s' refused", path);
  } else {
    is_int(ac_url_remote_path(&b, path, &e), AC_OK, "remote path '%s'",
           path);
    is_str(ac_buf_str(&b), want, "remote path '%s' -> '%s'", path, want);
  }
  ac_buf_free(&b);
}

int main(void) {
  plan(23);
  /* Checklist 51: the string form is split like shlex.split. */
  split_is("ls -la 'a b'", (const char *[]){ "ls", "-la", "a b", NULL },
           "single quotes");
  split_is("echo \"a \\\"q\\\" b\"",
           (const char *[]){ "echo", "a \"q\" b", NULL },
           "escaped quote inside double quotes");
  split_is("a\\ b c", (const char *[]){ "a b", "c", NULL },
           "escaped space");
  split_is("x \"a\\nb\" 'c\\d'",
           (const char *[]){ "x", "a\\nb", "c\\d", NULL },
           "backslash kept inside quotes");
  split_is("''", (const char *[]){ "", NULL }, "empty quotes: empty word");
  split_is("a '' b", (const char *[]){ "a", "", "b", NULL },
           "empty word in the middle");
  split_is("a\"\"b", (const char *[]){ "ab", NULL }, "adjacent quotes join");
  split_is("a\"b c\"d", (const char *[]){ "ab cd", NULL },
           "quoted part inside a word");
  split_is("  lead  trail  ", (const char *[]){ "lead", "trail", NULL },
           "surrounding whitespace");
  split_is("tab\tsep\nnl", (const char *[]){ "tab", "sep", "nl", NULL },
           "tabs and newlines separate");
  split_is("a#b # c", (const char *[]){ "a#b", "#", "c", NULL },
           "no comments");
  split_is("echo \"$HOME\" | wc",
           (const char *[]){ "echo", "$HOME", "|", "wc", NULL },
           "no shell features");
  split_is("\"\\\\\"", (const char *[]){ "\\", NULL },
           "escaped backslash in double quotes");
  split_is("echo \"x\\\ny\"", (const char *[]){ "echo", "x\\\ny", NULL },
           "backslash-newline kept inside double quotes");
  split_is("\xc3\xa9 \xc3\xbc", (const char *[]){ "\xc3\xa9", "\xc3\xbc",
                                                  NULL }, "UTF-8 words");
  split_is("", (const char *[]){ NULL }, "empty string: no words");
  split_fails("'unbalanced", "No closing quotation", "unbalanced single");
  split_fails("echo \"open", "No closing quotation", "unbalanced double");
  split_fails("a\\", "No escaped character", "trailing backslash");

  tcase("shlex join quotes like shlex.join");
  {
    const char *argv[] = { "ls", "a b", "it's", "", "x@y%z+=:,./-" };
    char *s = NULL;
    struct ac_error e;
    is_int(ac_shlex_join(argv, 5, &s, &e), AC_OK, "shlex join");
    is_str(s, "ls 'a b' 'it'\"'\"'s' '' x@y%z+=:,./-",
           "shlex join quotes like shlex.join");
    free(s);
  }

  tcase("Checklist 51: \"<t>s\" like Python's f\"{t}s\"");
  /* Checklist 51: "<t>s" like Python's f"{t}s". */
  timeout_is(0, 0, "120s");
  timeout_is(0, 1, "120s");
  timeout_is(120, 0, "120s");
  timeout_is(30, 0, "30s");
  timeout_is(2.5, 1, "2.5s");
  timeout_is(2.5, 0, "2.5s");
  timeout_is(30, 1, "30.0s");
  timeout_is(100, 1, "100.0s");
  timeout_is(0.5, 1, "0.5s");
  timeout_is(0.1, 1, "0.1s");
  timeout_is(1.0 / 3, 1, "0.3333333333333333s");
  timeout_is(3.14159, 1, "3.14159s");
  timeout_is(1e-05, 1, "1e-05s");
  timeout_is(0.0001, 1, "0.0001s");
  timeout_is(123456789.0, 1, "123456789.0s");
  timeout_is(1e15, 1, "1000000000000000.0s");
  timeout_is(1e16, 1, "1e+16s");
  timeout_is(1.5e16, 1, "1.5e+16s");
  timeout_is(1e22, 1, "1e+22s");
  timeout_is(1e16, 0, "10000000000000000s");
  timeout_is(1e100, 1, "1e+100s");
  timeout_is(1.5e-07, 1, "1.5e-07s");
  {
    char buf[64];
    struct ac_error e;
    is_int(ac_format_timeout(-1, 0, buf, sizeof buf, &e), AC_EINVAL,
           "negative timeout refused");
    is_int(ac_format_timeout(1.0 / 0.0, 1, buf, sizeof buf, &e), AC_EINVAL,
           "infinite timeout refused");
    is_int(ac_format_timeout(120, 0, buf, 3, &e), AC_ETOOBIG,
           "small buffer reported");
  }

  tcase("Checklist 55: literal \\n in invalid code becomes a newline");
  /* Checklist 55: literal \\n in invalid code becomes a newline. */
  pyfix_is("print(1)\\nprint(2)", "print(1)\nprint(2)", "literal \\n");
  pyfix_is("print(1)\nprint(2)\n", NULL, "valid code untouched");
  pyfix_is("print('a\\nb')", NULL, "\\n inside a string untouched");
  pyfix_is("x = 1 \\\ny = 2", NULL, "line continuation is valid");
  pyfix_is("s = '''a\\nb\n'''\\nprint(s)", "s = '''a\nb\n'''\nprint(s)",
           "every \\n replaced, strings included, like str.replace");
  pyfix_is("print(1\\nprint(2)", NULL, "still invalid after the fix: kept");
  pyfix_is("# c\\n\nprint(1)", NULL, "\\n in a comment is valid");
  pyfix_is("x = r'\\n'", NULL, "raw string untouched");
  pyfix_is("x = 1 \\\r\ny = 2", NULL, "a CRLF line continuation is valid");
  pyfix_is("s = 'a\nb'\\nprint(s)", NULL,
           "a string broken by a newline: invalid either way, kept");
  {
    /* 201 open brackets: deeper than the lexer follows, so never
    ** "sound", and the fix cannot make it so */
    char deep[260];
    memset(deep, '(', 201);
    strcpy(deep + 201, "\\n)");
    pyfix_is(deep, NULL, "brackets nested past 200: kept as they are");
  }
  ok(ac_py_lexically_ok("f(\"\"\"a\n\"b\"\n\"\"\")", 15),
     "triple-quoted string spans lines");
  ok(!ac_py_lexically_ok("print('a)", 9), "unterminated string");
  ok(!ac_py_lexically_ok("f(]", 3), "mismatched brackets");

  tcase("Checklist 58: leading '/' stripped; components percent-encoded");
  /* Checklist 58: leading '/' stripped; components percent-encoded. */
  remote_is("/a/b.txt", "a/b.txt");
  remote_is("//a//b.txt", "a/b.txt");
  remote_is("a b/c?d#e%.txt", "a%20b/c%3Fd%23e%25.txt");
  remote_is("./a/./b", "a/b");
  remote_is("a/../b", "b");
  remote_is("../x", NULL);
  remote_is("a/../../x", NULL);
  remote_is("\xc3\xa9.txt", "%C3%A9.txt");
  remote_is("a/b/", "a/b");
  {
    struct ac_buf b;
    struct ac_error e;
    ac_buf_init(&b, 8);
    is_int(ac_url_remote_path(&b, "abc/defgh/ij", &e), AC_ETOOBIG,
           "a remote path past a capped buffer");
    is_str(e.msg, "remote path too long", "says so");
    ac_buf_free(&b);
  }
  {
    struct ac_buf b;
    ac_buf_init(&b, 0);
    ac_url_encode(&b, "a b/c&d=é", 1);
    is_str(ac_buf_str(&b), "a+b%2Fc%26d%3D%C3%A9",
           "query values are form-encoded like quote_plus");
    ac_buf_free(&b);
    ac_buf_init(&b, 4);
    is_int(ac_buf_add(&b, "abcd", 4), AC_OK, "buffer up to its cap");
    is_int(ac_buf_add(&b, "e", 1), AC_ETOOBIG, "buffer past its cap");
    is_int(b.len, 4, "buffer unchanged on failure");
    ac_buf_free(&b);
  }
  return done_testing();
}
