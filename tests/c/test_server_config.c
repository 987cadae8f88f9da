/* The local runtime's configuration: the defaults a session gets when the
** configuration says nothing (the 60 s command timeout among them), what
** a template inherits from the default one, every key read as written,
** and every mistake an operator can make refused with the key and the
** file:line:col where it is; quantities and CPU amounts are decimal
** numbers only; network allowlist entries are read strictly. */
#include "config.h"
#include "config_net.h"
#include "duration.h"
#include "image.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEC 1000000000LL

static char path[64] = "/tmp/agentcube-config-XXXXXX";

static int write_config(const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
}


/* Loads text over the defaults into *cfg. */
static enum ac_code load(const char *text, struct ac_config *cfg,
                         struct ac_error *e) {
  memset(e, 0, sizeof *e);
  memset(cfg, 0, sizeof *cfg);        /* defined even when a load fails */
  if (write_config(text) != 0)
    return ac_error_set(e, AC_ESYSTEM, "cannot write %s", path);
  ac_config_defaults(cfg, e);
  return ac_config_load(cfg, path, e);
}

/* One mistake and the exact message it must give: the file, the line and
** column of the offending node, the key. */
struct mistake { const char *text, *want; };

static void refused(const struct mistake *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct ac_config cfg;
    struct ac_error e;
    char want[512];
    enum ac_code rc = load(m[i].text, &cfg, &e);
    snprintf(want, sizeof want, "%s:%s", path, m[i].want);
    is_int(rc, AC_ECONFIG, "refused: %s", m[i].want);
    is_str(rc == AC_ECONFIG ? e.msg : "(loaded)", want, "  says where");
    ac_config_free(&cfg);
  }
}

#define N(a) (sizeof (a) / sizeof (a)[0])

static void server_keys_read(void) {
  struct ac_config cfg;
  struct ac_error e;

  tcase("every server-wide key is read as written");
  REQUIRE(load("strict: true\n"
               "maxUploadBytes: 2Gi\n"
               "maxJsonBytes: 1Mi\n"
               "maxInflight: 7\n"
               "maxConnections: 9\n"
               "maxConnectionsPerAddress: 3\n"
               "workerThreads: 2\n"
               "headerTimeout: 1500ms\n"
               "idleTimeout: 500ms\n"
               "maxExecuteBytes: 2Mi\n"
               "maxControlBytes: 8Ki\n"
               "maxJsonDepth: 10\n"
               "maxJsonNodes: 500\n"
               "maxRequestMemory: 256Mi\n"
               "maxSessions: 5\n"
               "maxLoopDevices: 6\n"
               "memoryOvercommit: 1.5\n"
               "diskOvercommit: yes\n"
               "minFreeDisk: 100M\n", &cfg, &e) == AC_OK,
          "loads: %s", e.msg);
  is_int(cfg.strict, 1, "strict");
  is_int(cfg.max_upload_bytes, 2ULL << 30, "maxUploadBytes");
  is_int(cfg.max_json_bytes, 1 << 20, "maxJsonBytes");
  is_int(cfg.max_inflight, 7, "maxInflight");
  is_int(cfg.max_connections, 9, "maxConnections");
  is_int(cfg.max_connections_per_addr, 3, "maxConnectionsPerAddress");
  is_int(cfg.worker_threads, 2, "workerThreads");
  is_int(cfg.header_timeout_ms, 1500, "headerTimeout in ms");
  is_int(cfg.idle_timeout_s, 1, "idleTimeout under 1 s rounds up to 1 s");
  is_int(cfg.max_execute_bytes, 2 << 20, "maxExecuteBytes");
  is_int(cfg.max_control_bytes, 8 << 10, "maxControlBytes");
  is_int(cfg.max_json_depth, 10, "maxJsonDepth");
  is_int(cfg.max_json_nodes, 500, "maxJsonNodes");
  is_int(cfg.max_request_memory, 256 << 20, "maxRequestMemory");
  is_int(cfg.max_sessions, 5, "maxSessions");
  is_int(cfg.max_loop_devices, 6, "maxLoopDevices");
  ok(cfg.memory_overcommit == 1.5, "memoryOvercommit");
  is_int(cfg.disk_overcommit, 1, "diskOvercommit");
  is_int(cfg.min_free_disk, 100000000, "minFreeDisk");
  ac_config_free(&cfg);
}

