/* The blocking transport outside the engine (ac_http_do, which fetches
** OAuth tokens) keeps the retry policy: a refused connection and a GET's
** 502/503 are tried again after a logged pause, a POST that was sent never
** is, and an answer over the body budget or never finished is an error. */
#include "internal.h"
#include "http.h"
#include "recorder.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

static struct recorder rec;
static int ready;
static char logtext[8192];

static void log_line(void *ud, const char *line) {
  size_t n = strlen(logtext);
  (void)ud;
  snprintf(logtext + n, sizeof logtext - n, "%s\n", line);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ac_http *mk_pol(int max_retries, long base, long cap) {
  struct ac_http_policy pol;
  struct ac_http *h = NULL;
  struct ac_error e;
  memset(&pol, 0, sizeof pol);
  pol.verbose = 1;
  pol.log = log_line;
  pol.max_retries = max_retries;
  pol.retry_base_ms = base;
  pol.retry_max_ms = cap;
  if (ac_http_new(&pol, &h, &e) != AC_OK)
    printf("# http: %s\n", e.msg);
  return h;
}

static struct ac_http *mk(int max_retries) {
  struct ac_http_policy pol;
  struct ac_http *h = NULL;
  struct ac_error e;
  memset(&pol, 0, sizeof pol);
  pol.verbose = 1;
  pol.log = log_line;
  pol.max_retries = max_retries;
  pol.retry_base_ms = 1;
  pol.retry_max_ms = 4;
  if (ac_http_new(&pol, &h, &e) != AC_OK)
    printf("# http: %s\n", e.msg);
  return h;
}

static enum ac_code run(struct ac_http *h, const char *method,
                        const char *url, size_t max_body,
                        struct ac_http_resp *resp, struct ac_error *e) {
  struct ac_http_req req;
  memset(&req, 0, sizeof req);
  req.op = "fetch token";
  req.method = method;
  req.url = url;
  req.body = strcmp(method, "POST") == 0 ? "a=b" : NULL;
  req.body_len = req.body ? 3 : 0;
  req.connect_timeout_ms = 2000;
  req.timeout_ms = 5000;
  req.max_body = max_body;
  ac_http_resp_free(resp);
  ac_http_resp_init(resp);
  return ac_http_do(h, &req, resp, e);
}

static void test_retries(void) {
  struct ac_http *h;
  struct ac_http_resp resp;
  struct ac_error e;
  char url[128];

  tcase("retries outside the engine: refused connections and a GET's "
        "502/503 again, a sent POST never; the pause's cap");
  REQUIRE(ready, "the library and the recording server");
  h = mk(3);
  REQUIRE(h != NULL, "a transport");
  ac_http_resp_init(&resp);
  snprintf(url, sizeof url, "%s/token", rec.base);

  rec_reset(&rec);
  rec_push(&rec, 503, "{\"error\":\"busy\"}");
  rec_push(&rec, 502, "{\"error\":\"busy\"}");
  rec_push(&rec, 200, "{\"ok\":1}");
  logtext[0] = '\0';
  is_int(run(h, "GET", url, 0, &resp, &e), AC_OK, "a GET through 503, 502");
  is_int(rec_count(&rec), 3, "three attempts");
  is_str(ac_buf_str(&resp.body), "{\"ok\":1}", "the last answer's body");
  ok(strstr(logtext, "retrying GET") != NULL &&
     strstr(logtext, "(attempt 3 of 4)") != NULL,
     "each pause logged:\n%s", logtext);

  rec_reset(&rec);
  rec_push(&rec, 503, "{\"error\":\"busy\"}");
  is_int(run(h, "POST", url, 0, &resp, &e), AC_EHTTP, "a POST's 503");
  is_int(rec_count(&rec), 1, "is not repeated");
  is_int(e.http_status, 503, "its status");
  is_str(e.msg, "fetch token: HTTP 503: busy", "and the server's message");

  snprintf(url, sizeof url, "http://127.0.0.1:%u/token", rec_dead_port());
  logtext[0] = '\0';
  is_int(run(h, "POST", url, 0, &resp, &e), AC_ECONNECT,
         "nothing listens: ECONNECT");
  ok(strstr(logtext, "(attempt 4 of 4)") != NULL,
     "after every attempt the policy allows:\n%s", logtext);
  ac_http_resp_free(&resp);
  ac_http_free(h);

  /* a base pause larger than the cap is capped (5 s would be seen) */
  h = mk_pol(3, 5000, 1);
  rec_reset(&rec);
  rec_push(&rec, 503, "busy");
  rec_push(&rec, 200, "{}");
  ac_http_resp_init(&resp);
  {
    char live[128];
    long long t0 = now_ms();
    snprintf(live, sizeof live, "%s/token", rec.base);
    is_int(run(h, "GET", live, 0, &resp, &e), AC_OK,
           "retried with a base of 5000 ms and a cap of 1 ms");
    ok(now_ms() - t0 < 2500, "the cap holds (%lld ms)", now_ms() - t0);
  }
  ac_http_resp_free(&resp);
  ac_http_free(h);

  /* no retries: one attempt */
  h = mk(0);
  logtext[0] = '\0';
  ac_http_resp_init(&resp);
  is_int(run(h, "GET", url, 0, &resp, &e), AC_ECONNECT,
         "no retries: ECONNECT at once");
  ok(strstr(logtext, "retrying") == NULL, "without a retry");
  ac_http_resp_free(&resp);
  ac_http_free(h);
}

static void test_bodies(void) {
  struct ac_http *h;
  struct ac_http_resp resp;
  struct ac_error e;
  char url[128];

  tcase("answers outside the engine: over the body budget, a plain-text "
        "error, cut off");
  REQUIRE(ready, "the library and the recording server");
  h = mk(3);
  REQUIRE(h != NULL, "a transport");
  ac_http_resp_init(&resp);
  snprintf(url, sizeof url, "%s/token", rec.base);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"access_token\":\"0123456789012345678901234\"}");
  is_int(run(h, "POST", url, 16, &resp, &e), AC_ETOOBIG,
         "an answer over a 16-byte budget");
  is_str(e.msg, "fetch token: response larger than 16 bytes", "says so");
  rec_reset(&rec);
  {
    struct rec_reply rp;
    memset(&rp, 0, sizeof rp);
    rp.status = 500;
    rp.body = (char *)"\r\n  out of \x01tokens   \r\nsecond line\n";
    rp.content_type = (char *)"text/plain";
    rec_push_reply(&rec, &rp);
  }
  is_int(run(h, "POST", url, 0, &resp, &e), AC_EHTTP, "a plain-text 500");
  is_str(e.msg, "fetch token: HTTP 500: out of tokens",
         "its first line, trimmed, control characters dropped");
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"access_tok", REC_CUT, 0);
  is_int(run(h, "POST", url, 0, &resp, &e), AC_EIO, "an answer cut off");
  is_int(rec_count(&rec), 1, "not repeated");
  ac_http_resp_free(&resp);
  ac_http_free(h);
}

int main(void) {
  plan(2);
  ready = ac_global_init(NULL) == AC_OK && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  test_retries();
  test_bodies();
  if (ready)
    rec_stop(&rec);
  return done_testing();
}
