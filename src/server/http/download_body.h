/*
** download_body.h -- the body of a file download, read from its fd.
**
** Not libmicrohttpd's response-from-fd: when the file shrinks while it is
** sent (the sandbox may truncate any file it can write), a read at the
** announced offset returns 0 bytes and that response retries forever at
** full CPU, even after the client has gone. Here a short file ends the
** response with an error, so the connection closes and the client sees a
** short body; a file that grows is sent up to the size announced.
*/
#ifndef AGENTCUBE_DOWNLOAD_BODY_H
#define AGENTCUBE_DOWNLOAD_BODY_H

#include <microhttpd.h>
#include <stdint.h>

/* A response sending size bytes of fd from offset 0; it owns fd (closed
** with the response, or here on failure). NULL when out of memory. */
struct MHD_Response *download_body_response(int fd, uint64_t size);

#endif
