/*
** agentcube.h -- libagentcube, the C client of AgentCube code-interpreter
** sandboxes. It speaks the same wire protocol as the official Python SDK
** (CodeInterpreterClient, ControlPlaneClient, CodeInterpreterDataPlaneClient,
** TokenAuth, ServiceAccountAuth); docs/protocol.md describes the wire. This
** is the public API: what `make install` ships; the private headers of the
** library live in src/core/.
**
** Objects
**   ac_client   configuration (endpoints, auth, timeouts, retry policy) and
**               a pool of libcurl easy handles for connection reuse.
**   ac_session  one code-interpreter session on a client: created by
**               ac_session_create (one POST to the control plane) or attached
**               by id (no HTTP).
**   ac_auth     a bearer-token provider, reference counted.
**
** Errors
**   Every function that can fail returns enum ac_code and fills the optional
**   struct ac_error (code, http_status, message). Non-2xx answers are
**   AC_EHTTP with err->http_status set and the server's own message
**   ("message" or "error" field, else the body text) in err->msg.
**
** Threads
**   Call ac_global_init() once, before any other thread exists.
**   An ac_client may be used from several threads at once: each request
**   takes an idle easy handle from the client's pool (or makes one), so
**   concurrent requests run on separate connections. The session functions
**   may run concurrently on one session too, including ac_session_stop;
**   only ac_session_free must not race with other calls on that session.
**   Auth providers are thread-safe (a callback provider is as thread-safe as
**   its callback). No function here ever calls back into a caller's code from
**   inside a libcurl callback; caller callbacks (auth, local default, log)
**   run on the calling thread, before or after a transfer, and must not
**   longjmp out.
**
** Memory
**   "Borrowed" means the library keeps no reference after the call
**   returns (or, for accessors, the pointer stays valid while the object
**   lives). "Owned by the caller" results are released with the named
**   free function.
*/
#ifndef AGENTCUBE_AGENTCUBE_H
#define AGENTCUBE_AGENTCUBE_H

#include "agentcube/ac_error.h"

#include <signal.h>
#include <stddef.h>

#define AC_VERSION            "0.1.0"
#define AC_DEFAULT_NAME       "my-interpreter"
#define AC_DEFAULT_NAMESPACE  "default"
#define AC_DEFAULT_TTL        3600
#define AC_SA_TOKEN_PATH \
  "/var/run/secrets/kubernetes.io/serviceaccount/token"

typedef struct ac_client ac_client;
typedef struct ac_session ac_session;
typedef struct ac_auth ac_auth;

/* libcurl's global state. Call once at start-up, before threads; calling
** curl_global_init(CURL_GLOBAL_DEFAULT) yourself is equivalent. */
enum ac_code ac_global_init(struct ac_error *err);
void ac_global_cleanup(void);

/* ---------------------------------------------------------------------- */
/* Authentication                                                          */

/* A static bearer token (TokenAuth). token is copied; an empty token is
** AC_EINVAL. *out is owned by the caller: release with ac_auth_unref. */
enum ac_code ac_auth_new_token(const char *token, ac_auth **out,
                               struct ac_error *err);

/* A token read once from a file, surrounding whitespace stripped (the
** Kubernetes service-account token). A missing or empty file is
** AC_ENOTFOUND. path is copied. *out is owned by the caller. */
enum ac_code ac_auth_new_token_file(const char *path, ac_auth **out,
                                    struct ac_error *err);

/* A caller-supplied provider, asked for a token before every request that
** carries Authorization. On success fn stores a malloc'd NUL-terminated token
** in *token; the library takes ownership and free()s it. fn runs on the
** thread that issued the request, never inside a libcurl callback, and must
** not longjmp (a Lua binding calls lua_pcall inside it). free_ud (may be
** NULL) is called with ud when the provider is destroyed. *out is owned by
** the caller. */
typedef enum ac_code (*ac_token_fn)(void *ud, char **token,
                                    struct ac_error *err);
enum ac_code ac_auth_new_callback(ac_token_fn fn, void *ud,
                                  void (*free_ud)(void *ud), ac_auth **out,
                                  struct ac_error *err);

/* One extra HTTP header, both strings borrowed. */
struct ac_header {
  const char *name;
  const char *value;
};

/* OAuth2 client credentials (ServiceAccountAuth). All strings are copied by
** ac_auth_new_oauth. */
struct ac_oauth_config {
  const char *token_url;              /* required */
  const char *client_id;              /* required */
  const char *client_secret;          /* required */
  const char *scope;                  /* NULL or "": not sent */
  const struct ac_header *headers;    /* extra headers on the token POST */
  size_t nheaders;
  long connect_timeout_ms;            /* 0: 5000 */
  long timeout_ms;                    /* 0: 30000 */
  int verbose;                        /* log the token request to stderr */
};

