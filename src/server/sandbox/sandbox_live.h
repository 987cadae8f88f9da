/*
** sandbox_live.h -- the live sandbox of a box: started once, kept running
** until the box is closed or destroyed, with our agent as its init (PID 1
** of its pid namespace). The agent forks commands inside the existing
** namespaces, keeps background processes and language contexts alive
** between requests, and streams their output back. Everything here is
** asynchronous: a start function returns at once with a task, and the
** task's events arrive later.
**
** Threads: events are delivered on the sandbox runtime's event thread,
** never concurrently for one task, in order (output chunks of a task, then
** exactly one done). Callbacks must not block and must not call back into
** this API for the same task except sbx_task_cancel; they copy what they
** need (data is valid during the call only) and wake whoever waits (for
** the HTTP layer: MHD_resume_connection). Start, cancel and release may be
** called from any thread.
**
** A dead agent (killed by sandboxed code, or sending garbage) costs the box
** its running processes only: every task in flight ends (exit_code 137),
** files stay, and the next start launches a new sandbox transparently.
**
** The blocking sbx_exec of sandbox.h is sbx_exec_start + a wait.
*/
#ifndef AGENTCUBE_SANDBOX_LIVE_H
#define AGENTCUBE_SANDBOX_LIVE_H

#include "sandbox.h"

#include <stddef.h>
#include <time.h>

struct sbx_task;
struct sbx_ctx_result;

enum sbx_stream { SBX_STDOUT = 1, SBX_STDERR = 2 };

/* Events of a command, a process watch or a context run. output may be
** NULL: then output is buffered into the result (up to max_output per
** stream) instead; when set, chunks go to it and the result's out/err stay
** empty. offset is the chunk's position in the combined output of the
** process (stdout and stderr counted together). */
struct sbx_task_events {
  void (*output)(void *ud, enum sbx_stream s, unsigned long long offset,
                 const char *data, size_t len);
  /* Some output between the watch's offset and the oldest kept byte was
  ** lost (bounded ring); may be NULL. */
  void (*dropped)(void *ud, unsigned long long offset,
                  unsigned long long bytes);
  /* Exactly once, last. res is valid during the call only. For a context
  ** run, ctx is set too (else NULL). */
  void (*done)(void *ud, const struct sbx_exec_result *res,
               const struct sbx_ctx_result *ctx);
};

/* --- commands (api/execute) ------------------------------------------ */

/* Starts req in the box's live sandbox (launching it first if needed).
** The command and every process it starts (setsid and double fork
** included) are killed on its timeout, on sbx_task_cancel, and when the box
** closes. On success *out is the caller's until sbx_task_release. */
enum ac_code sbx_exec_start(struct sbx_box *box,
                            const struct sbx_exec_request *req,
                            const struct sbx_task_events *ev, void *ud,
                            struct sbx_task **out, struct ac_error *err);

/* Kills what the task runs (commands and context runs: the whole tree; a
** process watch: only the watch) within 100 ms; done still follows. Safe
** after done. */
void sbx_task_cancel(struct sbx_task *t);

/* Gives up the caller's handle. After it no event is delivered to ud any
** more, even if the task still runs (release does not cancel). */
void sbx_task_release(struct sbx_task *t);

/* --- background processes (api/processes) ---------------------------- */

enum sbx_proc_state { SBX_PROC_RUNNING, SBX_PROC_EXITED, SBX_PROC_KILLED,
                      SBX_PROC_TIMED_OUT };

struct sbx_proc_info {
  unsigned id;                     /* unique in the box, never reused */
  int pid;                         /* pid inside the sandbox; 0 until the
                                      agent reported the start, and once
                                      it has ended */
  char **argv;                     /* NULL-terminated */
  enum sbx_proc_state state;
  int exit_code;                   /* valid unless RUNNING */
  struct timespec start, end;      /* CLOCK_REALTIME; end zero if running */
  unsigned long long output_bytes; /* produced so far */
  unsigned long long kept_from;    /* offset of the oldest byte kept */
  int has_stdin;                   /* stdin pipe still open */
};

