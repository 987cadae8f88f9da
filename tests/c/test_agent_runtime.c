/* The agent-runtime client of libagentcube against the recording server:
** the SDK's requests (the bootstrap GET and the invocation POSTs, with
** their paths, headers and json.dumps bodies), the session taken from the
** answer and reused, auth, the error of each way a call can fail, and the
** same operations as jobs on a host's engine. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

#define SID "3f2c9a1e-0000-4000-8000-00000000abcd"
#define BASE_PATH "/v1/namespaces/default/agent-runtimes/my-agent/invocations/"

static struct recorder rec;
static int ready;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A reply, optionally naming a session in x-agentcube-session-id. */
static void push(int status, const char *body, const char *ct,
                 const char *sid, int delay_ms) {
  struct rec_reply rp;
  memset(&rp, 0, sizeof rp);
  rp.status = status;
  rp.body = (char *)body;
  rp.content_type = (char *)ct;
  rp.delay_ms = delay_ms;
  if (sid != NULL) {
    rp.hname = (char *)"x-agentcube-session-id";
    rp.hvalue = (char *)sid;
  }
  rec_push_reply(&rec, &rp);
}

static void cfg_init(struct ac_agent_runtime_config *cfg) {
  ac_agent_runtime_config_init(cfg);
  cfg->agent_name = "my-agent";
  cfg->router_url = rec.base;
}

static ac_agent_runtime *open_rt(const struct ac_agent_runtime_config *cfg,
                                 struct ac_error *e) {
  ac_agent_runtime *rt = NULL;
  if (ac_agent_runtime_new(cfg, &rt, e) != AC_OK)
    printf("# open: %s\n", e->msg);
  return rt;
}

static void header_is(const struct rec_req *q, const char *name,
                      const char *want, const char *what) {
  char buf[512];
  const char *got = rec_header(q, name, buf, sizeof buf);
  if (want == NULL)
    ok(got == NULL, "%s: no %s header (got %s)", what, name,
       got ? got : "none");
  else
    is_str(got, want, "%s: %s", what, name);
}

static int contains(const char *s, const char *part) {
  return s != NULL && strstr(s, part) != NULL;
}

static void test_bootstrap(void) {
  struct ac_agent_runtime_config cfg;
  struct ac_error e;
  ac_agent_runtime *rt;
  const struct rec_req *q;
  char url[256];

  tcase("bootstrap: one GET of the invocations base, the session from the "
        "answer's header, whatever its status");
  REQUIRE(ready, "setup");
  rec_reset(&rec);
  push(200, "hello", "text/plain", SID, 0);
  cfg_init(&cfg);
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "made");
  is_int(rec_count(&rec), 1, "one request");
  q = rec_get(&rec, 0);
  is_str(q->method, "GET", "method");
  is_str(q->uri, BASE_PATH, "path: the SDK's base, with its trailing /");
  header_is(q, "x-agentcube-session-id", NULL, "bootstrap");
  header_is(q, "Authorization", NULL, "without credentials");
  header_is(q, "Content-Type", NULL, "bootstrap");
  is_int((int)q->body_total, 0, "no body");
  is_str(ac_agent_runtime_session_id(rt), SID, "session from the header");
  is_str(ac_agent_runtime_name(rt), "my-agent", "name");
  is_str(ac_agent_runtime_namespace(rt), "default", "namespace");
  snprintf(url, sizeof url, "%s%s", rec.base, BASE_PATH);
  is_str(ac_agent_runtime_base_url(rt), url, "base URL");
  ac_agent_runtime_free(rt);

  /* the Router forwards the GET to the agent: its 404 or 500 still
  ** names the session, and the SDK takes it */
  rec_reset(&rec);
  push(500, "{\"error\": \"agent has no GET /\"}", NULL, "sid-500", 0);
  rt = open_rt(&cfg, &e);
  ok(rt != NULL && !strcmp(ac_agent_runtime_session_id(rt), "sid-500"),
     "a 500 that names the session gives it");
  ac_agent_runtime_free(rt);

  /* namespace, name, token; the Router URL's own path and query are
  ** replaced (urljoin with an absolute path) */
  rec_reset(&rec);
  push(200, "{}", NULL, SID, 0);
  snprintf(url, sizeof url, "%s/some/prefix/?x=1", rec.base);
  cfg.router_url = url;
  cfg.ns = "team-a";
  cfg.agent_name = "helper";
  cfg.auth_token = "tok-1";
  rt = open_rt(&cfg, &e);
  ok(rt != NULL, "made with a token");
  q = rec_get(&rec, 0);
  is_str(q->uri, "/v1/namespaces/team-a/agent-runtimes/helper/invocations/",
         "namespace and name in the path; the router URL's path dropped");
  header_is(q, "Authorization", "Bearer tok-1", "with a token");
  ac_agent_runtime_free(rt);

  /* an explicit session id: no HTTP at all */
  rec_reset(&rec);
  cfg_init(&cfg);
  cfg.session_id = "given-1";
  rt = open_rt(&cfg, &e);
  ok(rt != NULL && !strcmp(ac_agent_runtime_session_id(rt), "given-1"),
     "session_id is reused");
  is_int(rec_count(&rec), 0, "no request for a given session");
  ac_agent_runtime_free(rt);
}