/* POSTs a form (grant_type=client_credentials, client_id, client_secret,
** scope when set) to token_url on first use, and caches the access_token for
** max(expires_in - 30, expires_in / 2) seconds (floor division; expires_in
** defaults to 3600) on CLOCK_MONOTONIC. The fetch is serialised by a mutex.
** A non-2xx answer or a missing access_token is AC_EAUTH (http_status set
** when known). *out is owned by the caller. */
enum ac_code ac_auth_new_oauth(const struct ac_oauth_config *cfg,
                               ac_auth **out, struct ac_error *err);

/* Reference counting. ac_auth_ref returns a; ac_auth_unref(NULL) is a no-op.
** The provider is destroyed when the last reference goes. */
ac_auth *ac_auth_ref(ac_auth *a);
void ac_auth_unref(ac_auth *a);

/* Asks a provider for its current token. *token is malloc'd and owned by the
** caller (free()). A token that is empty or holds CR/LF is AC_EAUTH. */
enum ac_code ac_auth_get_token(ac_auth *a, char **token,
                               struct ac_error *err);

/* ---------------------------------------------------------------------- */
/* Client configuration                                                    */

/* What the local-runtime hook reports: the URL of the merged local server
** (used as both workload manager and router URL) and its API token ("" when
** the server runs without auth). */
struct ac_local_endpoint {
  char url[2048];
  char token[4096];
};

/* The local-runtime hook: called by ac_client_new only when neither URL is
** given (argument or environment). It may start the server; it fills *out.
** Runs on the calling thread; must not longjmp. */
typedef enum ac_code (*ac_local_fn)(void *ud, struct ac_local_endpoint *out,
                                    struct ac_error *err);

/* Log sink for verbose mode: one line, no trailing newline. NULL: stderr. */
typedef void (*ac_log_fn)(void *ud, const char *line);

/* Client settings. Initialise with ac_client_config_init, then set fields.
** All pointers are borrowed: ac_client_new copies strings and takes its own
** reference on auth. A zero numeric field means "the default". */
struct ac_client_config {
  const char *workload_manager_url;   /* NULL: $WORKLOAD_MANAGER_URL */
  const char *router_url;             /* NULL: $ROUTER_URL */
  ac_auth *auth;                      /* wins over auth_token */
  const char *auth_token;             /* non-empty: static token */
  const char *sa_token_path;          /* NULL: AC_SA_TOKEN_PATH; "": none */
  ac_local_fn local_default;          /* ac_local_default; NULL: none */
  void *local_ud;
  int verbose;                        /* log each request and status */
  ac_log_fn log;
  void *log_ud;
  long connect_timeout_ms;            /* 5000 */
  long request_timeout_ms;            /* 120000: control plane, files */
  long upload_timeout_ms;             /* 120000: idle limit of up/download */
  long exec_grace_ms;                 /* 2000: execute waits timeout + this */
  size_t max_response;                /* 64 MiB: cap on in-memory bodies */
  int max_retries;                    /* 3; -1: never retry */
  long retry_base_ms;                 /* 200; doubled per attempt */
  long retry_max_ms;                  /* 2000 */
  /* When non-NULL and set to non-zero (e.g. by a SIGINT handler), the
  ** transfer in progress is aborted with AC_EINTERRUPTED. Borrowed: must
  ** outlive the client. */
  const volatile sig_atomic_t *interrupt;
  /* Downloads: an overall deadline (besides upload_timeout_ms's idle
  ** limit), so a server that drips bytes cannot hold one for ever, and a
  ** size limit (a larger file is AC_ETOOBIG and nothing is left behind). */
  long download_timeout_ms;           /* 3600000 (1 h); -1: none */
  unsigned long long max_download;    /* 0: no limit */
};

void ac_client_config_init(struct ac_client_config *cfg);

/* Resolves the configuration (explicit field > environment > local hook)
** and builds a client. Fails before any HTTP with AC_ECONFIG when only one
** URL is known, or when neither is and there is no local hook, or a URL is
** not absolute http(s). Auth: cfg->auth > cfg->auth_token > the local
** runtime's token (both planes) > the service-account token file (control
** plane only, remote endpoints only) > none. The data plane sends
** Authorization only when auth, auth_token or a local token exists.
** *out is owned by the caller: release with ac_client_free. */
enum ac_code ac_client_new(const struct ac_client_config *cfg, ac_client **out,
                           struct ac_error *err);

/* Drops the caller's reference. The client lives on while sessions made
** from it are not freed, so any free order is fine. NULL is a no-op. */
void ac_client_free(ac_client *c);

