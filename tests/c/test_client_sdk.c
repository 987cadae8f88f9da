/* libagentcube on the wire, against a recording server: the requests of
** docs/protocol.md §6 one by one (methods, paths, headers and bodies of
** every call the Python SDK makes), plus read_file and gzip. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sys/stat.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-sdk-XXXXXX";

static const unsigned char GZ_LIST[] =
  "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x1d\x8b\x41\x0a\x80\x20\x14\x44"
  "\xef\x32\x6b\x0d\x2b\xda\x78\x8e\x56\x45\x44\xa0\xc2\x07\x2d\xf0\x07\x85"
  "\xe1\xdd\x53\xe1\x6d\x66\xde\xcc\x07\x47\xde\x32\xf4\xfa\xe1\x3c\x82\x85"
  "\x46\xea\xee\xf7\x86\x00\x53\x2a\x71\x14\x08\x97\x21\x47\xd6\x14\x37\xa8"
  "\x61\x92\xaa\x2f\xcc\x4a\xe9\xc6\x82\xb6\xa8\x4f\x19\x1f\x19\x65\xa5\x74"
  "\xc4\xbb\xa1\x08\xed\x0e\xcf\x36\x6f\xf9\x07\x32\xbb\x68\x9a\x6a\x00\x00"
  "\x00";

static ac_client *mk_client(const char *token, const char *sa_path) {
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = rec.base;
  cfg.router_url = rec.base;
  cfg.auth_token = token;
  cfg.sa_token_path = sa_path ? sa_path : "";
  cfg.retry_base_ms = 1;
  if (ac_client_new(&cfg, &c, &e) != AC_OK)
    printf("# client: %s\n", e.msg);
  return c;
}

static json_t *body_json(const struct rec_req *q) {
  return json_loadb(q->body ? q->body : "", q->body_len, 0, NULL);
}

static const char *jstr(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void header_is(const struct rec_req *q, const char *name,
                      const char *want, const char *what) {
  char buf[512];
  const char *got = rec_header(q, name, buf, sizeof buf);
  if (want == NULL)
    ok(got == NULL, "%s: no %s header", what, name);
  else
    is_str(got, want, "%s: %s", what, name);
}

static char *b64(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(4 * (n / 3 + 1) + 1);
  EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
  return out;
}

static char *unb64(const char *s) {
  size_t n = strlen(s);
  char *out = calloc(1, n + 1);
  int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s,
                            (int)n);
  if (len >= 0) {
    while (n > 0 && s[n - 1] == '=') {
      len--;
      n--;
    }
    out[len] = '\0';
  }
  return out;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  for (de = readdir(d); de != NULL; de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static const char *dp(const char *endpoint) {
  static char buf[512];
  snprintf(buf, sizeof buf,
           "/v1/namespaces/default/code-interpreters/my-interpreter/"
           "invocations/%s", endpoint);
  return buf;
}

static ac_session *attach(ac_client *c) {
  ac_session *s = NULL;
  struct ac_error e;
  if (ac_session_attach(c, "sid-1", NULL, NULL, &s, &e) != AC_OK)
    printf("# attach: %s\n", e.msg);
  return s;
}

/* 48, 49: creation. */
static void test_create(void) {
  tcase("SDK 48, 49: creation");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = NULL;
  struct ac_error e;
  struct ac_session_opts o;
  const struct rec_req *q;
  json_t *j;

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"kind\":\"Sandbox\",\"sessionId\":\"6f1c-uuid\","
                      "\"entryPoints\":[]}");
  is_int(ac_session_create(c, NULL, &s, &e), AC_OK, "48: create");
  is_int(rec_count(&rec), 1, "48: exactly one request");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "request 0 was recorded");
  is_str(q->method, "POST", "48: POST");
  is_str(q->uri, "/v1/code-interpreter", "48: path");
  header_is(q, "Content-Type", "application/json", "48");
  header_is(q, "Authorization", NULL, "48: no auth configured");
  is_str(q->body, "{\"name\": \"my-interpreter\", \"namespace\": "
         "\"default\", \"ttl\": 3600, \"metadata\": {}}",
         "48: body byte-identical to json.dumps of the SDK payload");
  is_str(ac_session_id(s), "6f1c-uuid", "48: session id adopted");
  ok(ac_session_owned(s), "48: created session is owned");
  {
    char want[256];
    snprintf(want, sizeof want, "%s/v1/namespaces/default/code-interpreters/"
             "my-interpreter/invocations/", rec.base);
    is_str(ac_session_base_url(s), want, "48: data-plane base URL");
  }
  ac_session_free(s);

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\":\"s2\"}");
  memset(&o, 0, sizeof o);
  o.name = "ci";
  o.ns = "team-a";
  o.ttl = 600;
  o.metadata_json = "{\"owner\": \"me\", \"n\": 1}";
  is_int(ac_session_create(c, &o, &s, &e), AC_OK, "48: create with options");
  j = body_json(rec_get(&rec, 0));
  is_str(jstr(j, "name"), "ci", "48: name");
  is_str(jstr(j, "namespace"), "team-a", "48: namespace");
  is_int(json_integer_value(json_object_get(j, "ttl")), 600, "48: ttl");
  is_str(jstr(json_object_get(j, "metadata"), "owner"), "me",
         "48: metadata passed through");
  is_int(json_object_size(j), 4, "48: exactly the four keys");
  json_decref(j);
  ok(strstr(ac_session_base_url(s),
            "/v1/namespaces/team-a/code-interpreters/ci/invocations/")
     != NULL, "48: data-plane base uses name and namespace");
  ac_session_free(s);

  o.metadata_json = "[1]";
  is_int(ac_session_create(c, &o, &s, &e), AC_EINVAL,
         "48: metadata must be an object");

  rec_reset(&rec);
  is_int(ac_session_attach(c, "existing", NULL, NULL, &s, &e), AC_OK,
         "48: attach by id");
  is_int(rec_count(&rec), 0, "48: attach performs no HTTP");
  ok(!ac_session_owned(s), "48: attached session is not owned");
  is_str(ac_session_id(s), "existing", "48: attached id");
  ac_session_free(s);
  is_int(ac_session_attach(c, "", NULL, NULL, &s, &e), AC_EINVAL,
         "attach: empty id refused");
  is_int(ac_session_attach(c, "a\r\nb", NULL, NULL, &s, &e), AC_EINVAL,
         "attach: id with CR/LF refused");

  /* 49 */
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"kind\":\"Sandbox\"}");
  rec_push(&rec, 200, "{\"sessionId\":\"\"}");
  rec_push(&rec, 200, "{\"sessionId\":42}");
  rec_push(&rec, 200, "{not json");
  rec_push(&rec, 200, "[\"sessionId\"]");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "49: missing sessionId");
  is_str(e.msg, "Failed to create session: 'sessionId' missing from "
         "response", "49: the SDK's message");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "49: empty sessionId");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "49: non-string sessionId");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "49: malformed JSON");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO, "49: not an object");
  ok(s == NULL, "49: no session on failure");
  rec_push(&rec, 404, "{\"message\":\"code interpreter not found\"}");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EHTTP, "49: 404 is EHTTP");
  is_int(e.http_status, 404, "49: http_status");
  ok(strstr(e.msg, "code interpreter not found") != NULL,
     "49: server message in err.msg: %s", e.msg);
  rec_push(&rec, 400, "{\"message\":\"namespace is required\"}");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EHTTP, "49: 400 is EHTTP");
  ok(strstr(e.msg, "namespace is required") != NULL, "49: %s", e.msg);
  rec_push(&rec, 500, "internal failure\nmore");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EHTTP, "49: 500 is EHTTP");
  ok(strstr(e.msg, "internal failure") != NULL && !strstr(e.msg, "more"),
     "49: first line of a text body: %s", e.msg);
  is_int(rec_count(&rec), 8, "49: POSTs are not retried on HTTP errors");
  ac_client_free(c);
}