static void server_keys_refused(void) {
  static const struct mistake m[] = {
    { "- a\n", "1:1: the configuration must be a mapping" },
    { "maxUplodBytes: 1Gi\n", "1:1: unknown key 'maxUplodBytes'" },
    { "strict: true\nmaxSessions: 3\nbogus: 1\n", "3:1: unknown key 'bogus'" },
    { "strict: maybe\n", "1:9: strict must be true or false" },
    { "strict: [true]\n", "1:9: strict must be a scalar" },
    { "maxUploadBytes: lots\n",
      "1:17: maxUploadBytes must be a size such as 512Mi or 1Gi" },
    { "maxInflight: -1\n", "1:14: maxInflight must be a whole number" },
    { "maxInflight: 2000000\n", "1:14: maxInflight must be a whole number" },
    { "workerThreads: 4x\n", "1:16: workerThreads must be a whole number" },
    { "maxConnections: 0\n", "1:17: maxConnections must be at least 1" },
    { "headerTimeout: 500us\n",
      "1:16: headerTimeout must be between 1ms and 24h" },
    { "idleTimeout: 25h\n", "1:14: idleTimeout must be between 1ms and 24h" },
    { "idleTimeout: 10\n",
      "1:14: idleTimeout must be a positive duration such as 90s or 15m" },
    { "idleTimeout: -1s\n",
      "1:14: idleTimeout must be a positive duration such as 90s or 15m" },
    { "memoryOvercommit: 1001\n",
      "1:19: memoryOvercommit must be a number such as 1.5" },
    { "diskOvercommit: 2\n", "1:17: diskOvercommit must be true or false" },
    { "templates: {name: a}\n", "1:12: templates must be a list" },
    { "default: [a]\n", "1:10: a template must be a mapping" },
  };
  tcase("a bad server-wide key or value is refused with file:line:col and "
        "the key");
  refused(m, N(m));
}

/* A template with one key (line 3, column 5). */
#define T(kv) "templates:\n  - name: t\n    " kv "\n"

static void template_keys_refused(void) {
  static const struct mistake m[] = {
    { "templates:\n  - 5\n", "2:5: a template must be a mapping" },
    { "templates:\n  - namespace: x\n", "2:5: a template needs a name" },
    { "templates:\n  - name: [a]\n", "2:11: name must be a scalar" },
    { T("nmae: x"), "3:5: unknown template key 'nmae'" },
    { T("sessionTimeout: 0s"), "3:21: sessionTimeout must be a positive "
      "duration such as 90s or 15m" },
    { T("maxSessionDuration: 1y"), "3:25: maxSessionDuration must be a "
      "positive duration such as 90s or 15m" },
    { T("commandTimeout: soon"), "3:21: commandTimeout must be a positive "
      "duration such as 90s or 15m" },
    { T("warmPoolSize: many"), "3:19: warmPoolSize must be a whole number" },
    { T("maxOutputBytes: 1Zi"),
      "3:21: maxOutputBytes must be a size such as 512Mi or 1Gi" },
    { T("processOutputBytes: -1"),
      "3:25: processOutputBytes must be a size such as 512Mi or 1Gi" },
    { T("disk: big"), "3:11: disk must be a size such as 512Mi or 1Gi" },
    { T("maxFileSize: {}"), "3:18: maxFileSize must be a scalar" },
    { T("openFiles: 1.5"), "3:16: openFiles must be a whole number" },
    { T("ptys: x"), "3:11: ptys must be a whole number" },
    { T("resources: 1"), "3:16: resources must be a mapping" },
    { T("resources: {limit: {}}"), "3:17: unknown key 'limit' in resources" },
    { T("resources: {limits: 1}"),
      "3:25: resources.limits must be a mapping" },
    { T("resources: {requests: 1}"),
      "3:27: resources.requests must be a mapping" },
    { T("resources: {limits: {memroy: 1Gi}}"),
      "3:26: unknown key 'memroy' in resources.limits" },
    { T("resources: {limits: {cpu: 2 cores}}"),
      "3:31: cpu must be like \"1\", \"0.5\" or \"500m\"" },
    { T("resources: {limits: {cpu: [1]}}"),
      "3:31: cpu must be like \"1\", \"0.5\" or \"500m\"" },
    { T("resources: {limits: {memory: 1GB}}"),
      "3:34: memory must be a size such as 512Mi or 1Gi" },
    { T("resources: {limits: {pids: -5}}"),
      "3:32: pids must be a whole number" },
    { T("resources: {limits: {ephemeral-storage: x}}"),
      "3:45: ephemeral-storage must be a size such as 512Mi or 1Gi" },
    { "default:\n  commandTimeout: 0s\n", "2:19: commandTimeout must be a "
      "positive duration such as 90s or 15m" },
  };
  tcase("a bad template key or value is refused with file:line:col and "
        "the key");
  refused(m, N(m));
}

