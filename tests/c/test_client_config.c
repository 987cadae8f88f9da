/* libagentcube configuration: URL resolution (explicit > environment >
** local hook), errors before any HTTP, local state files, and the auth
** providers that need no network. */
#include "agentcube.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int hook_calls;

static enum ac_code local_hook(void *ud, struct ac_local_endpoint *out,
                               struct ac_error *err) {
  (void)err;
  hook_calls++;
  snprintf(out->url, sizeof out->url, "%s", (const char *)ud);
  snprintf(out->token, sizeof out->token, "local-token");
  return AC_OK;
}

static enum ac_code failing_hook(void *ud, struct ac_local_endpoint *out,
                                 struct ac_error *err) {
  (void)ud;
  (void)out;
  return ac_error_set(err, AC_ECONNECT, "serve did not start");
}

static enum ac_code empty_hook(void *ud, struct ac_local_endpoint *out,
                               struct ac_error *err) {
  (void)ud;
  (void)err;
  memset(out, 0, sizeof *out);
  return AC_OK;                       /* "found" a server, gave no URL */
}

static int freed_ud;

static void free_ud(void *ud) {
  (void)ud;
  freed_ud++;
}

static enum ac_code cb_token(void *ud, char **token, struct ac_error *err) {
  const char *what = ud;
  if (strcmp(what, "fail") == 0)
    return ac_error_set(err, AC_EAUTH, "no token today");
  *token = strdup(what);
  return AC_OK;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
}