/* 50: auth headers on each plane. */
static void test_auth_headers(void) {
  tcase("SDK 50: auth headers on each plane");
  char sa[300];
  FILE *f;
  ac_client *c;
  ac_session *s = NULL;
  struct ac_error e;
  struct ac_exec_result r;

  /* No credentials at all. */
  c = mk_client(NULL, NULL);
  s = attach(c);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
  ac_session_exec_line(s, "true", NULL, &r, &e);
  ac_exec_result_free(&r);
  header_is(rec_get(&rec, 0), "x-agentcube-session-id", "sid-1",
            "50: data plane");
  header_is(rec_get(&rec, 0), "Authorization", NULL, "50: data plane");
  ac_session_stop(s, &e);
  header_is(rec_get(&rec, 1), "Authorization", NULL, "50: control plane");
  ac_session_free(s);
  ac_client_free(c);

  /* auth_token: both planes. */
  c = mk_client("tok-123", NULL);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\":\"s9\"}");
  ac_session_create(c, NULL, &s, &e);
  header_is(rec_get(&rec, 0), "Authorization", "Bearer tok-123",
            "50: control plane with auth_token");
  ac_session_write_file(s, "x", "1", 1, &e);
  header_is(rec_get(&rec, 1), "Authorization", "Bearer tok-123",
            "50: data plane with auth_token");
  header_is(rec_get(&rec, 1), "x-agentcube-session-id", "s9",
            "50: session header carries the created id");
  ac_session_free(s);
  ac_client_free(c);

  /* The service-account file: control plane only. */
  snprintf(sa, sizeof sa, "%s/sa-token", tmpdir);
  f = fopen(sa, "w");
  fputs("  sa-jwt\n", f);
  fclose(f);
  c = mk_client(NULL, sa);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\":\"s10\"}");
  ac_session_create(c, NULL, &s, &e);
  header_is(rec_get(&rec, 0), "Authorization", "Bearer sa-jwt",
            "50: SA token on the control plane");
  {
    struct ac_file_list l;
    ac_session_list_files(s, NULL, &l, &e);
    ac_file_list_free(&l);
  }
  header_is(rec_get(&rec, 1), "Authorization", NULL,
            "50: never the SA token on the data plane");
  ac_session_stop(s, &e);
  header_is(rec_get(&rec, 2), "Authorization", "Bearer sa-jwt",
            "50: SA token on delete");
  ac_session_free(s);
  ac_client_free(c);
}

