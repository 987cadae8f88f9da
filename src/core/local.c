/*
** local.c -- where the local runtime keeps its state, for the host's
** local_default hook: $AGENTCUBE_HOME (default ~/.agentcube) holds
** serve.json ({"url": "http://127.0.0.1:8080", "pid": N, "auth": true})
** while a server runs, and token, the server's API token. Nothing here
** starts a process. (The server computes the same directory in
** ac_default_home; this copy keeps libagentcube free of the server.)
*/
#include "ac_internal.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum ac_code ac_local_home(char *buf, size_t size, struct ac_error *err) {
  const char *home = getenv("AGENTCUBE_HOME");
  int n;
  if (home != NULL && home[0] != '\0') {
    n = snprintf(buf, size, "%s", home);
  } else {
    home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
      struct passwd *pw = getpwuid(getuid());
      home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] == '\0')
      return ac_error_set(err, AC_ECONFIG,
                          "cannot find a home directory: set "
                          "AGENTCUBE_HOME");
    n = snprintf(buf, size, "%s/.agentcube", home);
  }
  if (n < 0 || (size_t)n >= size)
    return ac_error_set(err, AC_ETOOBIG, "state directory path too long");
  return AC_OK;
}

enum ac_code ac_local_read_state(const char *home,
                                 struct ac_local_endpoint *out,
                                 struct ac_error *err) {
  enum ac_code rc;
  char dir[4096], path[4200];
  char *tok = NULL;
  json_t *j = NULL, *url;
  json_error_t jerr;

  memset(out, 0, sizeof *out);
  if (home == NULL) {
    rc = ac_local_home(dir, sizeof dir, err);
    if (rc != AC_OK)
      return rc;
    home = dir;
  }
  snprintf(path, sizeof path, "%s/serve.json", home);
  if (access(path, F_OK) != 0)
    return ac_error_set(err, AC_ENOTFOUND,
                        "no local server state in %s", home);
  j = json_load_file(path, 0, &jerr);
  if (j == NULL) {
    rc = ac_error_set(err, AC_EPROTO, "%s: %s", path, jerr.text);
    goto out;
  }
  url = json_object_get(j, "url");
  if (!json_is_string(url) || json_string_length(url) == 0 ||
      json_string_length(url) >= sizeof out->url) {
    rc = ac_error_set(err, AC_EPROTO, "%s has no usable \"url\"", path);
    goto out;
  }
  snprintf(out->url, sizeof out->url, "%s", json_string_value(url));
  rc = AC_OK;
  if (json_is_false(json_object_get(j, "auth")))
    goto out;                         /* serve --no-auth: send no token */

  snprintf(path, sizeof path, "%s/token", home);
  rc = ac_read_token_file(path, &tok, err);
  if (rc == AC_ENOTFOUND) {           /* a server started with --no-auth */
    ac_error_clear(err);
    rc = AC_OK;
    goto out;
  }
  if (rc != AC_OK)
    goto out;
  if (strlen(tok) >= sizeof out->token) {
    rc = ac_error_set(err, AC_ETOOBIG, "%s: token too long", path);
    goto out;
  }
  snprintf(out->token, sizeof out->token, "%s", tok);
out:
  if (tok != NULL)
    explicit_bzero(tok, strlen(tok));
  free(tok);
  json_decref(j);
  return rc;
}