int main(void) {
  plan(9);
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  ac_auth *a = NULL;
  char *tok = NULL;
  char dir[] = "/tmp/ac-config-XXXXXX", path[256];

  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  if (mkdtemp(dir) == NULL)
    return 1;

  tcase("Checklist 47: no URLs and no local runtime: a clear error");
  /* Checklist 47: no URLs and no local runtime: a clear error. */
  ac_client_config_init(&cfg);
  ok(cfg.local_default == ac_local_default, "the local runtime is the "
     "default hook");
  cfg.local_default = NULL;
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG, "no URLs: ECONFIG");
  ok(strstr(e.msg, "WORKLOAD_MANAGER_URL") != NULL, "message names the "
     "variables: %s", e.msg);
  ok(c == NULL, "no client");

  setenv("ROUTER_URL", "http://router:8081", 1);
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG, "router only: ECONFIG");
  ok(strstr(e.msg, "Workload Manager URL") != NULL, "names the missing WM "
     "URL: %s", e.msg);
  unsetenv("ROUTER_URL");
  setenv("WORKLOAD_MANAGER_URL", "http://wm:8080", 1);
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG, "WM only: ECONFIG");
  ok(strstr(e.msg, "Router URL") != NULL, "names the missing router URL: %s",
     e.msg);

  tcase("environment");
  /* Environment. */
  setenv("ROUTER_URL", "http://router:8081/prefix", 1);
  cfg.sa_token_path = "";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "URLs from the environment");
  is_str(ac_client_workload_manager_url(c), "http://wm:8080", "WM from env");
  is_str(ac_client_router_url(c), "http://router:8081/prefix",
         "router from env");
  {
    ac_session *s = NULL;
    is_int(ac_session_attach(c, "id-1", "ci", "ns-1", &s, &e), AC_OK,
           "attach");
    is_str(ac_session_base_url(s), "http://router:8081/v1/namespaces/ns-1/"
           "code-interpreters/ci/invocations/",
           "data-plane base: urljoin drops the router URL's path");
    ac_session_free(s);
  }
  ac_client_free(c);

  tcase("explicit beats environment; \"\" counts as unset; trailing '/' dropped");
  /* Explicit beats environment; "" counts as unset; trailing '/' dropped. */
  cfg.workload_manager_url = "http://explicit:1/base//";
  cfg.router_url = "";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "explicit URL");
  is_str(ac_client_workload_manager_url(c), "http://explicit:1/base",
         "explicit WM wins, trailing slashes dropped");
  is_str(ac_client_router_url(c), "http://router:8081/prefix",
         "empty router argument falls back to env");
  ac_client_free(c);

  cfg.workload_manager_url = "localhost:8080";
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG, "URL without scheme");
  cfg.workload_manager_url = "ftp://host/";
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG, "non-http URL");
  ok(strstr(e.msg, "http") != NULL, "message: %s", e.msg);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");

  tcase("the local hook: only when neither URL is known");
  /* The local hook: only when neither URL is known. */
  ac_client_config_init(&cfg);
  cfg.local_default = local_hook;
  cfg.local_ud = "http://127.0.0.1:9999";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "local hook used");
  is_int(hook_calls, 1, "hook called once");
  is_str(ac_client_workload_manager_url(c), "http://127.0.0.1:9999",
         "local URL as WM");
  is_str(ac_client_router_url(c), "http://127.0.0.1:9999",
         "local URL as router");
  ac_client_free(c);
  cfg.workload_manager_url = "http://wm:1";
  cfg.router_url = "http://router:2";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "explicit URLs");
  is_int(hook_calls, 1, "hook not called when URLs are given");
  ac_client_free(c);
  cfg.router_url = NULL;
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG,
         "one URL given: no local fallback for the other");
  is_int(hook_calls, 1, "hook still not called");
  ac_client_config_init(&cfg);
  cfg.local_default = failing_hook;
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONNECT, "hook error returned");
  is_str(e.msg, "serve did not start", "hook message kept");
  cfg.local_default = empty_hook;
  c = NULL;
  is_int(ac_client_new(&cfg, &c, &e), AC_ECONFIG,
         "a hook that gives no URL: ECONFIG");
  is_str(e.msg, "the local runtime gave no URL", "says so");
  ok(c == NULL, "no client");
  /* no configuration at all: the environment */
  setenv("WORKLOAD_MANAGER_URL", "http://wm-env:1", 1);
  setenv("ROUTER_URL", "http://router-env:2", 1);
  is_int(ac_client_new(NULL, &c, &e), AC_OK, "a NULL configuration");
  is_str(c ? ac_client_router_url(c) : "", "http://router-env:2",
         "takes the environment's URLs");
  ac_client_free(c);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");

  tcase("local state files");
  /* Local state files. */
  {
    struct ac_local_endpoint ep;
    char home[512];
    is_int(ac_local_read_state(dir, &ep, &e), AC_ENOTFOUND,
           "no serve.json: ENOTFOUND");
    snprintf(path, sizeof path, "%s/serve.json", dir);
    write_file(path, "{\"url\": \"http://127.0.0.1:8123\", \"pid\": 42}");
    is_int(ac_local_read_state(dir, &ep, &e), AC_OK, "serve.json read");
    is_str(ep.url, "http://127.0.0.1:8123", "URL from serve.json");
    is_str(ep.token, "", "no token file: no token");
    snprintf(path, sizeof path, "%s/token", dir);
    write_file(path, "  s3cret\n");
    is_int(ac_local_read_state(dir, &ep, &e), AC_OK, "with token");
    is_str(ep.token, "s3cret", "token stripped");
    snprintf(path, sizeof path, "%s/serve.json", dir);
    write_file(path, "{\"url\":\"http://127.0.0.1:8123\",\"pid\":1,"
               "\"auth\":false}");
    is_int(ac_local_read_state(dir, &ep, &e), AC_OK, "serve --no-auth");
    is_str(ep.token, "", "auth false: no token sent");
    snprintf(path, sizeof path, "%s/serve.json", dir);
    write_file(path, "{\"url\": 5}");
    is_int(ac_local_read_state(dir, &ep, &e), AC_EPROTO, "bad serve.json");
    write_file(path, "{oops");
    is_int(ac_local_read_state(dir, &ep, &e), AC_EPROTO, "broken JSON");
    setenv("AGENTCUBE_HOME", dir, 1);
    is_int(ac_local_home(home, sizeof home, &e), AC_OK, "home from env");
    is_str(home, dir, "AGENTCUBE_HOME wins");
    unsetenv("AGENTCUBE_HOME");
    setenv("HOME", "/home/someone", 1);
    is_int(ac_local_home(home, sizeof home, &e), AC_OK, "home default");
    is_str(home, "/home/someone/.agentcube", "~/.agentcube");
    is_int(ac_local_home(home, 8, &e), AC_ETOOBIG, "small buffer");
  }

  tcase("static tokens (TokenAuth)");
  /* Static tokens (TokenAuth). */
  is_int(ac_auth_new_token("", &a, &e), AC_EINVAL, "empty token refused");
  is_str(e.msg, "Token must not be empty", "SDK's message");
  is_int(ac_auth_new_token(NULL, &a, &e), AC_EINVAL, "NULL token refused");
  is_int(ac_auth_new_token("a\r\nX: y", &a, &e), AC_EINVAL,
         "header injection refused");
  is_int(ac_auth_new_token("tok", &a, &e), AC_OK, "static token");
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "get token");
  is_str(tok, "tok", "token value");
  free(tok);
  ok(ac_auth_ref(a) == a, "ref returns the provider");
  ac_auth_unref(a);
  is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "alive after one unref");
  free(tok);
  ac_auth_unref(a);
  ac_auth_unref(NULL);

  tcase("token files");
  /* Token files. */
  snprintf(path, sizeof path, "%s/sa-token", dir);
  is_int(ac_auth_new_token_file(path, &a, &e), AC_ENOTFOUND,
         "missing token file");
  write_file(path, "\n\t  \n");
  is_int(ac_auth_new_token_file(path, &a, &e), AC_ENOTFOUND,
         "blank token file");
  write_file(path, "\n  eyJhbGciOi.x.y  \n\n");
  is_int(ac_auth_new_token_file(path, &a, &e), AC_OK, "token file");
  ac_auth_get_token(a, &tok, &e);
  is_str(tok, "eyJhbGciOi.x.y", "whitespace stripped");
  free(tok);
  ac_auth_unref(a);
  is_int(ac_auth_new_token_file(dir, &a, &e), AC_EAUTH,
         "a directory is an error, not 'missing'");

  tcase("a service-account path that cannot be read fails the client");
  /* A service-account path that cannot be read fails the client, like the
  ** SDK (only a missing file means "no auth"). */
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = "http://wm:1";
  cfg.router_url = "http://router:2";
  cfg.sa_token_path = dir;
  is_int(ac_client_new(&cfg, &c, &e), AC_EAUTH, "unreadable SA token");
  snprintf(path, sizeof path, "%s/missing", dir);
  cfg.sa_token_path = path;
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "missing SA token: no auth");
  ac_client_free(c);
  cfg.auth_token = "";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "empty auth_token ignored");
  ac_client_free(c);

  tcase("callback providers");
  /* Callback providers. */
  {
    is_int(ac_auth_new_callback(NULL, NULL, NULL, &a, &e), AC_EINVAL,
           "NULL callback refused");
    is_int(ac_auth_new_callback(cb_token, "cb-tok", free_ud, &a, &e), AC_OK,
           "callback provider");
    ac_auth_unref(a);
    ac_auth_new_callback(cb_token, "cb-tok", NULL, &a, &e);
    is_int(ac_auth_get_token(a, &tok, &e), AC_OK, "callback token");
    is_str(tok, "cb-tok", "callback value");
    free(tok);
    ac_auth_unref(a);
    ac_auth_new_callback(cb_token, "fail", NULL, &a, &e);
    is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "callback error");
    is_str(e.msg, "no token today", "callback message kept");
    ok(tok == NULL, "no token on error");
    ac_auth_unref(a);
    ac_auth_new_callback(cb_token, "", NULL, &a, &e);
    is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "empty callback token");
    ac_auth_unref(a);
    ac_auth_new_callback(cb_token, "x\ny", NULL, &a, &e);
    is_int(ac_auth_get_token(a, &tok, &e), AC_EAUTH, "newline in token");
    ac_auth_unref(a);
    ac_auth_new_callback(cb_token, "z", free_ud, &a, &e);
    ac_auth_ref(a);
    ac_auth_unref(a);
    is_int(freed_ud, 1, "user data kept while referenced");
    ac_auth_unref(a);
    is_int(freed_ud, 2, "user data freed with the last reference");
  }

  {
    struct ac_oauth_config oc;
    memset(&oc, 0, sizeof oc);
    is_int(ac_auth_new_oauth(&oc, &a, &e), AC_EINVAL, "OAuth needs fields");
    oc.token_url = "not a url";
    oc.client_id = "id";
    oc.client_secret = "secret";
    is_int(ac_auth_new_oauth(&oc, &a, &e), AC_ECONFIG, "OAuth URL checked");
  }

  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  if (system(path) != 0)
    return 1;
  return done_testing();
}