/* The resolved endpoints; borrowed, valid while the client lives. */
const char *ac_client_workload_manager_url(const ac_client *c);
const char *ac_client_router_url(const ac_client *c);

/* ---------------------------------------------------------------------- */
/* Local runtime state (helpers for the host's local_default hook)         */

/* The local runtime's state directory, the one every part of agentcube
** uses (server, host, Lua module): $AGENTCUBE_HOME, else $HOME/.agentcube,
** else (HOME unset or empty) the passwd entry's home/.agentcube, into buf.
** AC_ECONFIG when there is no home at all (never a shared fallback such
** as /tmp), AC_ETOOBIG when it does not fit. Checks nothing on disk. */
enum ac_code ac_local_home(char *buf, size_t size, struct ac_error *err);

/* Whether home can be trusted: a real directory (never a symlink) of this
** user (or root) that nobody else can write. With create, a missing home
** is made first (mode 0700; its parent must exist). AC_ENOTFOUND when it
** does not exist, AC_EACCESS when it is not trusted (the message names
** the path and why). */
enum ac_code ac_local_home_check(const char *home, int create,
                                 struct ac_error *err);

/* Reads a running local server's state from home (NULL: ac_local_home):
** <home>/serve.json, a JSON object whose "url" names the server
** ({"url":"http://127.0.0.1:8080","pid":123,"auth":true}), and
** <home>/token, the API token (whitespace stripped; not read when "auth" is
** false; a missing file means no auth). A missing serve.json is
** AC_ENOTFOUND. Starts nothing. Nothing is trusted blindly: home must be
** a directory of this user (or root) that others cannot write, serve.json
** and token regular files (never symlinks) of the same owner, and the URL
** plain http to a loopback address; otherwise AC_EACCESS. On any failure
** *out is all zeroes: a state refused in part hands out nothing. */
enum ac_code ac_local_read_state(const char *home,
                                 struct ac_local_endpoint *out,
                                 struct ac_error *err);

/* The built-in local-runtime hook, which ac_client_config_init installs
** as local_default: finds the live server of ac_local_home (serve.json
** checked as ac_local_read_state says, its pid alive, /health answering,
** and the listener proven to be that pid, before any token is sent), or
** starts one (`agentcube serve --daemon --listen 127.0.0.1:0 --state-dir
** HOME`; the binary is $AGENTCUBE_BIN, this program when it is agentcube,
** the one installed next to the library, else PATH). ud: NULL or a
** pointer to an int, non-zero to say on stderr that a server starts. */
enum ac_code ac_local_default(void *ud, struct ac_local_endpoint *out,
                              struct ac_error *err);

/* The live server of ac_local_home, checked as ac_local_default checks it,
** but never started: AC_ENOTFOUND when none runs (no serve.json, or one
** left by a server that is gone). For tools that only look (`agentcube
** sessions`). */
enum ac_code ac_local_find(struct ac_local_endpoint *out,
                           struct ac_error *err);

/* Whether home's serve.json still names a running server at url (a
** client made from it may be reused). */
int ac_local_live(const char *home, const char *url);

/* ---------------------------------------------------------------------- */
/* Sessions (control plane)                                                */

struct ac_session_opts {
  const char *name;                   /* NULL: "my-interpreter" */
  const char *ns;                     /* NULL: "default" (namespace) */
  long long ttl;                      /* 0: 3600 */
  const char *metadata_json;          /* a JSON object text; NULL: {} */
};

/* POST {wm}/v1/code-interpreter with {"name","namespace","ttl","metadata"}.
** Non-2xx: AC_EHTTP; a body without a non-empty string "sessionId":
** AC_EPROTO. opts may be NULL (all defaults); its strings are copied.
** The session is owned (see ac_session_owned). *out is owned by the caller:
** ac_session_stop deletes it remotely, ac_session_free releases it. */
enum ac_code ac_session_create(ac_client *c,
                               const struct ac_session_opts *opts,
                               ac_session **out, struct ac_error *err);

/* Binds to an existing session id without any HTTP. name/ns (NULL:
** defaults) select the data-plane URL. The session is not owned.
** All strings are copied; *out is owned by the caller. */
enum ac_code ac_session_attach(ac_client *c, const char *session_id,
                               const char *name, const char *ns,
                               ac_session **out, struct ac_error *err);

/* DELETE {wm}/v1/code-interpreter/sessions/{id}. 2xx and 404 are success.
** The session is closed afterwards whatever the outcome (like the SDK's
** stop()), and later calls on it fail with AC_ECLOSED; the delete's own
** failure is returned. Stopping a closed session is AC_OK, no HTTP. */
enum ac_code ac_session_stop(ac_session *s, struct ac_error *err);

