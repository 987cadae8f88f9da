/*
** test_sandbox_net.c -- a networked session's policy as the host enforces
** it (the nftables chain of its uid: the resolvers, the allowed blocks
** and names with their ports, what is refused), an allowed name that
** does not resolve, and a pasta that fails or cannot be executed: each
** refused with the reason and nothing left (no chain, no box, no pasta),
** as on a host whose /dev has no net/ or no null;
** and the tables of servers killed with -9, removed at start.
**
** Root only (the policy is a host nftables table), in a private mount
** namespace whose /etc/hosts, nsswitch.conf and resolv.conf are the
** test's own: names resolve from the file only, and the resolvers are
** known. Connectivity itself is checked by the security suite.
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_net.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID 232500

static char state[64] = "/tmp/agentcube-sbxn-XXXXXX";
static char scratch[64] = "/tmp/agentcube-sbxn-etc-XXXXXX";
static char table[128];
static struct sbx_runtime *rt;

static char *path_in(const char *dir, const char *name) {
  static char buf[4][512];
  static int slot;
  char *p = buf[slot++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int put(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "we");
  int rc = f && fputs(text, f) >= 0 ? 0 : -1;
  if (f && fclose(f) != 0)
    rc = -1;
  return rc == 0 ? chmod(path, mode) : -1;
}

/* Binds a file of ours with text over path. */
static int over(const char *path, const char *name, const char *text) {
  char *f = path_in(scratch, name);
  return put(f, text, 0755) == 0 &&
         mount(f, path, NULL, MS_BIND, NULL) == 0 ? 0 : -1;
}

/* `nft list chain` of uid's chain into buf ("" when there is none). */
static const char *chain(unsigned uid, char *buf, size_t size) {
  char cmd[256];
  size_t len = 0;
  FILE *p;
  snprintf(cmd, sizeof cmd, "nft list chain inet %s s%u 2>/dev/null", table,
           uid);
  buf[0] = '\0';
  p = popen(cmd, "r");
  while (p && len + 1 < size && fgets(buf + len, (int)(size - len), p))
    len += strlen(buf + len);
  if (p)
    pclose(p);
  return buf;
}

static int has(const char *hay, const char *needle) {
  if (strstr(hay, needle))
    return 1;
  printf("#   no \"%s\" in:\n%s", needle, hay);
  return 0;
}

/* {====================================================== policy */

static void policy_chain(void) {
  struct sbx_net_allow allow[3];
  struct sbx_net_policy pol = { 0, 0, 3, allow };
  struct sbx_limits l = { .network = 1, .netpol = &pol };
  struct sbx_box *b;
  struct ac_error e = { 0 };
  char buf[8192], out[512];
  FILE *mem;

  tcase("a session's chain: the allowed blocks and names with their ports, "
        "then everything else refused");
  memset(allow, 0, sizeof allow);
  allow[0].family = AF_INET;
  inet_pton(AF_INET, "10.1.2.0", allow[0].addr);
  allow[0].prefix = 24;
  allow[0].port_lo = allow[0].port_hi = 443;
  allow[1].host = "allowed.test";
  allow[1].port_lo = 80;
  allow[1].port_hi = 90;
  allow[2].family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::", allow[2].addr);
  allow[2].prefix = 32;
  mem = fmemopen(out, sizeof out, "w");
  REQUIRE(mem != NULL, "a buffer");
  sbx_net_policy_print(&pol, mem);
  fclose(mem);
  is_str(out, "public no, dns no, host and private addresses refused "
         "except 10.1.2.0/24:443 allowed.test:80-90 2001:db8::/32",
         "the policy as --check prints it");
  REQUIRE(sbx_box_create(rt, path_in(state, "pol"), UID, &l, &b, &e) ==
          AC_OK, "a networked box: %s", e.msg);
  ok(sbx_net_box_netns(b) >= 0, "a network namespace of its own");
  ok(!sbx_net_box_dns(b), "no resolver in the sandbox (dns no)");
  chain(UID, buf, sizeof buf);
  ok(has(buf, "ip daddr 10.1.2.0/24 meta l4proto { tcp, udp } th dport 443 "
         "accept"), "the block, its port");
  ok(has(buf, "ip daddr 10.9.8.7 meta l4proto { tcp, udp } th dport 80-90 "
         "accept"), "the name's IPv4 address, its ports");
  ok(has(buf, "ip6 daddr fd00::7 meta l4proto { tcp, udp } th dport 80-90 "
         "accept"), "its IPv6 address");
  ok(has(buf, "ip6 daddr 2001:db8::/32 accept"), "a block, every port");
  ok(strstr(buf, "dport 53") == NULL, "no resolver rule (dns no)");
  ok(has(buf, "oifname \"lo\" goto deny") &&
     has(buf, "ip daddr @private4 goto deny") &&
     has(buf, "ip6 daddr @private6 goto deny"),
     "the host and private ranges refused");
  ok(has(buf, "\n\t\tgoto deny\n"), "everything else refused (public no)");
  sbx_box_destroy(b);
  is_str(chain(UID, buf, sizeof buf), "", "destroyed: the chain is gone");
  ok(!exists(path_in(state, "pol")), "and the box");
}

