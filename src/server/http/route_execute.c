/*
** route_execute.c -- POST .../invocations/api/execute (PicoD's execute).
*/
#include "budget.h"
#include "duration.h"
#include "reply.h"
#include "routes.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks the request and fills argv/env; *msg says what is wrong. */
static int parse_request(json_t *body, const struct ac_template *tpl,
                         const char ***argv, const char ***env,
                         const char **workdir, long long *timeout_ns,
                         char *msg, size_t msgsz) {
  json_t *cmd, *v, *envobj;
  size_t n, ntpl = 0, nenv, i;
  const char *key;
  struct ac_error err;

  if (!json_is_object(body)) {
    snprintf(msg, msgsz, "request body must be a JSON object");
    return 0;
  }
  cmd = json_object_get(body, "command");
  if (cmd == NULL || json_is_null(cmd)) {
    snprintf(msg, msgsz, "Key: 'ExecuteRequest.Command' Error:Field "
             "validation for 'Command' failed on the 'required' tag");
    return 0;
  }
  if (!json_is_array(cmd)) {
    snprintf(msg, msgsz, "command must be an array of strings");
    return 0;
  }
  if ((n = json_array_size(cmd)) == 0) {
    snprintf(msg, msgsz, "command cannot be empty");
    return 0;
  }
  json_array_foreach(cmd, i, v) {
    if (!json_is_string(v)) {
      snprintf(msg, msgsz, "command must be an array of strings");
      return 0;
    }
  }
  v = json_object_get(body, "timeout");
  *timeout_ns = tpl->command_timeout_ns;
  if (v && !json_is_null(v)) {
    if (!json_is_string(v)) {
      snprintf(msg, msgsz, "timeout must be a duration string such as "
               "\"30s\"");
      return 0;
    }
    if (*json_string_value(v) &&
        ac_duration_parse(json_string_value(v), timeout_ns, &err) != AC_OK) {
      snprintf(msg, msgsz, "Invalid timeout format: %s", err.msg);
      return 0;
    }
  }
  v = json_object_get(body, "working_dir");
  *workdir = NULL;
  if (v && !json_is_null(v)) {
    if (!json_is_string(v)) {
      snprintf(msg, msgsz, "working_dir must be a string");
      return 0;
    }
    if (*json_string_value(v))
      *workdir = json_string_value(v);
  }
  envobj = json_object_get(body, "env");
  if (envobj && !json_is_null(envobj) && !json_is_object(envobj)) {
    snprintf(msg, msgsz, "env must be an object of strings");
    return 0;
  }
  json_object_foreach(envobj, key, v) {
    if (!json_is_string(v) || !*key || strchr(key, '=')) {
      snprintf(msg, msgsz, "env entry '%s' must be a string under a name "
               "without '='", key);
      return 0;
    }
  }
  while (tpl->env && tpl->env[ntpl])
    ntpl++;
  nenv = ntpl + json_object_size(envobj);
  *argv = calloc(n + 1, sizeof **argv);
  *env = calloc(nenv + 1, sizeof **env);
  if (*argv == NULL || *env == NULL) {
    snprintf(msg, msgsz, "out of memory");
    return 0;
  }
  json_array_foreach(cmd, i, v)
    (*argv)[i] = json_string_value(v);
  for (i = 0; i < ntpl; i++)
    (*env)[i] = tpl->env[i];
  /* The request's "NAME=value" strings are malloc'd; the caller frees
  ** the entries past the template's. */
  json_object_foreach(envobj, key, v) {
    size_t len = strlen(key) + strlen(json_string_value(v)) + 2;
    char *kv = malloc(len);
    if (kv == NULL) {
      snprintf(msg, msgsz, "out of memory");
      return 0;
    }
    snprintf(kv, len, "%s=%s", key, json_string_value(v));
    (*env)[i++] = kv;
  }
  return 1;
}

enum MHD_Result route_execute(struct req *r) {
  const struct ac_template *tpl = r->sess->tpl;
  json_error_t jerr;
  const char *why = NULL;
  json_t *body = r->body ? budget_json_load(r->srv->cfg, r->body, r->len,
                                            &jerr, &why) : NULL;
  const char **argv = NULL, **env = NULL, *workdir = NULL;
  char msg[512], mapped[4096], sbxdir[4200], t0[40], t1[40];
  long long timeout_ns = 0;
  struct sbx_exec_request er;
  struct sbx_exec_result res;
  struct ac_error err;
  struct fapi_root root;
  enum MHD_Result ret;
  size_t ntpl = 0;
  json_t *o;