/* ac_session_stop for shutdown paths that must not block for long (a Lua
** state closing with sessions still owned): the DELETE's connect and total
** timeouts are capped at timeout_ms (<= 0: 1 ms) and it is never retried. */
enum ac_code ac_session_stop_within(ac_session *s, long timeout_ms,
                                    struct ac_error *err);

/* Releases local memory only: never does network I/O (safe from __gc).
** NULL is a no-op. */
void ac_session_free(ac_session *s);

/* Borrowed strings, valid until ac_session_free (also after stop). */
const char *ac_session_id(const ac_session *s);
const char *ac_session_name(const ac_session *s);
const char *ac_session_namespace(const ac_session *s);
/* The data-plane base URL ".../invocations/". */
const char *ac_session_base_url(const ac_session *s);

/* Ownership is bookkeeping for bindings: 1 for created sessions, 0 for
** attached ones and after ac_session_detach. The library itself never
** deletes a session implicitly. */
int ac_session_owned(const ac_session *s);
void ac_session_detach(ac_session *s);
int ac_session_closed(const ac_session *s);

/* ---------------------------------------------------------------------- */
/* Commands (data plane)                                                   */

struct ac_kv {
  const char *key;
  const char *value;
};

struct ac_exec_opts {
  double timeout;              /* seconds; 0: 120. Sent as "<t>s" */
  int timeout_is_float;        /* format t like a Python float: 30 -> 30.0 */
  const struct ac_kv *env;     /* optional "env" object (extension) */
  size_t nenv;
  const char *working_dir;     /* optional "working_dir" (extension) */
  int check;                   /* exit_code != 0 -> AC_ECOMMAND */
  /* Ask for the output as it happens (Accept: application/x-ndjson, the
  ** local runtime's streamed execute), delivered through the job's
  ** on_output callback. A server that answers with the buffered JSON (an
  ** AgentCube cluster) is fine: on_output then fires once per stream at
  ** the end. Without stream the request is exactly the SDK's. */
  int stream;
};

/* The outcome of a command. Strings are malloc'd, NUL-terminated (they may
** also hold NULs; use the lengths), owned by the struct: release with
** ac_exec_result_free. */
struct ac_exec_result {
  char *out;                   /* stdout ("" when absent or null) */
  size_t out_len;
  char *err;                   /* stderr */
  size_t err_len;
  int exit_code;               /* -1 when absent */
  double duration;             /* seconds; -1 when absent */
  char *command;               /* the command as text, for messages */
};

/* Frees the members and zeroes *r; r may be NULL. */
void ac_exec_result_free(struct ac_exec_result *r);

/* POST api/execute with {"command": argv, "timeout": "<t>s"} and, when set,
** "env" and "working_dir"; the request waits up to timeout + exec_grace.
** argv (argc strings, borrowed) is sent verbatim. opts may be NULL.
** *res is always left valid for ac_exec_result_free; it holds the result on
** AC_OK and on AC_ECOMMAND (opts->check and exit != 0, message
** "Command failed (exit N): <stderr>"). */
enum ac_code ac_session_exec(ac_session *s, const char *const *argv,
                             size_t argc, const struct ac_exec_opts *opts,
                             struct ac_exec_result *res,
                             struct ac_error *err);

/* The same with a command line split like Python's shlex.split (POSIX mode):
** quotes and backslashes are processed, no shell features; unbalanced quotes
** or a trailing backslash are AC_EINVAL before any HTTP. */
enum ac_code ac_session_exec_line(ac_session *s, const char *command,
                                  const struct ac_exec_opts *opts,
                                  struct ac_exec_result *res,
                                  struct ac_error *err);

/* run_code: language python/py/python3 -> ["python3", "script_<ms>.py"],
** bash/sh -> ["bash", "script_<ms>.sh"] (ASCII case-insensitive); anything
** else is AC_EUNSUPPORTED before any HTTP. Writes the script with
** write_file, then executes it with check semantics. Python code that is
** invalid only because of literal "\n" escapes gets them turned into
** newlines (the SDK's double-escape fix, approximated lexically).
** opts->working_dir must be NULL (the script lives in the workspace root);
** opts->check is implied. code is borrowed (len bytes). */
enum ac_code ac_session_run_code(ac_session *s, const char *language,
                                 const char *code, size_t len,
                                 const struct ac_exec_opts *opts,
                                 struct ac_exec_result *res,
                                 struct ac_error *err);

/* ---------------------------------------------------------------------- */
/* Files (data plane)                                                      */

/* POST api/files with {"path": remote_path, "content": base64(data),
** "mode": "0644"}. data (len bytes) is borrowed. */
enum ac_code ac_session_write_file(ac_session *s, const char *remote_path,
                                   const void *data, size_t len,
                                   struct ac_error *err);

