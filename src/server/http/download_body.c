/*
** download_body.c -- a download's body from a file that may change while
** it is sent (see download_body.h).
*/
#include "download_body.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCK (64 * 1024)

struct body {
  int fd;
  uint64_t size;
};

static ssize_t read_block(void *cls, uint64_t pos, char *buf, size_t max) {
  struct body *b = cls;
  ssize_t n;

  if (pos >= b->size)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (max > b->size - pos)
    max = (size_t)(b->size - pos);
  do
    n = pread(b->fd, buf, max, (off_t)pos);
  while (n < 0 && errno == EINTR);
  /* 0 bytes before the announced end: the file shrank. Ending "with
  ** error" closes the connection instead of asking again. */
  if (n <= 0)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  return n;
}

static void free_body(void *cls) {
  struct body *b = cls;
  close(b->fd);
  free(b);
}

struct MHD_Response *download_body_response(int fd, uint64_t size) {
  struct body *b = malloc(sizeof *b);
  struct MHD_Response *resp;

  if (b == NULL) {
    close(fd);
    return NULL;
  }
  b->fd = fd;
  b->size = size;
  resp = MHD_create_response_from_callback(size, BLOCK, read_block, b,
                                           free_body);
  if (resp == NULL)
    free_body(b);
  return resp;
}
