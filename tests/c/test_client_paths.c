/* What a remote path names, in every file operation of libagentcube,
** against a recording server: a path outside the session's files is
** refused before anything is sent, with one error naming the path and
** the session; an accepted path is sent as the SDK sends it; the local
** runtime, once it has said who it is (X-AgentCube-Runtime), gets the
** one URL form the SDK's leaves ambiguous; run_code sends the SDK's two
** requests either way.
** The same table against a real server: tests/lua/remote_paths_spec.lua. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <jansson.h>
#include <sys/stat.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-paths-XXXXXX";
static char upload_src[300], download_dst[300];

static ac_client *mk_client(void) {
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = rec.base;
  cfg.router_url = rec.base;
  cfg.sa_token_path = "";
  cfg.retry_base_ms = 1;
  if (ac_client_new(&cfg, &c, &e) != AC_OK)
    printf("# client: %s\n", e.msg);
  return c;
}

static ac_session *attach(ac_client *c) {
  ac_session *s = NULL;
  struct ac_error e;
  if (ac_session_attach(c, "sid-1", NULL, NULL, &s, &e) != AC_OK)
    printf("# attach: %s\n", e.msg);
  return s;
}

static const char *dp(const char *endpoint) {
  static char buf[600];
  snprintf(buf, sizeof buf,
           "/v1/namespaces/default/code-interpreters/my-interpreter/"
           "invocations/%s", endpoint);
  return buf;
}

static const char *jstr(const struct rec_req *q, const char *k) {
  static char out[512];
  json_t *o = json_loadb(q->body ? q->body : "", q->body_len, 0, NULL);
  json_t *v = json_object_get(o, k);
  snprintf(out, sizeof out, "%s", json_is_string(v) ? json_string_value(v)
                                                    : "(none)");
  json_decref(o);
  return out;
}

/* The operations, each one call on s with path in the role under test. */
enum op { W, R, UP, DOWN, LIST, RM, MKDIR, STAT, MV_FROM, MV_TO, NOPS };
static const char *const op_names[NOPS] = {
  "write_file", "read_file", "upload_file", "download_file", "list_files",
  "remove", "mkdir", "stat", "rename (from)", "rename (to)",
};

/* A JSON object {"<k>": path, ...} with path as a JSON string. */
static char *fs_body(const char *k1, const char *v1, const char *k2,
                     const char *v2) {
  json_t *o = json_object();
  char *s;
  json_object_set_new(o, k1, json_string(v1));
  if (k2 != NULL)
    json_object_set_new(o, k2, json_string(v2));
  s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static enum ac_code run_op(ac_session *s, enum op op, const char *path,
                           struct ac_error *e) {
  struct ac_ext_call call;
  struct ac_file_list l;
  enum ac_code rc;
  char *data = NULL, *json = NULL, *body = NULL;
  size_t len;
  memset(&call, 0, sizeof call);
  switch (op) {
  case W:
    return ac_session_write_file(s, path, "x", 1, e);
  case R:
    rc = ac_session_read_file(s, path, 0, &data, &len, e);
    free(data);
    return rc;
  case UP:
    return ac_session_upload_file(s, upload_src, path, e);
  case DOWN:
    return ac_session_download_file(s, path, download_dst, e);
  case LIST:
    rc = ac_session_list_files(s, path, &l, e);
    ac_file_list_free(&l);
    return rc;
  case STAT:
    call.op = AC_EXT_FS_STAT;
    call.path = path;
    break;
  case RM:
  case MKDIR:
    call.op = op == RM ? AC_EXT_FS_REMOVE : AC_EXT_FS_MKDIR;
    body = fs_body("path", path, NULL, NULL);
    break;
  case MV_FROM:
  case MV_TO:
    call.op = AC_EXT_FS_RENAME;
    body = op == MV_FROM ? fs_body("from", path, "to", "b.txt")
                         : fs_body("from", "a.txt", "to", path);
    break;
  default:
    return AC_EINVAL;
  }
  call.json = body;
  rc = ac_session_ext(s, &call, &json, e);
  free(json);
  free(body);
  return rc;
}

/* What the request of op carries as the path: the URL's tail, a form
** field or a JSON field. */
static const char *sent_path(const struct rec_req *q, enum op op) {
  static char buf[600];
  const struct rec_part *p;
  const char *at;
  switch (op) {
  case R:
  case DOWN:
    at = strstr(q->uri, "/invocations/api/files/");
    return at ? at + strlen("/invocations/api/files/") : q->uri;
  case LIST:
  case STAT:
    at = strstr(q->uri, "?path=");
    return at ? at + 6 : q->uri;
  case UP:
    p = rec_part(q, "path");
    snprintf(buf, sizeof buf, "%.*s", p ? (int)p->head_len : 6,
             p ? p->head : "(none)");
    return buf;
  case MV_FROM:
    return jstr(q, "from");
  case MV_TO:
    return jstr(q, "to");
  default:
    return jstr(q, "path");
  }
}

static const char *const refused[] = {
  "/etc/k/f.txt", "//etc/k/f.txt", "/opt/x", "/", "/home/other/x",
  "../x", "../../x", "k/../../x", "/workspace/../etc/x", "/workspace/..",
  "/tmpfoo/x", "/workspacex/y",
};

static void test_refused(void) {
  tcase("every operation refuses every path outside, sending nothing");
  ac_client *c = mk_client();
  ac_session *s = attach(c);
  struct ac_error e;
  rec_reset(&rec);
  for (int op = 0; op < NOPS; op++)
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
      const char *p = refused[k];
      is_int(run_op(s, (enum op)op, p, &e), AC_EACCESS, "%s %s: EACCESS",
             op_names[op], p);
      ok(strstr(e.msg, p) != NULL && strstr(e.msg, "(session sid-1)"),
         "%s %s: the message names the path and the session (%s)",
         op_names[op], p, e.msg);
    }
  is_int(rec_count(&rec), 0, "no request was sent");
  /* an empty path is not a path */
  is_int(run_op(s, W, "", &e), AC_EINVAL, "write_file '': EINVAL");
  is_int(run_op(s, R, "", &e), AC_EINVAL, "read_file '': EINVAL");
  is_int(rec_count(&rec), 0, "nothing sent for ''");
  ac_session_free(s);
  ac_client_free(c);
}