  if (body == NULL && r->len > 0) {
    ret = reply_error(r, FAM_PICOD, 400, "invalid JSON: %s", why);
    goto out;
  }
  if (!parse_request(body, tpl, &argv, &env, &workdir, &timeout_ns, msg,
                     sizeof msg)) {
    ret = reply_error(r, FAM_PICOD, 400, "%s", msg);
    goto out;
  }
  req_fapi_root(r, &root);
  memset(&er, 0, sizeof er);
  if (workdir) {
    if (fapi_map_path(workdir, mapped, sizeof mapped, &err) != AC_OK) {
      ret = reply_error(r, FAM_PICOD, 400, "Invalid working directory: %s",
                        err.msg);
      goto out;
    }
    if (fapi_mkdirs(&root, workdir, &err) != AC_OK) {
      ret = reply_error(r, FAM_PICOD, err.code == AC_ESYSTEM ? 500 : 400,
                        "Failed to create working directory: %s", err.msg);
      goto out;
    }
    snprintf(sbxdir, sizeof sbxdir, "/%s", mapped);
    er.working_dir = sbxdir;
  }
  er.argv = argv;
  er.env = env;
  er.timeout_ns = timeout_ns;
  er.max_output = tpl->max_output;
  if (sbx_exec(r->sess->box, &er, &res, &err) != AC_OK) {
    ret = reply_error(r, FAM_PICOD, 500, "Failed to run command: %s",
                      err.msg);
    goto out;
  }
  {
    size_t olen, elen, need;
    char *out = utf8_sanitize(res.out, res.out_len, &olen);
    char *errs = utf8_sanitize(res.err, res.err_len, &elen);
    /* The answer's size is bounded by the output limit in encoded
    ** bytes, whatever the bytes are. */
    if (out && errs) {
      size_t ofit = budget_json_fit(out, olen, tpl->max_output);
      size_t efit = budget_json_fit(errs, elen, tpl->max_output);
      res.out_truncated |= ofit < olen;
      res.err_truncated |= efit < elen;
      olen = ofit;
      elen = efit;
      /* the strings once in the JSON tree, once encoded in the answer */
      need = olen + elen + budget_json_size(out, olen) +
             budget_json_size(errs, elen) + 1024;
      if (!budget_pool_take(need)) {
        if (out != res.out)
          free(out);
        if (errs != res.err)
          free(errs);
        sbx_exec_result_free(&res);
        ret = reply_json(r, 503, json_pack(
          "{s:s, s:i}", "error", "server busy: the memory budget of "
          "requests in flight (maxRequestMemory) is spent; try again later",
          "code", 503));
        goto out;
      }
      r->reserved += need;
    }
    o = out && errs ? json_pack(
      "{s:s%, s:s%, s:i, s:f, s:s, s:s}",
      "stdout", out, olen, "stderr", errs, elen,
      "exit_code", res.exit_code,
      "duration", (double)(res.end.tv_sec - res.start.tv_sec) +
        (double)(res.end.tv_nsec - res.start.tv_nsec) / 1e9,
      "start_time", fapi_rfc3339(res.start, t0),
      "end_time", fapi_rfc3339(res.end, t1)) : NULL;
    if (out != res.out)
      free(out);
    if (errs != res.err)
      free(errs);
  }
  if (o && (res.out_truncated || res.err_truncated)) {
    /* Say the cap in the response so that a client can tell. */
    json_object_set_new(o, "stdout_truncated",
                        json_boolean(res.out_truncated));
    json_object_set_new(o, "stderr_truncated",
                        json_boolean(res.err_truncated));
    json_object_set_new(o, "output_limit_bytes",
                        json_integer((json_int_t)(tpl->max_output)));
  }
  if (o && res.timed_out)
    json_object_set_new(o, "timed_out", json_true());
  if (o && res.oom_killed)
    json_object_set_new(o, "oom_killed", json_true());
  sbx_exec_result_free(&res);
  if (o == NULL) {
    ret = reply_error(r, FAM_PICOD, 500, "out of memory");
    goto out;
  }
  ret = reply_json(r, 200, o);
out:
  while (tpl->env && tpl->env[ntpl])
    ntpl++;
  for (size_t i = ntpl; env && env[i]; i++)
    free((char *)env[i]);
  free(env);
  free(argv);
  json_decref(body);
  return ret;
}
