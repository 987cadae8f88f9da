/*
** seccomp_filter.c -- compiles the sandbox seccomp deny-list.
**
** The filter sits on top of the namespaces bwrap builds; it removes kernel
** attack surface that sandboxed code has no business using. Following the
** libseccomp lesson in docs/sandbox.md §2, every argument test is SCMP_CMP_EQ or
** SCMP_CMP_MASKED_EQ; no 64-bit ordered comparisons are used.
*/
#include "seccomp_filter.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* Syscalls that return EPERM (docs/sandbox.md §3.1). The compat spellings that
** exist only on x86 (umount, stime, the *_time64 clock setters, vm86) are
** the same operations under their 32-bit names. */
static const char *const eperm_calls[] = {
  "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
  "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
  "mount_setattr",
  "keyctl", "add_key", "request_key",
  "ptrace", "process_vm_readv", "process_vm_writev",
  "perf_event_open", "bpf", "userfaultfd",
  "io_uring_setup", "io_uring_enter", "io_uring_register",
  "kexec_load", "kexec_file_load",
  "init_module", "finit_module", "delete_module", "create_module",
  "query_module",
  "open_by_handle_at", "name_to_handle_at",
  "syslog", "personality", "swapon", "swapoff", "reboot", "acct",
  "quotactl", "quotactl_fd",
  "settimeofday", "stime", "clock_settime", "clock_settime64",
  "clock_adjtime", "clock_adjtime64", "adjtimex",
  "kcmp", "pidfd_getfd",
  "iopl", "ioperm", "vm86", "vm86old",
  "mbind", "migrate_pages", "move_pages", "set_mempolicy",
  "set_mempolicy_home_node",
};

/* Namespace flags that clone() must not carry (clone3 is ENOSYS, so glibc
** falls back to clone, whose flags the filter can see). */
static const unsigned long clone_ns_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
  CLONE_NEWPID, CLONE_NEWNET,
};

/* The rules being added; the first libseccomp failure is kept (rc < 0)
** and every later rule is skipped, so the caller checks once. */
struct rules {
  scmp_filter_ctx ctx;
  unsigned n;             /* rules added */
  int rc;
};

/* Adds one rule; a syscall unknown to this libseccomp is skipped (it cannot
** be called on these architectures either). */
static void add_rule(struct rules *r, uint32_t action, const char *name,
                     unsigned ncmp, const struct scmp_arg_cmp *cmp) {
  int rc, nr = seccomp_syscall_resolve_name(name);
  if (r->rc < 0 || nr == __NR_SCMP_ERROR)
    return;
  rc = seccomp_rule_add_array(r->ctx, action, nr, ncmp, cmp);
  /* -EDOM, -EOPNOTSUPP: not representable on any of our arches */
  if (rc == 0)
    r->n++;
  else if (rc != -EDOM && rc != -EOPNOTSUPP)
    r->rc = rc;
}

/* Socket families other than AF_UNIX, AF_INET and AF_INET6 fail with
** EAFNOSUPPORT. The kernel reads the family as a 32-bit int, so every test
** masks the low 32 bits: each family 0..63 that is not allowed is denied
** exactly, and any value with a bit from 6 to 31 set (64 and above) is
** denied bit by bit. Upper-half garbage therefore cannot sneak AF_NETLINK
** past the filter. */
static void add_socket_rules(struct rules *r) {
  uint32_t act = SCMP_ACT_ERRNO(EAFNOSUPPORT);
  for (unsigned fam = 0; fam < 64; fam++) {
    struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffULL, fam);
    if (fam != AF_UNIX && fam != AF_INET && fam != AF_INET6)
      add_rule(r, act, "socket", 1, &c);
  }
  for (unsigned bit = 6; bit < 32; bit++) {
    unsigned long long m = 1ULL << bit;
    struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, m, m);
    add_rule(r, act, "socket", 1, &c);
  }
}

