/* Credentials a user can get wrong: token files too large or blank,
** token callbacks that fail with or without saying why, and OAuth token
** endpoints that give expires_in in odd shapes, reject a bad extra header,
** honour a caller's Content-Type, answer too slowly, or are logged. */
#include "internal.h"
#include "recorder.h"
#include "tap.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-auth-XXXXXX";
static int ready;

static void put(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    if (fwrite(text, 1, len, f) != len)
      printf("# short write to %s\n", path);
    fclose(f);
  }
}

static void test_token_files(void) {
  char path[256], *big;
  ac_auth *a = NULL;
  struct ac_error e;
  char *tok = NULL;

  tcase("token files: too large, blank, no path; a good one stripped");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  snprintf(path, sizeof path, "%s/big-token", tmpdir);
  big = malloc(70000);
  REQUIRE(big != NULL, "memory");
  memset(big, 'k', 70000);
  put(path, big, 70000);
  free(big);
  is_int(ac_auth_new_token_file(path, &a, &e), AC_EAUTH,
         "a 70000-byte token file: EAUTH");
  ok(strstr(e.msg, "is too large") != NULL && strstr(e.msg, path) != NULL,
     "names it and why: %s", e.msg);
  ok(a == NULL, "no provider");

  snprintf(path, sizeof path, "%s/blank-token", tmpdir);
  put(path, " \n\t\n", 4);
  is_int(ac_auth_new_token_file(path, &a, &e), AC_ENOTFOUND,
         "a blank token file");
  ok(strstr(e.msg, "is empty") != NULL, "says so: %s", e.msg);
  is_int(ac_auth_new_token_file(NULL, &a, &e), AC_EINVAL, "no path");

  snprintf(path, sizeof path, "%s/token", tmpdir);
  put(path, "\v tok-123 \r\n", 12);
  is_int(ac_auth_new_token_file(path, &a, &e), AC_OK, "a good token file");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "its token");
  is_str(tok, "tok-123", "whitespace stripped both ends");
  free(tok);
  ac_auth_unref(a);
  is_int(ac_auth_get_token(NULL, &tok, &e), AC_EINVAL, "no provider");
  ok(tok == NULL, "no token");
}

static enum ac_code silent_failure(void *ud, char **token,
                                   struct ac_error *err) {
  (void)ud;
  (void)err;
  *token = strdup("half-made");       /* must not leak, must not be used */
  return AC_EAUTH;
}

static enum ac_code explained_failure(void *ud, char **token,
                                      struct ac_error *err) {
  (void)ud;
  *token = NULL;
  return ac_error_set(err, AC_EAUTH, "vault is sealed");
}

static void test_callbacks(void) {
  ac_auth *a = NULL;
  struct ac_error e;
  char *tok = (char *)"x";

  tcase("token callbacks that fail: their message, or a clear one");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  REQUIRE(ac_auth_new_callback(silent_failure, NULL, NULL, &a, &e) == AC_OK,
          "a callback provider");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "a silent failure");
  is_str(e.msg, "token callback failed", "gets a message");
  ok(tok == NULL, "and no token (its half-made one dropped)");
  ac_auth_unref(a);
  REQUIRE(ac_auth_new_callback(explained_failure, NULL, NULL, &a, &e) ==
          AC_OK, "another");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "an explained failure");
  is_str(e.msg, "vault is sealed", "keeps its message");
  ac_auth_unref(a);
}

static void test_failing_provider(void) {
  struct ac_client_config cfg;
  struct ac_agent_runtime_config rc_cfg;
  ac_agent_runtime *rt = NULL;
  ac_client *c = NULL;
  ac_session *s = NULL;
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  ac_auth *a = NULL;
  struct ac_exec_result r;
  struct ac_error e;
  char *json = NULL;

  tcase("a token provider that fails: every call fails with its message, "
        "before any request");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  REQUIRE(ac_auth_new_callback(explained_failure, NULL, NULL, &a, &e) ==
          AC_OK, "a provider that fails");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = rec.base;
  cfg.router_url = rec.base;
  cfg.sa_token_path = "";
  cfg.auth = a;
  REQUIRE(ac_client_new(&cfg, &c, &e) == AC_OK, "a client using it");
  rec_reset(&rec);
  is_int(ac_session_create(c, NULL, &s, &e), AC_EAUTH, "create: EAUTH");
  is_str(e.msg, "vault is sealed", "with the provider's message");
  ok(s == NULL, "no session");
  is_int(ac_session_list(c, &json, &e), AC_EAUTH, "list sessions: EAUTH");
  ac_session_attach(c, "sid-z", NULL, NULL, &s, &e);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &e), AC_EAUTH,
         "execute: EAUTH");
  ac_exec_result_free(&r);
  is_int(ac_start_session_stop(eng, s, NULL, &j, &e), AC_EAUTH,
         "stop: EAUTH");
  ok(j == NULL, "no job");
  ok(ac_session_closed(s), "the session is closed all the same");
  ac_agent_runtime_config_init(&rc_cfg);
  rc_cfg.agent_name = "agent";
  rc_cfg.router_url = rec.base;
  rc_cfg.auth = a;
  is_int(ac_agent_runtime_new(&rc_cfg, &rt, &e), AC_EAUTH,
         "an agent runtime's bootstrap: EAUTH");
  is_int(rec_count(&rec), 0, "nothing was sent");
  ac_session_free(s);
  ac_client_free(c);
  ac_auth_unref(a);
  ac_engine_free(eng);
}