/* 51, 52: commands. */
static void test_exec(void) {
  tcase("SDK 51, 52: commands");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_exec_result r;
  struct ac_exec_opts o;
  const struct rec_req *q;
  json_t *j;
  const char *argv[] = { "sh", "-c", "echo \"$X\"" };
  struct ac_kv env[] = { { "X", "1" }, { "Y", "two words" } };

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"hello\\n\",\"stderr\":\"\","
                      "\"exit_code\":0,\"duration\":0.25}");
  is_int(ac_session_exec_line(s, "ls -la 'a b'", NULL, &r, &e), AC_OK,
         "51: execute a command line");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "request 0 was recorded");
  is_str(q->method, "POST", "51: POST");
  is_str(q->uri, dp("api/execute"), "51: path");
  header_is(q, "Content-Type", "application/json", "51");
  header_is(q, "x-agentcube-session-id", "sid-1", "51");
  is_str(q->body, "{\"command\": [\"ls\", \"-la\", \"a b\"], \"timeout\": "
         "\"120s\"}", "51: body as the SDK sends it");
  is_str(r.out, "hello\n", "52: stdout");
  is_int(r.out_len, 6, "52: stdout length");
  is_str(r.err, "", "52: stderr");
  is_int(r.exit_code, 0, "52: exit code");
  ok(r.duration > 0.24 && r.duration < 0.26, "duration parsed");
  is_str(r.command, "ls -la 'a b'", "command text kept");
  ac_exec_result_free(&r);

  memset(&o, 0, sizeof o);
  o.timeout = 2.5;
  o.timeout_is_float = 1;
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"x\",\"exit_code\":0}");
  ac_session_exec_line(s, "sleep 1", &o, &r, &e);
  j = body_json(rec_get(&rec, 0));
  is_str(jstr(j, "timeout"), "2.5s", "51: timeout=2.5 sends \"2.5s\"");
  json_decref(j);
  ac_exec_result_free(&r);
  o.timeout = 30;
  rec_push(&rec, 200, "{\"stdout\":\"x\",\"exit_code\":0}");
  ac_session_exec_line(s, "true", &o, &r, &e);
  j = body_json(rec_get(&rec, 1));
  is_str(jstr(j, "timeout"), "30.0s", "51: float 30.0 sends \"30.0s\"");
  json_decref(j);
  ac_exec_result_free(&r);
  o.timeout_is_float = 0;
  rec_push(&rec, 200, "{\"stdout\":\"x\",\"exit_code\":0}");
  ac_session_exec_line(s, "true", &o, &r, &e);
  j = body_json(rec_get(&rec, 2));
  is_str(jstr(j, "timeout"), "30s", "51: int 30 sends \"30s\"");
  json_decref(j);
  ac_exec_result_free(&r);

  /* The answer may take longer than the command timeout: t + 2 s. */
  o.timeout = 0.2;
  o.timeout_is_float = 1;
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"stdout\":\"late\",\"exit_code\":0}",
                REC_NORMAL, 500);
  is_int(ac_session_exec_line(s, "sleep 1", &o, &r, &e), AC_OK,
         "51: a reply after the command timeout but within t+2 s arrives");
  is_str(r.out, "late", "51: late stdout");
  ac_exec_result_free(&r);

  /* argv form with env and working_dir (extensions). */
  memset(&o, 0, sizeof o);
  o.env = env;
  o.nenv = 2;
  o.working_dir = "sub/dir";
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"1\\n\",\"exit_code\":0}");
  is_int(ac_session_exec(s, argv, 3, &o, &r, &e), AC_OK, "argv execute");
  j = body_json(rec_get(&rec, 0));
  is_str(json_string_value(json_array_get(json_object_get(j, "command"), 2)),
         "echo \"$X\"", "argv sent verbatim");
  is_str(jstr(json_object_get(j, "env"), "Y"), "two words", "env sent");
  is_str(jstr(j, "working_dir"), "sub/dir", "working_dir sent");
  json_decref(j);
  is_str(r.command, "sh -c 'echo \"$X\"'", "argv command text is quoted");
  ac_exec_result_free(&r);

  /* 52: non-zero exits. */
  memset(&o, 0, sizeof o);
  o.check = 1;
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"out\",\"stderr\":\"boom\\n\","
                      "\"exit_code\":3}");
  is_int(ac_session_exec_line(s, "false", &o, &r, &e), AC_ECOMMAND,
         "52: exit 3 with check: ECOMMAND");
  is_str(e.msg, "Command failed (exit 3): boom\n", "52: the SDK's message");
  is_int(r.exit_code, 3, "52: exit_code kept");
  is_str(r.err, "boom\n", "52: stderr kept");
  is_str(r.command, "false", "52: command kept");
  ac_exec_result_free(&r);
  o.check = 0;
  rec_push(&rec, 200, "{\"stdout\":\"out\",\"stderr\":\"boom\","
                      "\"exit_code\":3}");
  is_int(ac_session_exec_line(s, "false", &o, &r, &e), AC_OK,
         "52: the result variant never fails on exit != 0");
  is_int(r.exit_code, 3, "52: exit code reported");
  ac_exec_result_free(&r);
  rec_push(&rec, 200, "{\"stdout\":null,\"stderr\":null}");
  is_int(ac_session_exec_line(s, "x", &o, &r, &e), AC_OK, "52: sparse reply");
  is_int(r.exit_code, -1, "52: missing exit_code is -1");
  is_str(r.out, "", "52: null stdout is \"\"");
  is_str(r.err, "", "52: null stderr is \"\"");
  ac_exec_result_free(&r);
  o.check = 1;
  rec_push(&rec, 200, "{\"stdout\":\"\"}");
  is_int(ac_session_exec_line(s, "x", &o, &r, &e), AC_ECOMMAND,
         "52: missing exit_code (-1) fails the checked variant");
  ac_exec_result_free(&r);
  rec_push(&rec, 200, "{\"stdout\":\"a\\u0000b\",\"exit_code\":0}");
  ac_session_exec_line(s, "x", NULL, &r, &e);
  is_int(r.out_len, 3, "NUL bytes in output kept");
  ac_exec_result_free(&r);
  rec_push(&rec, 200, "{\"stdout\":5,\"exit_code\":0}");
  is_int(ac_session_exec_line(s, "x", NULL, &r, &e), AC_EPROTO,
         "non-string stdout is EPROTO");
  ac_exec_result_free(&r);
  rec_push(&rec, 200, "not json");
  is_int(ac_session_exec_line(s, "x", NULL, &r, &e), AC_EPROTO,
         "malformed execute reply is EPROTO");
  ac_exec_result_free(&r);
  rec_push(&rec, 500, "{\"error\":\"Failed\",\"code\":500}");
  is_int(ac_session_exec_line(s, "x", NULL, &r, &e), AC_EHTTP,
         "execute HTTP error");
  ok(strstr(e.msg, "Failed") != NULL, "PicoD error text: %s", e.msg);
  ac_exec_result_free(&r);

  rec_reset(&rec);
  is_int(ac_session_exec_line(s, "echo 'oops", NULL, &r, &e), AC_EINVAL,
         "unbalanced quotes: EINVAL");
  is_int(rec_count(&rec), 0, "unbalanced quotes: no HTTP");
  ac_exec_result_free(&r);
  ac_session_free(s);
  ac_client_free(c);
}