/* GET api/files/<path> into memory. More than max_bytes (0: the client's
** max_response) is AC_ETOOBIG. *data (malloc'd, NUL-terminated, *len bytes
** before the NUL) is owned by the caller: free(). */
enum ac_code ac_session_read_file(ac_session *s, const char *remote_path,
                                  size_t max_bytes, char **data, size_t *len,
                                  struct ac_error *err);

/* POST api/files as multipart/form-data with parts path, mode=0644 and file
** (filename = basename of local_path), the file streamed from disk in
** constant memory. A missing local file is AC_ENOTFOUND without HTTP. */
enum ac_code ac_session_upload_file(ac_session *s, const char *local_path,
                                    const char *remote_path,
                                    struct ac_error *err);

/* GET api/files/<path>: leading '/' stripped, '.'/'..' resolved (going above
** the root is AC_EINVAL), each component percent-encoded. The body streams
** into a temporary file next to local_path (parent directories created after
** a 2xx status), renamed into place on success only; on any error nothing
** is left behind. */
enum ac_code ac_session_download_file(ac_session *s, const char *remote_path,
                                      const char *local_path,
                                      struct ac_error *err);

/* The upload or download in progress on s (or its last one): *done bytes
** moved so far, *total the size (-1 while unknown). Safe to call from any
** thread while the transfer runs on another (progress displays). Either
** pointer may be NULL. */
void ac_session_transfer(const ac_session *s, long long *done,
                         long long *total);

struct ac_file_info {
  char *name;                  /* "" when absent */
  long long size;              /* 0 when absent */
  char *modified;              /* RFC 3339 text, "" when absent */
  char *mode;                  /* "-rw-r--r--", "" when absent */
  int is_dir;
};

struct ac_file_list {
  struct ac_file_info *items;
  size_t count;
  char *json;                  /* the "files" array as compact JSON text */
};

/* GET api/files?path=<path> (NULL: "."; form-encoded). A response without
** "files" gives an empty list. *out is owned by the caller: release with
** ac_file_list_free. */
enum ac_code ac_session_list_files(ac_session *s, const char *path,
                                   struct ac_file_list *out,
                                   struct ac_error *err);
void ac_file_list_free(struct ac_file_list *l);

/* ---------------------------------------------------------------------- */
/* Helpers shared with bindings                                            */

/* Python shlex.split(s, posix=True). *argv is a malloc'd NULL-terminated
** array of malloc'd strings (*argc of them), owned by the caller: release
** with ac_argv_free. Unbalanced quotes, a trailing backslash: AC_EINVAL. */
enum ac_code ac_shlex_split(const char *s, char ***argv, size_t *argc,
                            struct ac_error *err);
void ac_argv_free(char **argv);

/* shlex.join: each argument quoted when needed. *out malloc'd, owned by the
** caller. */
enum ac_code ac_shlex_join(const char *const *argv, size_t argc, char **out,
                           struct ac_error *err);

/* "<t>s" as the SDK sends it: t == 0 -> "120s"; an integer t -> "%lld";
** a float t -> Python's repr (2.5 -> "2.5", 30.0 -> "30.0", 1e-05). A
** non-finite or negative t is AC_EINVAL. */
enum ac_code ac_format_timeout(double t, int is_float, char *buf,
                               size_t size, struct ac_error *err);

/* ---------------------------------------------------------------------- */
/* The engine: every operation as a job                                   */
/*
** Every operation above is a job started on an engine. An engine is a
** libcurl multi handle plus one file descriptor (ac_engine_fd) that
** becomes readable whenever any of its jobs has news: put it into an
** epoll set, a libuv poll handle or a frame loop, and call
** ac_engine_poll(e, 0) when it is readable (or once per frame). Output
** chunks, transfer progress and completion are delivered as callbacks from
** inside ac_engine_poll / ac_job_wait, on the thread that calls them, never
** on a thread of the library's.
**
** An engine and its jobs belong to one thread at a time. The blocking
** functions above are start + wait on an engine of their own (taken from
** the client's pool), so they stay usable from several threads at once.
** Connections are shared by every engine of a client.
**
** Cancelling (ac_job_cancel, ac_engine_interrupt, the interrupt flag)
** aborts the transfer at once: the connection is closed, which ends a
** running command on the local runtime.
*/

typedef struct ac_engine ac_engine;
typedef struct ac_job ac_job;

/* *out owned by the caller: ac_engine_free (which cancels running jobs;
** their ac_job objects must still be freed by their owners). */
enum ac_code ac_engine_new(ac_engine **out, struct ac_error *err);
void ac_engine_free(ac_engine *e);

