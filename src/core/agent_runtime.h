/*
** agent_runtime.h -- what the agent-runtime files share: the object and
** the invocation URL builder. Private to libagentcube.
*/
#ifndef AGENTCUBE_CORE_AGENT_RUNTIME_H
#define AGENTCUBE_CORE_AGENT_RUNTIME_H

#include "internal.h"

#define AC_AGENT_SESSION_HEADER "x-agentcube-session-id"

struct ac_agent_runtime {
  ac_client *c;                       /* holds a reference */
  char *name;
  char *ns;
  char *session_id;
  char *base_url;                     /* ".../invocations/" */
  char *what;                         /* "agent runtime NS/NAME": messages */
  long timeout_ms;                    /* a reply may stay silent this long */
  long connect_timeout_ms;
};

/* The URL of an invocation at path, the way the SDK makes it: leading
** '/'s dropped, the rest resolved against base like urljoin, and quoted
** the way requests and urllib3 quote a URL before sending it (characters
** a URL cannot hold become %XX, existing %xx escapes are kept, uppercased,
** and decoded when they stand for an unreserved character); an empty path
** is base itself. Unlike urljoin, a path that would leave base (another
** host, or a path outside ".../invocations/") is AC_EINVAL: the session
** header and the token must not go elsewhere. *out malloc'd. */
AC_INTERNAL enum ac_code ac_agent_url(const char *base, const char *path,
                                      char **out, struct ac_error *err);

#endif