static void test_invoke(void) {
  struct ac_agent_runtime_config cfg;
  struct ac_agent_reply r;
  struct ac_error e;
  ac_agent_runtime *rt;
  const struct rec_req *q;
  ac_auth *auth = NULL;

  tcase("invoke: POSTs with the session, JSON content type and the "
        "payload as json.dumps writes it; the session reused");
  REQUIRE(ready, "setup");
  rec_reset(&rec);
  push(200, "{}", NULL, SID, 0);
  push(200, "{\"answer\": 42}", "application/json", SID, 0);
  push(200, "plain words", "text/plain; charset=utf-8", SID, 0);
  cfg_init(&cfg);
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "made");
  is_int(ac_agent_runtime_invoke(rt, "{\"prompt\": \"hi\"}", NULL, 0, &r,
                                 &e), AC_OK, "first invoke");
  is_int((int)r.status, 200, "status");
  is_str(r.body, "{\"answer\": 42}", "body");
  is_str(r.content_type, "application/json", "content type");
  is_str(r.session_id, SID, "the answer's session header");
  ac_agent_reply_free(&r);
  is_int(ac_agent_runtime_invoke(rt, "{\"prompt\": \"again\"}", "/chat",
                                 0, &r, &e), AC_OK, "second invoke");
  is_str(r.body, "plain words", "a text answer is given as is");
  ac_agent_reply_free(&r);
  is_int(rec_count(&rec), 3, "one GET, two POSTs: no second bootstrap");
  for (int i = 1; i <= 2; i++) {
    q = rec_get(&rec, i);
    is_str(q->method, "POST", "POST %d", i);
    header_is(q, "x-agentcube-session-id", SID, "the same session");
    header_is(q, "Content-Type", "application/json", "json");
    header_is(q, "Authorization", NULL, "without credentials");
    header_is(q, "Expect", NULL, "no 100-continue");
  }
  is_str(rec_get(&rec, 1)->uri, BASE_PATH, "no path: the base");
  is_str(rec_get(&rec, 1)->body, "{\"prompt\": \"hi\"}", "body 1");
  is_str(rec_get(&rec, 2)->uri, BASE_PATH "chat",
         "path: leading / dropped, joined to the base");
  ac_agent_runtime_free(rt);

  /* json.dumps, byte for byte: ", " and ": ", \u escapes in lowercase
  ** (DEL too, surrogate pairs above the BMP), floats as repr() */
  rec_reset(&rec);
  cfg.session_id = SID;
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached");
  ac_agent_runtime_invoke(rt,
    "{\"prompt\": \"caf\\u00e9 \\ud83d\\ude00 \\u007f/\\\"\\\\\\n\\t\", "
    "\"temperature\": 0.7, \"n\": 3, \"big\": 1e16, \"small\": 0.00001, "
    "\"whole\": 2.0, \"neg\": -0.0, \"list\": [1,2.5,null,true,false,{}],"
    "\"nested\":{\"z\":1,\"a\":[]}}", NULL, 0, NULL, &e);
  is_str(rec_get(&rec, 0)->body,
    "{\"prompt\": \"caf\\u00e9 \\ud83d\\ude00 \\u007f/\\\"\\\\\\n\\t\", "
    "\"temperature\": 0.7, \"n\": 3, \"big\": 1e+16, \"small\": 1e-05, "
    "\"whole\": 2.0, \"neg\": -0.0, \"list\": [1, 2.5, null, true, false, "
    "{}], \"nested\": {\"z\": 1, \"a\": []}}",
    "the body json.dumps makes of that payload");
  ac_agent_runtime_invoke(rt, "\"just a string\"", NULL, 0, NULL, &e);
  is_str(rec_get(&rec, 1)->body, "\"just a string\"", "any JSON value");
  ac_agent_runtime_invoke(rt, NULL, NULL, 0, NULL, &e);
  is_int((int)rec_get(&rec, 2)->body_total, 0, "no payload: empty body");
  header_is(rec_get(&rec, 2), "Content-Length", "0", "no payload");
  header_is(rec_get(&rec, 2), "Content-Type", "application/json",
            "the SDK's header stays");
  ac_agent_runtime_free(rt);

  /* credentials: a static token, then a provider (wins over the token) */
  rec_reset(&rec);
  cfg.auth_token = "tok-2";
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached with a token");
  ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e);
  header_is(rec_get(&rec, 0), "Authorization", "Bearer tok-2", "token");
  ac_agent_runtime_free(rt);
  REQUIRE(ac_auth_new_token("from-provider", &auth, &e) == AC_OK, "auth");
  cfg.auth = auth;
  rt = open_rt(&cfg, &e);
  ac_auth_unref(auth);
  REQUIRE(rt != NULL, "attached with a provider");
  ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e);
  header_is(rec_get(&rec, 1), "Authorization", "Bearer from-provider",
            "provider over token");
  ac_agent_runtime_free(rt);
}

