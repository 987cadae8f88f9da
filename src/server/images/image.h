/*
** image.h -- sandbox images: root filesystems that templates choose
** (`image:` in the configuration), built once into an image store and
** shared read-only by every session that uses them.
**
** Sources:
**   image: { packages: [python3-numpy], suite: bookworm, mirror: URL }
**       a Debian tree built with mmdebstrap (the essential variant plus
**       the packages), named by a hash of suite, mirror, architecture and
**       the sorted package list
**   image: { rootfs: DIR }       a copy of an existing tree
**   image: { oci: DIR[:TAG] }    an OCI image layout unpacked with umoci
**                                (named by the manifest's digest too)
**
** Store layout (<dir> is <state>/images unless told otherwise):
**   <dir>/<id>/rootfs/        the tree; complete, or absent
**   <dir>/<id>/image.json     what it is, when it was built, its size
**   <dir>/<id>.lock           flock: exclusive while building or removing,
**                             shared while a box registers as a user
**   <dir>/<id>.users/<box>    one file per box using the image (its
**                             directory); a box whose directory is gone
**                             is no user any more
**   <dir>/.build-<id>-<pid>/  a build in progress; renamed to <id> when
**                             complete, removed when its process is gone
*/
#ifndef AGENTCUBE_IMAGE_H
#define AGENTCUBE_IMAGE_H

#include "ac_error.h"

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <yaml.h>

struct ac_config;

enum img_kind { IMG_DEBIAN, IMG_ROOTFS, IMG_OCI };

struct img_spec {
  enum img_kind kind;
  char *suite, *mirror, *arch;   /* IMG_DEBIAN */
  char **packages;               /* sorted, NULL-terminated */
  char *dir;                     /* IMG_ROOTFS, IMG_OCI: absolute path */
  char *tag;                     /* IMG_OCI (default "latest") */
  char id[40];                   /* "<kind>-<16 hex>" */
  /* set by img_config_bind */
  char *store;                   /* the image store directory */
  char *root;                    /* <store>/<id>/rootfs */
  char *config_path;             /* for messages: --config FILE */
  char *template_name;
};

/* Parses the value of a template's `image:` key. Errors name
** "file:line:col". On success *out is owned by the caller. */
enum ac_code img_spec_parse(yaml_document_t *doc, yaml_node_t *n,
                            const char *file, struct img_spec **out,
                            struct ac_error *err);
struct img_spec *img_spec_dup(const struct img_spec *s);
void img_spec_free(struct img_spec *s);

/* One line saying what the image is made of ("debian bookworm: a, b"). */
void img_spec_describe(const struct img_spec *s, char *buf, size_t size);

/* The default image store of a state directory (malloc'd). */
char *img_store_default(const char *state_dir);

/* Points every template of cfg that has an image at store (sets
** spec->root and the template's limits.image_root). */
enum ac_code img_config_bind(struct ac_config *cfg, const char *store,
                             const char *config_path, struct ac_error *err);

/* What `agentcube serve` does at start: the store (image_dir, else
** <state_dir>/images) bound to cfg's templates; with build_on_demand,
** missing images are built now (progress on stderr) and later when a
** session needs one that went missing. */
enum ac_code img_serve_setup(struct ac_config *cfg, const char *state_dir,
                             const char *image_dir, const char *config_path,
                             int build_on_demand, struct ac_error *err);

/* Serve option: build a missing image when a session needs it (the
** request waits) instead of refusing. */
void img_set_build_on_demand(int on);

/* Registers the box in directory box_dir as a user of the image. Fails
** with AC_ECONFIG and a message naming the command to run when the image
** is not built (or builds it first, see img_set_build_on_demand). s may
** be NULL (the host's /usr): nothing to do. */
enum ac_code img_use(const struct img_spec *s, const char *box_dir,
                     struct ac_error *err);

/* Builds the image unless it is already there (*built = 0). Progress goes
** to out (NULL: quiet); on a terminal, tty = 1 redraws one line. The tool's
** error (apt's, umoci's) is in err. Nothing is left under the image's
** name on failure or interruption (interrupted: AC_EINTERRUPTED). */
enum ac_code img_build(const struct img_spec *s, FILE *out, int tty,
                       int *built, struct ac_error *err);

/* 1 when the image is complete in its store. */
int img_is_built(const struct img_spec *s);

/* ---- the store as a whole (image_store.c) ---- */

struct img_info {
  char id[40];
  char source[512];              /* img_spec_describe at build time */
  unsigned long long size;       /* bytes on disk */
  time_t built_at;
  double build_seconds;
  unsigned users;                /* boxes using it now */
};

/* The complete images in store, sorted by id; free *out with free(). */
enum ac_code img_store_list(const char *store, struct img_info **out,
                            size_t *n, struct ac_error *err);

/* Removes image id: AC_ENOTFOUND, AC_EBUSY (in use or being built; the
** message says by how many sessions). */
enum ac_code img_store_remove(const char *store, const char *id,
                              struct ac_error *err);

/* Removes what interrupted builds and removals left behind. */
void img_store_sweep(const char *store);

/* `agentcube image ...`; argv[0] is "image". */
int ac_cmd_image(int argc, char **argv);

#endif
