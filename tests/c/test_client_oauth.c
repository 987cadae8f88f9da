/* ServiceAccountAuth (OAuth2 client credentials), checklist item 61: the
** form POST, caching for max(expires_in - 30, expires_in // 2) seconds,
** refresh, errors, and its use on both planes of a client. */
#include "internal.h"
#include "recorder.h"
#include "tap.h"

#include <time.h>

#include <pthread.h>

static struct recorder rec;

static ac_auth *mk_oauth(const char *scope) {
  static const struct ac_header hdr[] = { { "X-Tenant", "acme" } };
  struct ac_oauth_config oc;
  struct ac_error e;
  char url[128];
  ac_auth *a = NULL;
  memset(&oc, 0, sizeof oc);
  snprintf(url, sizeof url, "%s/oauth/token", rec.base);
  oc.token_url = url;
  oc.client_id = "my id";
  oc.client_secret = "s&cret";
  oc.scope = scope;
  oc.headers = hdr;
  oc.nheaders = 1;
  if (ac_auth_new_oauth(&oc, &a, &e) != AC_OK)
    printf("# oauth: %s\n", e.msg);
  return a;
}

static int count_uri(const char *uri) {
  int n = 0;
  for (int i = 0; i < rec_count(&rec); i++)
    n += strcmp(rec_get(&rec, i)->uri, uri) == 0;
  return n;
}

static void *get_tokens(void *arg) {
  ac_auth *a = arg;
  for (int i = 0; i < 10; i++) {
    char *t = NULL;
    struct ac_error e;
    if (ac_auth_get_token(a, &t, &e) == AC_OK)
      free(t);
  }
  return NULL;
}

