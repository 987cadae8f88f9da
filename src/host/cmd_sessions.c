/*
** cmd_sessions.c -- `agentcube sessions [ls | rm ID...]`: what the local
** runtime of the state directory holds, through libagentcube: the
** server is found as every client finds it (ac_local_find: never started
** here; none running means nothing is held), listed with ac_session_list
** and deleted with ac_session_stop.
**
** Exit status: 0; 1 when the server cannot be reached or answers
** wrongly, or an ID is not there or could not be deleted; 2 for usage.
*/
#include "cli.h"
#include "agentcube.h"
#include "shown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* A string field of a listing entry, or "-" when absent. */
static const char *field(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "-";
}

/* The listing's "sessions" array (a new reference), or NULL said on
** stderr. */
static json_t *fetch(ac_client *c) {
  struct ac_error err;
  char *text = NULL;
  json_t *o, *arr;
  if (ac_session_list(c, &text, &err) != AC_OK) {
    fprintf(stderr, "agentcube sessions: %s\n", err.msg);
    return NULL;
  }
  o = json_loads(text, 0, NULL);
  free(text);
  arr = json_incref(json_object_get(o, "sessions"));
  json_decref(o);
  return arr;                         /* ac_session_list checked it */
}

static int list(ac_client *c) {
  json_t *arr = fetch(c), *s;
  size_t i;
  int width = (int)strlen("TEMPLATE");
  if (arr == NULL)
    return 1;
  /* the template column is as wide as its longest entry: a fixed width
  ** ran "namespace/name" into the next column */
  json_array_foreach(arr, i, s) {
    int w = (int)(strlen(field(s, "namespace")) + 1 +
                  strlen(field(s, "name")));
    if (w > width)
      width = w < 255 ? w : 255;
  }
  printf("%-36s  %-*s  %-20s  %-20s  %s\n", "SESSION", width, "TEMPLATE",
         "CREATED", "LAST ACTIVITY", "EXPIRES");
  json_array_foreach(arr, i, s) {
    char tpl[300], line[2048];
    snprintf(tpl, sizeof tpl, "%s/%s", field(s, "namespace"),
             field(s, "name"));
    snprintf(line, sizeof line, "%-36s  %-*s  %-20s  %-20s  %s\n",
             field(s, "sessionId"), width, tpl, field(s, "createdAt"),
             field(s, "lastActivityAt"), field(s, "expiresAt"));
    ac_shown_fputs(line, stdout);      /* the server's text, for a person */
  }
  json_decref(arr);
  return 0;
}

/* The entry of the listing with that id, or NULL. */
static json_t *find(json_t *arr, const char *id) {
  json_t *s;
  size_t i;
  json_array_foreach(arr, i, s)
    if (!strcmp(field(s, "sessionId"), id))
      return s;
  return NULL;
}

static int remove_ids(ac_client *c, int n, char **ids) {
  json_t *arr = fetch(c);
  int failed = 0;
  if (arr == NULL)
    return 1;
  for (int i = 0; i < n; i++) {
    json_t *entry = find(arr, ids[i]);
    struct ac_error err;
    ac_session *s = NULL;
    if (entry == NULL) {
      /* deleting a missing id is not an error for a client (the SDK's
      ** stop() of a gone session); for this command it is a typo */
      fprintf(stderr, "agentcube sessions: %s: no such session\n", ids[i]);
      failed = 1;
      continue;
    }
    if (ac_session_attach(c, ids[i], field(entry, "name"),
                          field(entry, "namespace"), &s, &err) != AC_OK ||
        ac_session_stop(s, &err) != AC_OK) {
      fprintf(stderr, "agentcube sessions: %s: delete failed: %s\n", ids[i],
              err.msg);
      failed = 1;
    } else {
      printf("deleted %s\n", ids[i]);
    }
    ac_session_free(s);
  }
  json_decref(arr);
  return failed;
}

int ac_cmd_sessions(int argc, char **argv) {
  struct ac_local_endpoint ep;
  struct ac_client_config cfg;
  struct ac_error err;
  const char *sub = argc > 1 ? argv[1] : "ls";
  ac_client *c = NULL;
  enum ac_code rc;
  int status;

  if (strcmp(sub, "ls") && strcmp(sub, "rm")) {
    fprintf(stderr, "usage: agentcube sessions [ls | rm ID...]\n");
    return 2;
  }
  if (!strcmp(sub, "rm") && argc < 3) {
    fprintf(stderr, "usage: agentcube sessions rm ID...\n");
    return 2;
  }
  rc = ac_local_find(&ep, &err);
  if (rc == AC_ENOTFOUND) {
    /* nothing runs: then nothing is held either */
    if (!strcmp(sub, "ls"))
      return 0;
    fprintf(stderr, "agentcube sessions: no local runtime is running\n");
    return 1;
  }
  if (rc == AC_OK) {
    /* the server found, and only it: not the environment's URLs, not a
    ** service-account token */
    ac_client_config_init(&cfg);
    cfg.workload_manager_url = ep.url;
    cfg.router_url = ep.url;
    cfg.auth_token = ep.token;
    cfg.sa_token_path = "";
    cfg.local_default = NULL;
    rc = ac_client_new(&cfg, &c, &err);
  }
  explicit_bzero(&ep, sizeof ep);
  if (rc != AC_OK) {
    fprintf(stderr, "agentcube sessions: %s\n", err.msg);
    return 1;
  }
  status = !strcmp(sub, "ls") ? list(c)
                              : remove_ids(c, argc - 2, argv + 2);
  ac_client_free(c);
  return status;
}