/* Readable when a job has news (data, a timer, completion, interrupt). */
int ac_engine_fd(const ac_engine *e);

/* Moves every transfer forward, waiting at most timeout_ms (0: do not
** wait; < 0: until something completes) and delivers callbacks. Returns
** the number of jobs that completed during the call. */
int ac_engine_poll(ac_engine *e, long timeout_ms);

/* Every running job of e ends with AC_EINTERRUPTED at the next poll or
** wait, within 100 ms. Async-signal-safe (an atomic store and a write to
** an eventfd): call it from a SIGINT handler. */
void ac_engine_interrupt(ac_engine *e);

/* A flag the host sets (e.g. from its SIGINT handler): while it is
** non-zero, waits return and running jobs end with AC_EINTERRUPTED (checked
** at least every 50 ms). Borrowed; must outlive the engine. */
void ac_engine_set_interrupt_flag(ac_engine *e,
                                  const volatile sig_atomic_t *flag);

enum ac_stream { AC_STREAM_STDOUT = 1, AC_STREAM_STDERR = 2 };

/* Optional callbacks of a job; all run on the polling thread, from inside
** ac_engine_poll or ac_job_wait, never inside a libcurl callback. They may
** start, cancel or free other jobs; a callback may free its own job only
** from on_done. */
struct ac_job_callbacks {
  /* A chunk of a command's output (streamed execute, process output,
  ** context runs). data is borrowed for the call. */
  void (*on_output)(void *ud, ac_job *j, enum ac_stream stream,
                    const char *data, size_t len);
  /* Bytes moved by an upload or a download (total 0 when unknown). */
  void (*on_progress)(void *ud, ac_job *j, long long done, long long total);
  /* The job completed (ac_job_result tells how). */
  void (*on_done)(void *ud, ac_job *j);
  void *ud;
};

/* Start functions: they check the arguments (argument errors are returned
** at once, without a job) and return a running job in *out, owned by the
** caller: release with ac_job_free. cbs may be NULL; it is copied. */
enum ac_code ac_start_session_create(ac_engine *e, ac_client *c,
                                     const struct ac_session_opts *opts,
                                     const struct ac_job_callbacks *cbs,
                                     ac_job **out, struct ac_error *err);
enum ac_code ac_start_session_stop(ac_engine *e, ac_session *s,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err);
enum ac_code ac_start_exec(ac_engine *e, ac_session *s,
                           const char *const *argv, size_t argc,
                           const struct ac_exec_opts *opts,
                           const struct ac_job_callbacks *cbs, ac_job **out,
                           struct ac_error *err);
enum ac_code ac_start_exec_line(ac_engine *e, ac_session *s,
                                const char *command,
                                const struct ac_exec_opts *opts,
                                const struct ac_job_callbacks *cbs,
                                ac_job **out, struct ac_error *err);
enum ac_code ac_start_run_code(ac_engine *e, ac_session *s,
                               const char *language, const char *code,
                               size_t len, const struct ac_exec_opts *opts,
                               const struct ac_job_callbacks *cbs,
                               ac_job **out, struct ac_error *err);
enum ac_code ac_start_write_file(ac_engine *e, ac_session *s,
                                 const char *remote_path, const void *data,
                                 size_t len,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err);
enum ac_code ac_start_read_file(ac_engine *e, ac_session *s,
                                const char *remote_path, size_t max_bytes,
                                const struct ac_job_callbacks *cbs,
                                ac_job **out, struct ac_error *err);
enum ac_code ac_start_upload_file(ac_engine *e, ac_session *s,
                                  const char *local_path,
                                  const char *remote_path,
                                  const struct ac_job_callbacks *cbs,
                                  ac_job **out, struct ac_error *err);
enum ac_code ac_start_download_file(ac_engine *e, ac_session *s,
                                    const char *remote_path,
                                    const char *local_path,
                                    const struct ac_job_callbacks *cbs,
                                    ac_job **out, struct ac_error *err);
enum ac_code ac_start_list_files(ac_engine *e, ac_session *s,
                                 const char *path,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err);

