/*
** sandbox_util.h -- small helpers shared by the sandbox modules (sandbox*,
** cgroup, boxfs): path strings, tiny file reads and writes, hashing.
**
** None of these functions is async-signal-safe; never call them between
** fork/clone and exec.
*/
#ifndef AGENTCUBE_SANDBOX_UTIL_H
#define AGENTCUBE_SANDBOX_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Returns a malloc'd "a/b" (or "a" + "b" when b starts with '/'), or NULL
** when out of memory. The caller owns the result. */
char *sbxu_join(const char *a, const char *b);

/* Returns a malloc'd printf-formatted string or NULL. Caller owns it. */
char *sbxu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes s (no newline added) to an existing file, such as a cgroup
** control file, in one write(2). Returns 0 or -1 with errno set. */
int sbxu_write_file(const char *path, const char *s);

/* Reads at most size-1 bytes of a small file into buf and NUL-terminates
** it. Returns the length or -1 with errno set. */
long sbxu_read_file(const char *path, char *buf, size_t size);

/* Finds "key <number>" at the start of a line in text (the format of
** memory.events, memory.oom_control, cgroup.events) and stores the
** number. Returns 0 when found, -1 otherwise. */
int sbxu_find_counter(const char *text, const char *key,
                      unsigned long long *out);

/* 64-bit FNV-1a hash of a NUL-terminated string. */
uint64_t sbxu_hash(const char *s);

/* Sleeps for the given number of milliseconds (restarts on EINTR). */
void sbxu_sleep_ms(long ms);

/* CLOCK_MONOTONIC now, in nanoseconds. */
long long sbxu_now_ns(void);

/* Creates an O_CLOEXEC memfd holding data, positioned at offset 0 (bwrap
** reads --args, --seccomp and --ro-bind-data fds from the current offset
** to EOF). Returns the fd or -1 with errno set. */
int sbxu_memfd(const char *name, const void *data, size_t len);

#endif