static void environment_refused(void) {
  static const struct mistake m[] = {
    { T("environment: 5"),
      "3:18: environment must be a list of {name, value} or a map" },
    { T("environment: {A: [1]}"),
      "3:22: environment must map names to strings" },
    { T("environment: {A=B: c}"),
      "3:19: environment variable name 'A=B' is invalid" },
    { T("environment: [5]"),
      "3:19: environment entries must be {name, value}" },
    { T("environment: [{name: A, vaule: b}]"),
      "3:29: unknown key 'vaule' in an environment entry" },
    { T("environment: [{value: b}]"),
      "3:19: environment variable name '' is invalid" },
  };
  tcase("environment: a bad entry is refused where it is");
  refused(m, N(m));
}

static void network_refused(void) {
  static const struct mistake m[] = {
    { T("network: maybe"), "3:14: network must be true or false" },
    { T("network: {publc: true}"),
      "3:15: unknown key 'publc' in network (public, dns, allow)" },
    { T("network: {public: 2}"), "3:23: network.public must be true or "
      "false" },
    { T("network: {dns: 2}"), "3:20: network.dns must be true or false" },
    { T("network: {allow: 10.0.0.0/8}"),
      "3:22: network.allow must be a list" },
    { T("network: {allow: [[a]]}"), "3:23: network.allow entries must be "
      "strings such as 10.0.0.0/8 or db.internal:5432" },
    { T("network: {allow: [10.0.0.1/8]}"), "3:23: network.allow entry "
      "'10.0.0.1/8' has bits set past its prefix length" },
    { T("network: {allow: ['db:0']}"), "3:23: network.allow entry 'db:0' "
      "has a bad port: ports are 1-65535, a range is LOW-HIGH" },
  };
  static char many[257 * 32 + 64];
  struct ac_config cfg;
  struct ac_error e;
  size_t off;

  tcase("network: a bad policy or allowlist entry is refused where it is");
  refused(m, N(m));
  off = (size_t)snprintf(many, sizeof many, "%s",
                         T("network:\n      allow:"));
  for (int i = 0; i < 257 && off < sizeof many; i++)
    off += (size_t)snprintf(many + off, sizeof many - off,
                            "\n        - 10.0.%d.%d", i / 250, i % 250);
  is_int(load(many, &cfg, &e), AC_ECONFIG, "257 allowlist entries");
  ok(strstr(e.msg, ":6:9: network.allow has more than 256 entries") != NULL,
     "says: %s", e.msg);
  ac_config_free(&cfg);
  /* control: 256 entries are fine */
  *strrchr(many, '\n') = '\0';
  is_int(load(many, &cfg, &e), AC_OK, "256 entries load (control)");
  is_int(cfg.ntemplates == 1 && cfg.templates[0].netpol
         ? cfg.templates[0].netpol->nallow : 0, 256, "all 256 kept");
  ac_config_free(&cfg);
}

