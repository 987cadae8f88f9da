/*
** local.c -- where the local runtime keeps its state, for the host's
** local_default hook: $AGENTCUBE_HOME (default ~/.agentcube) holds
** serve.json ({"url": "http://127.0.0.1:8080", "pid": N, "auth": true})
** while a server runs, and token, the server's API token. Nothing here
** starts a process (localrt.c does).
**
** This is the one place that says where the state directory is and
** whether it can be trusted: the server (its default --state-dir), the
** host (the REPL's history, `sessions`), the Lua module and C programs
** all ask ac_local_home and ac_local_home_check.
**
** None of these files is trusted for what it says alone: the directory
** must belong to this user (or root) and be writable by nobody else,
** serve.json and token must be regular files (never followed through a
** symlink) of the same owner, the URL must be plain http to a loopback
** address, and before the token is sent anywhere localrt.c checks that
** the listener is the process serve.json names.
*/
#include "internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdint.h>
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

static int trusted_owner(uid_t uid) {
  return uid == geteuid() || uid == 0;
}

enum ac_code ac_local_home_check(const char *home, int create,
                                 struct ac_error *err) {
  struct stat st;
  if (home == NULL || home[0] == '\0')
    return ac_error_set(err, AC_EINVAL, "no state directory given");
  if (create && mkdir(home, 0700) != 0 && errno != EEXIST)
    return ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                          errno, "cannot create %s", home);
  if (lstat(home, &st) != 0)
    return ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                          errno, "%s", home);
  if (S_ISLNK(st.st_mode))
    return ac_error_set(err, AC_EACCESS, "%s is a symbolic link: not "
                        "trusting it (give the real path)", home);
  if (!S_ISDIR(st.st_mode))
    return ac_error_set(err, AC_EACCESS, "%s is not a directory: not "
                        "trusting it", home);
  if (!trusted_owner(st.st_uid) || (st.st_mode & 022) != 0)
    return ac_error_set(err, AC_EACCESS, "%s belongs to uid %u or is "
                        "writable by others (mode %04o): not trusting it",
                        home, (unsigned)st.st_uid,
                        (unsigned)(st.st_mode & 07777));
  return AC_OK;
}

/* Opens a state file without following a symlink; it must be a regular
** file of ours (or root's) that others cannot write. -1 with *err set
** (AC_ENOTFOUND when it does not exist). */
static int open_state_file(const char *path, struct ac_error *err) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT)
      ac_error_set(err, AC_ENOTFOUND, "%s not found", path);
    else
      ac_error_errno(err, AC_EACCESS, errno, "%s", path);
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      !trusted_owner(st.st_uid) || (st.st_mode & 002) != 0) {
    ac_error_set(err, AC_EACCESS, "%s is not a regular file of this user "
                 "or is writable by others: not trusting it", path);
    close(fd);
    return -1;
  }
  return fd;
}

