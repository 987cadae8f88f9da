/*
** image_int.h -- internals of the image store (not a public header).
*/
#ifndef AGENTCUBE_IMAGE_INT_H
#define AGENTCUBE_IMAGE_INT_H

#include "image.h"

/* Computes s->id from what decides the image's content. */
void img_spec_address(struct img_spec *s);

/* Deletes a tree without crossing into mounts (mounts a killed builder
** left below it are detached first when root). Missing is fine. */
int img_rmtree(const char *dir);

/* Bytes the tree takes on disk. */
unsigned long long img_tree_size(const char *dir);

/* Opens (creating) <store>/<id>.lock and takes the flock `op`
** (LOCK_SH/LOCK_EX, maybe | LOCK_NB). Returns the fd or -1 (errno). */
int img_lock(const char *store, const char *id, int op);

/* Boxes using image id now (stale entries are removed). */
unsigned img_users(const char *store, const char *id);

/* Runs argv, reporting progress to out and keeping the tail of its output
** for err. Returns AC_OK when it exits 0. */
enum ac_code img_run_tool(char *const argv[], const char *phase, FILE *out,
                          int tty, struct ac_error *err);

/* 1 once SIGINT/SIGTERM arrived during a build (the CLI's handlers). */
extern volatile int img_interrupted;

/* Writes the sandbox's own passwd, group, hosts and an empty resolv.conf
** into <root>/etc, removes shadow files: the runtime controls these. */
enum ac_code img_finalize_etc(const char *root, struct ac_error *err);

#endif
