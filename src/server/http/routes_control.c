/*
** routes_control.c -- health routes and the WorkloadManager's control
** plane (create, delete), plus the local listing extensions.
*/
#include "conns.h"
#include "budget.h"
#include "reply.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result create(struct req *r) {
  struct ac_server *srv = r->srv;
  json_t *body, *v;
  const char *ns = "", *name = "";
  long long ttl = 0;
  const struct ac_template *tpl;
  struct srv_session *s;
  struct ac_error err;
  char sandbox_name[300], when[40];
  json_t *resp;

  if (r->too_big)
    return reply_error(r, FAM_WM, 413, "request body too large");
  {
    json_error_t jerr;
    const char *why;
    body = budget_json_load(srv->cfg, r->body, r->len, &jerr, &why);
  }
  if (!json_is_object(body))
    goto invalid;
  /* Strings where the Go server decodes strings; anything else is an
  ** undecodable body, as there. ttl and metadata are ours to read. */
  if ((v = json_object_get(body, "kind")) && !json_is_string(v) &&
      !json_is_null(v))
    goto invalid;
  if ((v = json_object_get(body, "namespace")) && !json_is_null(v)) {
    if (!json_is_string(v))
      goto invalid;
    ns = json_string_value(v);
  }
  if ((v = json_object_get(body, "name")) && !json_is_null(v)) {
    if (!json_is_string(v))
      goto invalid;
    name = json_string_value(v);
  }
  if ((v = json_object_get(body, "ttl")) && !json_is_null(v)) {
    if (!json_is_number(v) || json_number_value(v) < 0)
      goto invalid;
    ttl = (long long)json_number_value(v);
  }
  if (*ns == '\0') {
    json_decref(body);
    return reply_error(r, FAM_WM, 400, "namespace is required");
  }
  if (*name == '\0') {
    json_decref(body);
    return reply_error(r, FAM_WM, 400, "name is required");
  }
  tpl = ac_config_find(srv->cfg, ns, name);
  if (tpl == NULL) {
    json_decref(body);
    return reply_error(r, FAM_WM, 404, "code interpreter not found");
  }
  if (ac_store_create(srv->store, tpl, ns, name, ttl, &s, &err) != AC_OK) {
    json_decref(body);
    fprintf(stderr, "agentcube: create: %s\n", err.msg);
    /* what the host cannot give: 503 (try later; ELIMIT) or 507 (disk;
    ** ETOOBIG); ECONFIG: the template's image is not built (the message
    ** names the command that builds it) */
    int tell = err.code == AC_ELIMIT || err.code == AC_ECONFIG ||
               err.code == AC_ETOOBIG;
    return reply_error(r, FAM_WM, err.code == AC_ETOOBIG ? 507
                                : tell ? 503 : 500,
                       "%s", tell ? err.msg : "internal server error");
  }
  snprintf(sandbox_name, sizeof sandbox_name, "%s-%.8s", name, s->id);
  json_decref(body);
  resp = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}], s:s}",
                   "kind", "Sandbox", "sessionId", s->id,
                   "sandboxId", s->id, "sandboxName", sandbox_name,
                   "entryPoints", "path", "/", "protocol", "HTTP",
                   "endpoint", srv->endpoint,
                   "expiresAt", rfc3339_secs(s->expires_at, when));
  snprintf(r->sid, sizeof r->sid, "%s", s->id);
  ac_store_release(srv->store, s);
  return reply_json(r, 200, resp);
invalid:
  json_decref(body);
  return reply_error(r, FAM_WM, 400, "Invalid request body");
}

static json_t *session_json(const struct srv_session *s) {
  char c[40], e[40], a[40];
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
                   "sessionId", s->id, "name", s->name,
                   "namespace", s->namespace_,
                   "createdAt", rfc3339_secs(s->created_at, c),
                   "expiresAt", rfc3339_secs(s->expires_at, e),
                   "lastActivityAt", rfc3339_secs(s->last_activity, a));
}

static enum MHD_Result list(struct req *r) {
  struct srv_session **all;
  size_t n;
  struct ac_error err;
  json_t *arr;

  if (ac_store_list(r->srv->store, &all, &n, &err) != AC_OK)
    return reply_error(r, FAM_WM, 500, "internal server error");
  arr = json_array();
  for (size_t i = 0; i < n; i++) {
    if (arr)
      json_array_append_new(arr, session_json(all[i]));
    ac_store_release(r->srv->store, all[i]);
  }
  free(all);
  return reply_json(r, 200, json_pack("{s:o}", "sessions", arr));
}

static enum MHD_Result info(struct req *r) {
  struct srv_session *s = ac_store_get(r->srv->store, r->id, 0);
  const struct ac_template *t;
  json_t *o;

  if (s == NULL)
    return reply_error(r, FAM_WM, 404,
                       "Session ID %s not found, maybe already deleted",
                       r->id);
  t = s->tpl;
  o = session_json(s);
  json_object_set_new(o, "idleTimeoutSeconds",
                      json_integer(s->idle_timeout_s));
  json_object_set_new(o, "limits", json_pack(
    "{s:I, s:I, s:i, s:i, s:b}",
    "memoryBytes", (json_int_t)t->limits.memory_bytes,
    "diskBytes", (json_int_t)t->limits.disk_bytes,
    "pids", (int)t->limits.pids, "cpuMillis", (int)t->limits.cpu_millis,
    "network", t->limits.network));
  ac_store_release(r->srv->store, s);
  return reply_json(r, 200, o);
}

enum MHD_Result route_control(struct req *r) {
  struct ac_error err;
  switch (r->route) {
  case R_HEALTH:
    return reply_json(r, 200, json_pack("{s:s}", "status", "healthy"));
  case R_LIVE:
    return reply_json(r, 200, json_pack("{s:s}", "status", "alive"));
  case R_READY:
    return reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
  case R_CREATE:
    return create(r);
  case R_CREATE_AGENT:
    return reply_error(r, FAM_WM, 404, "agent runtime not found");
  case R_DELETE: {
    /* The reference keeps the session's address a valid key while its
    ** requests are ended. */
    struct srv_session *s = ac_store_get(r->srv->store, r->id, 0);
    if (ac_store_delete(r->srv->store, r->id, &err) != AC_OK) {
      if (s)
        ac_store_release(r->srv->store, s);
      return reply_error(r, FAM_WM, 404, "%s", err.msg);
    }
    /* Delete ends every request of the session: uploads that trickle,
    ** downloads, commands. Their connections close and release the
    ** session, so the box goes with the last of them. */
    if (s) {
      conns_abort_key(r->srv->conns, s);
      ac_store_release_reap(r->srv->store, s);
    }
    snprintf(r->sid, sizeof r->sid, "%s", r->id);
    return reply_error(r, FAM_WM, 200, "Sandbox deleted successfully");
  }
  case R_LIST:
    return list(r);
  case R_INFO:
    return info(r);
  case R_NONE: case R_INVOKE: case R_NOT_FOUND:
    break;
  }
  return reply_text(r, 404, "404 page not found");
}
