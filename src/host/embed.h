/*
** embed.h -- the Lua sources compiled into the host (generated index).
*/
#ifndef AGENTCUBE_EMBED_H
#define AGENTCUBE_EMBED_H

#include <stddef.h>

struct ac_embedded {
  const char *module;        /* "agentcube.workflow.run" */
  const char *chunkname;     /* "@agentcube/workflow/run.lua" */
  const unsigned char *src;
  size_t len;
};

/* Terminated by an entry whose module is NULL. */
extern const struct ac_embedded ac_embedded_modules[];

#endif