/* The SDK's URL for each path (urljoin, then requests' quoting), as
** requests.Request("POST", url).prepare().url gives it. */
static void test_paths(void) {
  static const char *const cases[][2] = {
    { "/", "" },
    { "//v1/chat", "v1/chat" },
    { "a b/c", "a%20b/c" },
    { "x?q=1 2&r=\xc3\xa9", "x?q=1%202&r=%C3%A9" },
    { "%41%2f", "A%2F" },
    { "%41%2f%zz", "%2541%252F%25zz" },
    { "a%", "a%25" },
    { "caf\xc3\xa9", "caf%C3%A9" },
    { "./x/../y", "y" },
    { "a/[b]", "a/%5Bb%5D" },
    { "p?x=[1]", "p?x=%5B1%5D" },
    { "k#frag", "k" },
    { "?only=1", "?only=1" },
    { "a;b=c/d:e@f!$&'()*+,", "a;b=c/d:e@f!$&'()*+," },
    { "x?", "x" },
    { "x?a?b/c", "x?a?b/c" },
  };
  struct ac_agent_runtime_config cfg;
  struct ac_error e;
  ac_agent_runtime *rt;
  size_t i, n = sizeof cases / sizeof cases[0];
  char want[512];

  tcase("invocation paths are joined and quoted as urljoin and requests "
        "do; one leaving the base is refused before any HTTP");
  REQUIRE(ready, "setup");
  rec_reset(&rec);
  cfg_init(&cfg);
  cfg.session_id = SID;
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached");
  for (i = 0; i < n; i++) {
    enum ac_code rc = ac_agent_runtime_invoke(rt, "{}", cases[i][0], 0,
                                              NULL, &e);
    snprintf(want, sizeof want, "%s%s", BASE_PATH, cases[i][1]);
    ok(rc == AC_OK && !strcmp(rec_get(&rec, (int)i)->uri, want),
       "'%s' -> %s (got %s)", cases[i][0], want, rec_get(&rec, (int)i)->uri);
  }
  is_int(ac_agent_runtime_invoke(rt, "{}", "../other/invocations/x", 0,
                                 NULL, &e), AC_EINVAL, "../ out of the base");
  ok(contains(e.msg, "leaves"), "named: %s", e.msg);
  is_int(ac_agent_runtime_invoke(rt, "{}", "http://elsewhere/x", 0, NULL,
                                 &e), AC_EINVAL, "another host");
  is_int(rec_count(&rec), (int)n, "no request for refused paths");
  ac_agent_runtime_free(rt);
}

