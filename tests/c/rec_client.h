/*
** rec_client.h -- a libagentcube client aimed at a recording server
** (recorder.h), for the C tests of the client library: both URLs at the
** recorder, no service-account token, retries a few milliseconds apart;
** a session attached by id; a scripted reply in one call.
*/
#ifndef AGENTCUBE_TEST_REC_CLIENT_H
#define AGENTCUBE_TEST_REC_CLIENT_H

#include "agentcube.h"
#include "recorder.h"

#include <stdio.h>
#include <string.h>

/* A client of r with the settings of over (NULL: the defaults). */
__attribute__((unused))
static ac_client *rec_client(const struct recorder *r,
                             const struct ac_client_config *over) {
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  if (over != NULL)
    cfg = *over;
  else
    ac_client_config_init(&cfg);
  cfg.retry_base_ms = 1;
  cfg.retry_max_ms = 5;
  cfg.workload_manager_url = r->base;
  cfg.router_url = r->base;
  cfg.sa_token_path = "";
  if (ac_client_new(&cfg, &c, &e) != AC_OK)
    printf("# client: %s\n", e.msg);
  return c;
}

/* The session id of c, attached (NULL when refused). */
__attribute__((unused))
static ac_session *rec_attach(ac_client *c, const char *id) {
  ac_session *s = NULL;
  struct ac_error e;
  ac_session_attach(c, id, NULL, NULL, &s, &e);
  return s;
}

/* The recorder's next answer: status, body, content type (NULL: JSON),
** after delay_ms. */
__attribute__((unused))
static void rec_push_ct(struct recorder *r, int status, const char *body,
                        const char *ct, int delay_ms) {
  struct rec_reply rp;
  memset(&rp, 0, sizeof rp);
  rp.status = status;
  rp.body = (char *)body;
  rp.content_type = (char *)ct;
  rp.delay_ms = delay_ms;
  rec_push_reply(r, &rp);
}

#endif