static void templates_read(void) {
  struct ac_config cfg;
  struct ac_error e;
  const struct ac_template *t, *u;
  const struct sbx_net_policy *np;

  tcase("template keys are read as written; listed templates inherit the "
        "default's environment, network policy and image");
  REQUIRE(load("strict: true\n"
               "default:\n"
               "  environment: { LANG: C.UTF-8 }\n"
               "  network: { public: false, dns: off, allow: "
               "[10.0.0.0/8, \"[fd00::1]:443\", db.internal:5432] }\n"
               "  image: { packages: [python3-minimal] }\n"
               "templates:\n"
               "  - name: t\n"
               "    namespace: ns\n"
               "    sessionTimeout: 90s\n"
               "    maxSessionDuration: 2h\n"
               "    warmPoolSize: 0\n"
               "    maxOutputBytes: 1Mi\n"
               "    processOutputBytes: 2Mi\n"
               "    disk: 3Gi\n"
               "    maxFileSize: 100Mi\n"
               "    openFiles: 256\n"
               "    ptys: 8\n"
               "    resources: { requests: { cpu: \"2\" }, limits: "
               "{ memory: 512Mi, cpu: 500m, pids: 64, "
               "ephemeral-storage: 2Gi } }\n"
               "    environment: [ { name: FOO, value: bar }, "
               "{ name: EMPTY } ]\n"
               "  - name: u\n"
               "    sessionTimeout: 500ms\n"
               "    network: true\n", &cfg, &e) == AC_OK,
          "loads: %s", e.msg);
  REQUIRE(cfg.ntemplates == 2, "two templates");
  t = ac_config_find(&cfg, "ns", "t");
  u = ac_config_find(&cfg, "anywhere", "u");
  REQUIRE(t == &cfg.templates[0] && u == &cfg.templates[1],
          "t found in its namespace, u (no namespace) in any");
  ok(ac_config_find(&cfg, "other", "t") == NULL,
     "strict: t is not found in another namespace");
  ok(ac_config_find(&cfg, "ns", "missing") == NULL,
     "strict: an unknown name is not found");
  is_int(t->session_timeout_s, 90, "sessionTimeout");
  is_int(t->max_duration_s, 7200, "maxSessionDuration");
  is_int(t->warm_pool, 0, "warmPoolSize");
  is_int(t->max_output, 1 << 20, "maxOutputBytes");
  is_int(t->limits.proc_output_bytes, 2 << 20, "processOutputBytes");
  is_int(t->limits.disk_bytes, 2ULL << 30,
         "ephemeral-storage, written after disk, wins");
  is_int(t->limits.fsize_bytes, 100 << 20, "maxFileSize");
  is_int(t->limits.nofile, 256, "openFiles");
  is_int(t->limits.ptys, 8, "ptys");
  is_int(t->limits.memory_bytes, 512 << 20, "memory limit");
  is_int(t->limits.cpu_millis, 500, "cpu limit; requests do not bind");
  is_int(t->limits.pids, 64, "pids limit");
  ok(t->env && t->env[0] && t->env[1] && t->env[2] && !t->env[3],
     "three variables");
  if (t->env && t->env[0] && t->env[1] && t->env[2]) {
    is_str(t->env[0], "LANG=C.UTF-8", "the default's variable first");
    is_str(t->env[1], "FOO=bar", "then the template's");
    is_str(t->env[2], "EMPTY=", "a variable without a value is empty");
  }
  np = t->netpol;
  REQUIRE(np != NULL && np != cfg.fallback.netpol &&
          t->limits.netpol == np, "t has its own copy of the policy");
  ok(np->public_ == 0 && np->dns == 0, "public: false, dns: off");
  REQUIRE(np->nallow == 3, "three allowlist entries");
  ok(np->allow[0].family == AF_INET && np->allow[0].prefix == 8 &&
     np->allow[0].port_lo == 0, "10.0.0.0/8, every port");
  ok(np->allow[1].family == AF_INET6 && np->allow[1].prefix == 128 &&
     np->allow[1].port_lo == 443 && np->allow[1].port_hi == 443,
     "[fd00::1]:443");
  ok(np->allow[2].host && !strcmp(np->allow[2].host, "db.internal") &&
     np->allow[2].host != cfg.fallback.netpol->allow[2].host &&
     np->allow[2].port_lo == 5432, "db.internal:5432, its own copy");
  ok(t->image && cfg.fallback.image && t->image != cfg.fallback.image &&
     !strcmp(t->image->id, cfg.fallback.image->id),
     "the default's image, copied");
  is_int(u->limits.network, 1, "u: network: true");
  ok(u->netpol == NULL && u->limits.netpol == NULL,
     "u: network: true replaces the inherited policy");
  is_int(u->session_timeout_s, 1, "u: 500ms rounds up to 1 s");
  ac_config_free(&cfg);
}

static void files_refused(void) {
  struct ac_config cfg;
  struct ac_error e;
  char want[128];

  tcase("a missing file, broken YAML and an empty file");
  ac_config_defaults(&cfg, &e);
  is_int(ac_config_load(&cfg, "/nonexistent/agentcube.yaml", &e), AC_ECONFIG,
         "a missing file is refused");
  ok(strstr(e.msg, "cannot open /nonexistent/agentcube.yaml") != NULL,
     "says which: %s", e.msg);
  ac_config_free(&cfg);
  is_int(load("a: [1, 2\nb: 3\n", &cfg, &e), AC_ECONFIG,
         "unclosed flow sequence refused");
  snprintf(want, sizeof want, "%s:2:2: ", path);
  ok(strncmp(e.msg, want, strlen(want)) == 0,
     "names file:line:col of the problem: %s", e.msg);
  ac_config_free(&cfg);
  is_int(load("", &cfg, &e), AC_OK, "an empty file loads");
  is_int(cfg.max_sessions, 256, "and keeps the defaults");
  ok(ac_config_find(&cfg, "x", "y") == &cfg.fallback,
     "not strict: any name gets the default template");
  ac_config_free(&cfg);
}

