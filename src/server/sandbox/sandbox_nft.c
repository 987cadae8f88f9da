/*
** sandbox_nft.c -- the host nftables table of session networks
** (sandbox_nft.h), through libnftables: the policy is enforced on pasta's
** sockets in the host's output hook, where nothing in a sandbox reaches.
*/
#include "sandbox.h"
#include "sandbox_nft.h"
#include "sandbox_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the host does not offer a sandbox unless the policy names it:
** "this network", private, shared (CGNAT), loopback, link-local,
** multicast and reserved blocks; IPv6 loopback, unspecified, v4-mapped,
** unique-local, link-local and multicast. */
static const char private4[] = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, "
  "127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3";
static const char private6[] = "::/127, ::ffff:0:0/96, fc00::/7, "
  "fe80::/10, ff00::/8";

struct sbx_nft {
  char table[80];              /* "agentcube_<16 hex>_<pidns>_<pid>" */
  struct nft_ctx *nft;
  pthread_mutex_t mu;          /* one nft transaction at a time */
  char dns[3][INET6_ADDRSTRLEN + 2];
  int dnsfam[3];
  int ndns;
};

/* Runs one transaction; on failure copies nft's message into err. */
static enum ac_code nft_run(struct sbx_nft *N, const char *cmds,
                            struct ac_error *err) {
  int rc;
  pthread_mutex_lock(&N->mu);
  rc = nft_run_cmd_from_buffer(N->nft, cmds);
  if (rc != 0 && err) {
    const char *e = nft_ctx_get_error_buffer(N->nft);
    char msg[200];
    snprintf(msg, sizeof msg, "%s", e ? e : "");
    msg[strcspn(msg, "\n")] = '\0';
    ac_error_set(err, AC_ESYSTEM, "network: nftables: %s", msg);
  }
  /* the buffers grow otherwise */
  nft_ctx_get_error_buffer(N->nft);
  nft_ctx_get_output_buffer(N->nft);
  pthread_mutex_unlock(&N->mu);
  return rc == 0 ? AC_OK : AC_ESYSTEM;
}

/* The host's nameservers, as pasta reads them (resolv.conf is often a
** symlink, into /run/systemd/resolve for instance). */
static void read_resolvers(struct sbx_nft *N) {
  char line[512];
  FILE *f = fopen("/etc/resolv.conf", "re");
  if (f == NULL)
    return;
  while (N->ndns < 3 && fgets(line, sizeof line, f)) {
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    if (sscanf(line, " nameserver %46s", addr) != 1)
      continue;
    if (inet_pton(AF_INET, addr, bin) == 1)
      N->dnsfam[N->ndns] = AF_INET;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
      N->dnsfam[N->ndns] = AF_INET6;
    else
      continue;                /* "fe80::1%eth0" and the like */
    snprintf(N->dns[N->ndns++], sizeof N->dns[0], "%s", addr);
  }
  fclose(f);
}

