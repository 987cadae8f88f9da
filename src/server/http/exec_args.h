/*
** exec_args.h -- the command part of a request body ({"command", "env",
** "working_dir", "timeout"}), shared by api/execute and api/processes:
** checked with PicoD's messages, turned into an sbx_exec_request.
*/
#ifndef AGENTCUBE_HTTP_EXEC_ARGS_H
#define AGENTCUBE_HTTP_EXEC_ARGS_H

#include "request.h"

struct exec_args {
  const char **argv;            /* into the body */
  const char **env;             /* template's, then malloc'd "K=V" */
  size_t ntpl;                  /* env entries owned by the template */
  const char *workdir;          /* as the client wrote it, or NULL */
  long long timeout_ns;
  char sbxdir[4200];            /* the sandbox path of workdir */
};

/* Checks body; *msg says what is wrong (400). default_timeout_ns applies
** when "timeout" is absent or "". Free with exec_args_free either way. */
int exec_args_parse(json_t *body, const struct ac_template *tpl,
                    long long default_timeout_ns, struct exec_args *a,
                    char *msg, size_t msgsz);

/* Creates the working directory (as the session) and fills er. On
** failure a reply is queued and 0 returned. */
int exec_args_request(struct req *r, struct exec_args *a,
                      struct sbx_exec_request *er);

void exec_args_free(struct exec_args *a);

#endif
