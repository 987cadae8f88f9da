/*
** client.c -- configuration resolution and the ac_client object.
**
** Endpoints: explicit field > environment (WORKLOAD_MANAGER_URL,
** ROUTER_URL; empty counts as unset, as Python's `arg or os.getenv()`) >
** the local-runtime hook, asked only when neither URL is known. Knowing just
** one of them is a configuration error, as in the SDK (which raises
** ValueError for each missing URL before any HTTP).
*/
#include "job.h"

#include <stdlib.h>
#include <string.h>

enum ac_code ac_global_init(struct ac_error *err) {
  CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (cc != CURLE_OK)
    return ac_error_set(err, AC_ESYSTEM, "curl_global_init: %s",
                        curl_easy_strerror(cc));
  return AC_OK;
}

void ac_global_cleanup(void) {
  curl_global_cleanup();
}

void ac_client_config_init(struct ac_client_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->connect_timeout_ms = 5000;
  cfg->request_timeout_ms = 120000;
  cfg->upload_timeout_ms = 120000;
  cfg->exec_grace_ms = 2000;
  cfg->max_response = 64u * 1024 * 1024;
  cfg->max_retries = 3;
  cfg->retry_base_ms = 200;
  cfg->retry_max_ms = 2000;
  cfg->download_timeout_ms = 3600000;
  cfg->local_default = ac_local_default;
}