/* One allowlist entry and what it must become (or "" when refused,
** with the reason's start). */
static void net_allow_entries(void) {
  static const struct {
    const char *in;
    int family;
    unsigned prefix, lo, hi;
    const char *host, *why;
  } c[] = {
    { "10.20.0.0/16", AF_INET, 16, 0, 0, NULL, NULL },
    { "192.168.1.5:8080", AF_INET, 32, 8080, 8080, NULL, NULL },
    { "10.1.0.0/24:8000-8100", AF_INET, 24, 8000, 8100, NULL, NULL },
    { "[fd00::1]:443", AF_INET6, 128, 443, 443, NULL, NULL },
    { "[fd00::/16]:1-2", AF_INET6, 16, 1, 2, NULL, NULL },
    { "[fd00::1]", AF_INET6, 128, 0, 0, NULL, NULL },
    { "fd00::/8", AF_INET6, 8, 0, 0, NULL, NULL },
    { "db.internal:5432", 0, 0, 5432, 5432, "db.internal", NULL },
    { "my-host", 0, 0, 0, 0, "my-host", NULL },
    { "", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "[fd00::1", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "[fd00::1]443", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "[10.0.0.1]:80", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "[fd00::1/8]:80", 0, 0, 0, 0, NULL, "has bits set" },
    { "fd00::1/8", 0, 0, 0, 0, NULL, "has bits set" },
    { "fd00::zz", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "10.0.0.1/8", 0, 0, 0, 0, NULL, "has bits set" },
    { "10.0.0.0/33", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "10.0.0.0/x", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "10.0.0", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "-host", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "a_b", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "host/8", 0, 0, 0, 0, NULL, "must be ADDRESS" },
    { "db:0", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:65536", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:123456", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:80x", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:90-80", 0, 0, 0, 0, NULL, "has a bad port" },
    { "db:80-", 0, 0, 0, 0, NULL, "has a bad port" },
    { "[fd00::1]:http", 0, 0, 0, 0, NULL, "has a bad port" },
  };
  tcase("network allowlist entries: addresses, blocks, names and ports are "
        "read strictly; anything else is refused with the reason");
  for (size_t i = 0; i < N(c); i++) {
    struct sbx_net_allow a;
    const char *why = NULL;
    enum ac_code rc = ac_net_allow_parse(c[i].in, &a, &why);
    if (c[i].why) {
      ok(rc == AC_EINVAL && why && !strncmp(why, c[i].why, strlen(c[i].why))
         && a.host == NULL, "'%s' refused: %s", c[i].in, why ? why : "");
      continue;
    }
    ok(rc == AC_OK && a.family == c[i].family &&
       (c[i].host || a.prefix == c[i].prefix) && a.port_lo == c[i].lo &&
       a.port_hi == c[i].hi &&
       (c[i].host ? a.host && !strcmp(a.host, c[i].host) : a.host == NULL),
       "'%s' read as written", c[i].in);
    free(a.host);
  }
}

/* Durations (sessionTimeout, commandTimeout, execute's timeout) are read
** like Go's time.ParseDuration, with its messages. */
static void durations(void) {
  static const struct { const char *in; long long ns; const char *why; } c[] = {
    { "0", 0, NULL }, { "-0", 0, NULL }, { "300ms", 300000000LL, NULL },
    { "1.5h", 5400 * SEC, NULL }, { "1h30m", 5400 * SEC, NULL },
    { "-1.5h", -5400 * SEC, NULL }, { "+2s", 2 * SEC, NULL },
    { ".5s", SEC / 2, NULL }, { "1us", 1000, NULL }, { "1\u00b5s", 1000, NULL },
    { "2m3.5s", 123 * SEC + SEC / 2, NULL }, { "10ns", 10, NULL },
    { "", 0, "time: invalid duration \"\"" },
    { "-", 0, "time: invalid duration \"-\"" },
    { "x", 0, "time: invalid duration \"x\"" },
    { ".s", 0, "time: invalid duration \".s\"" },
    { "10", 0, "time: missing unit in duration \"10\"" },
    { "1h10", 0, "time: missing unit in duration \"1h10\"" },
    { "10q", 0, "time: unknown unit \"q\" in duration \"10q\"" },
    { "3dd5s", 0, "time: unknown unit \"dd\" in duration \"3dd5s\"" },
    { "2562048h", 0, "time: invalid duration \"2562048h\"" },
  };
  tcase("durations are read like Go's time.ParseDuration, with its "
        "messages");
  for (size_t i = 0; i < N(c); i++) {
    struct ac_error e;
    long long ns = -42;
    enum ac_code rc = ac_duration_parse(c[i].in, &ns, &e);
    if (c[i].why) {
      is_int(rc, AC_EINVAL, "'%s' refused", c[i].in);
      is_str(rc == AC_EINVAL ? e.msg : "", c[i].why, "  says why");
    } else {
      ok(rc == AC_OK && ns == c[i].ns, "'%s' is %lld ns (got %lld)",
         c[i].in, c[i].ns, ns);
    }
  }
}