/* The local runtime's extensions (docs/extensions.md). Each is one
** request; its JSON answer is ac_job_json. A server without the extension
** (an AgentCube cluster answers the path with a 404 that is not the
** extension's own JSON error) fails with AC_EUNSUPPORTED, naming the
** feature and the server. */
enum ac_ext_op {
  AC_EXT_PROCESS_SPAWN = 1,   /* json: the body of POST api/processes */
  AC_EXT_PROCESS_LIST,
  AC_EXT_PROCESS_GET,         /* id */
  AC_EXT_PROCESS_SIGNAL,      /* id, json {"signal": "TERM"} */
  AC_EXT_PROCESS_WAIT,        /* id, json {"timeout": "30s"} or NULL */
  AC_EXT_PROCESS_OUTPUT,      /* id, offset; chunks through on_output
                              ** (raw bytes); the answer's stdout and
                              ** stderr are text: bytes that are not
                              ** UTF-8 are U+FFFD there */
  AC_EXT_PROCESS_STDIN,       /* id, data/len raw, eof */
  AC_EXT_CONTEXT_CREATE,      /* json {"language": ...} */
  AC_EXT_CONTEXT_LIST,
  AC_EXT_CONTEXT_RUN,         /* id, json {"code": ...}; streams output
                              ** (the same way) */
  AC_EXT_CONTEXT_DELETE,      /* id */
  AC_EXT_FS_REMOVE,           /* json {"path", "recursive"} */
  AC_EXT_FS_MKDIR,            /* json {"path", "parents", "mode"} */
  AC_EXT_FS_STAT,             /* path */
  AC_EXT_FS_RENAME            /* json {"from", "to", "overwrite"} */
};

struct ac_ext_call {
  enum ac_ext_op op;
  const char *id;             /* process or context id */
  const char *path;           /* FS_STAT */
  const char *json;           /* request body (a JSON object text) */
  const void *data;           /* PROCESS_STDIN bytes */
  size_t len;
  long long offset;           /* PROCESS_OUTPUT */
  int eof;                    /* PROCESS_STDIN: close stdin after */
  double timeout;             /* seconds the answer may take; 0: the
                              ** client's request timeout */
};

enum ac_code ac_start_ext(ac_engine *e, ac_session *s,
                          const struct ac_ext_call *call,
                          const struct ac_job_callbacks *cbs, ac_job **out,
                          struct ac_error *err);

/* GET {wm}/v1/code-interpreter/sessions, the sessions the server holds
** (the local runtime's route; not in the SDK). ac_job_json is the answer,
** {"sessions": [{"sessionId", "name", "namespace", "createdAt",
** "lastActivityAt", "expiresAt", ...}, ...]}. A server without the
** route (404) is AC_EUNSUPPORTED; an answer without a "sessions" array
** is AC_EPROTO. */
enum ac_code ac_start_session_list(ac_engine *e, ac_client *c,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err);

/* The same, blocking: *json (malloc'd, caller frees) is the answer. */
enum ac_code ac_session_list(ac_client *c, char **json,
                             struct ac_error *err);

/* The same, blocking: *json (malloc'd, caller frees) is the answer. */
enum ac_code ac_session_ext(ac_session *s, const struct ac_ext_call *call,
                            char **json, struct ac_error *err);

/* Whether the job has completed. */
int ac_job_done(const ac_job *j);

/* Drives the job's engine until the job completes or timeout_ms passes
** (< 0: no limit). Returns 1 when the job is done, 0 when it is still
** running. An interrupt ends the job (AC_EINTERRUPTED) and returns 1. */
int ac_job_wait(ac_job *j, long timeout_ms);

/* The outcome of a completed job (copied into *err); AC_EBUSY while it
** runs. */
enum ac_code ac_job_result(const ac_job *j, struct ac_error *err);

/* Aborts the job: its transfer is closed at once and it completes with
** AC_ECANCELED (on_done runs at the next poll). No-op once done. */
void ac_job_cancel(ac_job *j);

/* Cancels a running job and releases it. NULL is a no-op. */
void ac_job_free(ac_job *j);

/* Results, moved out of a completed job (each may be taken once):
** execute and run_code: the result (valid also on AC_ECOMMAND);
** session create: the new session; read file: the bytes; list files:
** the listing; extensions: the answer's JSON text (borrowed). */
void ac_job_take_exec(ac_job *j, struct ac_exec_result *out);
ac_session *ac_job_take_session(ac_job *j);
char *ac_job_take_data(ac_job *j, size_t *len);
void ac_job_take_files(ac_job *j, struct ac_file_list *out);
const char *ac_job_json(const ac_job *j);

/* ---------------------------------------------------------------------- */
/* Agent runtimes (the SDK's AgentRuntimeClient)                           */
/*
** An agent runtime is an agent served behind the Router, at
** {router}/v1/namespaces/{ns}/agent-runtimes/{name}/invocations/<path>.
** It has no control-plane call: the Router makes a session for a request
** that carries no x-agentcube-session-id and names it in that header of
** its answer; later requests send it back. Closing only drops connections
** (the Router reaps idle sessions). The local runtime does not serve agent
** runtimes: against it every call fails with AC_EUNSUPPORTED.
**
** An ac_agent_runtime does not change after it is made: several threads
** may invoke it at once; only ac_agent_runtime_free must not race.
*/
typedef struct ac_agent_runtime ac_agent_runtime;

