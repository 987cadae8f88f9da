/*
** test_image_spec.c -- the `image:` key of a template: parsing, errors
** with positions, and the content address (what changes the image's name
** and what does not).
*/
#include "config.h"
#include "image.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

/* Loads a configuration text; returns the code, fills cfg and err. */
static enum ac_code load(const char *text, struct ac_config *cfg,
                         struct ac_error *err) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  ac_config_defaults(cfg, err);
  return ac_config_load(cfg, path, err);
}

/* The image id of template 0 of a text (or "" when it has none). */
static const char *id_of(const char *text, char *buf) {
  struct ac_config cfg;
  struct ac_error err;
  buf[0] = '\0';
  if (load(text, &cfg, &err) != AC_OK)
    snprintf(buf, 40, "error: %.30s", err.msg);
  else if (cfg.ntemplates && cfg.templates[0].image)
    strcpy(buf, cfg.templates[0].image->id);
  ac_config_free(&cfg);
  return buf;
}

#define TPL(img) "templates:\n  - name: t\n    image: " img "\n"

int main(void) {
  struct ac_config cfg;
  struct ac_error err;
  char a[64], b[64];
  int fd;

  plan(6);
  tcase("content address of packages: order and duplicates do not count, "
        "list, suite and mirror do");
  strcpy(path, "/tmp/agentcube-imgspec-XXXXXX");
  fd = mkstemp(path);
  if (!precondition(fd >= 0, "a temporary configuration file %s", path))
    return done_testing();
  close(fd);
  id_of(TPL("{ packages: [python3-minimal, python3-numpy] }"), a);
  ok(strncmp(a, "debian-", 7) == 0 && strlen(a) == 23, "debian id %s", a);
  is_str(id_of(TPL("{ packages: [python3-numpy, python3-minimal, "
                   "python3-numpy] }"), b), a,
         "package order and duplicates do not change the image");
  ok(strcmp(id_of(TPL("{ packages: [python3-minimal] }"), b), a) != 0,
     "another package list is another image");
  id_of(TPL("{ packages: [python3-minimal, python3-numpy], "
            "suite: trixie }"), b);
  ok(strncmp(b, "debian-", 7) == 0 && strcmp(b, a) != 0,
     "another suite is another image");
  id_of(TPL("{ packages: [python3-minimal, python3-numpy], "
            "mirror: http://mirror.example/debian }"), b);
  ok(strncmp(b, "debian-", 7) == 0 && strcmp(b, a) != 0,
     "another mirror is another image");
  tcase("content address of rootfs and oci images: tree and tag count");
  id_of(TPL("{ rootfs: /srv/tree }"), a);
  ok(strncmp(a, "rootfs-", 7) == 0, "rootfs id %s", a);
  ok(strcmp(id_of(TPL("{ rootfs: /srv/other }"), b), a) != 0,
     "another tree is another image");
  id_of(TPL("{ oci: /srv/layout:v1 }"), a);
  ok(strncmp(a, "oci-", 4) == 0, "oci id %s", a);
  ok(strcmp(id_of(TPL("{ oci: /srv/layout:v2 }"), b), a) != 0,
     "another tag is another image");

  tcase("oci: the layout and the default tag are parsed");
  is_int(load(TPL("{ oci: /srv/layout }"), &cfg, &err), AC_OK, "oci: DIR");
  is_str(cfg.templates[0].image->tag, "latest", "the default tag");
  is_str(cfg.templates[0].image->dir, "/srv/layout", "the layout");
  ac_config_free(&cfg);
  tcase("templates inherit the default image, image: null means none, "
        "binding names the store's rootfs");
  is_int(load("default:\n  image: { rootfs: /srv/tree }\ntemplates:\n"
              "  - name: a\n  - name: b\n    image: null\n", &cfg, &err),
         AC_OK, "a default image, and image: null");
  ok(cfg.fallback.image && cfg.templates[0].image &&
     cfg.templates[0].image != cfg.fallback.image &&
     !strcmp(cfg.templates[0].image->id, cfg.fallback.image->id),
     "templates inherit the default's image (their own copy)");
  ok(cfg.templates[1].image == NULL, "image: null means the host's /usr");
  is_int(img_config_bind(&cfg, "/srv/images", NULL, &err), AC_OK, "bind");
  ok(cfg.templates[0].limits.image_root &&
     strstr(cfg.templates[0].limits.image_root, "/srv/images/rootfs-") &&
     strstr(cfg.templates[0].limits.image_root, "/rootfs"),
     "the sandbox binds <store>/<id>/rootfs");
  ok(cfg.templates[1].limits.image_root == NULL, "no image, no root");
  ac_config_free(&cfg);

  tcase("image: ~ and an empty image: mean none too; a relative rootfs "
        "is taken from the working directory");
  is_int(load("default:\n  image: { rootfs: /srv/tree }\ntemplates:\n"
              "  - name: a\n    image: ~\n  - name: b\n    image:\n"
              "  - name: c\n    image: { rootfs: no-such-tree/here }\n",
              &cfg, &err), AC_OK, "loads");
  ok(cfg.ntemplates == 3 && cfg.templates[0].image == NULL &&
     cfg.templates[1].image == NULL, "~ and an empty value: the host's /usr");
  {
    char cwd[4096], want[4200];
    if (getcwd(cwd, sizeof cwd) == NULL)
      cwd[0] = '\0';
    snprintf(want, sizeof want, "%s/no-such-tree/here", cwd);
    is_str(cfg.ntemplates == 3 && cfg.templates[2].image
           ? cfg.templates[2].image->dir : NULL, want,
           "a relative rootfs that does not exist yet: under the working "
           "directory");
  }
  ac_config_free(&cfg);

  tcase("errors name the file, line and column");
  static const struct { const char *text, *want; } bad[] = {
    { TPL("{ packages: [\"python3; rm -rf /\"] }"),
      ":3:25: 'python3; rm -rf /' is not a Debian package name" },
    { TPL("{ packages: [a], rootfs: /x }"),
      ":3:12: image needs exactly one of packages, rootfs or oci" },
    { TPL("{ pakages: [a] }"), ":3:14: unknown key 'pakages' in image" },
    { TPL("{ rootfs: /x, suite: sid }"),
      "suite and mirror go with packages" },
    { TPL("{ packages: python3 }"),
      ":3:24: image.packages must be a list" },
    { TPL("[a]"), ":3:12: image must be a mapping" },
    { TPL("{ packages: [a], suite: \"--x\" }"),
      "image.suite must be a single word" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    enum ac_code rc = load(bad[i].text, &cfg, &err);
    ok(rc == AC_ECONFIG && strstr(err.msg, bad[i].want) &&
       strncmp(err.msg, path, strlen(path)) == 0,
       "rejected: %s", bad[i].want);
    if (rc != AC_ECONFIG || !strstr(err.msg, bad[i].want))
      printf("#   got: %s\n", err.msg);
    ac_config_free(&cfg);
  }
  unlink(path);
  return done_testing();
}
