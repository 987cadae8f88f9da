/*
** config_net.h -- a template's `network:` (docs/sandbox.md §7):
**
**   network: true                # public addresses and DNS
**   network:                     # the same, plus what `allow` names
**     public: true               # false: only the allowlist (and DNS)
**     dns: true                  # false: no resolver in the sandbox
**     allow:                     # host/private destinations let through
**       - 10.20.0.0/16           # an address block, every port
**       - 192.168.1.5:8080       # one address, one port
**       - 10.1.0.0/24:8000-8100  # a port range
**       - "[fd00::1]:443"        # IPv6 with a port, in brackets
**       - db.internal:5432       # a host name, resolved per session
*/
#ifndef AGENTCUBE_CONFIG_NET_H
#define AGENTCUBE_CONFIG_NET_H

#include "ac_error.h"
#include "sandbox.h"

/* Parses one allowlist entry ("CIDR[:PORTS]", "[IPv6[/LEN]]:PORTS",
** "HOST[:PORTS]") into *a (a->host malloc'd for a name). On failure
** returns AC_EINVAL with why (a short reason). */
enum ac_code ac_net_allow_parse(const char *s, struct sbx_net_allow *a,
                                const char **why);

/* A deep copy (NULL for NULL); NULL on out of memory sets *oom. */
struct sbx_net_policy *ac_net_policy_dup(const struct sbx_net_policy *p,
                                         int *oom);
void ac_net_policy_free(struct sbx_net_policy *p);

#endif
