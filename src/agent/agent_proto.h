/*
** agent_proto.h -- the wire format between the server and the agent that
** runs as init (PID 1) of a box's live sandbox.
**
** Transport: a SOCK_SEQPACKET socketpair inherited by the agent, so every
** message is one packet (never split, never merged) and a message written
** by any other process of the sandbox arrives whole or not at all. Each
** message starts with a fixed little header, then a payload of the
** header's length. Every field is host byte order (both ends run on the
** same machine).
**
** The agent is untrusted from the server's point of view: the server
** checks the version, the type, the length of every message against the
** type's bounds, and every id against the commands it started.
*/
#ifndef AGENTCUBE_AGENT_PROTO_H
#define AGENTCUBE_AGENT_PROTO_H

#include <stdint.h>

#define AGP_VERSION 1
#define AGP_MAX_MSG 65536u              /* header included */
#define AGP_CHUNK 32768u                /* output bytes per message */
#define AGP_MAX_STRINGS 4096u           /* argv + env entries per spawn */
#define AGP_MAX_CMDS 1024u              /* commands alive at once */

struct agp_hdr {
  uint32_t len;        /* whole message, header included */
  uint16_t version;    /* AGP_VERSION */
  uint16_t type;       /* enum agp_type */
  uint32_t id;         /* command id (server-chosen, > 0), 0 for none */
  uint32_t arg;        /* type-specific */
};

enum agp_type {
  /* server -> agent */
  AGP_SPAWN = 1,       /* payload: struct agp_spawn, then strings */
  AGP_SIGNAL = 2,      /* arg: signal, sent to the command's process group */
  AGP_STDIN = 3,       /* payload: bytes for stdin; arg 1: close it after */
  /* agent -> server */
  AGP_HELLO = 64,      /* arg: AGP_VERSION; once, first */
  AGP_STARTED = 65,    /* arg: the command's pid inside the sandbox */
  AGP_OUTPUT = 66,     /* arg: 1 stdout, 2 stderr; payload: bytes */
  AGP_EXIT = 67,       /* arg: wait status; last message of a command */
  AGP_FAILED = 68      /* arg: errno; payload: what failed (text) */
};

/* AGP_SPAWN payload head; then NUL-terminated strings: the working
** directory, argc arguments, envc "NAME=value" entries (the whole
** environment of the command). */
struct agp_spawn {
  uint32_t flags;      /* AGP_F_* */
  uint32_t argc, envc;
  uint32_t nofile;     /* RLIMIT_NOFILE, 0: unchanged */
  uint64_t fsize;      /* RLIMIT_FSIZE, 0: unchanged */
  uint64_t cpu_secs;   /* RLIMIT_CPU soft limit, 0: unchanged */
};

enum {
  AGP_F_CGROUP = 1,    /* join cgroup c<id> below the agent's cgroup dir
                          before anything else (the command fails when
                          that is impossible) */
  AGP_F_STDIN = 2,     /* a stdin pipe instead of /dev/null */
  AGP_F_KEEP = 4       /* background process: the rest of its tree is not
                          killed when its main process exits */
};

#endif