/* This process's pid namespace, which gives its pids their meaning. */
static unsigned long pidns_ino(void) {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Tables of servers that are gone (kill -9), whatever their state
** directory: a dead server's chains would still reject for a uid that
** another server hands out later (a drop in any table wins). A table is
** named after its server's pid namespace and pid; only tables of this pid
** namespace are judged (a server in another one, sharing this network
** namespace, keeps its table), and one whose pid is alive stays. */
static void remove_stale_tables(struct sbx_nft *N, unsigned long ns) {
  static const char prefix[] = "table inet agentcube_";
  char *list, *line, *save = NULL;
  const char *out;
  pthread_mutex_lock(&N->mu);
  if (nft_run_cmd_from_buffer(N->nft, "list tables inet\n") != 0) {
    pthread_mutex_unlock(&N->mu);
    return;
  }
  out = nft_ctx_get_output_buffer(N->nft);
  list = strdup(out ? out : "");
  pthread_mutex_unlock(&N->mu);
  for (line = list ? strtok_r(list, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char name[104], *us, *end, cmd[160];
    unsigned long ino;
    long pid;
    if (strncmp(line, prefix, sizeof prefix - 1) != 0 ||
        strlen(line) >= sizeof name)
      continue;
    snprintf(name, sizeof name, "%s", line);
    if ((us = strrchr(name, '_')) == NULL)
      continue;
    pid = strtol(us + 1, &end, 10);
    if (*end || pid <= 0)
      continue;
    *us = '\0';
    if ((us = strrchr(name, '_')) == NULL ||
        (ino = strtoul(us + 1, &end, 10), *end) || ino != ns)
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    snprintf(cmd, sizeof cmd, "delete %s\n", line);
    nft_run(N, cmd, NULL);
  }
  free(list);
}

struct sbx_nft *sbx_nft_open(const char *hash, char *why, size_t whysize) {
  struct sbx_nft *N = calloc(1, sizeof *N);
  struct ac_error err;
  char *cmds;

  if (N == NULL) {
    snprintf(why, whysize, "out of memory");
    return NULL;
  }
  N->nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (N->nft == NULL) {
    snprintf(why, whysize, "nftables: no context");
    free(N);
    return NULL;
  }
  nft_ctx_buffer_output(N->nft);
  nft_ctx_buffer_error(N->nft);
  pthread_mutex_init(&N->mu, NULL);
  snprintf(N->table, sizeof N->table, "agentcube_%s_%lu_%ld", hash,
           pidns_ino(), (long)getpid());
  read_resolvers(N);
  remove_stale_tables(N, pidns_ino());
  cmds = sbxu_fmt(
    "add table inet %1$s\n"
    "delete table inet %1$s\n"
    "add table inet %1$s\n"
    "add set inet %1$s private4 { type ipv4_addr; flags interval; "
    "elements = { %2$s }; }\n"
    "add set inet %1$s private6 { type ipv6_addr; flags interval; "
    "elements = { %3$s }; }\n"
    "add map inet %1$s sessions { type uid : verdict; }\n"
    "add chain inet %1$s deny\n"
    "add rule inet %1$s deny meta l4proto tcp reject with tcp reset\n"
    "add rule inet %1$s deny reject with icmpx type admin-prohibited\n"
    "add chain inet %1$s output { type filter hook output priority 0; "
    "policy accept; }\n"
    "add rule inet %1$s output meta skuid vmap @sessions\n",
    N->table, private4, private6);
  if (cmds == NULL || nft_run(N, cmds, &err) != AC_OK) {
    snprintf(why, whysize, "%.190s", cmds ? err.msg : "out of memory");
    free(cmds);
    nft_ctx_free(N->nft);
    pthread_mutex_destroy(&N->mu);
    free(N);
    return NULL;
  }
  free(cmds);
  return N;
}

void sbx_nft_close(struct sbx_nft *N) {
  char cmd[128];
  if (N == NULL)
    return;
  snprintf(cmd, sizeof cmd, "delete table inet %s\n", N->table);
  nft_run(N, cmd, NULL);
  nft_ctx_free(N->nft);
  pthread_mutex_destroy(&N->mu);
  free(N);
}

/* One accept rule for an address block of the allowlist. */
static void allow_rule(FILE *f, const char *table, unsigned uid, int family,
                       const char *addr, unsigned prefix,
                       const struct sbx_net_allow *a) {
  fprintf(f, "add rule inet %s s%u %s daddr %s/%u", table, uid,
          family == AF_INET ? "ip" : "ip6", addr, prefix);
  if (a->port_lo)
    fprintf(f, " meta l4proto { tcp, udp } th dport %u", a->port_lo);
  if (a->port_lo && a->port_hi > a->port_lo)
    fprintf(f, "-%u", a->port_hi);
  fputs(" accept\n", f);
}

/* The session's chain: DNS, the allowlist, then what is refused. The
** commands are written to a memory stream (one transaction). */
enum ac_code sbx_nft_session_add(struct sbx_nft *N, unsigned uid,
                                 const struct sbx_net_policy *p,
                                 struct ac_error *err) {
  char *b = NULL;
  size_t len = 0;
  int dns = p ? p->dns : 1, pub = p ? p->public_ : 1, bad;
  FILE *f = open_memstream(&b, &len);
  enum ac_code rc;

  if (f == NULL)
    return ac_error_set(err, AC_ENOMEM, "network: out of memory");
  fprintf(f, "add chain inet %s s%u\nflush chain inet %s s%u\n", N->table,
          uid, N->table, uid);
  for (int i = 0; dns && i < N->ndns; i++)
    fprintf(f, "add rule inet %s s%u %s daddr %s meta l4proto { tcp, udp } "
            "th dport 53 accept\n", N->table, uid,
            N->dnsfam[i] == AF_INET ? "ip" : "ip6", N->dns[i]);
  for (size_t i = 0; p && i < p->nallow; i++) {
    const struct sbx_net_allow *a = &p->allow[i];
    char addr[INET6_ADDRSTRLEN];
    if (a->host == NULL) {
      inet_ntop(a->family, a->addr, addr, sizeof addr);
      allow_rule(f, N->table, uid, a->family, addr, a->prefix, a);
    } else {
      struct addrinfo hints, *res = NULL, *ai;
      int e;
      memset(&hints, 0, sizeof hints);
      hints.ai_socktype = SOCK_STREAM;
      e = getaddrinfo(a->host, NULL, &hints, &res);
      if (e != 0) {
        fclose(f);
        free(b);
        return ac_error_set(err, AC_ECONFIG, "network: the allowed host "
                            "'%s' does not resolve: %s", a->host,
                            gai_strerror(e));
      }
      for (ai = res; ai; ai = ai->ai_next) {
        const void *src = ai->ai_family == AF_INET
          ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
          : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
          continue;
        inet_ntop(ai->ai_family, src, addr, sizeof addr);
        allow_rule(f, N->table, uid, ai->ai_family, addr,
                   ai->ai_family == AF_INET ? 32 : 128, a);
      }
      freeaddrinfo(res);
    }
  }
  /* Anything local to the host (every address it has, public ones too)
  ** leaves through lo. */
  fprintf(f, "add rule inet %s s%u oifname \"lo\" goto deny\n", N->table,
          uid);
  fprintf(f, "add rule inet %s s%u ip daddr @private4 goto deny\n",
          N->table, uid);
  fprintf(f, "add rule inet %s s%u ip6 daddr @private6 goto deny\n",
          N->table, uid);
  if (!pub)
    fprintf(f, "add rule inet %s s%u goto deny\n", N->table, uid);
  fprintf(f, "add element inet %s sessions { %u : jump s%u }\n", N->table,
          uid, uid);
  bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(b);
    return ac_error_set(err, AC_ENOMEM, "network: out of memory");
  }
  rc = nft_run(N, b, err);
  free(b);
  return rc;
}

void sbx_nft_session_remove(struct sbx_nft *N, unsigned uid) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "delete element inet %1$s sessions { %2$u : "
           "jump s%2$u }\nflush chain inet %1$s s%2$u\n"
           "delete chain inet %1$s s%2$u\n", N->table, uid);
  nft_run(N, cmd, NULL);
}

void sbx_nft_describe(const struct sbx_nft *N, FILE *out) {
  fprintf(out, "table inet %s; DNS to ", N->table);
  for (int i = 0; i < N->ndns; i++)
    fprintf(out, "%s%s", i ? ", " : "", N->dns[i]);
  if (N->ndns == 0)
    fprintf(out, "(no nameserver)");
}