/* An accepted path and what each kind of request carries for it, as the
** SDK sends it: bodies and forms the path as given, URLs without the
** leading '/' and with '.' and '..' resolved, queries form-encoded. */
static const struct {
  const char *path, *url, *query;
} accepted[] = {
  { "k/f.txt", "k/f.txt", "k%2Ff.txt" },
  { "/workspace/k/f.txt", "workspace/k/f.txt", "%2Fworkspace%2Fk%2Ff.txt" },
  { "//workspace/k/f.txt", "workspace/k/f.txt",
    "%2F%2Fworkspace%2Fk%2Ff.txt" },
  { "k/./x/../f.txt", "k/f.txt", "k%2F.%2Fx%2F..%2Ff.txt" },
  { "tmp/k/f.txt", "tmp/k/f.txt", "tmp%2Fk%2Ff.txt" },
  { "/tmp/k/f.txt", "tmp/k/f.txt", "%2Ftmp%2Fk%2Ff.txt" },
  { "/home/sandbox/.rc", "home/sandbox/.rc", "%2Fhome%2Fsandbox%2F.rc" },
  { "/workspace", "workspace", "%2Fworkspace" },
};

static void test_accepted(void) {
  tcase("accepted paths are sent as the SDK sends them");
  ac_client *c = mk_client();
  ac_session *s = attach(c);
  struct ac_error e;
  for (int op = 0; op < NOPS; op++)
    for (size_t k = 0; k < sizeof accepted / sizeof accepted[0]; k++) {
      const char *want = op == R || op == DOWN ? accepted[k].url
                       : op == LIST || op == STAT ? accepted[k].query
                       : accepted[k].path;
      rec_reset(&rec);
      rec_push(&rec, 200, op == LIST ? "{\"files\":[]}" : "{}");
      is_int(run_op(s, (enum op)op, accepted[k].path, &e), AC_OK,
             "%s %s: sent and answered", op_names[op], accepted[k].path);
      is_int(rec_count(&rec), 1, "%s %s: one request", op_names[op],
             accepted[k].path);
      if (rec_count(&rec) == 1)
        is_str(sent_path(rec_get(&rec, 0), (enum op)op), want,
               "%s %s: the path on the wire", op_names[op],
               accepted[k].path);
    }
  ac_session_free(s);
  ac_client_free(c);
}