/* The default policy: public addresses and the host's resolvers. */
static void default_policy(void) {
  struct sbx_limits l = { .network = 1 };
  struct sbx_box *b;
  struct ac_error e = { 0 };
  char buf[8192], rep[8192];
  FILE *mem;

  tcase("the default policy: the host's resolvers, public addresses");
  mem = fmemopen(rep, sizeof rep, "w");
  REQUIRE(mem != NULL, "a buffer");
  sbx_net_report(rt, mem);
  fclose(mem);
  ok(has(rep, "DNS to 10.0.0.53, 2001:db8::53 (resolver"),
     "the report: the resolvers read, fe80::1%%eth0 and junk skipped");
  mem = fmemopen(buf, sizeof buf, "w");
  REQUIRE(mem != NULL, "a buffer");
  sbx_net_policy_print(NULL, mem);
  fclose(mem);
  is_str(buf, "public yes, dns yes, host and private addresses refused",
         "as --check prints it");
  REQUIRE(sbx_box_create(rt, path_in(state, "def"), UID + 1, &l, &b, &e) ==
          AC_OK, "a networked box: %s", e.msg);
  ok(sbx_net_box_dns(b), "the resolver in the sandbox");
  chain(UID + 1, buf, sizeof buf);
  ok(has(buf, "ip daddr 10.0.0.53 meta l4proto { tcp, udp } th dport 53 "
         "accept") &&
     has(buf, "ip6 daddr 2001:db8::53 meta l4proto { tcp, udp } th dport 53 "
         "accept"), "each resolver, port 53");
  ok(strstr(buf, "\n\t\tgoto deny\n") == NULL, "public addresses allowed");
  sbx_box_destroy(b);
  is_str(chain(UID + 1, buf, sizeof buf), "", "destroyed: the chain is gone");
}

/* }====================================================== */

/* {====================================================== refusals */

static void unresolved(void) {
  struct sbx_net_allow allow = { .host = "missing.test", .port_lo = 443,
                                 .port_hi = 443 };
  struct sbx_net_policy pol = { 1, 1, 1, &allow };
  struct sbx_limits l = { .network = 1, .netpol = &pol };
  struct sbx_box *b;
  struct ac_error e = { 0 };
  char buf[4096];

  tcase("an allowed name that does not resolve, a block nftables refuses: "
        "refused, nothing left");
  is_int(sbx_box_create(rt, path_in(state, "unres"), UID + 2, &l, &b, &e),
         AC_ECONFIG, "refused");
  ok(strncmp(e.msg, "network: the allowed host 'missing.test' does not "
             "resolve: ", 57) == 0, "says so: %s", e.msg);
  ok(!exists(path_in(state, "unres")), "no box");
  is_str(chain(UID + 2, buf, sizeof buf), "", "no chain");
  /* an IPv4 block of 33 bits (never from the config, which checks) */
  memset(&allow, 0, sizeof allow);
  allow.family = AF_INET;
  inet_pton(AF_INET, "10.1.2.3", allow.addr);
  allow.prefix = 33;
  is_int(sbx_box_create(rt, path_in(state, "bad"), UID + 2, &l, &b, &e),
         AC_ESYSTEM, "a /33: refused by nftables");
  ok(strncmp(e.msg, "network: nftables: Error: ", 26) == 0,
     "with nft's own first line: %s", e.msg);
  ok(!exists(path_in(state, "bad")), "no box");
  is_str(chain(UID + 2, buf, sizeof buf), "", "no chain (one transaction)");
}

