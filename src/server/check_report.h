/*
** check_report.h -- the server's own part of `agentcube serve --check`:
** the trust-boundary protections outside the sandbox runtime and every
** budget in force, after the sandbox's table (sbx_runtime_report).
*/
#ifndef AGENTCUBE_CHECK_REPORT_H
#define AGENTCUBE_CHECK_REPORT_H

#include "config.h"

#include <stdio.h>

/* Prints the lines; returns the number of protections that are off. */
int ac_check_report(const struct ac_config *cfg, const char *state_dir,
                    FILE *out);

#endif
