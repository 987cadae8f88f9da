/*
** cmd_sessions.c -- `agentcube sessions [ls | rm ID...]`: what the local
** runtime in $AGENTCUBE_HOME holds, through its HTTP API.
*/
#include "cli.h"
#include "agentcube.h"
#include "shown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

struct body { char *data; size_t len; };

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  struct body *b = ud;
  char *grown = realloc(b->data, b->len + sz * n + 1);
  if (grown == NULL)
    return 0;
  b->data = grown;
  memcpy(b->data + b->len, p, sz * n);
  b->len += sz * n;
  b->data[b->len] = '\0';
  return sz * n;
}

/* One request to the local runtime; returns the status (0: no answer). */
static long request(const struct ac_local_endpoint *ep, const char *method,
                    const char *path, struct body *out) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char url[4200], auth[4200];
  long status = 0;

  if (c == NULL)
    return 0;
  snprintf(url, sizeof url, "%s%s", ep->url, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  if (ep->token[0]) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", ep->token);
    h = curl_slist_append(h, auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

/* A string field of a listing entry, or "-" when absent. */
static const char *field(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "-";
}

static int list(const struct ac_local_endpoint *ep) {
  struct body b = { NULL, 0 };
  json_t *o, *arr, *s;
  size_t i;
  long st = request(ep, "GET", "/v1/code-interpreter/sessions", &b);

  if (st != 200) {
    fprintf(stderr, "agentcube sessions: %s answered %ld\n", ep->url, st);
    free(b.data);
    return 1;
  }
  o = json_loads(b.data, 0, NULL);
  free(b.data);
  arr = json_object_get(o, "sessions");
  if (!json_is_array(arr)) {
    fprintf(stderr, "agentcube sessions: malformed answer from %s\n",
            ep->url);
    json_decref(o);
    return 1;
  }
  /* the template column is as wide as its longest entry: a fixed width
  ** ran "namespace/name" into the next column */
  int width = (int)strlen("TEMPLATE");
  json_array_foreach(arr, i, s) {
    int w = (int)(strlen(field(s, "namespace")) + 1 +
                  strlen(field(s, "name")));
    if (w > width)
      width = w < 255 ? w : 255;
  }
  printf("%-36s  %-*s  %-20s  %-20s  %s\n", "SESSION", width, "TEMPLATE",
         "CREATED", "LAST ACTIVITY", "EXPIRES");
  json_array_foreach(arr, i, s) {
    char tpl[300];
    snprintf(tpl, sizeof tpl, "%s/%s", field(s, "namespace"),
             field(s, "name"));
    char line[2048];
    snprintf(line, sizeof line, "%-36s  %-*s  %-20s  %-20s  %s\n",
             field(s, "sessionId"), width, tpl, field(s, "createdAt"),
             field(s, "lastActivityAt"), field(s, "expiresAt"));
    ac_shown_fputs(line, stdout);      /* the server's text, for a person */
  }
  json_decref(o);
  return 0;
}

static int remove_ids(const struct ac_local_endpoint *ep, int n,
                      char **ids) {
  int failed = 0;
  for (int i = 0; i < n; i++) {
    char path[300];
    struct body b = { NULL, 0 };
    long st;
    snprintf(path, sizeof path, "/v1/code-interpreter/sessions/%s", ids[i]);
    st = request(ep, "DELETE", path, &b);
    if (st == 200) {
      printf("deleted %s\n", ids[i]);
    } else {
      fprintf(stderr, "agentcube sessions: %s: %s\n", ids[i],
              st == 404 ? "no such session" : "delete failed");
      failed = 1;
    }
    free(b.data);
  }
  return failed;
}

int ac_cmd_sessions(int argc, char **argv) {
  struct ac_local_endpoint ep;
  struct ac_error err;
  const char *sub = argc > 1 ? argv[1] : "ls";
  enum ac_code rc;

  if (strcmp(sub, "ls") && strcmp(sub, "rm")) {
    fprintf(stderr, "usage: agentcube sessions [ls | rm ID...]\n");
    return 2;
  }
  if (!strcmp(sub, "rm") && argc < 3) {
    fprintf(stderr, "usage: agentcube sessions rm ID...\n");
    return 2;
  }
  rc = ac_local_read_state(NULL, &ep, &err);
  if (rc == AC_ENOTFOUND) {
    /* nothing runs: then nothing is held either */
    if (!strcmp(sub, "ls"))
      return 0;
    fprintf(stderr, "agentcube sessions: no local runtime is running\n");
    return 1;
  }
  if (rc != AC_OK) {
    fprintf(stderr, "agentcube sessions: %s\n", err.msg);
    return 1;
  }
  return !strcmp(sub, "ls") ? list(&ep) : remove_ids(&ep, argc - 2,
                                                      argv + 2);
}
