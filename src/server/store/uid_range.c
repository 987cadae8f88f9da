/*
** uid_range.c -- reserving a block of session uids (see uid_range.h).
*/
#include "uid_range.h"
#include "lockfile.h"
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_BASE 200000U
#define LOCK_DIR "/run/agentcube/uids"

static int read_base(const char *state_dir, uid_t *base);

int ac_uid_range_sub_overlaps(const char *file, uid_t base, unsigned count,
                              char *why, size_t whysz) {
  FILE *f = fopen(file, "re");
  char line[512];
  int hit = 0;
  if (f == NULL)
    return 0;
  while (!hit && fgets(line, sizeof line, f)) {
    char *c1 = strchr(line, ':'), *c2, *end;
    unsigned long start, n;
    if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL)
      continue;
    start = strtoul(c1 + 1, &end, 10);
    n = strtoul(c2 + 1, &end, 10);
    if (start < (unsigned long)base + count && (unsigned long)base <
        start + n) {
      *c1 = '\0';
      snprintf(why, whysz, "%s gives %lu-%lu to %s", file, start,
               start + n - 1, line);
      hit = 1;
    }
  }
  fclose(f);
  return hit;
}

int ac_uid_range_conflicts(uid_t base, unsigned count, char *why,
                           size_t whysz) {
  struct passwd *pw;
  struct group *gr;
  int hit = 0;

  if (ac_uid_range_sub_overlaps("/etc/subuid", base, count, why, whysz) ||
      ac_uid_range_sub_overlaps("/etc/subgid", base, count, why, whysz))
    return 1;
  setpwent();
  while (!hit && (pw = getpwent()) != NULL)
    if (pw->pw_uid >= base && pw->pw_uid - base < count) {
      snprintf(why, whysz, "user %s has uid %u", pw->pw_name,
               (unsigned)pw->pw_uid);
      hit = 1;
    }
  endpwent();
  setgrent();
  while (!hit && (gr = getgrent()) != NULL)
    if (gr->gr_gid >= base && gr->gr_gid - base < count) {
      snprintf(why, whysz, "group %s has gid %u", gr->gr_name,
               (unsigned)gr->gr_gid);
      hit = 1;
    }
  endgrent();
  return hit;
}

/* Whether another state directory that still exists owns the block at
** base (its server may be stopped, but its sessions' files are theirs). */
static int owned_elsewhere(uid_t base, const char *state_dir) {
  char path[128], buf[4200], *dir;
  uid_t theirs;
  ssize_t n;
  int fd;
  snprintf(path, sizeof path, "%s/%u.lock", LOCK_DIR, (unsigned)base);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
    return 0;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  if ((dir = strchr(buf, ' ')) == NULL || strcmp(++dir, state_dir) == 0)
    return 0;
  return read_base(dir, &theirs) == 0 && theirs == base;
}

/* Takes the lock of the block at base: fd, or -1 (errno EWOULDBLOCK when
** another server holds it). */
static int lock_block(uid_t base, const char *state_dir) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "%s/%u.lock", LOCK_DIR, (unsigned)base);
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -1;
  /* the note says who holds it, for a person looking and for
  ** owned_elsewhere */
  if (ac_lock_take(fd, state_dir) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int read_base(const char *state_dir, uid_t *base) {
  char buf[32];
  ssize_t n;
  int fd = ac_statedir_open(state_dir, "uid-base", O_RDONLY, 0);
  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  *base = (uid_t)strtoul(buf, NULL, 10);
  return *base >= FIRST_BASE ? 0 : -1;
}

static void write_base(const char *state_dir, uid_t base) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%u\n", (unsigned)base);
  int fd = ac_statedir_open(state_dir, "uid-base",
                            O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return;
  if (write(fd, buf, (size_t)n) != n) {
    /* the next start picks a block again */
  }
  close(fd);
}

enum ac_code ac_uid_range_reserve(const char *state_dir, unsigned count,
                                  struct ac_uid_range *out,
                                  struct ac_error *err) {
  char why[300];
  uid_t base;

  out->base = 0;
  out->count = count;
  out->lockfd = -1;
  if ((mkdir("/run/agentcube", 0711) != 0 && errno != EEXIST) ||
      (mkdir(LOCK_DIR, 0700) != 0 && errno != EEXIST))
    return ac_error_errno(err, AC_ESYSTEM, errno, "cannot create %s",
                          LOCK_DIR);
  if (read_base(state_dir, &base) == 0) {
    if (ac_uid_range_conflicts(base, count, why, sizeof why))
      return ac_error_set(err, AC_EBUSY, "the session uids %u-%u of %s "
                          "now overlap the host's: %s", (unsigned)base,
                          (unsigned)base + count - 1, state_dir, why);
    if ((out->lockfd = lock_block(base, state_dir)) < 0)
      return ac_error_errno(err, AC_EBUSY, errno, "the session uids %u-%u "
                            "of %s are held by another agentcube server "
                            "(%s/%u.lock)", (unsigned)base,
                            (unsigned)base + count - 1, state_dir, LOCK_DIR,
                            (unsigned)base);
    out->base = base;
    return AC_OK;
  }
  for (unsigned long b = FIRST_BASE; b + count < 0xFFFF0000UL; b += count) {
    base = (uid_t)b;
    if (ac_uid_range_conflicts(base, count, why, sizeof why) ||
        owned_elsewhere(base, state_dir))
      continue;
    if ((out->lockfd = lock_block(base, state_dir)) < 0)
      continue;
    out->base = base;
    write_base(state_dir, base);
    return AC_OK;
  }
  return ac_error_set(err, AC_ESYSTEM, "no free block of %u session uids "
                      "on this host", count);
}

void ac_uid_range_release(struct ac_uid_range *r) {
  if (r->lockfd >= 0)
    close(r->lockfd);
  r->lockfd = -1;
}
