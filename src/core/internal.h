/*
** internal.h -- what the files of libagentcube share with each other:
** the client and session structures, the auth hook used by requests, URL
** and text helpers, and the data-plane request helper. Not installed.
*/
#ifndef AGENTCUBE_CORE_INTERNAL_H
#define AGENTCUBE_CORE_INTERNAL_H

#include "buf.h"
#include "http.h"
#include "agentcube.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define AC_ENGINE_POOL 4

struct ac_client {
  atomic_int refs;                    /* the creator + one per session */
  char *wm_url;                       /* no trailing '/' */
  char *router_url;
  ac_auth *auth;                      /* data plane; NULL: no Authorization */
  ac_auth *cp_auth;                   /* control plane; NULL: none */
  struct ac_http *http;
  long connect_timeout_ms;
  long request_timeout_ms;
  long upload_timeout_ms;
  long exec_grace_ms;
  size_t max_response;
  long download_timeout_ms;           /* overall deadline of a download */
  unsigned long long max_download;    /* 0: no limit */
  int local;                          /* endpoints came from the local hook */
  atomic_int runtime_local;           /* an answer said it is the local
                                      ** runtime (X-AgentCube-Runtime) */
  const volatile sig_atomic_t *interrupt;   /* the host's flag, or NULL */
  /* Connections and DNS answers shared by every engine of the client. */
  CURLSH *share;
  pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];  /* one per kind: they nest */
  /* Idle engines for blocking calls (one per concurrent caller). */
  pthread_mutex_t eng_mu;
  ac_engine *idle_eng[AC_ENGINE_POOL];
  size_t nidle_eng;
};

struct ac_session {
  ac_client *c;                       /* holds a reference */
  char *id;
  char *name;
  char *ns;
  char *base_url;                     /* ".../invocations/" */
  atomic_int closed;
  atomic_int owned;
  /* the upload or download in progress (or the last one), for progress
  ** displays on other threads: bytes moved, and the size (-1: unknown) */
  atomic_llong xfer_done;
  atomic_llong xfer_total;
};

/* Puts an easy handle on the client's shared connection cache. */
AC_INTERNAL CURLcode ac_client_share(ac_client *c, CURL *easy);

/* Takes one more reference on c; ac_client_free drops one. */
AC_INTERNAL ac_client *ac_client_ref(ac_client *c);

/* Appends "Authorization: Bearer <token>" from a (no-op when a is NULL). */
AC_INTERNAL enum ac_code ac_auth_add_header(ac_auth *a,
                                            struct curl_slist **headers,
                                            struct ac_error *err);

/* Reads a token file (at most 64 KiB), whitespace stripped. A missing file
** is AC_ENOTFOUND; an empty one gives "". *token malloc'd, caller frees. */
AC_INTERNAL enum ac_code ac_read_token_file(const char *path, char **token,
                                            struct ac_error *err);

/* OAuth2 client-credentials state (oauth.c), owned by an ac_auth. */
struct ac_oauth;
AC_INTERNAL enum ac_code ac_oauth_new(const struct ac_oauth_config *cfg,
                                      struct ac_oauth **out,
                                      struct ac_error *err);
AC_INTERNAL enum ac_code ac_oauth_token(struct ac_oauth *o, char **token,
                                        struct ac_error *err);
AC_INTERNAL void ac_oauth_free(struct ac_oauth *o);

/* Seconds a token is reused: max(expires_in - 30, expires_in // 2). */
AC_INTERNAL long long ac_oauth_lifetime(long long expires_in);

/* URL helpers (url.c). */

/* Percent-encodes s: unreserved characters (A-Z a-z 0-9 - . _ ~) are kept;
** with form set a space becomes '+' (application/x-www-form-urlencoded,
** like Python's quote_plus), otherwise every other byte is %XX. */
AC_INTERNAL enum ac_code ac_url_encode(struct ac_buf *b, const char *s,
                                       int form);

/* The remote file path as sent by download/read: leading '/' dropped,
** empty and '.' components dropped, '..' resolved (above the root:
** AC_EINVAL), each component percent-encoded, joined by '/'. */
AC_INTERNAL enum ac_code ac_url_remote_path(struct ac_buf *b,
                                            const char *path,
                                            struct ac_error *err);

/* Remote paths (rpath.c). */

/* Checks what path names under the one rule of every file operation
** (relative: under /workspace; absolute: inside /workspace, /tmp or
** /home/sandbox; nothing else). AC_OK with *abs (malloc'd, may be NULL
** when not wanted) the cleaned absolute path; AC_EACCESS for a path
** outside; AC_EINVAL for an empty one. The message names neither the
** operation nor the session: ac_job_file_error adds them. */
AC_INTERNAL enum ac_code ac_rpath_resolve(const char *path, char **abs,
                                          struct ac_error *err);

