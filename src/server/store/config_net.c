/*
** config_net.c -- the allowlist entries of a template's network policy.
** Parsing is strict: a destination the server would read differently from
** the person who wrote it must be an error, never a wider rule.
*/
#include "config_net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int parse_port(const char *s, const char *end, unsigned *out) {
  unsigned long v = 0;
  if (s == end || end - s > 5)
    return -1;
  for (const char *c = s; c < end; c++) {
    if (!isdigit((unsigned char)*c))
      return -1;
    v = v * 10 + (unsigned long)(*c - '0');
  }
  if (v < 1 || v > 65535)
    return -1;
  *out = (unsigned)v;
  return 0;
}

/* "N" or "N-M" */
static int parse_ports(const char *s, struct sbx_net_allow *a) {
  const char *dash = strchr(s, '-'), *end = s + strlen(s);
  if (dash == NULL) {
    if (parse_port(s, end, &a->port_lo) < 0)
      return -1;
    a->port_hi = a->port_lo;
    return 0;
  }
  if (parse_port(s, dash, &a->port_lo) < 0 ||
      parse_port(dash + 1, end, &a->port_hi) < 0 || a->port_hi < a->port_lo)
    return -1;
  return 0;
}

/* "ADDR[/LEN]" of family fam; the host bits must be zero. */
static int parse_cidr(const char *s, int fam, struct sbx_net_allow *a) {
  char buf[64];
  const char *slash = strchr(s, '/');
  unsigned max = fam == AF_INET ? 32 : 128, len = max;
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (inet_pton(fam, buf, a->addr) != 1)
    return -1;
  if (slash) {
    unsigned long v;
    char *end;
    if (!isdigit((unsigned char)slash[1]))
      return -1;
    errno = 0;
    v = strtoul(slash + 1, &end, 10);
    if (errno || *end || v > max)
      return -1;
    len = (unsigned)v;
  }
  for (unsigned bit = len; bit < max; bit++)
    if (a->addr[bit / 8] & (0x80u >> (bit % 8)))
      return -2;
  a->family = fam;
  a->prefix = len;
  return 0;
}

static int valid_host(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
      return 0;
  return s[0] != '-' && s[0] != '.';
}

enum ac_code ac_net_allow_parse(const char *s, struct sbx_net_allow *a,
                                const char **why) {
  const char *colon, *ports = NULL;
  char addr[300];
  size_t n;
  int r;

  memset(a, 0, sizeof *a);
  *why = "must be ADDRESS[/LEN][:PORT[-PORT]], [IPv6]:PORT or "
         "HOST[:PORT[-PORT]]";
  if (s == NULL || *s == '\0' || strlen(s) >= sizeof addr)
    return AC_EINVAL;
  if (s[0] == '[') {                    /* [v6[/len]][:ports] */
    const char *close = strchr(s, ']');
    if (close == NULL || (close[1] && close[1] != ':'))
      return AC_EINVAL;
    n = (size_t)(close - s - 1);
    memcpy(addr, s + 1, n);
    addr[n] = '\0';
    if (close[1] == ':')
      ports = close + 2;
    if ((r = parse_cidr(addr, AF_INET6, a)) < 0) {
      if (r == -2)
        *why = "has bits set past its prefix length";
      return AC_EINVAL;
    }
  } else if ((colon = strchr(s, ':')) && strchr(colon + 1, ':')) {
    /* two colons: a bare IPv6 block, no port */
    if ((r = parse_cidr(s, AF_INET6, a)) < 0) {
      if (r == -2)
        *why = "has bits set past its prefix length";
      return AC_EINVAL;
    }
  } else {
    n = colon ? (size_t)(colon - s) : strlen(s);
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (colon)
      ports = colon + 1;
    r = parse_cidr(addr, AF_INET, a);
    if (r == -2) {
      *why = "has bits set past its prefix length";
      return AC_EINVAL;
    }
    if (r < 0) {
      /* not an address: a host name (all digits and dots would have
      ** been one, so a typo in an address is not taken for a name) */
      size_t i;
      for (i = 0; i < n && (isdigit((unsigned char)addr[i]) ||
                            addr[i] == '.' || addr[i] == '/'); i++)
        ;
      if (i == n || strchr(addr, '/') || !valid_host(addr, n))
        return AC_EINVAL;
      if ((a->host = strdup(addr)) == NULL) {
        *why = "out of memory";
        return AC_ENOMEM;
      }
    }
  }
  if (ports && parse_ports(ports, a) < 0) {
    free(a->host);
    a->host = NULL;
    *why = "has a bad port: ports are 1-65535, a range is LOW-HIGH";
    return AC_EINVAL;
  }
  return AC_OK;
}

struct sbx_net_policy *ac_net_policy_dup(const struct sbx_net_policy *p,
                                         int *oom) {
  struct sbx_net_policy *d;
  *oom = 0;
  if (p == NULL)
    return NULL;
  if ((d = calloc(1, sizeof *d)) == NULL)
    goto fail;
  *d = *p;
  d->allow = NULL;
  d->nallow = 0;
  if (p->nallow && (d->allow = calloc(p->nallow, sizeof *d->allow)) == NULL)
    goto fail;
  for (size_t i = 0; i < p->nallow; i++) {
    d->allow[i] = p->allow[i];
    d->allow[i].host = NULL;
    d->nallow = i + 1;
    if (p->allow[i].host &&
        (d->allow[i].host = strdup(p->allow[i].host)) == NULL)
      goto fail;
  }
  return d;
fail:
  ac_net_policy_free(d);
  *oom = 1;
  return NULL;
}

void ac_net_policy_free(struct sbx_net_policy *p) {
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->nallow; i++)
    free(p->allow[i].host);
  free(p->allow);
  free(p);
}