/* serve.json may only point to plain http on this machine. */
static enum ac_code check_local_url(const char *url, const char *path,
                                    struct ac_error *err) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  enum ac_code rc = AC_OK;
  if (u == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    rc = ac_error_set(err, AC_EPROTO, "%s: \"url\" is not a URL", path);
  } else if (strcmp(scheme, "http") != 0) {
    rc = ac_error_set(err, AC_EACCESS, "%s: the local runtime speaks plain "
                      "http, not %s: not trusting it", path, scheme);
  } else {
    struct in_addr a4;
    struct in6_addr a6;
    char h[256];
    size_t n = strlen(host);
    int loop = 0;
    if (n >= 2 && host[0] == '[' && n < sizeof h) {
      memcpy(h, host + 1, n - 2);
      h[n - 2] = '\0';
    } else {
      snprintf(h, sizeof h, "%s", host);
    }
    if (inet_pton(AF_INET, h, &a4) == 1)
      loop = (ntohl(a4.s_addr) >> 24) == 127;
    else if (inet_pton(AF_INET6, h, &a6) == 1)
      loop = IN6_IS_ADDR_LOOPBACK(&a6);
    if (!loop)
      rc = ac_error_set(err, AC_EACCESS, "%s names %s, which is not a "
                        "loopback address: not sending the token there",
                        path, host);
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

/* Socket inodes listening on port (IPv4 and IPv6), from /proc/net. */
static size_t listening_inodes(unsigned port, unsigned long *ino,
                               size_t max) {
  static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
  size_t n = 0;
  for (size_t t = 0; t < 2; t++) {
    FILE *f = fopen(tables[t], "re");
    char line[512];
    if (f == NULL)
      continue;
    if (fgets(line, sizeof line, f) == NULL) {   /* header */
      fclose(f);
      continue;
    }
    while (n < max && fgets(line, sizeof line, f) != NULL) {
      char local[128];
      unsigned st, lport;
      unsigned long inode;
      char *colon;
      /* sl local rem st tx:rx tr:when retr uid timeout inode */
      if (sscanf(line, "%*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local,
                 &st, &inode) != 3 || st != 0x0A)
        continue;
      colon = strrchr(local, ':');
      if (colon == NULL || sscanf(colon + 1, "%x", &lport) != 1 ||
          lport != port)
        continue;
      ino[n++] = inode;
    }
    fclose(f);
  }
  return n;
}

int ac_local_listener_is(const char *url, pid_t pid) {
  CURLU *u = curl_url();
  char *port_s = NULL, dir[64], target[64], want[64];
  unsigned long ino[16];
  size_t n;
  DIR *d;
  struct dirent *de;
  struct stat st;
  int found = 0;
  unsigned port;

  if (u == NULL || pid <= 0)
    return u != NULL ? (curl_url_cleanup(u), 0) : 0;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &port_s, CURLU_DEFAULT_PORT)
        != CURLUE_OK) {
    curl_url_cleanup(u);
    return 0;
  }
  port = (unsigned)strtoul(port_s, NULL, 10);
  curl_free(port_s);
  curl_url_cleanup(u);
  n = listening_inodes(port, ino, 16);
  snprintf(dir, sizeof dir, "/proc/%ld", (long)pid);
  if (n == 0 || stat(dir, &st) != 0 || !trusted_owner(st.st_uid))
    return 0;
  snprintf(dir, sizeof dir, "/proc/%ld/fd", (long)pid);
  d = opendir(dir);
  if (d == NULL)
    return 0;
  while (!found && (de = readdir(d)) != NULL) {
    char link[384];
    ssize_t len;
    if (de->d_name[0] == '.')
      continue;
    snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
    len = readlink(link, target, sizeof target - 1);
    if (len <= 0)
      continue;
    target[len] = '\0';
    for (size_t i = 0; i < n && !found; i++) {
      snprintf(want, sizeof want, "socket:[%lu]", ino[i]);
      found = strcmp(target, want) == 0;
    }
  }
  closedir(d);
  return found;
}

enum ac_code ac_local_read_state(const char *home,
                                 struct ac_local_endpoint *out,
                                 struct ac_error *err) {
  return ac_local_read_state_pid(home, out, NULL, err);
}

enum ac_code ac_local_read_state_pid(const char *home,
                                     struct ac_local_endpoint *out,
                                     long *pid, struct ac_error *err) {
  enum ac_code rc;
  char dir[4096], path[4200];
  char *tok = NULL;
  json_t *j = NULL, *url, *pidv;
  json_error_t jerr;

  memset(out, 0, sizeof *out);
  if (pid != NULL)
    *pid = 0;
  if (home == NULL) {
    rc = ac_local_home(dir, sizeof dir, err);
    if (rc != AC_OK)
      return rc;
    home = dir;
  }
  snprintf(path, sizeof path, "%s/serve.json", home);
  if (access(path, F_OK) != 0 && errno == ENOENT)
    return ac_error_set(err, AC_ENOTFOUND,
                        "no local server state in %s", home);
  rc = ac_local_home_check(home, 0, err);
  if (rc != AC_OK)
    return rc == AC_ENOTFOUND ? ac_error_set(err, AC_ENOTFOUND, "no local "
                                             "server state in %s", home)
                              : rc;
  {
    int fd = open_state_file(path, err);
    if (fd < 0)
      return err != NULL ? err->code : AC_EACCESS;
    j = json_loadfd(fd, 0, &jerr);
    close(fd);
  }
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
  pidv = json_object_get(j, "pid");
  if (pid != NULL && json_is_integer(pidv) && json_integer_value(pidv) > 0 &&
      json_integer_value(pidv) <= INT32_MAX)
    *pid = (long)json_integer_value(pidv);
  rc = check_local_url(out->url, path, err);
  if (rc != AC_OK)
    goto out;
  if (json_is_false(json_object_get(j, "auth")))
    goto out;                         /* serve --no-auth: send no token */

  snprintf(path, sizeof path, "%s/token", home);
  {
    int fd = open_state_file(path, err);
    if (fd < 0) {
      rc = err != NULL ? err->code : AC_EACCESS;
      if (rc != AC_ENOTFOUND)
        goto out;
    } else {
      close(fd);
    }
  }
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
  if (rc != AC_OK)
    explicit_bzero(out, sizeof *out);  /* a refused state hands out nothing */
  if (tok != NULL)
    explicit_bzero(tok, strlen(tok));
  free(tok);
  json_decref(j);
  return rc;
}
