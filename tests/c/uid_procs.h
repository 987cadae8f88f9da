/*
** uid_procs.h -- the host's processes of a session uid, read from /proc:
** how the sandbox tests and benchmarks see what a box runs (and that
** nothing of it is left). A box's own live sandbox is its bwrap and the
** agent, its init; "cmds_only" leaves those two out.
*/
#ifndef AGENTCUBE_UID_PROCS_H
#define AGENTCUBE_UID_PROCS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Calls fn (when not NULL) with the pid and the /proc status text of each
** process whose real uid is uid (zombies included); returns how many. */
static __attribute__((unused)) int
uid_procs_each(uid_t uid, int cmds_only,
               void (*fn)(pid_t pid, const char *status, void *arg),
               void *arg) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[2048], *u;
    FILE *f;
    size_t len;
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    u = strstr(buf, "\nUid:");
    if (u == NULL || strtoul(u + 5, NULL, 10) != uid)
      continue;
    if (cmds_only && (strncmp(buf, "Name:\tbwrap\n", 12) == 0 ||
                      strncmp(buf, "Name:\tagent\n", 12) == 0))
      continue;
    if (fn)
      fn((pid_t)atol(e->d_name), buf, arg);
    n++;
  }
  closedir(d);
  return n;
}

static __attribute__((unused)) int uid_procs(uid_t uid, int cmds_only) {
  return uid_procs_each(uid, cmds_only, NULL, NULL);
}

/* Waits up to ms for uid_procs to be want (or >= want with at_least);
** returns the last count. */
static __attribute__((unused)) int wait_uid_procs(uid_t uid, int cmds_only,
                                                  int want, int at_least,
                                                  long ms) {
  int n = -1;
  for (long t = 0; t <= ms; t += 5) {
    n = uid_procs(uid, cmds_only);
    if (at_least ? n >= want : n == want)
      return n;
    usleep(5000);
  }
  return n;
}

static void agent_of(pid_t pid, const char *status, void *arg) {
  if (strncmp(status, "Name:\tagent\n", 12) == 0)
    *(pid_t *)arg = pid;
}

/* The host pid of the box's agent (a process of uid named "agent"), or
** -1. */
static __attribute__((unused)) pid_t agent_pid(uid_t uid) {
  pid_t found = -1;
  uid_procs_each(uid, 0, agent_of, &found);
  return found;
}

#endif