static void test_errors(void) {
  struct ac_agent_runtime_config cfg;
  struct ac_agent_reply r;
  struct ac_error e;
  ac_agent_runtime *rt = NULL;
  char dead[64];
  long long t0;

  tcase("failures: configuration, answers without a session, HTTP errors, "
        "404s, timeouts, refused connections, bad payloads");
  REQUIRE(ready, "setup");
  rec_reset(&rec);

  /* configuration, before any HTTP */
  cfg_init(&cfg);
  cfg.router_url = NULL;
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_ECONFIG, "no router URL");
  ok(contains(e.msg, "ROUTER_URL") && contains(e.msg, "default/my-agent"),
     "says what is missing, for which runtime: %s", e.msg);
  setenv("ROUTER_URL", rec.base, 1);
  push(200, "{}", NULL, SID, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_OK,
         "control: $ROUTER_URL is enough");
  ac_agent_runtime_free(rt);
  unsetenv("ROUTER_URL");
  cfg_init(&cfg);
  cfg.agent_name = NULL;
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EINVAL, "no agent name");
  cfg_init(&cfg);
  cfg.timeout = -1;
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EINVAL, "negative timeout");
  is_int(rec_count(&rec), 1, "only the control made a request");

  /* bootstrap answers that name no session */
  cfg_init(&cfg);
  rec_reset(&rec);
  push(200, "{}", NULL, NULL, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EPROTO, "2xx, no header");
  ok(contains(e.msg, "x-agentcube-session-id") &&
     contains(e.msg, "status 200") && contains(e.msg, "my-agent"),
     "names the header, the status and the runtime: %s", e.msg);
  ok(rt == NULL, "no object");
  push(404, "404 page not found", "text/plain", NULL, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EUNSUPPORTED,
         "plain 404: the server has no agent runtimes");
  ok(contains(e.msg, rec.base) && contains(e.msg, "default/my-agent") &&
     e.http_status == 404, "names the server and the runtime: %s", e.msg);
  push(404, "{\"error\": \"agentruntimes.agentcube.volcano.sh "
       "\\\"default/my-agent\\\" not found\"}", NULL, NULL, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_ENOTFOUND,
         "the Router's JSON 404: no such agent runtime");
  ok(contains(e.msg, "not found") && e.http_status == 404, "says so: %s",
     e.msg);
  push(503, "{\"error\": \"sandbox unreachable\"}", NULL, NULL, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EHTTP, "503, no header");
  is_int((int)e.http_status, 503, "status kept");
  is_int(rec_count(&rec), 4, "the GET is never retried");

  /* invocation answers */
  rec_reset(&rec);
  cfg.session_id = SID;
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached");
  push(500, "{\"detail\": \"model crashed\"}", NULL, SID, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, &r, &e), AC_EHTTP,
         "the agent's 500");
  ok(e.http_status == 500 && contains(e.msg, "default/my-agent"),
     "status and runtime: %s", e.msg);
  is_str(r.body, "{\"detail\": \"model crashed\"}", "its body is kept");
  ac_agent_reply_free(&r);
  push(404, "{\"error\": \"no such route\"}", NULL, SID, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", "nope", 0, NULL, &e), AC_EHTTP,
         "the agent's own 404 (it names the session) stays an HTTP error");
  push(404, "{\"error\": \"sessions \\\"x\\\" not found\"}", NULL, NULL, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e), AC_ENOTFOUND,
         "the Router's 404 for the session");
  push(404, "404 page not found", "text/plain", NULL, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e),
         AC_EUNSUPPORTED, "a server without the route");
  push(200, "{\"partial\": ", NULL, SID, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, &r, &e), AC_OK,
         "a malformed JSON answer is given as text, as the SDK does");
  is_str(r.body, "{\"partial\": ", "the text");
  ac_agent_reply_free(&r);
  rec_push_mode(&rec, 200, "{\"cut\": \"off here", REC_CUT, 0);
  ok(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e) == AC_EIO,
     "an answer cut off: EIO (%s)", e.msg);

  /* a silent answer: the read timeout, per call or the runtime's */
  push(200, "{}", NULL, SID, 2000);
  t0 = now_ms();
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0.3, NULL, &e),
         AC_ETIMEOUT, "timeout of the call");
  ok(now_ms() - t0 < 1900, "within the timeout, not the reply's delay "
     "(%lld ms)", now_ms() - t0);
  ok(contains(e.msg, "default/my-agent"), "names the runtime: %s", e.msg);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, -1, NULL, &e), AC_EINVAL,
         "a negative timeout");
  is_int(ac_agent_runtime_invoke(rt, "{not json", NULL, 0, NULL, &e),
         AC_EINVAL, "a payload that is not JSON");
  ac_agent_runtime_free(rt);
  rt = NULL;

  cfg_init(&cfg);
  cfg.session_id = SID;
  cfg.timeout = 0.3;
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached with a short timeout");
  push(200, "{}", NULL, SID, 2000);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e), AC_ETIMEOUT,
         "the runtime's timeout applies by default");
  ac_agent_runtime_free(rt);

  snprintf(dead, sizeof dead, "http://127.0.0.1:%u", rec_dead_port());
  cfg_init(&cfg);
  cfg.router_url = dead;
  cfg.max_retries = -1;
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_ECONNECT,
         "nothing listening");
  ok(contains(e.msg, "default/my-agent"), "names the runtime: %s", e.msg);
}