/* 53, 54, 55: run_code. */
static void test_run_code(void) {
  tcase("SDK 53, 54, 55: run_code");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_exec_result r;
  json_t *w, *x;
  const char *path;
  char *code;
  const char *py = "print('hi')";
  static const char *langs[][3] = {
    { "python", "python3", ".py" }, { "PY", "python3", ".py" },
    { "Python3", "python3", ".py" }, { "sh", "bash", ".sh" },
    { "BASH", "bash", ".sh" },
  };

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"path\":\"x\",\"size\":11}");
  rec_push(&rec, 200, "{\"stdout\":\"hi\\n\",\"stderr\":\"\","
                      "\"exit_code\":0}");
  is_int(ac_session_run_code(s, "python", py, strlen(py), NULL, &r, &e),
         AC_OK, "53: run_code python");
  is_int(rec_count(&rec), 2, "53: two requests");
  is_str(rec_get(&rec, 0)->uri, dp("api/files"), "53: first writes a file");
  is_str(rec_get(&rec, 1)->uri, dp("api/execute"), "53: then executes");
  w = body_json(rec_get(&rec, 0));
  x = body_json(rec_get(&rec, 1));
  path = jstr(w, "path");
  ok(path && strncmp(path, "script_", 7) == 0 &&
     strspn(path + 7, "0123456789") >= 13 &&
     strcmp(path + 7 + strspn(path + 7, "0123456789"), ".py") == 0,
     "53: path script_<ms>.py (%s)", path ? path : "-");
  code = unb64(jstr(w, "content") ? jstr(w, "content") : "");
  is_str(code, py, "53: content is base64 of the code");
  free(code);
  is_str(jstr(w, "mode"), "0644", "53: mode 0644");
  is_str(json_string_value(json_array_get(json_object_get(x, "command"), 0)),
         "python3", "53: python3");
  is_str(json_string_value(json_array_get(json_object_get(x, "command"), 1)),
         path, "53: the same script");
  is_str(jstr(x, "timeout"), "120s", "53: default timeout");
  is_str(r.out, "hi\n", "53: stdout returned");
  json_decref(w);
  json_decref(x);
  ac_exec_result_free(&r);

  for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
    rec_reset(&rec);
    rec_push(&rec, 200, "{}");
    rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
    ac_session_run_code(s, langs[i][0], "echo", 4, NULL, &r, &e);
    w = body_json(rec_get(&rec, 0));
    x = body_json(rec_get(&rec, 1));
    path = jstr(w, "path");
    ok(path && strlen(path) > 3 &&
       strcmp(path + strlen(path) - 3, langs[i][2]) == 0,
       "54: %s writes a %s file", langs[i][0], langs[i][2]);
    is_str(json_string_value(json_array_get(json_object_get(x, "command"),
                                            0)), langs[i][1],
           "54: %s runs %s", langs[i][0], langs[i][1]);
    json_decref(w);
    json_decref(x);
    ac_exec_result_free(&r);
  }
  rec_reset(&rec);
  is_int(ac_session_run_code(s, "ruby", "puts 1", 6, NULL, &r, &e),
         AC_EUNSUPPORTED, "54: ruby unsupported");
  is_str(e.msg, "Unsupported language: ruby", "54: the SDK's message");
  is_int(rec_count(&rec), 0, "54: no HTTP for an unsupported language");
  ac_exec_result_free(&r);

  /* 55 */
  rec_reset(&rec);
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "{\"stdout\":\"1\\n2\\n\",\"exit_code\":0}");
  ac_session_run_code(s, "python", "print(1)\\nprint(2)", 18, NULL, &r, &e);
  w = body_json(rec_get(&rec, 0));
  code = unb64(jstr(w, "content") ? jstr(w, "content") : "");
  is_str(code, "print(1)\nprint(2)", "55: escaped newlines fixed");
  free(code);
  json_decref(w);
  ac_exec_result_free(&r);
  rec_reset(&rec);
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
  ac_session_run_code(s, "python", "print('a\\nb')", 13, NULL, &r, &e);
  w = body_json(rec_get(&rec, 0));
  code = unb64(jstr(w, "content") ? jstr(w, "content") : "");
  is_str(code, "print('a\\nb')", "55: valid code uploaded unchanged");
  free(code);
  json_decref(w);
  ac_exec_result_free(&r);
  rec_reset(&rec);
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
  ac_session_run_code(s, "bash", "echo a\\nb", 9, NULL, &r, &e);
  w = body_json(rec_get(&rec, 0));
  code = unb64(jstr(w, "content") ? jstr(w, "content") : "");
  is_str(code, "echo a\\nb", "55: bash code is never rewritten");
  free(code);
  json_decref(w);
  ac_exec_result_free(&r);

  /* run_code raises on non-zero exit, like execute_command. */
  rec_reset(&rec);
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "{\"stdout\":\"\",\"stderr\":\"Traceback\","
                      "\"exit_code\":1}");
  is_int(ac_session_run_code(s, "python", "1/0", 3, NULL, &r, &e),
         AC_ECOMMAND, "run_code: exit 1 is ECOMMAND");
  is_str(e.msg, "Command failed (exit 1): Traceback", "run_code message");
  ac_exec_result_free(&r);
  rec_reset(&rec);
  rec_push(&rec, 400, "{\"error\":\"content required\",\"code\":400}");
  is_int(ac_session_run_code(s, "sh", "", 0, NULL, &r, &e), AC_EHTTP,
         "run_code: write failure stops before execute");
  is_int(rec_count(&rec), 1, "run_code: no execute after a failed write");
  ac_exec_result_free(&r);
  ac_session_free(s);
  ac_client_free(c);
}

