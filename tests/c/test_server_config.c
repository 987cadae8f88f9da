/* The local runtime's templates: the defaults a session gets when the
** configuration says nothing (the 60 s command timeout among them), and
** what a template inherits from the default one. */
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

  plan(3);
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
  unlink(path);
  return done_testing();
}
