/* The sessions list (ac_session_list, ac_start_session_list): the request
** on the wire (GET {wm}/v1/code-interpreter/sessions with the control
** plane's token), the answer as JSON, and the errors: a server without
** the route (404) is EUNSUPPORTED naming it, an answer without a
** "sessions" array is EPROTO. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct recorder rec;

static ac_client *client(void) {
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = rec.base;
  cfg.router_url = rec.base;
  cfg.auth_token = "tok";
  cfg.sa_token_path = "";
  cfg.max_retries = -1;
  if (ac_client_new(&cfg, &c, &e) != AC_OK)
    printf("# client: %s\n", e.msg);
  return c;
}

static void wire(void) {
  ac_client *c = client();
  struct ac_error e;
  char *json = NULL, h[256];
  const struct rec_req *q;
  tcase("GET /v1/code-interpreter/sessions with the token; the answer");
  REQUIRE(c != NULL, "client");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessions\": [{\"sessionId\": \"s1\", "
           "\"name\": \"n\", \"namespace\": \"ns\"}]}");
  is_int(ac_session_list(c, &json, &e), AC_OK, "listed");
  ok(json != NULL && strstr(json, "\"sessionId\":\"s1\"") != NULL,
     "the answer as JSON: %s", json ? json : "(null)");
  q = rec_get(&rec, 0);
  REQUIRE(q != NULL, "one request");
  is_str(q->method, "GET", "method");
  is_str(q->uri, "/v1/code-interpreter/sessions", "path");
  ok(rec_header(q, "Authorization", h, sizeof h) != NULL &&
     !strcmp(h, "Bearer tok"), "the control plane's token");
  free(json);
  ac_client_free(c);
}

static void errors(void) {
  ac_client *c = client();
  struct ac_error e;
  char *json = NULL;
  tcase("no route: EUNSUPPORTED naming the server; a bad answer: EPROTO");
  REQUIRE(c != NULL, "client");
  rec_reset(&rec);
  rec_push(&rec, 404, "404 page not found");
  is_int(ac_session_list(c, &json, &e), AC_EUNSUPPORTED, "404");
  ok(strstr(e.msg, rec.base) != NULL, "names the server: %s", e.msg);
  ok(json == NULL, "no answer");
  rec_push(&rec, 200, "{\"items\": []}");
  is_int(ac_session_list(c, &json, &e), AC_EPROTO, "no sessions array");
  rec_push(&rec, 500, "{\"message\": \"boom\"}");
  is_int(ac_session_list(c, &json, &e), AC_EHTTP, "500: EHTTP");
  is_int(e.http_status, 500, "the status");
  /* control: the same client lists again once the server answers */
  rec_push(&rec, 200, "{\"sessions\": []}");
  is_int(ac_session_list(c, &json, &e), AC_OK, "then: listed");
  ok(json != NULL && !strcmp(json, "{\"sessions\":[]}"), "empty list");
  free(json);
  ac_client_free(c);
}

static void as_job(void) {
  ac_client *c = client();
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  struct ac_error e;
  tcase("as a job on an engine: polled to completion");
  REQUIRE(c != NULL, "client");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "engine");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessions\": [{\"sessionId\": \"s2\"}]}");
  is_int(ac_start_session_list(eng, c, NULL, &j, &e), AC_OK, "started");
  ok(ac_job_wait(j, 10000) == 1, "done");
  is_int(ac_job_result(j, &e), AC_OK, "result");
  ok(ac_job_json(j) != NULL && strstr(ac_job_json(j), "s2") != NULL,
     "json");
  ac_job_free(j);
  ac_engine_free(eng);
  ac_client_free(c);
}

int main(void) {
  plan(3);
  signal(SIGPIPE, SIG_IGN);
  if (ac_global_init(NULL) != AC_OK || rec_start(&rec) != 0) {
    printf("Bail out! cannot start the recording server\n");
    return 1;
  }
  wire();
  errors();
  as_job();
  rec_stop(&rec);
  return done_testing();
}