/* Starts a background process: it outlives the request and lives until it
** exits, is signalled, its timeout (req->timeout_ns > 0) fires, or the box
** ends. with_stdin keeps a pipe to its stdin. When its main process exits,
** what it started keeps running (until the box ends). Its output is kept
** in a ring of the box's limits.proc_output_bytes (default 1 MiB). State:
** EXITED (any exit status or a signal it did not get from us), KILLED
** (sbx_proc_signal SIGKILL, the box killed, or the sandbox died: 137),
** TIMED_OUT (124). */
enum ac_code sbx_proc_start(struct sbx_box *box,
                            const struct sbx_exec_request *req,
                            int with_stdin, struct sbx_proc_info *out,
                            struct ac_error *err);

/* Snapshot of every process (oldest first) or of one (AC_ENOTFOUND). Free
** with sbx_proc_info_free / sbx_proc_list_free. */
enum ac_code sbx_proc_list(struct sbx_box *box, struct sbx_proc_info **v,
                           size_t *n, struct ac_error *err);
enum ac_code sbx_proc_get(struct sbx_box *box, unsigned id,
                          struct sbx_proc_info *out, struct ac_error *err);
void sbx_proc_info_free(struct sbx_proc_info *p);
void sbx_proc_list_free(struct sbx_proc_info *v, size_t n);

/* Sends sig to the process (SIGKILL: to its whole tree). */
enum ac_code sbx_proc_signal(struct sbx_box *box, unsigned id, int sig,
                             struct ac_error *err);

/* Writes to the process's stdin (AC_EBUSY when it has no open stdin);
** eof closes it after writing. */
enum ac_code sbx_proc_write(struct sbx_box *box, unsigned id,
                            const void *data, size_t len, int eof,
                            struct ac_error *err);

/* Delivers the kept output from offset (dropped first when offset is older
** than the ring), then with follow new output live; done fires when the
** process has ended and everything was delivered (res: its exit), or at
** once after the kept output when !follow and it still runs (res is
** NULL then). */
enum ac_code sbx_proc_watch(struct sbx_box *box, unsigned id,
                            unsigned long long offset, int follow,
                            const struct sbx_task_events *ev, void *ud,
                            struct sbx_task **out, struct ac_error *err);

/* --- language contexts (api/contexts) -------------------------------- */

struct sbx_ctx_result {
  const char *value;        /* text of the final expression or NULL */
  const char *err_name;     /* NULL when the run succeeded */
  const char *err_message;
  const char *err_traceback;
  int timed_out;
  int restarted;            /* the interpreter died and was started anew */
};

/* At most 16 contexts per box (AC_ELIMIT). */
struct sbx_ctx_info {
  char id[16];              /* "c1", "c2", ... never reused in a box */
  char language[16];        /* "python", "bash", "lua" */
  int pid;
  int busy;                 /* a run is in progress */
};

enum ac_code sbx_ctx_create(struct sbx_box *box, const char *language,
                            const char *const *env, const char *working_dir,
                            struct sbx_ctx_info *out, struct ac_error *err);
enum ac_code sbx_ctx_list(struct sbx_box *box, struct sbx_ctx_info **v,
                          size_t *n, struct ac_error *err);
enum ac_code sbx_ctx_delete(struct sbx_box *box, const char *id,
                            struct ac_error *err);

/* Runs code in the context (one run at a time: a busy context is an
** error). The timeout interrupts the interpreter with SIGINT (python:
** KeyboardInterrupt, lua: "interrupted!", bash: the run returns 130); the
** context survives; when the run has not ended 2 s later the interpreter
** is killed and the next run starts a new one (restarted). sbx_task_cancel
** interrupts the same way. A busy context is AC_EBUSY, an unknown one
** AC_ENOTFOUND. done carries both results: res->exit_code is 0 (no error),
** 1 (an error: see ctx) or 124 (timed out); with events->output NULL the
** run's stdout/stderr are in res (up to 16 MiB each), charged to pool as
** they grow when pool is not NULL (res->pool_refused when it said no:
** nothing more is kept). The code's stdin is /dev/null. */
enum ac_code sbx_ctx_run_start(struct sbx_box *box, const char *id,
                               const char *code, long long timeout_ns,
                               const struct sbx_task_events *ev, void *ud,
                               const struct sbx_mem_pool *pool,
                               struct sbx_task **out, struct ac_error *err);

#endif
