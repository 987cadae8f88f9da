/*
** sandbox_net.h -- the network of a session with `network:` on
** (docs/sandbox.md §7): a network namespace of its own, owned by a user
** namespace the sandbox is not in, connected to the outside by a pasta
** process (Debian package passt), and a host nftables ruleset, keyed on
** the session uid pasta runs as, that enforces the template's policy.
** Not a public header.
*/
#ifndef AGENTCUBE_SANDBOX_NET_H
#define AGENTCUBE_SANDBOX_NET_H

#include "ac_error.h"

#include <stdio.h>

struct sbx_runtime;
struct sbx_box;
struct sbx_net_policy;

/* Where the sandbox's resolver lives: pasta forwards DNS sent there to
** the host's first nameserver. */
#define SBX_NET_DNS "169.254.1.1"

/* Detects pasta and nftables and installs the server's table (root only).
** Never fails: when networking cannot be offered, rt->why_net says why
** and networked boxes are refused. */
void sbx_net_rt_init(struct sbx_runtime *rt);
/* Removes the server's nftables table. */
void sbx_net_rt_free(struct sbx_runtime *rt);

/* The --check lines of networking; returns the number that are off. */
int sbx_net_report(const struct sbx_runtime *rt, FILE *out);

/* Prints a policy as one line (for --check and the logs). */
void sbx_net_policy_print(const struct sbx_net_policy *p, FILE *out);

/* Starts the box's network (its namespace, its rules, its pasta) when its
** limits ask for one; a no-op otherwise. Errors: AC_ECONFIG (no
** networking on this server, or an allowed host name does not resolve:
** the message says which; the API answers 503 with it), AC_ESYSTEM. On
** failure nothing is left behind. */
enum ac_code sbx_net_box_start(struct sbx_box *box, struct ac_error *err);

/* Kills and reaps the box's pasta, removes its rules, closes the
** namespace. NULL-safe and idempotent. */
void sbx_net_box_stop(struct sbx_box *box);

/* The box's network namespace fd (the sandbox's launcher joins it), or
** -1 when the box has no network. */
int sbx_net_box_netns(const struct sbx_box *box);

/* 1 when the box's sandbox gets the namespace's resolver. */
int sbx_net_box_dns(const struct sbx_box *box);

#endif