struct seen {
  int done;
};

static void on_done(void *ud, ac_job *j) {
  struct seen *s = ud;
  (void)j;
  s->done++;
}

static volatile sig_atomic_t flag;

/* Raises the flag while the call waits, as a SIGINT handler would. */
static void *raise_later(void *ud) {
  struct timespec ts = { 0, 200 * 1000000L };
  (void)ud;
  nanosleep(&ts, NULL);
  flag = 1;
  return NULL;
}

static void test_jobs(void) {
  struct ac_agent_runtime_config cfg;
  struct ac_job_callbacks cbs;
  struct ac_agent_reply r;
  struct seen seen;
  struct ac_error e;
  ac_agent_runtime *rt = NULL;
  ac_engine *eng = NULL;
  ac_job *j = NULL, *k = NULL;
  long long t0;
  int polls = 0;

  tcase("jobs: the bootstrap and invocations on a host's engine, "
        "cancelled and interrupted");
  REQUIRE(ready, "setup");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "engine");
  rec_reset(&rec);
  memset(&seen, 0, sizeof seen);
  memset(&cbs, 0, sizeof cbs);
  cbs.on_done = on_done;
  cbs.ud = &seen;
  push(200, "{}", NULL, SID, 300);
  cfg_init(&cfg);
  t0 = now_ms();
  is_int(ac_start_agent_runtime_new(eng, &cfg, &cbs, &j, &e), AC_OK,
         "started");
  ok(now_ms() - t0 < 250, "the start does not wait for the answer");
  ok(ac_job_take_agent_runtime(j) == NULL, "nothing to take while it "
     "runs");
  while (!ac_job_done(j) && polls++ < 200)
    ac_engine_poll(eng, 50);
  is_int(ac_job_result(j, &e), AC_OK, "done");
  is_int(seen.done, 1, "on_done once");
  rt = ac_job_take_agent_runtime(j);
  ok(rt != NULL && !strcmp(ac_agent_runtime_session_id(rt), SID),
     "the runtime, with its session");
  ok(ac_job_take_agent_runtime(j) == NULL, "taken once");
  ac_job_free(j);
  j = NULL;
  REQUIRE(rt != NULL, "runtime");

  /* two invocations at once; one cancelled while its answer is awaited */
  push(200, "{\"slow\": true}", NULL, SID, 3000);
  push(200, "{\"fast\": true}", NULL, SID, 0);
  is_int(ac_start_agent_invoke(eng, rt, "{\"n\": 1}", NULL, 0, &cbs, &j,
                               &e), AC_OK, "slow one started");
  /* the recorder answers in arrival order: the slow one arrives first */
  for (polls = 0; rec_count(&rec) < 2 && polls < 200; polls++)
    ac_engine_poll(eng, 20);
  is_int(ac_start_agent_invoke(eng, rt, "{\"n\": 2}", NULL, 0, &cbs, &k,
                               &e), AC_OK, "fast one started");
  ok(ac_job_wait(k, 5000) == 1, "the fast one completes meanwhile");
  ac_job_take_agent_reply(k, &r);
  ok(ac_job_result(k, &e) == AC_OK && r.body != NULL &&
     !strcmp(r.body, "{\"fast\": true}"), "with its answer");
  ac_agent_reply_free(&r);
  t0 = now_ms();
  ac_job_cancel(j);
  ac_engine_poll(eng, 0);
  is_int(ac_job_result(j, &e), AC_ECANCELED, "cancelled");
  ok(now_ms() - t0 < 100, "at once (%lld ms)", now_ms() - t0);
  ac_job_free(j);
  ac_job_free(k);
  j = k = NULL;

  /* the interrupt flag ends a blocking invocation */
  ac_agent_runtime_free(rt);
  rt = NULL;
  cfg.session_id = SID;
  cfg.interrupt = &flag;
  rt = open_rt(&cfg, &e);
  REQUIRE(rt != NULL, "attached with a flag");
  push(200, "{}", NULL, SID, 3000);
  {
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, raise_later, NULL) == 0, "thread");
    t0 = now_ms();
    is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e),
           AC_EINTERRUPTED, "interrupted while the answer is awaited");
    ok(now_ms() - t0 < 200 + 1000, "soon after the flag (%lld ms)",
       now_ms() - t0);
    pthread_join(th, NULL);
  }
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, NULL, &e),
         AC_EINTERRUPTED, "a raised flag stops the next call before it "
         "sends");
  flag = 0;
  ac_agent_runtime_free(rt);
  ac_engine_free(eng);
}