/* Appends the data-plane endpoint of a remote file, "api/files/<path>"
** (read and download), after checking path with ac_rpath_resolve: the
** SDK's form (as ac_url_remote_path makes it), except that with local set
** (the local runtime answers) a relative path that runtime would take for
** a tree ("tmp/x") is sent as "api/files//workspace/tmp/x". */
AC_INTERNAL enum ac_code ac_url_file_endpoint(struct ac_buf *b,
                                              const char *path, int local,
                                              struct ac_error *err);

/* Whether the client talks to the local runtime: it found it itself, or
** a data-plane answer carried X-AgentCube-Runtime: local/... */
AC_INTERNAL int ac_client_is_local(const ac_client *c);

/* Checks that url is an absolute http(s) URL with a host (AC_ECONFIG).
** what names the setting in the message. */
AC_INTERNAL enum ac_code ac_url_check(const char *url, const char *what,
                                      struct ac_error *err);

/* Python's urljoin(base, abs_path) for an absolute path: scheme, userinfo,
** host and port of base, with path abs_path and no query or fragment.
** *out malloc'd, caller frees. */
AC_INTERNAL enum ac_code ac_url_with_path(const char *base,
                                          const char *abs_path, char **out,
                                          struct ac_error *err);

/* The SDK's fix for double-escaped newlines in Python code (pyfix.c): when
** the code is lexically invalid because of a literal backslash-n outside a
** string, and replacing every backslash-n by a newline gives lexically sound
** code, *out is the replaced code (malloc'd, caller frees, *outlen bytes)
** and 1 is returned; otherwise 0 and *out is NULL. -1: out of memory. */
AC_INTERNAL int ac_pyfix_newlines(const char *code, size_t len, char **out,
                                  size_t *outlen);

/* Whether Python code looks lexically sound: strings and brackets closed,
** no backslash outside a string except as a line continuation. */
AC_INTERNAL int ac_py_lexically_ok(const char *code, size_t len);

/* A data-plane call on a session (data_plane.c). */
struct ac_dp_call {
  const char *op;
  const char *method;
  const char *endpoint;               /* relative to the base, encoded */
  const char *json;                   /* JSON body, or NULL */
  size_t json_len;
  int empty_body;                     /* POST without a body */
  const char *accept;                 /* an Accept header, or NULL */
  const char *content_type;           /* NULL: application/json */
  long connect_timeout_ms;            /* 0: the client's */
  long timeout_ms;                    /* whole transfer; 0: none */
  long idle_timeout_ms;
  size_t max_body;
  ac_http_prepare_fn prepare;
  void *prepare_ud;
  ac_http_sink_fn sink;
  void *sink_ud;
};

/* ac_job_send_dp (job.h) sends a call with x-agentcube-session-id,
** Authorization when the client has a data-plane provider, and
** Content-Type: application/json with a JSON body; AC_ECLOSED for a
** stopped session. */

/* jansson helpers (json.c). */

/* Appends JSON text for the string s (len bytes) to b, non-ASCII as \uXXXX
** like Python's json.dumps. Invalid UTF-8 is AC_EINVAL. */
AC_INTERNAL enum ac_code ac_json_add_string(struct ac_buf *b, const char *s,
                                            size_t len, struct ac_error *err);

/* Serialises j the way Python's json.dumps does by default (", " and ": ",
** ASCII only, keys in insertion order). *out malloc'd, caller frees. */
AC_INTERNAL enum ac_code ac_json_dump(const json_t *j, char **out,
                                      struct ac_error *err);

/* 1 when a socket listening on url's port is an open file of process pid,
** and pid belongs to this user or root (local.c): the process serve.json
** names is really the one answering there. */
AC_INTERNAL int ac_local_listener_is(const char *url, pid_t pid);
/* ac_local_read_state, also giving the pid serve.json names (0 when it
** names none): serve.json is read here only. */
AC_INTERNAL enum ac_code ac_local_read_state_pid(
    const char *home, struct ac_local_endpoint *out, long *pid,
    struct ac_error *err);

/* Parses a reply with a budget: more than AC_JSON_MAX_NODES values is
** AC_ETOOBIG before jansson allocates anything; malformed text is
** AC_EPROTO. Returns NULL with *err set on failure. */
#define AC_JSON_MAX_NODES (1 << 20)
AC_INTERNAL json_t *ac_json_parse(const char *text, size_t len, size_t flags,
                                  const char *op, struct ac_error *err);

#endif