/* 56: write_file; read_file. */
static void test_write_read(void) {
  tcase("SDK 56: write_file, read_file");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  const struct rec_req *q;
  char *data = NULL, *enc;
  size_t len = 0;
  static const char bin[] = { 'a', 0, (char)0xff, '\n' };

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"path\":\"tmp/value.txt\",\"size\":2}");
  is_int(ac_session_write_file(s, "/tmp/value.txt", "42", 2, &e), AC_OK,
         "56: write_file");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "request 0 was recorded");
  is_str(q->method, "POST", "56: POST");
  is_str(q->uri, dp("api/files"), "56: path");
  header_is(q, "Content-Type", "application/json", "56");
  is_str(q->body, "{\"path\": \"/tmp/value.txt\", \"content\": \"NDI=\", "
         "\"mode\": \"0644\"}", "56: body as the SDK sends it");
  rec_push(&rec, 200, "{}");
  ac_session_write_file(s, "caf\xc3\xa9.bin", bin, sizeof bin, &e);
  q = rec_get(&rec, 1);
  REQUIRE(q != NULL, "request 1 was recorded");
  enc = b64("a");
  ok(strstr(q->body, "\"path\": \"caf\\u00e9.bin\"") != NULL,
     "56: non-ASCII path escaped like json.dumps (lowercase hex)");
  ok(strstr(q->body, "\"content\": \"YQD/Cg==\"") != NULL,
     "56: binary content base64-encoded");
  free(enc);
  rec_push(&rec, 200, "{}");
  is_int(ac_session_write_file(s, "empty.txt", NULL, 0, &e), AC_OK,
         "56: empty content is sent (server decides)");
  ok(strstr(rec_get(&rec, 2)->body, "\"content\": \"\"") != NULL,
     "56: empty content");
  is_int(ac_session_write_file(s, "bad\xff", "x", 1, &e), AC_EINVAL,
         "56: a path that is not UTF-8 is refused");
  rec_push(&rec, 400, "{\"error\":\"access denied: escapes\",\"code\":400}");
  is_int(ac_session_write_file(s, "x", "x", 1, &e), AC_EHTTP,
         "56: server refusal is EHTTP");
  is_int(e.http_status, 400, "56: status 400");
  ok(strstr(e.msg, "access denied") != NULL, "56: %s", e.msg);

  rec_reset(&rec);
  {
    struct rec_reply rp;
    memset(&rp, 0, sizeof rp);
    rp.status = 200;
    rp.body = "file\0bytes";
    rp.body_len = 10;
    rec_push_reply(&rec, &rp);
  }
  is_int(ac_session_read_file(s, "/workspace/dir/a b.txt", 0, &data, &len,
                              &e), AC_OK, "read_file");
  is_str(rec_get(&rec, 0)->method, "GET", "read_file: GET");
  is_str(rec_get(&rec, 0)->uri, dp("api/files/workspace/dir/a%20b.txt"),
         "read_file: path stripped and encoded");
  header_is(rec_get(&rec, 0), "Content-Type", NULL, "read_file: GET");
  is_int(len, 10, "read_file: length");
  ok(data && memcmp(data, "file\0bytes", 10) == 0, "read_file: bytes");
  free(data);
  rec_push(&rec, 200, "0123456789");
  is_int(ac_session_read_file(s, "f", 10, &data, &len, &e), AC_OK,
         "read_file: exactly the cap is fine");
  free(data);
  rec_push(&rec, 200, "0123456789A");
  is_int(ac_session_read_file(s, "f", 10, &data, &len, &e), AC_ETOOBIG,
         "read_file: past the cap is ETOOBIG");
  ok(data == NULL, "read_file: no data on error");
  rec_push(&rec, 404, "{\"error\":\"File not found\",\"code\":404}");
  is_int(ac_session_read_file(s, "nope", 0, &data, &len, &e), AC_EHTTP,
         "read_file: 404");
  ok(strstr(e.msg, "File not found") != NULL, "read_file: %s", e.msg);
  ac_session_free(s);
  ac_client_free(c);
}