/* pasta itself failing, and not even starting: the box is refused with
** pasta's words or the step, and nothing is left. */
static void pasta_fails(void) {
  struct sbx_limits l = { .network = 1 };
  struct sbx_box *b;
  struct ac_error e = { 0 };
  char buf[4096];
  int r;

  tcase("a pasta that fails or cannot run: refused with why, nothing left");
  REQUIRE(over("/usr/bin/pasta", "pasta-fails", "#!/bin/sh\necho 'pasta: "
               "no tun here' >&2\necho 'and a second line' >&2\nexit 1\n")
          == 0, "a pasta that fails");
  r = sbx_box_create(rt, path_in(state, "p1"), UID + 3, &l, &b, &e);
  umount2("/usr/bin/pasta", MNT_DETACH);
  is_int(r, AC_ESYSTEM, "refused");
  is_str(e.msg, "network: pasta exited: pasta: no tun here and a second "
         "line ", "with what pasta said");
  ok(!exists(path_in(state, "p1")), "no box");
  is_str(chain(UID + 3, buf, sizeof buf), "", "no chain");

  REQUIRE(over("/usr/bin/pasta", "pasta-noexec", "#!/nonexistent/sh\n") ==
          0, "a pasta whose interpreter is missing");
  r = sbx_box_create(rt, path_in(state, "p2"), UID + 4, &l, &b, &e);
  umount2("/usr/bin/pasta", MNT_DETACH);
  is_int(r, AC_ESYSTEM, "refused");
  is_str(e.msg, "network: starting pasta: execve: No such file or directory",
         "at the step that failed");
  ok(!exists(path_in(state, "p2")), "no box");
  is_str(chain(UID + 4, buf, sizeof buf), "", "no chain");
}

/* A host /dev without net/ (no tun for pasta), and one without even
** /dev/null: a tmpfs over /dev with only what the case keeps. */
static void poor_dev(void) {
  struct sbx_limits l = { .network = 1 };
  struct sbx_box *b;
  struct ac_error e = { 0 };
  char buf[4096];
  int r;

  tcase("a /dev without net/ or without null: refused at the step, nothing "
        "left");
  REQUIRE(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=16k") ==
          0 && mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) == 0 &&
          chmod("/dev/null", 0666) == 0, "a /dev of /dev/null alone");
  r = sbx_box_create(rt, path_in(state, "d1"), UID + 5, &l, &b, &e);
  umount2("/dev", MNT_DETACH);
  is_int(r, AC_ESYSTEM, "no /dev/net: refused");
  is_str(e.msg, "network: starting pasta: a private /dev/net/tun: No such "
         "file or directory", "at that step");
  ok(!exists(path_in(state, "d1")), "no box");
  is_str(chain(UID + 5, buf, sizeof buf), "", "no chain");
  REQUIRE(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=16k") ==
          0, "an empty /dev");
  r = sbx_box_create(rt, path_in(state, "d2"), UID + 6, &l, &b, &e);
  umount2("/dev", MNT_DETACH);
  is_int(r, AC_ESYSTEM, "no /dev/null: refused");
  is_str(e.msg, "network: /dev/null: No such file or directory", "says so");
  ok(!exists(path_in(state, "d2")), "no box");
  is_str(chain(UID + 6, buf, sizeof buf), "", "no chain");
}

/* }====================================================== */

/* {====================================================== stale tables */

static char stale[5][128];