static ac_auth *oauth(const struct ac_header *h, size_t nh, long timeout_ms,
                      int verbose, struct ac_error *e) {
  struct ac_oauth_config oc;
  char url[128];
  ac_auth *a = NULL;
  memset(&oc, 0, sizeof oc);
  snprintf(url, sizeof url, "%s/token", rec.base);
  oc.token_url = url;
  oc.client_id = "id";
  oc.client_secret = "secret";
  oc.headers = h;
  oc.nheaders = nh;
  oc.timeout_ms = timeout_ms;
  oc.verbose = verbose;
  ac_auth_new_oauth(&oc, &a, e);
  return a;
}

static void test_oauth_expiry_shapes(void) {
  ac_auth *a;
  struct ac_error e;
  char *tok = NULL;

  tcase("OAuth expires_in: int() of a string, a boolean, a huge number; "
        "refused when it is no integer");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  a = oauth(NULL, 0, 0, 0, &e);
  REQUIRE(a != NULL, "a provider");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"s1\",\"expires_in\":\" 600\\n\"}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "a string \" 600\\n\"");
  free(tok);
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "again");
  is_str(tok, "s1", "cached for its 570 s");
  free(tok);
  is_int(rec_count(&rec), 1, "one fetch");
  ac_auth_unref(a);

  a = oauth(NULL, 0, 0, 0, &e);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"b1\",\"expires_in\":true}");
  rec_push(&rec, 200, "{\"access_token\":\"b2\",\"expires_in\":true}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "true is 1 s");
  free(tok);
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "again");
  is_str(tok, "b2", "1 s lives 0 s: fetched anew");
  free(tok);
  ac_auth_unref(a);

  a = oauth(NULL, 0, 0, 0, &e);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"h1\","
           "\"expires_in\":9000000000000000000}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "a lifetime past any "
         "clock");
  free(tok);
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "again");
  is_str(tok, "h1", "cached (capped, not wrapped into the past)");
  free(tok);
  is_int(rec_count(&rec), 1, "one fetch");

  /* refused: the same provider, its token expired */
  ac_auth_unref(a);
  a = oauth(NULL, 0, 0, 0, &e);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"x\",\"expires_in\":\"12x\"}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "\"12x\": EAUTH");
  is_str(e.msg, "fetch token: expires_in is not an integer", "says so");
  rec_push(&rec, 200, "{\"access_token\":\"x\",\"expires_in\":1e300}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "1e300: EAUTH");
  rec_push(&rec, 200, "{\"access_token\":\"x\",\"expires_in\":[60]}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "an array: EAUTH");
  ac_auth_unref(a);
}

static void test_oauth_requests(void) {
  static const struct ac_header bad[] = { { "X-A: b", "c" } };
  static const struct ac_header bad_value[] = { { "X-A", "c\r\nX-B: d" } };
  static const struct ac_header ctype[] = {
    { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" }
  };
  ac_auth *a;
  struct ac_error e;
  char *tok = NULL, hv[256], log[4096];
  int saved, fd;
  struct rec_reply rp;

  tcase("OAuth requests: bad extra headers refused, a caller's "
        "Content-Type kept, a slow endpoint times out, verbose logs");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  a = oauth(bad, 1, 0, 0, &e);
  ok(a == NULL, "a header name with ':' is refused");
  is_str(e.msg, "invalid extra header #0", "says which");
  a = oauth(bad_value, 1, 0, 0, &e);
  ok(a == NULL && e.code == AC_EINVAL, "a header value with CR LF is "
     "refused");

  a = oauth(ctype, 1, 0, 0, &e);
  REQUIRE(a != NULL, "a provider with its own Content-Type");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"c1\"}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "fetched");
  free(tok);
  is_str(rec_header(rec_get(&rec, 0), "Content-Type", hv, sizeof hv),
         "application/x-www-form-urlencoded; charset=utf-8",
         "the caller's Content-Type, not a second one");
  ac_auth_unref(a);

  a = oauth(NULL, 0, 200, 0, &e);
  rec_reset(&rec);
  memset(&rp, 0, sizeof rp);
  rp.status = 200;
  rp.body = (char *)"{\"access_token\":\"late\"}";
  rp.delay_ms = 3000;
  rec_push_reply(&rec, &rp);
  is_int(ac_auth_get_token(a, &tok, &e), AC_ETIMEOUT,
         "an endpoint slower than timeout_ms: ETIMEOUT");
  ok(tok == NULL, "no token");
  is_int(rec_count(&rec), 1, "the POST is not repeated");
  ac_auth_unref(a);

  /* verbose with no log sink: each request on stderr */
  a = oauth(NULL, 0, 0, 1, &e);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"v1\"}");
  snprintf(log, sizeof log, "%s/stderr.txt", tmpdir);
  fflush(stderr);
  saved = dup(2);
  fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0)
    dup2(fd, 2);
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "fetched, verbosely");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  if (fd >= 0)
    close(fd);
  free(tok);
  {
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[n] = '\0';
    if (f != NULL)
      fclose(f);
  }
  ok(strstr(log, "agentcube: > POST ") != NULL &&
     strstr(log, "agentcube: < 200 POST ") != NULL,
     "the request and its status on stderr: %s", log);
  ok(strstr(log, "secret") == NULL, "never the secret");
  ac_auth_unref(a);
}

int main(void) {
  plan(5);
  ready = ac_global_init(NULL) == AC_OK && mkdtemp(tmpdir) != NULL &&
          rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  test_token_files();
  test_callbacks();
  test_failing_provider();
  test_oauth_expiry_shapes();
  test_oauth_requests();
  if (ready)
    rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
