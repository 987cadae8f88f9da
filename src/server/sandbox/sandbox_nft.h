/*
** sandbox_nft.h -- the host nftables table that holds every networked
** session's pasta to its template's policy (docs/sandbox.md §7): one
** table per server, a chain per session selected by the socket owner's
** uid. Root only. Not a public header.
*/
#ifndef AGENTCUBE_SANDBOX_NFT_H
#define AGENTCUBE_SANDBOX_NFT_H

#include "ac_error.h"

#include <stddef.h>
#include <stdio.h>

struct sbx_nft;
struct sbx_net_policy;

/* Installs the table "agentcube_<hash>_<pid namespace>_<pid>" (removing
** those of servers of this pid namespace that are gone) and reads the host's nameservers. NULL with why filled
** when nftables cannot be used. */
struct sbx_nft *sbx_nft_open(const char *hash, char *why, size_t whysize);

/* Removes the table and frees T. NULL is allowed. */
void sbx_nft_close(struct sbx_nft *T);

/* The chain of the session with this uid: its nameservers on port 53
** (when the policy has DNS), its allowlist (host names resolved now),
** then host-local and private destinations refused, and the rest unless
** public is off. Errors: AC_ECONFIG (a host name does not resolve),
** AC_ESYSTEM (nftables), AC_ENOMEM. */
enum ac_code sbx_nft_session_add(struct sbx_nft *T, unsigned uid,
                                 const struct sbx_net_policy *p,
                                 struct ac_error *err);
void sbx_nft_session_remove(struct sbx_nft *T, unsigned uid);

/* For --check: "table inet NAME; DNS to A, B". */
void sbx_nft_describe(const struct sbx_nft *T, FILE *out);

#endif