static void test_odd_inputs(void) {
  struct ac_agent_runtime_config cfg;
  struct ac_agent_reply r;
  struct ac_error e;
  ac_agent_runtime *rt = NULL;
  ac_engine *eng = NULL;
  ac_job *j = NULL;

  tcase("odd inputs: a session id with control characters either way, "
        "a NULL runtime or config, the reply of another job, the budget");
  REQUIRE(ready, "setup");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  rec_reset(&rec);
  cfg_init(&cfg);
  cfg.session_id = "abc\x01" "def";
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EINVAL,
         "a given session id with a control character");
  is_str(e.msg, "invalid session id", "says so");
  is_int(ac_agent_runtime_new(NULL, &rt, &e), AC_EINVAL, "no config");
  is_int(ac_start_agent_runtime_new(eng, NULL, NULL, &j, &e), AC_EINVAL,
         "no config (job)");
  is_int(ac_agent_runtime_invoke(NULL, "{}", NULL, 0, &r, &e), AC_EINVAL,
         "invoke without a runtime");
  is_int(ac_start_agent_invoke(eng, NULL, "{}", NULL, 0, NULL, &j, &e),
         AC_EINVAL, "invoke without a runtime (job)");
  is_int(rec_count(&rec), 0, "nothing was sent");
  ac_agent_reply_free(NULL);

  /* the Router names a session holding DEL: refused, never sent back */
  cfg_init(&cfg);
  push(200, "{}", NULL, "ab\x7f" "cd", 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_EPROTO,
         "a session id from the Router with a control character");
  ok(contains(e.msg, "holds control characters") &&
     contains(e.msg, rec.base), "says so, naming the Router: %s", e.msg);
  ok(rt == NULL, "no runtime");

  /* the positive control, with a budget for answers and timeout 0 (the
  ** default) */
  rec_reset(&rec);
  cfg_init(&cfg);
  cfg.max_response = 8;
  cfg.timeout = 0;
  push(200, "{}", NULL, SID, 0);
  is_int(ac_agent_runtime_new(&cfg, &rt, &e), AC_OK, "a clean session id");
  is_str(rt ? ac_agent_runtime_router_url(rt) : "", rec.base,
         "its Router URL");
  push(200, "0123456789abcdef", "text/plain", SID, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, &r, &e), AC_ETOOBIG,
         "an answer over the runtime's budget of 8 bytes");
  ac_agent_reply_free(&r);
  push(200, "0123", "text/plain", SID, 0);
  is_int(ac_agent_runtime_invoke(rt, "{}", NULL, 0, &r, &e), AC_OK,
         "one within it");
  is_str(r.body, "0123", "whole");
  ac_agent_reply_free(&r);

  /* a payload over the same budget is refused before it is sent */
  rec_reset(&rec);
  is_int(ac_agent_runtime_invoke(rt, "{\"prompt\": \"0123456789\"}", NULL,
                                 0, NULL, &e), AC_ETOOBIG,
         "a payload over the budget: ETOOBIG (not out of memory)");
  is_str(e.msg, "JSON body too large", "says so");
  is_int(rec_count(&rec), 0, "nothing sent");

  /* the escapes json.dumps writes that a prompt rarely holds */
  {
    struct ac_agent_runtime_config c2;
    ac_agent_runtime *rt2 = NULL;
    cfg_init(&c2);
    c2.session_id = SID;
    rt2 = open_rt(&c2, &e);
    push(200, "{}", NULL, SID, 0);
    is_int(ac_agent_runtime_invoke(rt2, "{\"k\": \"\\r\\b\\f\u20ac\"}",
                                   NULL, 0, NULL, &e), AC_OK,
           "CR, BS, FF and a euro");
    is_str(rec_get(&rec, 0)->body, "{\"k\": \"\\r\\b\\f\\u20ac\"}",
           "as json.dumps writes them");
    ac_agent_runtime_free(rt2);
  }

  /* a reply asked of a job that is no invocation */
  push(200, "{}", NULL, SID, 0);
  is_int(ac_start_agent_runtime_new(eng, &cfg, NULL, &j, &e), AC_OK,
         "a bootstrap job");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done");
  memset(&r, 0x5a, sizeof r);
  ac_job_take_agent_reply(j, &r);
  ok(r.body == NULL && r.status == 0, "no reply from a bootstrap job");
  {
    ac_agent_runtime *rt2 = ac_job_take_agent_runtime(j);
    ok(rt2 != NULL, "but its runtime");
    ac_agent_runtime_free(rt2);
  }
  ac_job_free(j);
  ac_agent_runtime_free(rt);
  ac_engine_free(eng);
}

int main(void) {
  plan(6);
  ready = ac_global_init(NULL) == AC_OK && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("ROUTER_URL");
  unsetenv("WORKLOAD_MANAGER_URL");
  test_bootstrap();
  test_invoke();
  test_paths();
  test_errors();
  test_jobs();
  test_odd_inputs();
  if (ready)
    rec_stop(&rec);
  return done_testing();
}
