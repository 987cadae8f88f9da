/*
** sdk_script.h -- run_code leaves no script behind (sdk_script.c).
*/
#ifndef AGENTCUBE_HTTP_SDK_SCRIPT_H
#define AGENTCUBE_HTTP_SDK_SCRIPT_H

#include "request.h"

/* A JSON file write of client_path succeeded with *fi: remembered when it
** is run_code's script. */
void sdk_script_written(struct req *r, const char *client_path,
                        const struct fapi_info *fi);

/* An execute of argv starts as request r: it claims the script when it
** runs exactly that script. */
void sdk_script_exec_start(struct req *r, const char *const *argv);

/* The execute of request r ended (before its answer is queued): the
** script it claimed is removed if it is still the file written. */
void sdk_script_exec_done(struct req *r);

#endif
