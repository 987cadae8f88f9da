/* The local runtime's templates: the defaults a session gets when the
** configuration says nothing (the 60 s command timeout among them), and
** what a template inherits from the default one; quantities and CPU
** amounts are decimal numbers only. */
#include "config.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SEC 1000000000LL

static char path[64] = "/tmp/agentcube-config-XXXXXX";

static int write_config(const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
}

int main(void) {
  struct ac_config cfg;
  struct ac_error e;
  const struct ac_template *t;
  int fd;

  plan(4);
  fd = mkstemp(path);
  if (fd >= 0)
    close(fd);

  tcase("no configuration: any template runs commands with a 60 s timeout");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK, "defaults load")) {
    t = ac_config_find(&cfg, "default", "my-interpreter");
    ok(t != NULL, "my-interpreter answers without configuration");
    is_int(t ? t->command_timeout_ns : -1, 60 * SEC,
           "the execute default is 60 s");
    ac_config_free(&cfg);
  }

  tcase("a configured template without commandTimeout keeps 60 s; "
        "commandTimeout sets its own");
  ok(write_config("templates:\n"
                  "  - name: plain\n"
                  "  - name: quick\n"
                  "    commandTimeout: 2s\n") == 0, "config written");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK &&
         ac_config_load(&cfg, path, &e) == AC_OK, "config loads")) {
    t = ac_config_find(&cfg, "default", "plain");
    is_int(t ? t->command_timeout_ns : -1, 60 * SEC, "plain: 60 s");
    t = ac_config_find(&cfg, "default", "quick");
    is_int(t ? t->command_timeout_ns : -1, 2 * SEC, "quick: 2 s");
    ac_config_free(&cfg);
  }

  tcase("defaults: commandTimeout in the default template applies to all");
  ok(write_config("default:\n"
                  "  commandTimeout: 5s\n"
                  "templates:\n"
                  "  - name: plain\n") == 0, "config written");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK &&
         ac_config_load(&cfg, path, &e) == AC_OK, "config loads: %s",
         e.msg)) {
    t = ac_config_find(&cfg, "default", "plain");
    is_int(t ? t->command_timeout_ns : -1, 5 * SEC, "plain: 5 s");
    t = ac_config_find(&cfg, "default", "other");
    is_int(t ? t->command_timeout_ns : -1, 5 * SEC, "any other name: 5 s");
    ac_config_free(&cfg);
  }
  tcase("quantities and CPU amounts: decimal numbers only, never NaN, "
        "infinity or hex floats (a NaN overflowed the cast)");
  {
    static const char *const bad[] = { "NAN", "nan", "nanMi", "inf",
      "INFINITY", "0x10", "0x1p4Mi", "-1", "", "Mi", "1.5x" };
    unsigned long long q = 0;
    unsigned m = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      is_int(ac_parse_quantity(bad[i], &q), AC_EINVAL, "quantity '%s'",
             bad[i]);
      is_int(ac_parse_cpu(bad[i], &m), AC_EINVAL, "cpu '%s'", bad[i]);
    }
    /* controls: what the README shows still parses */
    ok(ac_parse_quantity("512Mi", &q) == AC_OK && q == 512ULL << 20,
       "512Mi");
    ok(ac_parse_quantity("1.5Gi", &q) == AC_OK && q == 3ULL << 29, "1.5Gi");
    ok(ac_parse_quantity("1e3", &q) == AC_OK && q == 1000, "1e3");
    ok(ac_parse_cpu("500m", &m) == AC_OK && m == 500, "500m");
    ok(ac_parse_cpu("2", &m) == AC_OK && m == 2000, "2");
  }
  unlink(path);
  return done_testing();
}
