/*
** config.h -- the local runtime's configuration: server limits and
** CodeInterpreter templates, read from YAML with the CRD's field names.
**
**   strict: false              # true: unknown templates get 404
**   maxUploadBytes: 8Gi        # server-wide request limits
**   maxJsonBytes: 64Mi
**   maxConnections: 1024       # HTTP connection budgets
**   maxConnectionsPerAddress: 256
**   headerTimeout: 30s
**   idleTimeout: 60s
**   workerThreads: 4
**   maxJsonBytes: 64Mi         # JSON file uploads
**   maxExecuteBytes: 8Mi       # execute bodies
**   maxControlBytes: 64Ki      # control-plane bodies
**   maxJsonDepth: 64           # nesting / values in any JSON body
**   maxJsonNodes: 100000
**   maxRequestMemory: 1Gi      # all requests' bodies and answers
**   maxSessions: 256           # admission: 503 / 507 past these
**   maxLoopDevices: 256
**   memoryOvercommit: 4        # summed memory limits <= 4 x host memory
**   diskOvercommit: false      # true: images may promise more than free
**   minFreeDisk: 1Gi
**   templates:
**     - name: my-interpreter
**       namespace: default
**       sessionTimeout: 15m
**       maxSessionDuration: 8h
**       warmPoolSize: 2
**       commandTimeout: 60s
**       maxOutputBytes: 16Mi
**       network: false             # or true, or a policy (config_net.h)
**       disk: 1Gi
**       ptys: 64                   # its own devpts instance's maximum
**       resources: { limits: { memory: 1Gi, cpu: "1", pids: 256 } }
**       environment: [ { name: FOO, value: bar } ]   # or a map
**       image: { packages: [python3-numpy] }          # see image.h
*/
#ifndef AGENTCUBE_CONFIG_H
#define AGENTCUBE_CONFIG_H

#include "ac_error.h"
#include "sandbox.h"

#include <stddef.h>

struct img_spec;

struct ac_template {
  char *name;                   /* NULL for the built-in default */
  char *namespace_;             /* NULL: any namespace */
  long long session_timeout_s;  /* idle timeout */
  long long max_duration_s;     /* hard lifetime cap */
  long long command_timeout_ns; /* execute default when none is given */
  unsigned warm_pool;
  size_t max_output;            /* per stream */
  struct sbx_limits limits;
  char **env;                   /* "NAME=value", NULL-terminated */
  struct img_spec *image;       /* `image:` (image.h); NULL: host's /usr */
  struct sbx_net_policy *netpol;/* `network:` as a mapping; NULL: the
                                   default policy. limits.netpol points
                                   here */
};

struct ac_config {
  int strict;
  unsigned long long max_upload_bytes;  /* streamed multipart bodies */
  unsigned long long max_json_bytes;    /* buffered JSON bodies */
  unsigned max_inflight;                /* 429 beyond this */
  /* connection budgets of the HTTP server */
  unsigned max_connections;             /* in total; 503 beyond */
  unsigned max_connections_per_addr;    /* per client address; 429 beyond */
  unsigned header_timeout_ms;           /* a request header must arrive
                                           within this */
  unsigned idle_timeout_s;              /* a connection silent this long
                                           (in a body, between requests,
                                           not reading an answer) closes */
  unsigned worker_threads;              /* kept for blocking work; more are
                                           started while all are busy */
  unsigned long long max_execute_bytes; /* execute request bodies */
  unsigned long long max_control_bytes; /* control-plane bodies */
  unsigned max_json_depth;              /* nesting of any JSON body */
  unsigned max_json_nodes;              /* values in any JSON body */
  unsigned long long max_request_memory;/* buffered bodies and answers of
                                           all requests together; 503 past
                                           it (0: no limit) */
  unsigned max_sessions;                /* admission (admission.h) */
  unsigned max_loop_devices;
  double memory_overcommit;             /* 0: memory limits not summed */
  int disk_overcommit;
  unsigned long long min_free_disk;
  struct ac_template fallback;          /* answers any name unless strict */
  struct ac_template *templates;
  size_t ntemplates;
};

/* Fills *cfg with the built-in defaults. */
enum ac_code ac_config_defaults(struct ac_config *cfg, struct ac_error *err);

/* Loads path over the defaults. Errors name "path:line:col". */
enum ac_code ac_config_load(struct ac_config *cfg, const char *path,
                            struct ac_error *err);

/* The template for namespace/name, or NULL (then: 404). Owned by cfg. */
const struct ac_template *ac_config_find(const struct ac_config *cfg,
                                        const char *namespace_,
                                        const char *name);

void ac_config_free(struct ac_config *cfg);

/* "1Gi", "512Mi", "100M", "1e9", "2048" -> bytes. */
enum ac_code ac_parse_quantity(const char *s, unsigned long long *out);
/* "1", "500m", "0.5" -> millicores. */
enum ac_code ac_parse_cpu(const char *s, unsigned *millis);

#endif