/* 57: upload_file. */
static void test_upload(void) {
  tcase("SDK 57: upload_file");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  const struct rec_req *q;
  const struct rec_part *p;
  char local[300];
  const char *bp, *bm, *bf;
  FILE *f;

  snprintf(local, sizeof local, "%s/data.csv", tmpdir);
  f = fopen(local, "w");
  fputs("a,b\n1,2\n", f);
  fclose(f);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"path\":\"workspace/data.csv\",\"size\":8}");
  is_int(ac_session_upload_file(s, local, "/workspace/data.csv", &e), AC_OK,
         "57: upload_file");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "request 0 was recorded");
  is_str(q->method, "POST", "57: POST");
  is_str(q->uri, dp("api/files"), "57: path");
  header_is(q, "x-agentcube-session-id", "sid-1", "57");
  ok(rec_header(q, "Content-Type", (char[128]){ 0 }, 128) &&
     strncmp(rec_header(q, "Content-Type", (char[128]){ 0 }, 128),
             "multipart/form-data; boundary=", 30) == 0,
     "57: multipart Content-Type");
  is_int(q->nparts, 3, "57: three parts");
  is_str(q->parts[0].name, "path", "57: part 1 is path");
  is_str(q->parts[1].name, "mode", "57: part 2 is mode");
  is_str(q->parts[2].name, "file", "57: part 3 is file");
  bp = strstr(q->body, "name=\"path\"");
  bm = strstr(q->body, "name=\"mode\"");
  bf = strstr(q->body, "name=\"file\"");
  ok(bp && bm && bf && bp < bm && bm < bf, "57: raw order path, mode, file");
  p = rec_part(q, "path");
  is_str(p ? p->head : NULL, "/workspace/data.csv", "57: path value");
  p = rec_part(q, "mode");
  is_str(p ? p->head : NULL, "0644", "57: mode value");
  p = rec_part(q, "file");
  is_str(p ? p->filename : NULL, "data.csv", "57: filename is the basename");
  is_str(p ? p->head : NULL, "a,b\n1,2\n", "57: file content");
  ok(rec_header(q, "Content-Length", (char[32]){ 0 }, 32) != NULL,
     "57: Content-Length sent");
  ok(rec_header(q, "Transfer-Encoding", (char[32]){ 0 }, 32) == NULL,
     "57: not chunked (size known up front)");

  rec_reset(&rec);
  snprintf(local, sizeof local, "%s/no-such-file", tmpdir);
  is_int(ac_session_upload_file(s, local, "x", &e), AC_ENOTFOUND,
         "57: missing local file");
  ok(strstr(e.msg, "Local file not found") != NULL, "57: %s", e.msg);
  is_int(ac_session_upload_file(s, tmpdir, "x", &e), AC_EINVAL,
         "57: a directory is refused");
  is_int(rec_count(&rec), 0, "57: no HTTP for a bad local file");

  snprintf(local, sizeof local, "%s/empty", tmpdir);
  fclose(fopen(local, "w"));
  rec_push(&rec, 200, "{}");
  is_int(ac_session_upload_file(s, local, "e", &e), AC_OK,
         "57: empty file uploads");
  p = rec_part(rec_get(&rec, 0), "file");
  is_int(p ? (long long)p->size : -1, 0, "57: empty file part");
  rec_push(&rec, 413, "{\"error\":\"request body too large\",\"detail\":"
                      "\"maximum allowed size is 33554432 bytes\"}");
  is_int(ac_session_upload_file(s, local, "e", &e), AC_EHTTP, "57: 413");
  ok(strstr(e.msg, "request body too large (maximum allowed") != NULL,
     "57: error and detail in the message: %s", e.msg);
  ac_session_free(s);
  ac_client_free(c);
}

