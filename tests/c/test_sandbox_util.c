/*
** test_sandbox_util.c -- the small helpers the sandbox modules share:
** whole-file reads and writes of control files (a directory, a full
** device, a write cut short by the file size limit), the counters of
** cgroup and box files, paths, the memfds bwrap reads its arguments and
** its seccomp program from, the NUL-separated argument lists, and the
** compiled seccomp program itself. Runs as any user.
*/
#include "child_exit.h"
#include "sandbox_int.h"
#include "sandbox_util.h"
#include "seccomp_filter.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64] = "/tmp/agentcube-sbxu-XXXXXX";

static const char *in_dir(const char *name) {
  static char buf[2][256];
  static int i;
  char *b = buf[i++ % 2];
  snprintf(b, sizeof buf[0], "%s/%s", dir, name);
  return b;
}

static void read_file(void) {
  char buf[8];
  int fd;

  tcase("sbxu_read_file: whole small files, and how it fails");
  fd = open(in_dir("f"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0 && write(fd, "0123456789", 10) == 10, "a 10-byte file");
  close(fd);
  is_int(sbxu_read_file(in_dir("f"), buf, sizeof buf), 7,
         "read up to the buffer (7 bytes and a NUL)");
  is_str(buf, "0123456", "the start of the file");
  errno = 0;
  is_int(sbxu_read_file(in_dir("f"), buf, 0), -1, "a buffer of 0 bytes");
  is_int(errno, EINVAL, "EINVAL");
  is_int(sbxu_read_file(dir, buf, sizeof buf), -1, "a directory");
  is_int(errno, EISDIR, "EISDIR");
  is_int(sbxu_read_file(in_dir("none"), buf, sizeof buf), -1, "no file");
  is_int(errno, ENOENT, "ENOENT");
  REQUIRE(symlink("f", in_dir("link")) == 0, "a symlink to it");
  is_int(sbxu_read_file(in_dir("link"), buf, sizeof buf), -1,
         "a symlink is never followed");
  is_int(errno, ELOOP, "ELOOP");
}

static void write_file(void) {
  int st;
  pid_t pid;

  tcase("sbxu_write_file: one write, and how it fails");
  REQUIRE(close(open(in_dir("w"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) ==
          0, "an empty file");
  is_int(sbxu_write_file(in_dir("w"), "max"), 0, "written");
  {
    char buf[16];
    sbxu_read_file(in_dir("w"), buf, sizeof buf);
    is_str(buf, "max", "as is");
  }
  is_int(sbxu_write_file(in_dir("nope"), "1"), -1, "no file: never made");
  is_int(errno, ENOENT, "ENOENT");
  ok(access(in_dir("nope"), F_OK) != 0, "not created");
  is_int(sbxu_write_file("/dev/full", "1"), -1, "a full device");
  is_int(errno, ENOSPC, "ENOSPC");
  /* a write cut short (the file size limit in a child): EIO */
  pid = fork();
  if (pid == 0) {
    struct rlimit rl = { 4, RLIM_INFINITY };
    int code;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
      _exit(2);
    code = sbxu_write_file(in_dir("w"), "1234567890") == -1 && errno == EIO
           ? 0 : 1;
    rl.rlim_cur = RLIM_INFINITY;      /* child_exit writes files */
    setrlimit(RLIMIT_FSIZE, &rl);
    child_exit(code);
  }
  REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid, "a child");
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
         "a short write is an error (EIO), not a success");
}

static void counters(void) {
  static const char text[] = "oom_kill_disable 0\nunder_oom 0\n"
                             "oom_kill 12\nuid x\ngid\n"
                             "big 99999999999999999999999\nlast 7";
  unsigned long long v = 0;

  tcase("sbxu_find_counter: a key at a line's start, a number after it");
  is_int(sbxu_find_counter(text, "oom_kill", &v), 0, "oom_kill found");
  is_int(v, 12, "12, not oom_kill_disable's 0");
  is_int(sbxu_find_counter(text, "under_oom", &v), 0, "under_oom");
  is_int(v, 0, "0");
  is_int(sbxu_find_counter(text, "last", &v), 0, "the last line, no "
         "newline");
  is_int(v, 7, "7");
  is_int(sbxu_find_counter(text, "uid", &v), -1, "not a number: no value");
  is_int(sbxu_find_counter(text, "gid", &v), -1, "no value at all");
  is_int(sbxu_find_counter(text, "big", &v), -1, "out of range");
  is_int(sbxu_find_counter(text, "kill", &v), -1,
         "not found in the middle of a line");
  is_int(sbxu_find_counter("", "x", &v), -1, "empty text");
}

static void strings(void) {
  char *p;
  int fd;
  char buf[32] = "";

  tcase("paths, formatting, hashing, memfds");
  p = sbxu_join("/a/", "b");
  is_str(p, "/a/b", "no double slash after the first part's");
  free(p);
  p = sbxu_join("/a", "/b");
  is_str(p, "/a/b", "none before the second part's");
  free(p);
  p = sbxu_join("/a", "b");
  is_str(p, "/a/b", "one added between");
  free(p);
  p = sbxu_fmt("%s-%05d", "box", 42);
  is_str(p, "box-00042", "sbxu_fmt");
  free(p);
  /* FNV-1a, 64 bits: the published test vectors */
  ok(sbxu_hash("") == 0xcbf29ce484222325ULL, "hash of \"\"");
  ok(sbxu_hash("a") == 0xaf63dc4c8601ec8cULL, "hash of \"a\"");
  ok(sbxu_hash("foobar") == 0x85944171f73967e8ULL, "hash of \"foobar\"");
  fd = sbxu_memfd("test", "hello\0world", 11);
  REQUIRE(fd >= 0, "a memfd");
  is_int(read(fd, buf, sizeof buf), 11, "read from its start: all of it");
  ok(memcmp(buf, "hello\0world", 11) == 0, "the bytes, NULs and all");
  ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");
  close(fd);
  fd = sbxu_memfd("empty", "", 0);
  is_int(fd >= 0 ? read(fd, buf, sizeof buf) : -1, 0, "an empty one");
  if (fd >= 0)
    close(fd);
}

static void args(void) {
  struct sbx_args a = { 0 };
  char word[40];
  size_t off = 0;
  int i, good = 1;

  tcase("argument lists: NUL-separated, grown as needed");
  for (i = 0; i < 200; i++) {
    snprintf(word, sizeof word, "--arg-%03d", i);
    sbx_args_add(&a, word);
  }
  sbx_args_addn(&a, "abcdef", 3);
  ok(!a.oom, "no allocation failed");
  ok(a.cap >= a.len && a.len == 200 * 10 + 4, "2004 bytes, grown past the "
     "first 1024");
  for (i = 0; i < 200 && off < a.len; i++) {
    snprintf(word, sizeof word, "--arg-%03d", i);
    good &= strcmp(a.p + off, word) == 0;
    off += strlen(a.p + off) + 1;
  }
  ok(good && i == 200, "each argument in order, each ended by a NUL");
  is_str(a.p + off, "abc", "addn takes n bytes");
  sbx_args_free(&a);
  ok(a.p == NULL && a.len == 0 && a.cap == 0, "freed");
  sbx_args_free(&a);
  ok(a.p == NULL, "freeing again is fine");
}

/* 1 when an instruction of the program returns k. */
static int returns(const struct scf_program *prog, unsigned k) {
  const struct sock_filter *f = (const void *)prog->bpf;
  for (unsigned i = 0; i < prog->ninsns; i++)
    if (f[i].code == (BPF_RET | BPF_K) && f[i].k == k)
      return 1;
  return 0;
}

static void seccomp_program(void) {
  struct scf_program prog;
  struct ac_error e = { 0 };
  const struct sock_filter *f;

  tcase("the seccomp program: whole instructions, the architecture checked "
        "first, the refusals' errnos");
  REQUIRE(scf_build(&prog, &e) == AC_OK, "built: %s", e.msg);
  ok(prog.len > 0 && prog.len == prog.ninsns * sizeof(struct sock_filter),
     "%u instructions, %zu bytes", prog.ninsns, prog.len);
  ok(prog.nrules >= 60, "%u rules (the deny list has 60 calls alone)",
     prog.nrules);
  f = (const struct sock_filter *)(const void *)prog.bpf;
  ok(f[0].code == (BPF_LD | BPF_W | BPF_ABS) && f[0].k == 4,
     "first it loads the architecture");
  ok(f[prog.ninsns - 1].code == (BPF_RET | BPF_K) &&
     f[prog.ninsns - 1].k == 0, "an unknown architecture is killed");
  ok(returns(&prog, 0x7fff0000U), "other calls are allowed");
  ok(returns(&prog, 0x00050000U | EPERM), "some fail with EPERM");
  ok(returns(&prog, 0x00050000U | ENOSYS), "some with ENOSYS");
  ok(returns(&prog, 0x00050000U | EAFNOSUPPORT), "some with EAFNOSUPPORT");
  ok(prog.arches[0] != '\0', "arches: %s", prog.arches);
  scf_free(&prog);
  ok(prog.bpf == NULL && prog.len == 0 && prog.ninsns == 0, "freed");
  scf_free(&prog);
  ok(prog.bpf == NULL, "freeing again is fine");
}

int main(void) {
  plan(6);
  if (mkdtemp(dir) == NULL) {
    printf("# mkdtemp: %s\n", strerror(errno));
    return done_testing();
  }
  read_file();
  write_file();
  counters();
  strings();
  args();
  seccomp_program();
  unlink(in_dir("f"));
  unlink(in_dir("link"));
  unlink(in_dir("w"));
  rmdir(dir);
  return done_testing();
}