static void add_all_rules(struct rules *r) {
  uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  /* 0xffffffff mask: TIOCSTI | 1<<32 is still TIOCSTI to the kernel
  ** (CVE-2019-10063). */
  struct scmp_arg_cmp sti = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
                                    TIOCSTI);
  struct scmp_arg_cmp lnx = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
                                    TIOCLINUX);
  size_t i;

  for (i = 0; i < sizeof eperm_calls / sizeof eperm_calls[0]; i++)
    add_rule(r, eperm, eperm_calls[i], 0, NULL);
  add_rule(r, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
  /* Native AIO contexts count against fs.aio-max-nr, one limit for the
  ** whole host: a single io_setup(65536) took all of it. ENOSYS, as on a
  ** kernel without AIO, so libraries fall back to threads. */
  add_rule(r, SCMP_ACT_ERRNO(ENOSYS), "io_setup", 0, NULL);
  for (i = 0; i < sizeof clone_ns_flags / sizeof clone_ns_flags[0]; i++) {
    unsigned long long f = clone_ns_flags[i];
    struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, f, f);
    add_rule(r, eperm, "clone", 1, &c);
  }
  add_rule(r, eperm, "ioctl", 1, &sti);
  add_rule(r, eperm, "ioctl", 1, &lnx);
  add_socket_rules(r);
}

/* Exports the compiled program through a memfd and reads it back. */
static enum ac_code export_program(scmp_filter_ctx ctx,
                                   struct scf_program *out,
                                   struct ac_error *err) {
  enum ac_code rc = AC_OK;
  off_t size;
  int lrc, fd = memfd_create("agentcube-seccomp", MFD_CLOEXEC);

  if (fd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "seccomp: memfd_create");
  lrc = seccomp_export_bpf(ctx, fd);
  if (lrc < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, -lrc, "seccomp_export_bpf");
    goto out;
  }
  size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0) {
    rc = ac_error_set(err, AC_ESYSTEM, "seccomp: bad program size %lld",
                      (long long)size);
    goto out;
  }
  out->bpf = malloc((size_t)size);
  /* a memfd is read whole, never interrupted */
  if (out->bpf == NULL || pread(fd, out->bpf, (size_t)size, 0) != size) {
    rc = ac_error_errno(err, out->bpf ? AC_ESYSTEM : AC_ENOMEM,
                        out->bpf ? errno : ENOMEM,
                        "seccomp: reading the program back");
    goto out;
  }
  out->len = (size_t)size;
  out->ninsns = (unsigned)(out->len / sizeof(struct sock_filter));
out:
  close(fd);
  if (rc) {
    free(out->bpf);
    out->bpf = NULL;
  }
  return rc;
}

enum ac_code scf_build(struct scf_program *out, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  scmp_filter_ctx ctx;
  int lrc;

  memset(out, 0, sizeof *out);
  ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL)
    return ac_error_set(err, AC_ENOMEM, "seccomp_init failed");
  /* bwrap sets no_new_privs itself before loading the program. */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  snprintf(out->arches, sizeof out->arches, "%s",
           seccomp_arch_native() == SCMP_ARCH_X86_64 ? "x86_64" : "native");
  if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
    lrc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
    if (lrc == 0)
      lrc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
    if (lrc < 0 && lrc != -EEXIST) {
      rc = ac_error_errno(err, AC_ESYSTEM, -lrc, "seccomp_arch_add");
      goto out;
    }
    snprintf(out->arches, sizeof out->arches, "x86_64+x86+x32");
  }
  {
    struct rules r = { ctx, 0, 0 };
    add_all_rules(&r);
    out->nrules = r.n;
    if (r.rc < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, -r.rc, "seccomp_rule_add");
      goto out;
    }
  }
  rc = export_program(ctx, out, err);
out:
  seccomp_release(ctx);
  return rc;
}

void scf_free(struct scf_program *prog) {
  free(prog->bpf);
  prog->bpf = NULL;
  prog->len = 0;
  prog->ninsns = 0;
}
