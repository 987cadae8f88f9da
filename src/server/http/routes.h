/*
** routes.h -- the route handlers the dispatcher (http_server.c) calls once
** a request's body is in. Handlers answer through reply.h.
*/
#ifndef AGENTCUBE_HTTP_ROUTES_H
#define AGENTCUBE_HTTP_ROUTES_H

#include "request.h"

/* Route handlers, called once the whole body is in. */
enum MHD_Result route_control(struct req *r);
enum MHD_Result route_execute(struct req *r);
/* The buffered JSON answer of an execute (route_execute.c). */
json_t *exec_result_json(const struct sbx_exec_result *res,
                         size_t max_output);
enum MHD_Result route_upload_json(struct req *r);
enum MHD_Result route_upload_multipart_done(struct req *r);
enum MHD_Result route_download(struct req *r);
enum MHD_Result route_list(struct req *r);
enum MHD_Result route_fs(struct req *r);      /* api/fs/... */
enum MHD_Result route_processes(struct req *r);  /* api/processes... */
enum MHD_Result route_contexts(struct req *r);   /* api/contexts... */

/* Multipart streaming: set up on the first call; feed with each chunk
** (MHD_post_process on r->pp); route_upload_multipart_done ends it.
** begin takes the session's file root; start is the rest, for a request
** whose r->up_root is already set (the multipart fuzz harness). */
enum MHD_Result upload_multipart_begin(struct req *r);
enum MHD_Result upload_multipart_start(struct req *r);

#endif