/* Initialise with ac_agent_runtime_config_init. Pointers are borrowed:
** strings are copied and auth gets a reference of its own. */
struct ac_agent_runtime_config {
  const char *agent_name;             /* required */
  const char *ns;                     /* NULL: "default" */
  const char *router_url;             /* NULL: $ROUTER_URL; neither:
                                      ** AC_ECONFIG before any HTTP */
  const char *session_id;             /* NULL or "": the Router makes one
                                      ** (one GET); else reused, no HTTP */
  ac_auth *auth;                      /* wins over auth_token */
  const char *auth_token;             /* non-empty: static token; without
                                      ** either no Authorization is sent */
  double timeout;                     /* 120: seconds an answer may stay
                                      ** silent (a read timeout) */
  double connect_timeout;             /* 5 */
  int verbose;                        /* log each request and status */
  ac_log_fn log;
  void *log_ud;
  size_t max_response;                /* 0: 64 MiB */
  int max_retries;                    /* 0: 3; -1: never (POSTs are
                                      ** retried only when nothing was
                                      ** sent; the GET never) */
  const volatile sig_atomic_t *interrupt;   /* as in ac_client_config */
};

void ac_agent_runtime_config_init(struct ac_agent_runtime_config *cfg);

/* Without a session id: GET the base URL (Authorization only), and take
** the session from the answer's x-agentcube-session-id, whatever its
** status. An answer without it: AC_EPROTO for a 2xx, else AC_EHTTP, or
** for a 404 not from the agent AC_EUNSUPPORTED (a plain-text 404: the
** server has no such route, e.g. the local runtime) or AC_ENOTFOUND (the
** Router's JSON 404: no such agent runtime); both name the runtime and the
** server, with http_status 404. The GET is never retried. *out is owned
** by the caller: ac_agent_runtime_free. */
enum ac_code ac_agent_runtime_new(const struct ac_agent_runtime_config *cfg,
                                  ac_agent_runtime **out,
                                  struct ac_error *err);

/* The same as a job; on success ac_job_take_agent_runtime gives the
** object (NULL otherwise, or when taken already). */
enum ac_code ac_start_agent_runtime_new(
    ac_engine *e, const struct ac_agent_runtime_config *cfg,
    const struct ac_job_callbacks *cbs, ac_job **out, struct ac_error *err);
ac_agent_runtime *ac_job_take_agent_runtime(ac_job *j);

/* An answer. Strings malloc'd and owned by the struct (body also holds
** len bytes, NUL-terminated): release with ac_agent_reply_free. */
struct ac_agent_reply {
  long status;
  char *body;
  size_t len;
  char *content_type;                 /* "" when absent */
  char *session_id;                   /* its x-agentcube-session-id, or "" */
};

void ac_agent_reply_free(struct ac_agent_reply *r);

/* POST <base><path> with x-agentcube-session-id, Content-Type:
** application/json, Authorization when there are credentials, and the
** payload (JSON text, any value) written again exactly as Python's
** json.dumps writes it (", " and ": ", ASCII only with \u escapes,
** floats as repr(); key order kept); NULL payload: an empty body. path:
** leading '/'s dropped, resolved and quoted as the SDK's urljoin and
** requests do; one that leaves the base URL is AC_EINVAL. timeout:
** seconds the answer may stay silent, 0: the runtime's. A non-2xx answer
** is AC_EHTTP (the 404 cases as above for answers without the session
** header); *reply then holds that answer too. reply may be NULL. */
enum ac_code ac_agent_runtime_invoke(ac_agent_runtime *rt,
                                     const char *payload_json,
                                     const char *path, double timeout,
                                     struct ac_agent_reply *reply,
                                     struct ac_error *err);

/* The same as a job; ac_job_take_agent_reply moves the answer out
** (zeroed when there is none). rt must outlive the job. */
enum ac_code ac_start_agent_invoke(ac_engine *e, ac_agent_runtime *rt,
                                   const char *payload_json, const char *path,
                                   double timeout,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err);
void ac_job_take_agent_reply(ac_job *j, struct ac_agent_reply *out);

/* Borrowed strings, valid until ac_agent_runtime_free. */
const char *ac_agent_runtime_session_id(const ac_agent_runtime *rt);
const char *ac_agent_runtime_name(const ac_agent_runtime *rt);
const char *ac_agent_runtime_namespace(const ac_agent_runtime *rt);
const char *ac_agent_runtime_base_url(const ac_agent_runtime *rt);
const char *ac_agent_runtime_router_url(const ac_agent_runtime *rt);

/* The SDK's close(): local memory and connections only, never HTTP.
** NULL is a no-op. */
void ac_agent_runtime_free(ac_agent_runtime *rt);

#endif
