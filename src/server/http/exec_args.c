/*
** exec_args.c -- the command part of execute and process requests (see
** exec_args.h).
*/
#include "exec_args.h"
#include "duration.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks the request and fills argv/env; *msg says what is wrong. */
static int parse_request(json_t *body, const struct ac_template *tpl,
                         const char ***argv, const char ***env,
                         const char **workdir, long long *timeout_ns,
                         long long default_timeout_ns,
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
  *timeout_ns = default_timeout_ns;
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

int exec_args_parse(json_t *body, const struct ac_template *tpl,
                    long long default_timeout_ns, struct exec_args *a,
                    char *msg, size_t msgsz) {
  memset(a, 0, sizeof *a);
  while (tpl->env && tpl->env[a->ntpl])
    a->ntpl++;
  return parse_request(body, tpl, &a->argv, &a->env, &a->workdir,
                       &a->timeout_ns, default_timeout_ns, msg, msgsz);
}

int exec_args_request(struct req *r, struct exec_args *a,
                      struct sbx_exec_request *er) {
  char mapped[4096];
  struct fapi_root root;
  struct ac_error err;

  memset(er, 0, sizeof *er);
  if (a->workdir) {
    if (fapi_map_path(a->workdir, mapped, sizeof mapped, &err) != AC_OK) {
      reply_error(r, FAM_PICOD, 400, "Invalid working directory: %s",
                  err.msg);
      return 0;
    }
    req_fapi_root(r, &root);
    if (fapi_mkdirs(&root, a->workdir, &err) != AC_OK) {
      reply_error(r, FAM_PICOD, err.code == AC_ESYSTEM ? 500 : 400,
                  "Failed to create working directory: %s", err.msg);
      return 0;
    }
    snprintf(a->sbxdir, sizeof a->sbxdir, "/%s", mapped);
    er->working_dir = a->sbxdir;
  }
  er->argv = a->argv;
  er->env = a->env;
  er->timeout_ns = a->timeout_ns;
  er->max_output = r->sess->tpl->max_output;
  return 1;
}

void exec_args_free(struct exec_args *a) {
  for (size_t i = a->ntpl; a->env && a->env[i]; i++)
    free((char *)a->env[i]);
  free(a->env);
  free(a->argv);
  a->env = NULL;
  a->argv = NULL;
}