int main(void) {
  plan(13);
  ac_auth *a;
  char *tok = NULL, buf[256];
  struct ac_error e;
  const struct rec_req *q;

  if (ac_global_init(NULL) != AC_OK || rec_start(&rec) != 0) {
    printf("Bail out! setup failed\n");
    return 1;
  }
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");

  is_int(ac_oauth_lifetime(3600), 3570, "lifetime 3600 -> 3570");
  is_int(ac_oauth_lifetime(60), 30, "lifetime 60 -> 30");
  is_int(ac_oauth_lifetime(40), 20, "lifetime 40 -> 20");
  is_int(ac_oauth_lifetime(1), 0, "lifetime 1 -> 0");
  is_int(ac_oauth_lifetime(0), 0, "lifetime 0 -> 0");
  is_int(ac_oauth_lifetime(-9), -5, "lifetime -9 -> -9 // 2 = -5");

  tcase("the token request: grant, client id, secret, scope");
  /* The request. */
  a = mk_oauth("read write");
  rec_push(&rec, 200, "{\"access_token\":\"t1\",\"token_type\":\"Bearer\","
                      "\"expires_in\":3600}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "61: token fetched");
  is_str(tok, "t1", "61: access_token");
  free(tok);
  q = rec_get(&rec, 0);
  is_str(q->method, "POST", "61: POST");
  is_str(q->uri, "/oauth/token", "61: token_url");
  is_str(rec_header(q, "Content-Type", buf, sizeof buf),
         "application/x-www-form-urlencoded", "61: form body");
  is_str(rec_header(q, "X-Tenant", buf, sizeof buf), "acme",
         "61: extra headers sent");
  ok(rec_header(q, "Authorization", buf, sizeof buf) == NULL,
     "61: credentials not in HTTP Basic");
  is_str(q->body, "grant_type=client_credentials&client_id=my+id&"
         "client_secret=s%26cret&scope=read+write",
         "61: fields, order and encoding as python-requests");

  tcase("a fetched token is cached");
  /* Cached. */
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "61: second call");
  is_str(tok, "t1", "61: same token");
  free(tok);
  is_int(rec_count(&rec), 1, "61: no second fetch within the lifetime");
  ac_auth_unref(a);

  tcase("no scope: not sent. expires_in 0: refreshed on every call");
  /* No scope: not sent. expires_in 0: refreshed on every call. */
  rec_reset(&rec);
  a = mk_oauth(NULL);
  rec_push(&rec, 200, "{\"access_token\":\"t2\",\"expires_in\":0}");
  rec_push(&rec, 200, "{\"access_token\":\"t3\",\"expires_in\":\"0\"}");
  ac_auth_get_token(a, &tok, &e);
  is_str(tok, "t2", "61: first token");
  free(tok);
  is_str(rec_get(&rec, 0)->body, "grant_type=client_credentials&"
         "client_id=my+id&client_secret=s%26cret", "61: no scope field");
  ac_auth_get_token(a, &tok, &e);
  is_str(tok, "t3", "61: expired token refreshed");
  free(tok);
  is_int(rec_count(&rec), 2, "61: two fetches");
  ac_auth_unref(a);

  tcase("a lifetime of 1 s: cached within it, refreshed once it has passed");
  /* A lifetime of 1 s: refreshed once it has passed. */
  rec_reset(&rec);
  a = mk_oauth("");
  rec_push(&rec, 200, "{\"access_token\":\"t4\",\"expires_in\":2}");
  rec_push(&rec, 200, "{\"access_token\":\"t5\"}");
  {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ac_auth_get_token(a, &tok, &e);
    is_str(tok, "t4", "61: first token of a 1 s lifetime");
    free(tok);
    /* before the lifetime ends, the cached token comes back unfetched */
    ac_auth_get_token(a, &tok, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000
        < 900) {
      is_str(tok, "t4", "61: cached within its lifetime");
      is_int(rec_count(&rec), 1, "61: one fetch within the lifetime");
    } else {
      skip_check("61: cached within its lifetime",
                 "two calls took longer than the lifetime here");
    }
    free(tok);
  }
  usleep(1300 * 1000);
  ac_auth_get_token(a, &tok, &e);
  is_str(tok, "t5", "61: refreshed after max(2-30, 2//2) = 1 s");
  free(tok);
  ok(strstr(rec_get(&rec, 0)->body, "scope") == NULL,
     "61: empty scope not sent");
  /* t5 came without expires_in: 3600 by default, so cached now. */
  ac_auth_get_token(a, &tok, &e);
  is_str(tok, "t5", "61: default expires_in caches");
  free(tok);
  is_int(rec_count(&rec), 2, "61: two fetches in all");
  ac_auth_unref(a);

  tcase("errors");
  /* Errors. */
  rec_reset(&rec);
  a = mk_oauth(NULL);
  rec_push(&rec, 401, "{\"error\":\"invalid_client\"}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "61: 401 is EAUTH");
  is_int(e.http_status, 401, "61: status kept");
  ok(strstr(e.msg, "invalid_client") != NULL, "61: message: %s", e.msg);
  ok(tok == NULL, "61: no token");
  rec_push(&rec, 200, "{\"token\":\"x\"}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH,
         "61: missing access_token");
  ok(strstr(e.msg, "access_token") != NULL, "61: %s", e.msg);
  rec_push(&rec, 200, "{\"access_token\":\"x\",\"expires_in\":null}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "61: null expires_in");
  rec_push(&rec, 200, "<html>");
  is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "61: not JSON");
  rec_push(&rec, 200, "{\"access_token\":\"ok\",\"expires_in\":3600.9}");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "61: recovers; float "
         "expires_in truncated like int()");
  free(tok);
  ac_auth_unref(a);

  tcase("used by a client: one token for both planes, fetched once");
  /* Used by a client: one token for both planes, fetched once. */
  {
    struct ac_client_config cfg;
    ac_client *c = NULL;
    ac_session *s = NULL;
    struct ac_exec_result r;
    char hdr[256];

    rec_reset(&rec);
    a = mk_oauth(NULL);
    ac_client_config_init(&cfg);
    cfg.workload_manager_url = rec.base;
    cfg.router_url = rec.base;
    cfg.auth = a;
    cfg.auth_token = "ignored";
    ac_client_new(&cfg, &c, &e);
    ac_auth_unref(a);                 /* the client holds its own ref */
    rec_push(&rec, 200, "{\"access_token\":\"ctok\",\"expires_in\":600}");
    rec_push(&rec, 200, "{\"sessionId\":\"s1\"}");
    rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
    rec_push(&rec, 200, "{}");
    is_int(ac_session_create(c, NULL, &s, &e), AC_OK, "client with OAuth");
    ac_session_exec_line(s, "true", NULL, &r, &e);
    ac_exec_result_free(&r);
    ac_session_stop(s, &e);
    is_int(count_uri("/oauth/token"), 1, "token fetched once");
    for (int i = 1; i < 4; i++)
      is_str(rec_header(rec_get(&rec, i), "Authorization", hdr, sizeof hdr),
             "Bearer ctok", "Bearer token on request %d (%s)", i,
             rec_get(&rec, i)->uri);
    ac_session_free(s);

    /* A provider failure stops the call before it is sent. */
    ac_client_free(c);
    rec_reset(&rec);
    a = mk_oauth(NULL);
    cfg.auth = a;
    ac_client_new(&cfg, &c, &e);
    ac_auth_unref(a);
    ac_session_attach(c, "s1", NULL, NULL, &s, &e);
    rec_push(&rec, 500, "{\"error\":\"down\"}");
    is_int(ac_session_exec_line(s, "true", NULL, &r, &e), AC_EAUTH,
           "token failure fails the call");
    ac_exec_result_free(&r);
    is_int(rec_count(&rec), 1, "only the token request was sent");
    ac_session_free(s);
    ac_client_free(c);
  }

  tcase("thread-safe: concurrent callers share one fetch");
  /* Thread-safe: concurrent callers share one fetch. */
  {
    pthread_t th[4];
    rec_reset(&rec);
    a = mk_oauth(NULL);
    rec_push_mode(&rec, 200, "{\"access_token\":\"mt\",\"expires_in\":600}",
                  REC_NORMAL, 200);
    for (int i = 0; i < 4; i++)
      pthread_create(&th[i], NULL, get_tokens, a);
    for (int i = 0; i < 4; i++)
      pthread_join(th[i], NULL);
    is_int(rec_count(&rec), 1, "40 concurrent calls, one fetch");
    ac_auth_unref(a);
  }

  rec_stop(&rec);
  ac_global_cleanup();
  return done_testing();
}