static const char *setting(const char *explicit_value, const char *env) {
  const char *v = explicit_value;
  if (v == NULL || v[0] == '\0')
    v = getenv(env);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* strdup without the trailing slashes, so "{wm}/v1/..." never gets "//". */
static char *dup_base(const char *url) {
  size_t n = strlen(url);
  while (n > 0 && url[n - 1] == '/')
    n--;
  return strndup(url, n);
}

static void share_lock(CURL *easy, curl_lock_data data,
                       curl_lock_access access, void *ud) {
  ac_client *c = ud;
  (void)easy;
  (void)access;
  pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *ud) {
  ac_client *c = ud;
  (void)easy;
  pthread_mutex_unlock(&c->share_mu[data]);
}

CURLcode ac_client_share(ac_client *c, CURL *easy) {
  if (c->share == NULL)
    return CURLE_OK;
  return curl_easy_setopt(easy, CURLOPT_SHARE, c->share);
}

ac_engine *ac_client_engine_get(ac_client *c, struct ac_error *err) {
  ac_engine *e = NULL;
  pthread_mutex_lock(&c->eng_mu);
  if (c->nidle_eng > 0)
    e = c->idle_eng[--c->nidle_eng];
  pthread_mutex_unlock(&c->eng_mu);
  if (e == NULL && ac_engine_new(&e, err) != AC_OK)
    return NULL;
  ac_engine_set_interrupt_flag(e, c->interrupt);
  return e;
}

void ac_client_engine_put(ac_client *c, ac_engine *e) {
  if (e == NULL)
    return;
  pthread_mutex_lock(&c->eng_mu);
  if (c->nidle_eng < AC_ENGINE_POOL) {
    c->idle_eng[c->nidle_eng++] = e;
    e = NULL;
  }
  pthread_mutex_unlock(&c->eng_mu);
  ac_engine_free(e);
}

static void client_destroy(ac_client *c) {
  while (c->nidle_eng > 0)
    ac_engine_free(c->idle_eng[--c->nidle_eng]);
  if (c->share != NULL)
    curl_share_cleanup(c->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&c->share_mu[i]);
  pthread_mutex_destroy(&c->eng_mu);
  ac_http_free(c->http);
  ac_auth_unref(c->auth);
  ac_auth_unref(c->cp_auth);
  free(c->wm_url);
  free(c->router_url);
  free(c);
}

ac_client *ac_client_ref(ac_client *c) {
  atomic_fetch_add(&c->refs, 1);
  return c;
}

void ac_client_free(ac_client *c) {
  if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
    client_destroy(c);
}

/* The control plane's fallback: the service-account token file, read once
** (missing or empty: no auth), like the SDK's ControlPlaneClient. */
static enum ac_code sa_token_auth(const char *path, ac_auth **out,
                                  struct ac_error *err) {
  enum ac_code rc;
  char *tok = NULL;
  *out = NULL;
  rc = ac_read_token_file(path, &tok, err);
  if (rc == AC_ENOTFOUND) {
    ac_error_clear(err);
    return AC_OK;
  }
  if (rc == AC_OK && tok[0] != '\0')
    rc = ac_auth_new_token(tok, out, err);
  if (tok != NULL)
    explicit_bzero(tok, strlen(tok));
  free(tok);
  return rc;
}

enum ac_code ac_client_new(const struct ac_client_config *cfg, ac_client **out,
                           struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct ac_client_config def;
  struct ac_local_endpoint *local = NULL;
  struct ac_http_policy pol;
  const char *wm, *router, *local_token = NULL;
  ac_client *c = NULL;

  *out = NULL;
  if (cfg == NULL) {
    ac_client_config_init(&def);
    cfg = &def;
  }
  wm = setting(cfg->workload_manager_url, "WORKLOAD_MANAGER_URL");
  router = setting(cfg->router_url, "ROUTER_URL");
  if (wm == NULL && router == NULL) {
    if (cfg->local_default == NULL) {
      rc = ac_error_set(err, AC_ECONFIG,
                        "no AgentCube endpoint: set WORKLOAD_MANAGER_URL and "
                        "ROUTER_URL (or pass both URLs), or use the local "
                        "runtime");
      goto fail;
    }
    local = calloc(1, sizeof *local);
    if (local == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
      goto fail;
    }
    rc = cfg->local_default(cfg->local_ud, local, err);
    if (rc != AC_OK)
      goto fail;
    local->url[sizeof local->url - 1] = '\0';
    local->token[sizeof local->token - 1] = '\0';
    if (local->url[0] == '\0') {
      rc = ac_error_set(err, AC_ECONFIG, "the local runtime gave no URL");
      goto fail;
    }
    wm = router = local->url;
    if (local->token[0] != '\0')
      local_token = local->token;
  } else if (wm == NULL) {
    rc = ac_error_set(err, AC_ECONFIG,
                      "Workload Manager URL must be provided via "
                      "'workload_manager_url' or WORKLOAD_MANAGER_URL");
    goto fail;
  } else if (router == NULL) {
    rc = ac_error_set(err, AC_ECONFIG,
                      "Router URL must be provided via 'router_url' or "
                      "ROUTER_URL");
    goto fail;
  }
  rc = ac_url_check(wm, "workload manager URL", err);
  if (rc == AC_OK)
    rc = ac_url_check(router, "router URL", err);
  if (rc != AC_OK)
    goto fail;

  c = calloc(1, sizeof *c);
  if (c == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  atomic_init(&c->refs, 1);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&c->share_mu[i], NULL);
  pthread_mutex_init(&c->eng_mu, NULL);
  c->share = curl_share_init();
  if (c->share == NULL ||
      curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock)
        != CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock)
        != CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT)
        != CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)
        != CURLSHE_OK) {
    rc = ac_error_set(err, AC_ENOMEM, "curl_share_init failed");
    goto fail;
  }
  c->interrupt = cfg->interrupt;
  c->local = local != NULL;
  c->wm_url = dup_base(wm);
  c->router_url = strdup(router);
  if (c->wm_url == NULL || c->router_url == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  c->connect_timeout_ms = cfg->connect_timeout_ms > 0
                        ? cfg->connect_timeout_ms : 5000;
  c->request_timeout_ms = cfg->request_timeout_ms > 0
                        ? cfg->request_timeout_ms : 120000;
  c->upload_timeout_ms = cfg->upload_timeout_ms > 0
                       ? cfg->upload_timeout_ms : 120000;
  c->exec_grace_ms = cfg->exec_grace_ms > 0 ? cfg->exec_grace_ms : 2000;
  c->max_response = cfg->max_response > 0 ? cfg->max_response
                                          : 64u * 1024 * 1024;
  c->download_timeout_ms = cfg->download_timeout_ms < 0 ? 0
                         : cfg->download_timeout_ms > 0
                         ? cfg->download_timeout_ms : 3600000;
  c->max_download = cfg->max_download;

  /* Auth: provider > token > local token (both planes); the control plane
  ** alone falls back to the service-account token of a remote cluster. */
  if (cfg->auth != NULL)
    c->auth = ac_auth_ref(cfg->auth);
  else if (cfg->auth_token != NULL && cfg->auth_token[0] != '\0')
    rc = ac_auth_new_token(cfg->auth_token, &c->auth, err);
  else if (local_token != NULL)
    rc = ac_auth_new_token(local_token, &c->auth, err);
  if (rc != AC_OK)
    goto fail;
  if (c->auth != NULL) {
    c->cp_auth = ac_auth_ref(c->auth);
  } else if (!c->local) {
    const char *path = cfg->sa_token_path ? cfg->sa_token_path
                                          : AC_SA_TOKEN_PATH;
    if (path[0] != '\0')
      rc = sa_token_auth(path, &c->cp_auth, err);
    if (rc != AC_OK)
      goto fail;
  }

  memset(&pol, 0, sizeof pol);
  pol.verbose = cfg->verbose;
  pol.log = cfg->log;
  pol.log_ud = cfg->log_ud;
  pol.max_retries = cfg->max_retries != 0 ? cfg->max_retries : 3;
  pol.retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 200;
  pol.retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 2000;
  rc = ac_http_new(&pol, &c->http, err);
  if (rc != AC_OK)
    goto fail;
  if (local != NULL)
    explicit_bzero(local, sizeof *local);
  free(local);
  *out = c;
  return AC_OK;
fail:
  if (local != NULL)
    explicit_bzero(local, sizeof *local);
  free(local);
  if (c != NULL)
    client_destroy(c);
  return rc;
}

const char *ac_client_workload_manager_url(const ac_client *c) {
  return c->wm_url;
}

const char *ac_client_router_url(const ac_client *c) {
  return c->router_url;
}

int ac_client_is_local(const ac_client *c) {
  return c->local || atomic_load(&((ac_client *)c)->runtime_local);
}
