/*
** token.c -- creation and constant-time checking of the API token.
*/
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static enum ac_code read_token(const char *path, char *out,
                               struct ac_error *err) {
  char buf[AC_TOKEN_LEN + 8];
  ssize_t n;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0)
    return ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                          errno, "cannot open %s", path);
  if (fstat(fd, &st) == 0 && st.st_uid != geteuid()) {
    close(fd);
    return ac_error_set(err, AC_EACCESS,
                        "%s belongs to uid %u, not to the server's uid %u; "
                        "remove it", path, (unsigned)st.st_uid,
                        (unsigned)geteuid());
  }
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
    close(fd);
    return ac_error_set(err, AC_EACCESS,
                        "%s is readable by others (mode %o); "
                        "make it 0600", path, st.st_mode & 0777);
  }
  n = read(fd, buf, sizeof buf);
  close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  if (n != AC_TOKEN_LEN)
    return ac_error_set(err, AC_ECONFIG, "%s does not hold a token", path);
  memcpy(out, buf, AC_TOKEN_LEN);
  out[AC_TOKEN_LEN] = '\0';
  return AC_OK;
}

enum ac_code ac_token_load(const char *state_dir, char *out,
                           struct ac_error *err) {
  static const char hex[] = "0123456789abcdef";
  char path[4096], tmp[4200];
  unsigned char raw[AC_TOKEN_LEN / 2];
  enum ac_code rc;
  int fd;

  snprintf(path, sizeof path, "%s/token", state_dir);
  rc = read_token(path, out, err);
  if (rc != AC_ENOTFOUND)
    return rc;
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return ac_error_errno(err, AC_ESYSTEM, errno, "getrandom");
  for (size_t i = 0; i < sizeof raw; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[AC_TOKEN_LEN] = '\n';
  /* Written under a temporary name and linked into place, so that two
  ** servers starting at once agree on one token and none is half-written. */
  snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
            0600);
  if (fd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "cannot create %s", tmp);
  if (write(fd, out, AC_TOKEN_LEN + 1) != AC_TOKEN_LEN + 1) {
    close(fd);
    unlink(tmp);
    return ac_error_errno(err, AC_EIO, errno, "cannot write %s", tmp);
  }
  close(fd);
  out[AC_TOKEN_LEN] = '\0';
  if (link(tmp, path) != 0 && errno != EEXIST) {
    int e = errno;
    unlink(tmp);
    return ac_error_errno(err, AC_ESYSTEM, e, "cannot create %s", path);
  }
  unlink(tmp);
  return read_token(path, out, err);
}

int ac_token_equal(const char *expected, const char *presented, size_t len) {
  if (len != AC_TOKEN_LEN)
    return 0;
  return CRYPTO_memcmp(expected, presented, AC_TOKEN_LEN) == 0;
}