int main(void) {
  struct ac_config cfg;
  struct ac_error e = { 0 };
  const struct ac_template *t;
  int fd;

  plan(13);
  fd = mkstemp(path);
  if (fd >= 0)
    close(fd);

  tcase("no configuration: any template runs commands with a 60 s timeout");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK, "defaults load")) {
    t = ac_config_find(&cfg, "default", "my-interpreter");
    ok(t != NULL, "my-interpreter answers without configuration");
    is_int(t ? t->command_timeout_ns : -1, 60 * SEC,
           "the execute default is 60 s");
    ac_config_free(&cfg);
  }

  tcase("a configured template without commandTimeout keeps 60 s; "
        "commandTimeout sets its own");
  ok(write_config("templates:\n"
                  "  - name: plain\n"
                  "  - name: quick\n"
                  "    commandTimeout: 2s\n") == 0, "config written");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK &&
         ac_config_load(&cfg, path, &e) == AC_OK, "config loads")) {
    t = ac_config_find(&cfg, "default", "plain");
    is_int(t ? t->command_timeout_ns : -1, 60 * SEC, "plain: 60 s");
    t = ac_config_find(&cfg, "default", "quick");
    is_int(t ? t->command_timeout_ns : -1, 2 * SEC, "quick: 2 s");
    ac_config_free(&cfg);
  }

  tcase("defaults: commandTimeout in the default template applies to all");
  ok(write_config("default:\n"
                  "  commandTimeout: 5s\n"
                  "templates:\n"
                  "  - name: plain\n") == 0, "config written");
  if (ok(ac_config_defaults(&cfg, &e) == AC_OK &&
         ac_config_load(&cfg, path, &e) == AC_OK, "config loads: %s",
         e.msg)) {
    t = ac_config_find(&cfg, "default", "plain");
    is_int(t ? t->command_timeout_ns : -1, 5 * SEC, "plain: 5 s");
    t = ac_config_find(&cfg, "default", "other");
    is_int(t ? t->command_timeout_ns : -1, 5 * SEC, "any other name: 5 s");
    ac_config_free(&cfg);
  }
  tcase("quantities and CPU amounts: decimal numbers only, never NaN, "
        "infinity or hex floats (a NaN overflowed the cast)");
  {
    static const char *const bad[] = { "NAN", "nan", "nanMi", "inf",
      "INFINITY", "0x10", "0x1p4Mi", "-1", "", "Mi", "1.5x" };
    unsigned long long q = 0;
    unsigned m = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      is_int(ac_parse_quantity(bad[i], &q), AC_EINVAL, "quantity '%s'",
             bad[i]);
      is_int(ac_parse_cpu(bad[i], &m), AC_EINVAL, "cpu '%s'", bad[i]);
    }
    /* controls: what the README shows still parses */
    ok(ac_parse_quantity("512Mi", &q) == AC_OK && q == 512ULL << 20,
       "512Mi");
    ok(ac_parse_quantity("1.5Gi", &q) == AC_OK && q == 3ULL << 29, "1.5Gi");
    ok(ac_parse_quantity("1e3", &q) == AC_OK && q == 1000, "1e3");
    ok(ac_parse_cpu("500m", &m) == AC_OK && m == 500, "500m");
    ok(ac_parse_cpu("2", &m) == AC_OK && m == 2000, "2");
  }
  server_keys_read();
  server_keys_refused();
  template_keys_refused();
  environment_refused();
  network_refused();
  templates_read();
  files_refused();
  net_allow_entries();
  durations();
  unlink(path);
  return done_testing();
}
