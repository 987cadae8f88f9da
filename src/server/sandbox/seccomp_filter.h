/*
** seccomp_filter.h -- the sandbox's seccomp deny-list (docs/sandbox.md §3.1),
** compiled once with libseccomp into a classic BPF program that every
** bwrap instance loads with --seccomp FD.
*/
#ifndef AGENTCUBE_SECCOMP_FILTER_H
#define AGENTCUBE_SECCOMP_FILTER_H

#include "ac_error.h"

#include <stddef.h>

struct scf_program {
  unsigned char *bpf;     /* struct sock_filter array, malloc'd */
  size_t len;             /* bytes */
  unsigned ninsns;        /* len / sizeof(struct sock_filter) */
  unsigned nrules;        /* rules added (over all architectures) */
  char arches[64];        /* "x86_64+x86+x32" */
};

/* Compiles the filter. The program is exported with seccomp_export_bpf into
** a memfd and read back, so the bytes are exactly what libseccomp would
** load. On success *out owns prog->bpf: release with scf_free. */
enum ac_code scf_build(struct scf_program *out, struct ac_error *err);

/* Frees the program; safe on a zeroed or already freed struct (not on
** NULL). */
void scf_free(struct scf_program *prog);

#endif
