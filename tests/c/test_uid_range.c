/*
** test_uid_range.c -- session uid blocks: never over a host user, group or
** subordinate range; never shared by two state directories at once; the
** same block again for the same state directory.
*/
#include "tap.h"
#include "uid_range.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

static char *mkstate(void) {
  char tmpl[] = "/tmp/agentcube-uidtest.XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static void rmstate(char *d) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  if (system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", d);
  free(d);
}

static struct ac_uid_range a = { .lockfd = -1 }, b = { .lockfd = -1 };
static char *da, *db;

static void conflicts(void) {
  char why[300] = "";

  tcase("blocks over nobody or root conflict, a far block does not");
  ok(ac_uid_range_conflicts(65530, 10, why, sizeof why) &&
     strstr(why, "65534") != NULL, "a block over nobody conflicts: %s", why);
  ok(ac_uid_range_conflicts(0, 1, why, sizeof why),
     "a block over root conflicts: %s", why);
  ok(!ac_uid_range_conflicts(3000000000U, 65536, why, sizeof why),
     "a block far from every user does not (control)");
}

static void two_servers(void) {
  char why[300] = "";
  struct ac_error err;

  tcase("two state directories get disjoint blocks free of host users");
  da = mkstate();
  db = mkstate();
  REQUIRE(da != NULL && db != NULL, "two state directories created");
  is_int(ac_uid_range_reserve(da, 65536, &a, &err), AC_OK, "reserve A");
  is_int(ac_uid_range_reserve(db, 65536, &b, &err), AC_OK, "reserve B");
  ok(a.base >= 200000 && b.base >= 200000, "blocks above the system's");
  ok(a.base + 65536 <= b.base || b.base + 65536 <= a.base,
     "two servers get disjoint blocks (%u, %u)", (unsigned)a.base,
     (unsigned)b.base);
  ok(!ac_uid_range_conflicts(a.base, 65536, why, sizeof why),
     "A's block has no host user in it");
}

/* A second server on A's state directory while A runs: refused. */
static void held_block(void) {
  struct ac_uid_range c;
  struct ac_error err;

  tcase("a block held by a running server is refused to a second one");
  REQUIRE(da != NULL && db != NULL, "two state directories");
  is_int(ac_uid_range_reserve(da, 65536, &c, &err), AC_EBUSY,
         "A's block while A holds it");
  ok(strstr(err.msg, "held by another agentcube server") != NULL, "says: %s",
     err.msg);
}

/* A stopped, B still running: A's next start gets its block back, and
** B's block was never offered to anyone. */
static void same_block_again(void) {
  struct ac_uid_range a2;
  struct ac_error err;

  tcase("a restarted server gets the same block for its state directory");
  REQUIRE(da != NULL && db != NULL, "two state directories");
  ac_uid_range_release(&a);
  is_int(ac_uid_range_reserve(da, 65536, &a2, &err), AC_OK, "A again");
  is_int(a2.base, a.base, "the same block for the same state directory");
  ac_uid_range_release(&a2);
}

/* A stopped: a new state directory must not take A's block either. */
static void stopped_block_kept(void) {
  struct ac_uid_range c;
  struct ac_error err;
  char *dc;

  tcase("a stopped server's block is not given to a new state directory");
  REQUIRE(da != NULL && db != NULL, "two state directories");
  dc = mkstate();
  REQUIRE(dc != NULL, "a third state directory created");
  is_int(ac_uid_range_reserve(dc, 65536, &c, &err), AC_OK, "reserve C");
  ok(c.base != a.base && c.base != b.base,
     "a stopped server's block stays its own (C %u)", (unsigned)c.base);
  ac_uid_range_release(&c);
  rmstate(dc);
}

/* Subordinate ranges (podman's, rootless containers') and groups of
** their own count as taken; a block too big for the uid space is refused. */
static void sub_ranges_and_groups(void) {
  char file[] = "/tmp/agentcube-subuid.XXXXXX", why[300] = "";
  struct group *g;
  struct ac_uid_range c;
  struct ac_error err;
  FILE *f;
  int fd;

  tcase("subordinate ranges and groups are taken; a block larger than the "
        "uid space is refused");
  fd = mkstemp(file);
  REQUIRE(fd >= 0 && (f = fdopen(fd, "w")) != NULL, "a subuid file");
  fputs("alice:100000:65536\nnot a range\nbob:300000:65536\n", f);
  fclose(f);
  ok(ac_uid_range_sub_overlaps(file, 250000, 65536, why, sizeof why),
     "a block over bob's range is taken");
  ok(strstr(why, "gives 300000-365535 to bob") != NULL, "  says: %s", why);
  ok(!ac_uid_range_sub_overlaps(file, 170000, 65536, why, sizeof why),
     "a block between the ranges is free (control)");
  unlink(file);
  ok(!ac_uid_range_sub_overlaps(file, 250000, 65536, why, sizeof why),
     "no file, no range");
  /* a group whose gid no user has as uid */
  setgrent();
  while ((g = getgrent()) != NULL && getpwuid(g->gr_gid) != NULL)
    ;
  if (g != NULL) {
    gid_t gid = g->gr_gid;
    char want[300];
    snprintf(want, sizeof want, "group %s has gid %u", g->gr_name,
             (unsigned)gid);
    endgrent();
    ok(ac_uid_range_conflicts(gid, 1, why, sizeof why) &&
       !strcmp(why, want), "a block over a group's gid: %s", why);
  } else {
    endgrent();
    skip_check("a block over a group's gid",
               "every group here shares its id with a user");
  }
  is_int(ac_uid_range_reserve("/nonexistent-agentcube-state", 4000000000U,
                              &c, &err), AC_ESYSTEM,
         "four billion uids are refused");
  ok(strstr(err.msg, "no free block of 4000000000 session uids") != NULL,
     "  says: %s", err.msg);
}

int main(void) {
  plan(6);
  conflicts();
  if (geteuid() != 0)
    return skip_all("not root: the lock directory is root's");
  sub_ranges_and_groups();
  if (geteuid() != 0)
    return skip_all("not root: the lock directory is root's");
  two_servers();
  held_block();
  same_block_again();
  stopped_block_kept();
  ac_uid_range_release(&b);
  if (da != NULL)
    rmstate(da);
  if (db != NULL)
    rmstate(db);
  return done_testing();
}