/* 58: download_file. */
static void test_download(void) {
  tcase("SDK 58: download_file");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  char dst[400], dir[300];
  char buf[64] = { 0 };
  struct stat st;
  FILE *f;

  snprintf(dir, sizeof dir, "%s/out/deeper", tmpdir);
  snprintf(dst, sizeof dst, "%s/summary.csv", dir);
  rec_reset(&rec);
  rec_push(&rec, 404, "{\"error\":\"File not found\",\"code\":404}");
  is_int(ac_session_download_file(s, "/workspace/a/b.txt", dst, &e),
         AC_EHTTP, "58: HTTP error");
  is_int(e.http_status, 404, "58: status");
  ok(stat(dir, &st) != 0, "58: no directory created on an HTTP error");
  is_str(rec_get(&rec, 0)->method, "GET", "58: GET");
  is_str(rec_get(&rec, 0)->uri, dp("api/files/workspace/a/b.txt"),
         "58: leading '/' stripped");

  rec_push(&rec, 200, "x,y\n3,4\n");
  is_int(ac_session_download_file(s, "/workspace/a/b.txt", dst, &e), AC_OK,
         "58: download");
  f = fopen(dst, "r");
  if (f != NULL) {
    if (fread(buf, 1, sizeof buf - 1, f) == 0)
      buf[0] = '\0';
    fclose(f);
  }
  is_str(buf, "x,y\n3,4\n", "58: bytes written");
  is_int(count_entries(dir), 1, "58: no temporary file left");
  ok(stat(dst, &st) == 0 && (st.st_mode & 0777) == (0666 & ~umask(022)),
     "58: file mode follows the umask");
  umask(022);

  rec_push(&rec, 200, "");
  snprintf(dst, sizeof dst, "%s/empty.txt", dir);
  is_int(ac_session_download_file(s, "empty.txt", dst, &e), AC_OK,
         "58: empty download");
  ok(stat(dst, &st) == 0 && st.st_size == 0, "58: empty file created");

  rec_reset(&rec);
  rec_push(&rec, 200, "new");
  snprintf(dst, sizeof dst, "%s/summary.csv", dir);
  ac_session_download_file(s, "dir with space/ü?#.txt", dst, &e);
  is_str(rec_get(&rec, 0)->uri,
         dp("api/files/dir%20with%20space/%C3%BC%3F%23.txt"),
         "58: each component percent-encoded");
  f = fopen(dst, "r");
  memset(buf, 0, sizeof buf);
  if (f != NULL) {
    if (fread(buf, 1, sizeof buf - 1, f) == 0)
      buf[0] = '\0';
    fclose(f);
  }
  is_str(buf, "new", "58: an existing file is replaced");
  rec_reset(&rec);
  is_int(ac_session_download_file(s, "../etc/passwd", dst, &e), AC_EACCESS,
         "58: a path above the root is refused");
  is_int(rec_count(&rec), 0, "58: ... without HTTP");
  snprintf(dst, sizeof dst, "%s/", dir);
  is_int(ac_session_download_file(s, "a", dst, &e), AC_EINVAL,
         "58: a destination ending in '/' is refused");
  ac_session_free(s);
  ac_client_free(c);
}