static void push_local(int status, const char *body) {
  struct rec_reply rp;
  memset(&rp, 0, sizeof rp);
  rp.status = status;
  rp.body = (char *)body;
  rp.body_len = strlen(body);
  rp.hname = "X-AgentCube-Runtime";
  rp.hvalue = "local/0.1.0";
  rec_push_reply(&rec, &rp);
}

static void test_local_urls(void) {
  tcase("to the local runtime, a relative path named like a tree is sent "
        "absolute in URLs");
  ac_client *c = mk_client();
  ac_session *s = attach(c);
  struct ac_error e;
  static const struct { const char *path, *url; } cases[] = {
    { "tmp/k/f.txt", "/workspace/tmp/k/f.txt" },
    { "workspace/x", "/workspace/workspace/x" },
    { "home/x", "/workspace/home/x" },
    { "./tmp/../tmp/y", "/workspace/tmp/y" },
    { "k/f.txt", "k/f.txt" },             /* unambiguous: the SDK's form */
    { "tmpdir/f", "tmpdir/f" },
    { "/tmp/k/f.txt", "tmp/k/f.txt" },
    { "/workspace/k", "workspace/k" },
  };
  rec_reset(&rec);
  rec_push(&rec, 200, "x");
  ok(run_op(s, R, "tmp/k/f.txt", &e) == AC_OK &&
     !strcmp(sent_path(rec_get(&rec, 0), R), "tmp/k/f.txt"),
     "control: before the runtime has named itself, the SDK's form");
  rec_reset(&rec);
  push_local(200, "{\"files\":[]}");
  is_int(run_op(s, LIST, ".", &e), AC_OK, "an answer naming the runtime");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int op = R; op <= DOWN; op += DOWN - R) {
      rec_reset(&rec);
      rec_push(&rec, 200, "x");
      is_int(run_op(s, (enum op)op, cases[i].path, &e), AC_OK, "%s %s",
             op_names[op], cases[i].path);
      if (rec_count(&rec) == 1)
        is_str(sent_path(rec_get(&rec, 0), (enum op)op), cases[i].url,
               "%s %s: the URL's path", op_names[op], cases[i].path);
    }
  ac_session_free(s);
  ac_client_free(c);
}

static void test_run_code_requests(void) {
  tcase("run_code sends the SDK's two requests, local runtime or not");
  ac_client *c = mk_client();
  ac_session *s = attach(c);
  struct ac_exec_result r;
  struct ac_error e;
  static const char *exec_ok =
    "{\"stdout\":\"hi\\n\",\"stderr\":\"\",\"exit_code\":0}";

  for (int local = 0; local < 2; local++) {
    rec_reset(&rec);
    if (local)
      push_local(200, "{}");          /* the runtime names itself */
    else
      rec_push(&rec, 200, "{}");
    rec_push(&rec, 200, exec_ok);
    is_int(ac_session_run_code(s, "python", "print(1)", 8, NULL, &r, &e),
           AC_OK, "%s: run_code", local ? "local" : "cluster");
    is_str(r.out, "hi\n", "%s: the command's output",
           local ? "local" : "cluster");
    ac_exec_result_free(&r);
    is_int(rec_count(&rec), 2, "%s: write and execute only (the local "
           "runtime removes the script itself)", local ? "local" : "cluster");
    if (rec_count(&rec) == 2) {
      is_str(rec_get(&rec, 0)->uri, dp("api/files"), "first the write");
      is_str(rec_get(&rec, 1)->uri, dp("api/execute"), "then the execute");
    }
  }
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  FILE *f;
  plan(4);
  if (ac_global_init(NULL) != AC_OK || mkdtemp(tmpdir) == NULL ||
      rec_start(&rec) != 0) {
    printf("Bail out! setup failed\n");
    return 1;
  }
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  snprintf(upload_src, sizeof upload_src, "%s/up.txt", tmpdir);
  snprintf(download_dst, sizeof download_dst, "%s/down.txt", tmpdir);
  f = fopen(upload_src, "w");
  if (f != NULL) {
    fputs("up", f);
    fclose(f);
  }
  test_refused();
  test_accepted();
  test_local_urls();
  test_run_code_requests();
  rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  ac_global_cleanup();
  return done_testing();
}
