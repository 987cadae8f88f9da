/*
** test_image_store.c -- the image store's refusals and bookkeeping with
** small rootfs: trees: a tree or layout that is not there fails the build
** naming it and leaves nothing; a box is a user of one image at a time;
** an image being built or removed is neither used nor removed meanwhile;
** removing what is not there says so.
*/
#include "config.h"
#include "image.h"
#include "image_int.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64] = "/tmp/agentcube-imgstore-XXXXXX";
static char store[128], cfgpath[128];
static struct ac_config cfg;

static int write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(s, f);
  return fclose(f);
}

static int mktree(const char *name, const char *marker) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  if (mkdir(p, 0755) != 0)
    return -1;
  snprintf(p, sizeof p, "%s/%s/marker", dir, name);
  return write_text(p, marker);
}

static const struct img_spec *image_of(const char *tname) {
  for (size_t i = 0; i < cfg.ntemplates; i++)
    if (!strcmp(cfg.templates[i].name, tname))
      return cfg.templates[i].image;
  return NULL;
}

static unsigned users_of(const char *id) {
  struct img_info *inf = NULL;
  size_t n = 0;
  struct ac_error e;
  unsigned u = 999;
  if (id == NULL)                     /* no such image: no users to count */
    return u;
  if (img_store_list(store, &inf, &n, &e) == AC_OK)
    for (size_t i = 0; i < n; i++)
      if (!strcmp(inf[i].id, id))
        u = inf[i].users;
  free(inf);
  return u;
}

static size_t images_in_store(void) {
  struct img_info *inf = NULL;
  size_t n = 0;
  struct ac_error e;
  if (img_store_list(store, &inf, &n, &e) != AC_OK)
    return 999;
  free(inf);
  return n;
}

static void missing_sources(void) {
  struct ac_error e;
  int built = -1;
  char want[256];

  tcase("a rootfs or OCI layout that is not there fails the build, "
        "naming it, and leaves nothing");
  is_int(img_build(image_of("norootfs"), NULL, 0, &built, &e),
         AC_ENOTFOUND, "rootfs: not there");
  snprintf(want, sizeof want, "image rootfs %s/nothing-here", dir);
  ok(strstr(e.msg, want) != NULL, "  says: %s", e.msg);
  is_int(img_build(image_of("nooci"), NULL, 0, &built, &e), AC_ENOTFOUND,
         "oci: not there");
  snprintf(want, sizeof want, "image oci layout %s/no-layout", dir);
  ok(strstr(e.msg, want) != NULL, "  says: %s", e.msg);
  is_int(images_in_store(), 0, "nothing in the store");
  /* control: a tree that is there builds */
  is_int(img_build(image_of("a"), NULL, 0, &built, &e), AC_OK,
         "a tree that is there builds: %s", built ? "" : e.msg);
  is_int(images_in_store(), 1, "one image in the store");
}

static void one_image_per_box(void) {
  struct ac_error e;
  const struct img_spec *a = image_of("a"), *b = image_of("b");
  char box[256];
  int built;

  tcase("a box is a user of one image at a time; a box that is gone is "
        "no user");
  REQUIRE(img_build(b, NULL, 0, &built, &e) == AC_OK, "b built: %s",
          e.msg);
  snprintf(box, sizeof box, "%s/boxes-7", dir);
  REQUIRE(mkdir(box, 0755) == 0, "a box directory");
  is_int(img_use(a, box, &e), AC_OK, "the box uses a");
  is_int(users_of(a->id), 1, "a: one user");
  is_int(users_of(b->id), 0, "b: none");
  is_int(img_use(b, box, &e), AC_OK, "the same box (its slot reused) "
         "uses b");
  is_int(users_of(a->id), 0, "a: none any more");
  is_int(users_of(b->id), 1, "b: one user");
  rmdir(box);
  is_int(users_of(b->id), 0, "b: none once the box is gone");
}

static void locked_images(void) {
  struct ac_error e;
  const struct img_spec *a = image_of("a");
  char box[256];
  int lock;

  tcase("an image being built or removed is not used meanwhile; one in "
        "use or locked is not removed; one not there is named");
  snprintf(box, sizeof box, "%s/boxes-8", dir);
  REQUIRE(mkdir(box, 0755) == 0, "a box directory");
  lock = img_lock(store, a->id, LOCK_EX | LOCK_NB);
  REQUIRE(lock >= 0, "the image locked as a build or removal does");
  is_int(img_use(a, box, &e), AC_ECONFIG, "a session is refused");
  ok(strstr(e.msg, "image ") && strstr(e.msg, "is being built or removed "
            "right now; try again when that is done"), "  says: %s", e.msg);
  close(lock);
  lock = img_lock(store, a->id, LOCK_SH | LOCK_NB);
  REQUIRE(lock >= 0, "the image locked as a session being created does");
  is_int(img_store_remove(store, a->id, &e), AC_EBUSY, "rm is refused");
  ok(strstr(e.msg, "is being built or used by a session being created") !=
     NULL, "  says: %s", e.msg);
  close(lock);
  is_int(img_use(a, box, &e), AC_OK, "unlocked, a session uses it");
  is_int(img_store_remove(store, a->id, &e), AC_EBUSY, "in use: refused");
  ok(strstr(e.msg, "is in use by 1 session") != NULL, "  says: %s", e.msg);
  rmdir(box);
  is_int(img_store_remove(store, a->id, &e), AC_OK,
         "the box gone, it is removed");
  is_int(img_store_remove(store, a->id, &e), AC_ENOTFOUND, "twice: not there");
  ok(strstr(e.msg, "no image ") && strstr(e.msg, store), "  says: %s",
     e.msg);
  is_int(img_store_remove(store, "../etc", &e), AC_ENOTFOUND,
         "a name with a slash is no image");
}

int main(void) {
  struct ac_error e;
  char text[1024], cmd[128];
  int rc;

  plan(3);
  if (mkdtemp(dir) == NULL) {
    ok(0, "a temporary directory");
    return done_testing();
  }
  snprintf(store, sizeof store, "%s/store", dir);
  snprintf(cfgpath, sizeof cfgpath, "%s/c.yaml", dir);
  snprintf(text, sizeof text,
           "default: { warmPoolSize: 0 }\ntemplates:\n"
           "  - name: a\n    image: { rootfs: %s/tree-a }\n"
           "  - name: b\n    image: { rootfs: %s/tree-b }\n"
           "  - name: norootfs\n    image: { rootfs: %s/nothing-here }\n"
           "  - name: nooci\n    image: { oci: %s/no-layout:v1 }\n",
           dir, dir, dir, dir);
  ac_config_defaults(&cfg, &e);
  if (mktree("tree-a", "a\n") != 0 || mktree("tree-b", "b\n") != 0 ||
      write_text(cfgpath, text) != 0 ||
      ac_config_load(&cfg, cfgpath, &e) != AC_OK ||
      img_config_bind(&cfg, store, cfgpath, &e) != AC_OK) {
    ok(0, "the trees and the configuration are set up: %s", e.msg);
    return done_testing();
  }
  missing_sources();
  one_image_per_box();
  locked_images();
  ac_config_free(&cfg);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  rc = system(cmd);
  (void)rc;
  return done_testing();
}