/* Tables as servers killed with -9 leave them: one of a dead pid of this
** pid namespace, one of a live pid (1), one of another pid namespace. */
static int make_stale_tables(void) {
  struct stat st;
  char cmd[512];
  pid_t dead = fork();
  if (dead == 0)
    _exit(0);
  if (dead < 0 || waitpid(dead, NULL, 0) != dead ||
      stat("/proc/self/ns/pid", &st) != 0)
    return -1;
  snprintf(stale[0], sizeof stale[0], "agentcube_%016llx_%lu_%ld",
           0x5eedULL, (unsigned long)st.st_ino, (long)dead);
  snprintf(stale[1], sizeof stale[1], "agentcube_%016llx_%lu_1", 0x5eedULL,
           (unsigned long)st.st_ino);
  snprintf(stale[2], sizeof stale[2], "agentcube_%016llx_%lu_%ld",
           0x5eedULL, (unsigned long)st.st_ino + 1, (long)dead);
  /* names that are not of a server's: left alone */
  snprintf(stale[3], sizeof stale[3], "agentcube_5eed_x_%ld", (long)dead);
  snprintf(stale[4], sizeof stale[4], "agentcube_5eed_%lu_x",
           (unsigned long)st.st_ino);
  for (int i = 0; i < 5; i++) {
    snprintf(cmd, sizeof cmd, "nft add table inet %.127s", stale[i]);
    if (system(cmd) != 0)
      return -1;
  }
  return 0;
}

static int table_exists(const char *name) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "nft list table inet %s >/dev/null 2>&1", name);
  return system(cmd) == 0;
}

static void stale_tables(void) {
  tcase("a killed server's table goes at start; a live one's, another "
        "pid namespace's and other names stay");
  ok(!table_exists(stale[0]), "the dead server's table is removed");
  ok(table_exists(stale[1]), "the live pid's stays");
  ok(table_exists(stale[2]), "another pid namespace's stays");
  ok(table_exists(stale[3]) && table_exists(stale[4]),
     "names that are no server's stay");
  for (int i = 1; i < 5; i++) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "nft delete table inet %.127s", stale[i]);
    if (system(cmd) != 0)
      printf("# %s: cannot delete\n", stale[i]);
  }
}

/* }====================================================== */

int main(void) {
  struct ac_error e = { 0 };
  char rep[8192], *t;
  FILE *mem;

  plan(7);
  if (geteuid() != 0)
    return skip_all("not root: the policy is a host nftables table");
  if (access("/usr/bin/pasta", X_OK) != 0)
    return skip_all("no pasta (apt-get install passt)");
  if (mkdtemp(state) == NULL || mkdtemp(scratch) == NULL ||
      chmod(scratch, 0755) != 0 || unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
      over("/etc/hosts", "hosts", "127.0.0.1 localhost\n10.9.8.7 "
           "allowed.test\nfd00::7 allowed.test\n") != 0 ||
      over("/etc/nsswitch.conf", "nsswitch.conf", "hosts: files\n") != 0 ||
      over("/etc/resolv.conf", "resolv.conf", "# ours\nnameserver 10.0.0.53\n"
           "nameserver fe80::1%eth0\nnameserver junk\n"
           "nameserver 2001:db8::53\n") != 0 || make_stale_tables() != 0) {
    printf("# setup: %s\n", strerror(errno));
    return done_testing();
  }
  if (sbx_runtime_init(&rt, state, &e) != AC_OK) {
    printf("# runtime: %s\n", e.msg);
    return done_testing();
  }
  mem = fmemopen(rep, sizeof rep, "w");
  sbx_net_report(rt, mem);
  fclose(mem);
  t = strstr(rep, "table inet ");
  if (rt->net == NULL || !rt->selftest_ok || t == NULL) {
    printf("# %s\n", rep);
    sbx_runtime_free(rt);
    return skip_all("no session networks here");
  }
  snprintf(table, sizeof table, "%.*s", (int)strcspn(t + 11, ";"), t + 11);
  stale_tables();
  policy_chain();
  default_policy();
  unresolved();
  pasta_fails();
  poor_dev();
  sbx_runtime_free(rt);
  tcase("nothing left: the table, the state directory");
  {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "nft list table inet %s >/dev/null 2>&1",
             table);
    ok(system(cmd) != 0, "the server's nftables table is gone");
  }
  ok(rmdir(state) == 0, "the state directory is empty");
  umount2("/etc/hosts", MNT_DETACH);
  umount2("/etc/nsswitch.conf", MNT_DETACH);
  umount2("/etc/resolv.conf", MNT_DETACH);
  for (const char *const *f = (const char *const[]){ "hosts",
         "nsswitch.conf", "resolv.conf", "pasta-fails", "pasta-noexec",
         NULL }; *f; f++)
    unlink(path_in(scratch, *f));
  rmdir(scratch);
  return done_testing();
}