/* 59: list_files; gzip. */
static void test_list(void) {
  tcase("SDK 59: list_files, gzip");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_file_list l;
  struct rec_reply rp;
  char ae[128];

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"files\":[{\"name\":\"a.txt\",\"size\":12,"
           "\"modified\":\"2025-11-18T10:30:00Z\",\"mode\":\"-rw-r--r--\","
           "\"is_dir\":false},{\"name\":\"d\",\"size\":4096,\"modified\":"
           "\"2025-11-18T10:30:00Z\",\"mode\":\"drwxr-xr-x\","
           "\"is_dir\":true}]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_OK, "59: list_files()");
  is_str(rec_get(&rec, 0)->method, "GET", "59: GET");
  is_str(rec_get(&rec, 0)->uri, dp("api/files?path=."),
         "59: default path '.'");
  is_int(l.count, 2, "59: two entries");
  if (l.count == 2) {
    is_str(l.items[0].name, "a.txt", "59: name");
    is_int(l.items[0].size, 12, "59: size");
    is_str(l.items[0].modified, "2025-11-18T10:30:00Z", "59: modified");
    is_str(l.items[0].mode, "-rw-r--r--", "59: mode");
    is_int(l.items[0].is_dir, 0, "59: is_dir false");
    is_int(l.items[1].is_dir, 1, "59: is_dir true");
  }
  ok(l.json && strncmp(l.json, "[{\"name\":\"a.txt\"", 16) == 0,
     "59: raw JSON array kept");
  ac_file_list_free(&l);
  rec_push(&rec, 200, "{}");
  is_int(ac_session_list_files(s, "my dir/sub", &l, &e), AC_OK,
         "59: missing files key");
  is_str(rec_get(&rec, 1)->uri, dp("api/files?path=my+dir%2Fsub"),
         "59: query form-encoded like requests");
  is_int(l.count, 0, "59: [] when absent");
  is_str(l.json, "[]", "59: [] as JSON");
  ac_file_list_free(&l);
  rec_push(&rec, 200, "{\"files\":{}}");
  is_int(ac_session_list_files(s, ".", &l, &e), AC_EPROTO,
         "59: files not an array is EPROTO");
  rec_push(&rec, 404, "{\"error\":\"Directory not found\",\"code\":404}");
  is_int(ac_session_list_files(s, "nope", &l, &e), AC_EHTTP, "59: 404");

  /* PicoD gzips when asked: we ask and decode. */
  memset(&rp, 0, sizeof rp);
  rp.status = 200;
  rp.body = (char *)GZ_LIST;
  rp.body_len = sizeof GZ_LIST - 1;
  rp.hname = "Content-Encoding";
  rp.hvalue = "gzip";
  rec_reset(&rec);
  rec_push_reply(&rec, &rp);
  is_int(ac_session_list_files(s, ".", &l, &e), AC_OK, "gzip reply");
  ok(rec_header(rec_get(&rec, 0), "Accept-Encoding", ae, sizeof ae) &&
     strstr(ae, "gzip") != NULL, "Accept-Encoding offers gzip (%s)", ae);
  is_int(l.count, 1, "gzip body decoded");
  if (l.count == 1)
    is_str(l.items[0].name, "z.txt", "gzip entry");
  ac_file_list_free(&l);
  ac_session_free(s);
  ac_client_free(c);
}

/* 60: stop. */
static void test_stop(void) {
  tcase("SDK 60: stop");
  ac_client *c = mk_client(NULL, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_exec_result r;
  struct ac_file_list l;
  const struct rec_req *q;

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"message\":\"Sandbox deleted successfully\"}");
  is_int(ac_session_stop(s, &e), AC_OK, "60: stop");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "request 0 was recorded");
  is_str(q->method, "DELETE", "60: DELETE");
  is_str(q->uri, "/v1/code-interpreter/sessions/sid-1", "60: path");
  header_is(q, "Content-Type", "application/json", "60");
  header_is(q, "Content-Length", "0", "60");
  ok(ac_session_closed(s), "60: closed");
  is_int(ac_session_stop(s, &e), AC_OK, "60: stopping twice is fine");
  is_int(rec_count(&rec), 1, "60: ... and sends nothing");
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_ECLOSED,
         "60: execute after stop: ECLOSED");
  ac_exec_result_free(&r);
  is_int(ac_session_write_file(s, "a", "b", 1, &e), AC_ECLOSED,
         "60: write after stop");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_ECLOSED,
         "60: list after stop");
  is_int(ac_session_upload_file(s, "/etc/hostname", "x", &e), AC_ECLOSED,
         "60: upload after stop");
  is_int(rec_count(&rec), 1, "60: no HTTP after stop");
  is_str(ac_session_id(s), "sid-1", "id still readable after stop");
  ac_session_free(s);

  s = attach(c);
  rec_push(&rec, 404, "{\"message\":\"Session ID sid-1 not found, maybe "
                      "already deleted\"}");
  is_int(ac_session_stop(s, &e), AC_OK, "60: 404 counts as success");
  ac_session_free(s);
  s = attach(c);
  rec_push(&rec, 204, "");
  is_int(ac_session_stop(s, &e), AC_OK, "60: any 2xx is success");
  ac_session_free(s);
  s = attach(c);
  rec_push(&rec, 500, "{\"message\":\"internal server error\"}");
  is_int(ac_session_stop(s, &e), AC_EHTTP, "60: 500 is reported");
  ok(ac_session_closed(s), "60: ... but the session is closed anyway");
  ac_session_free(s);

  /* The session keeps the client alive: free order does not matter. */
  s = attach(c);
  ac_client_free(c);
  rec_push(&rec, 200, "{}");
  is_int(ac_session_stop(s, &e), AC_OK, "stop after the client was freed");
  ac_session_free(s);
}

int main(void) {
  plan(9);
  if (ac_global_init(NULL) != AC_OK || mkdtemp(tmpdir) == NULL ||
      rec_start(&rec) != 0) {
    printf("Bail out! setup failed\n");
    return 1;
  }
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  umask(022);
  test_create();
  test_auth_headers();
  test_exec();
  test_run_code();
  test_write_read();
  test_upload();
  test_download();
  test_list();
  test_stop();
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
