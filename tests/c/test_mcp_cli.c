/*
** test_mcp_cli.c -- `agentcube mcp` as a process sees it: the command
** line (bad options exit 2 and say which), the stdio transport (blank
** lines, a message over the size limit, EOF and signals) and the HTTP
** transport's answers before dispatch (unknown paths, bodies over the
** limit, DELETE without or with an unknown session, a failed initialize
** keeps no session, a port in use). Each run is a child process running
** ac_mcp_main; no request here reaches a sandbox.
*/
#include "mcp.h"
#include "tap.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIMIT (64u << 20)     /* the transports' message limit */

/* A running `agentcube mcp`: its pid, stdin (or -1), stdout and stderr. */
struct child {
  pid_t pid;
  int in, out, err;
};

/* Starts ac_mcp_main(argv) in a child; env: "NAME=VALUE" entries to set
** first (NULL-terminated, may be NULL). */
static int start(struct child *ch, const char *const *argv,
                 const char *const *env) {
  int pin[2], pout[2], perr[2];
  int argc = 0;
  if (pipe(pin) != 0 || pipe(pout) != 0 || pipe(perr) != 0)
    return 0;
  fflush(stdout);
  ch->pid = fork();
  if (ch->pid < 0)
    return 0;
  if (ch->pid == 0) {
    char *args[32];
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    close(pin[1]);
    close(pout[0]);
    close(perr[0]);
    for (const char *const *e = env; e != NULL && *e != NULL; e++)
      putenv((char *)*e);
    args[argc++] = "mcp";
    for (int i = 0; argv[i] != NULL && argc < 31; i++)
      args[argc++] = (char *)argv[i];
    args[argc] = NULL;
    exit(ac_mcp_main(argc, args));       /* exit: gcov and ASan report */
  }
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  ch->in = pin[1];
  ch->out = pout[0];
  ch->err = perr[0];
  signal(SIGPIPE, SIG_IGN);
  return 1;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct buf {
  char *p;
  size_t n;
};

static void buf_add(struct buf *b, const char *data, size_t n) {
  char *g = realloc(b->p, b->n + n + 1);
  if (g == NULL)
    return;
  memcpy(g + b->n, data, n);
  b->n += n;
  g[b->n] = '\0';
  b->p = g;
}

/* Feeds input (then closes stdin, unless keep_in) and collects stdout and
** stderr until both end or until_out appears in stdout; gives up after
** 60 s. Returns 1 when it stopped for the reason asked. */
static int pump(struct child *ch, const char *input, size_t len,
                int keep_in, const char *until_out, struct buf *out,
                struct buf *err) {
  size_t sent = 0;
  long long deadline = now_ms() + 60000;
  char chunk[65536];
  if (input == NULL && !keep_in && ch->in >= 0) {
    close(ch->in);
    ch->in = -1;
  }
  if (ch->in >= 0)
    fcntl(ch->in, F_SETFL, O_NONBLOCK);
  while (now_ms() < deadline) {
    struct pollfd p[3] = { { ch->out, POLLIN, 0 }, { ch->err, POLLIN, 0 },
                           { -1, POLLOUT, 0 } };
    if (until_out != NULL && out->p != NULL && strstr(out->p, until_out))
      return 1;
    if (ch->out < 0 && ch->err < 0)
      return until_out == NULL;
    if (ch->in >= 0 && input != NULL && sent < len)
      p[2].fd = ch->in;
    if (poll(p, 3, 1000) < 0 && errno != EINTR)
      return 0;
    for (int i = 0; i < 2; i++) {
      int *fd = i ? &ch->err : &ch->out;
      if (*fd >= 0 && p[i].revents) {
        ssize_t r = read(*fd, chunk, sizeof chunk);
        if (r > 0) {
          buf_add(i ? err : out, chunk, (size_t)r);
        } else if (r == 0 || errno != EINTR) {
          close(*fd);
          *fd = -1;
        }
      }
    }
    if (p[2].fd >= 0 && p[2].revents) {
      ssize_t w = write(ch->in, input + sent, len - sent);
      if (w > 0)
        sent += (size_t)w;
      if (w < 0 && errno != EAGAIN && errno != EINTR)
        sent = len;
      if (sent == len && !keep_in) {
        close(ch->in);
        ch->in = -1;
      }
    }
  }
  return 0;
}

/* Waits up to 30 s for the child; its exit status, or -1. */
static int reap(struct child *ch) {
  int st;
  for (long long end = now_ms() + 30000; now_ms() < end;) {
    pid_t r = waitpid(ch->pid, &st, WNOHANG);
    if (r == ch->pid) {
      if (ch->in >= 0)
        close(ch->in);
      if (ch->out >= 0)
        close(ch->out);
      if (ch->err >= 0)
        close(ch->err);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    usleep(10000);
  }
  kill(ch->pid, SIGKILL);
  waitpid(ch->pid, &st, 0);
  return -1;
}

/* Runs mcp with argv and no input: exit status; *err its stderr. */
static int run(const char *const *argv, const char *const *env,
               struct buf *out, struct buf *err) {
  struct child ch;
  if (!start(&ch, argv, env))
    return -1;
  pump(&ch, NULL, 0, 0, NULL, out, err);
  return reap(&ch);
}

static void buf_free(struct buf *b) {
  free(b->p);
  b->p = NULL;
  b->n = 0;
}

static void options(void) {
  static const struct {
    const char *argv[6];
    const char *env;
    const char *says;
  } bad[] = {
    /* the last word, unknown: named as unknown (not "missing value") */
    { { "--keep", "--bogus", NULL }, NULL, "unknown option --bogus" },
    { { "--listen", NULL }, NULL, "missing value" },
    { { "-x", "1", NULL }, NULL, "unknown option -x" },
    { { "--transport", "http", "--listen", "8000", NULL }, NULL,
      "--listen needs IPV4:PORT, not '8000'" },
    { { "--transport", "http", "--listen", "127.0.0.1:65536", NULL }, NULL,
      "not '127.0.0.1:65536'" },
    { { "--transport", "http", "--listen", "127.0.0.1:", NULL }, NULL,
      "not '127.0.0.1:'" },
    { { "--transport", "http", "--listen", "example.org:80", NULL }, NULL,
      "not 'example.org:80'" },
    { { "--transport", "http", "--port", "http", NULL },
      "MCP_HOST=localhost", "not 'localhost:http'" },
  };
  struct buf out = { 0 }, err = { 0 };
  const char *help[] = { "--help", NULL };
  int st;

  tcase("command line: unknown options (also last), bad --listen exit 2 "
        "and say so; --help exits 0");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *env[2] = { bad[i].env, NULL };
    char words[200] = "";
    for (int w = 0; bad[i].argv[w] != NULL; w++)
      snprintf(words + strlen(words), sizeof words - strlen(words), " %s",
               bad[i].argv[w]);
    st = run(bad[i].argv, env, &out, &err);
    is_int(st, 2, "mcp%s%s%s exits 2", words, bad[i].env ? " with " : "",
           bad[i].env ? bad[i].env : "");
    ok(err.p != NULL && strstr(err.p, bad[i].says) != NULL,
       "  says \"%s\" on stderr", bad[i].says);
    ok(out.n == 0, "  nothing on stdout (the protocol channel)");
    buf_free(&out);
    buf_free(&err);
  }
  /* the positive control: the usage, on stdout, and success */
  st = run(help, NULL, &out, &err);
  is_int(st, 0, "--help exits 0");
  ok(out.p != NULL && strstr(out.p, "usage: agentcube mcp") &&
     strstr(out.p, "--files-dir"), "  the usage on stdout");
  buf_free(&out);
  buf_free(&err);
}

static const char ping1[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
static const char ping2[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";

static void stdio_limits(void) {
  const char *argv[] = { "--template", "t", "--namespace", "ns", "--ttl",
                         "5", "-v", "--keep", NULL };
  struct child ch;
  struct buf out = { 0 }, err = { 0 };
  size_t len = strlen(ping1) + 4 + LIMIT + 2 + strlen(ping2) + 1, at = 0;
  char *input = malloc(len + 1);
  char *line2;
  json_t *lines, *m, *e;

  tcase("stdio: blank lines skipped, a line over 64 MiB refused, EOF is 0");
  REQUIRE(input != NULL, "memory for the input");
  at += (size_t)sprintf(input + at, "\n\r\n%s\n", ping1);
  memset(input + at, 'x', LIMIT + 1);
  at += LIMIT + 1;
  input[at++] = '\n';
  at += (size_t)sprintf(input + at, "%s\n", ping2);
  REQUIRE(start(&ch, argv, NULL), "mcp started");
  ok(pump(&ch, input, at, 0, NULL, &out, &err), "the output ends (EOF)");
  is_int(reap(&ch), 0, "exit status 0 at EOF");
  lines = out.p ? json_loadb(out.p, out.n, JSON_DISABLE_EOF_CHECK, NULL)
                : NULL;
  m = lines;
  ok(m != NULL && json_integer_value(json_object_get(m, "id")) == 1 &&
     json_is_object(json_object_get(m, "result")),
     "the first line answers ping 1 (the blank lines said nothing)");
  json_decref(lines);
  line2 = out.p ? strchr(out.p, '\n') : NULL;
  m = line2 ? json_loads(strtok(line2 + 1, "\n"), 0, NULL) : NULL;
  e = json_object_get(m, "error");
  ok(m != NULL && json_is_null(json_object_get(m, "id")) &&
     json_integer_value(json_object_get(e, "code")) == MCP_INVALID_REQUEST &&
     !strcmp(json_string_value(json_object_get(e, "message")) ?
             json_string_value(json_object_get(e, "message")) : "",
             "message too large"),
     "then the oversized line: -32600 message too large, id null");
  json_decref(m);
  m = line2 ? json_loads(strtok(NULL, "\n"), 0, NULL) : NULL;
  ok(m != NULL && json_integer_value(json_object_get(m, "id")) == 2 &&
     json_is_object(json_object_get(m, "result")),
     "then ping 2 is answered: the server read on");
  json_decref(m);
  free(input);
  buf_free(&out);
  buf_free(&err);
}

static void stdio_signals(void) {
  static const struct { int sig, status; } cases[] = {
    { SIGHUP, 128 + SIGHUP }, { SIGTERM, 0 }, { SIGINT, 0 }
  };
  const char *argv[] = { NULL };
  char line[128];

  tcase("stdio: SIGTERM and SIGINT end it with 0, SIGHUP with 129");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct child ch;
    struct buf out = { 0 }, err = { 0 };
    REQUIRE(start(&ch, argv, NULL), "mcp started");
    snprintf(line, sizeof line, "%s\n", ping1);
    /* an answer first: the server is reading (its handlers are set) */
    ok(pump(&ch, line, strlen(line), 1, "\"result\"", &out, &err),
       "ping answered while running");
    kill(ch.pid, cases[i].sig);
    is_int(reap(&ch), cases[i].status, "%s: exit status %d",
           strsignal(cases[i].sig), cases[i].status);
    buf_free(&out);
    buf_free(&err);
  }
}

/* ---- HTTP ---- */

static size_t to_buf(char *data, size_t size, size_t n, void *ud) {
  buf_add(ud, data, size * n);
  return size * n;
}

/* One request; returns the HTTP status (0: no answer), body in *body and
** the Mcp-Session-Id answered (if any) in sid. */
static long http(const char *method, const char *url, const char *body,
                 size_t len, const char *header, struct buf *resp,
                 char sid[128]) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  struct buf hdrs = { 0 };
  long status = 0;
  if (c == NULL)
    return 0;
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: application/json, text/event-stream");
  if (header != NULL)
    h = curl_slist_append(h, header);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_buf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, to_buf);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdrs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (sid != NULL) {
    const char *p = hdrs.p ? strcasestr(hdrs.p, "mcp-session-id: ") : NULL;
    sid[0] = '\0';
    if (p != NULL)
      sscanf(p + 16, "%127[^\r\n]", sid);
  }
  free(hdrs.p);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

static void http_refusals(void) {
  /* --host and --port (AgentCube's MCP_HOST and MCP_PORT), and the name
  ** localhost mapped to the loopback address */
  const char *argv[] = { "--transport", "streamable-http", "--host",
                         "localhost", "--port", "0", NULL };
  const char *env[] = { "MCP_HOST=192.0.2.1", NULL };  /* options win */
  struct child ch;
  struct buf out = { 0 }, err = { 0 }, r = { 0 };
  char url[128], base[128], sid[128], hdr[200];
  char *big;
  const char *init_bad = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                         "\"initialize\",\"params\":{}}";

  tcase("http: unknown path 404, body over 64 MiB 413, DELETE without or "
        "with an unknown session 400/404, a failed initialize keeps no "
        "session, SIGTERM ends it with 0");
  REQUIRE(start(&ch, argv, env), "mcp started");
  REQUIRE(pump(&ch, NULL, 0, 1, "/mcp\n", &out, &err) &&
          sscanf(out.p, "%127s", url) == 1, "it printed its address");
  ok(!strncmp(url, "http://127.0.0.1:", 17), "localhost is 127.0.0.1: %s",
     url);
  /* http://127.0.0.1:PORT/ */
  snprintf(base, sizeof base, "%.*s", (int)(strlen(url) - 3), url);

  /* the positive control: the endpoint answers */
  is_int(http("POST", url, ping1, strlen(ping1), NULL, &r, NULL), 400,
         "POST /mcp without a session: 400 (send initialize first)");
  ok(r.p && strstr(r.p, "initialize first"), "  saying so");
  buf_free(&r);
  /* a page served from this machine, on any port, may talk to us */
  is_int(http("POST", url, ping1, strlen(ping1),
              "Origin: http://localhost:5173", &r, NULL), 400,
         "Origin http://localhost:5173 is let through (400, not 403)");
  buf_free(&r);
  is_int(http("POST", url, ping1, strlen(ping1),
              "Origin: http://localhost.example.com", &r, NULL), 403,
         "Origin http://localhost.example.com is foreign: 403");
  buf_free(&r);

  snprintf(hdr, sizeof hdr, "%smcpx", base);
  is_int(http("GET", hdr, NULL, 0, NULL, &r, NULL), 404, "GET /mcpx: 404");
  snprintf(hdr, sizeof hdr, "%snope", base);
  is_int(http("POST", hdr, ping1, strlen(ping1), NULL, &r, NULL), 404,
         "POST /nope: 404");
  ok(r.p && strstr(r.p, "the MCP endpoint is /mcp"), "  naming the endpoint");
  buf_free(&r);

  big = malloc(LIMIT + 2);
  REQUIRE(big != NULL, "memory for a large body");
  memset(big, ' ', LIMIT + 1);
  memcpy(big, ping1, strlen(ping1));  /* valid JSON, padded past the limit */
  is_int(http("POST", url, big, LIMIT + 1, NULL, &r, NULL), 413,
         "a body of 64 MiB + 1: 413");
  ok(r.p && strstr(r.p, "message too large") && strstr(r.p, "-32600"),
     "  -32600 message too large");
  buf_free(&r);
  is_int(http("POST", url, big, LIMIT, "Mcp-Session-Id: none", &r, NULL),
         404, "a body of exactly 64 MiB is read (then: unknown session 404)");
  buf_free(&r);
  free(big);

  is_int(http("DELETE", url, NULL, 0, NULL, &r, NULL), 400,
         "DELETE without Mcp-Session-Id: 400");
  ok(r.p && strstr(r.p, "Mcp-Session-Id header is required"), "  saying so");
  buf_free(&r);
  is_int(http("DELETE", url, NULL, 0, "Mcp-Session-Id: no-such", &r, NULL),
         404, "DELETE of an unknown session: 404");
  buf_free(&r);

  is_int(http("POST", url, init_bad, strlen(init_bad), NULL, &r, sid), 200, "initialize without protocolVersion: 200");
  ok(r.p && strstr(r.p, "\"code\":-32602") &&
     strstr(r.p, "protocolVersion"), "  a -32602 error naming it");
  buf_free(&r);
  snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
  is_int(http("POST", url, ping2, strlen(ping2), hdr, &r, NULL), 404,
         "its session id is not kept: 404");
  buf_free(&r);

  kill(ch.pid, SIGTERM);
  pump(&ch, NULL, 0, 0, NULL, &out, &err);
  is_int(reap(&ch), 0, "SIGTERM: exit status 0");
  buf_free(&out);
  buf_free(&err);
}

/* ---- a server that is not AgentCube ---- */

/* Answers every request 404 "404 page not found", as any web server at a
** mistyped URL does. */
static enum MHD_Result not_agentcube(void *cls, struct MHD_Connection *c,
                                     const char *url, const char *method,
                                     const char *version, const char *up,
                                     size_t *up_size, void **con_cls) {
  static const char body[] = "404 page not found";
  struct MHD_Response *r;
  enum MHD_Result ret;
  (void)cls, (void)url, (void)method, (void)version, (void)up;
  if (*con_cls == NULL) {
    *con_cls = (void *)1;
    return MHD_YES;
  }
  if (*up_size > 0) {
    *up_size = 0;
    return MHD_YES;
  }
  r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
                                      MHD_RESPMEM_PERSISTENT);
  ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, r);
  MHD_destroy_response(r);
  return ret;
}

/* Waits up to 200 ms for stdout and reads what came. */
static void read_some(struct child *ch, struct buf *out) {
  struct pollfd p = { ch->out, POLLIN, 0 };
  char chunk[4096];
  ssize_t r;
  if (ch->out >= 0 && poll(&p, 1, 200) > 0) {
    r = read(ch->out, chunk, sizeof chunk);
    if (r > 0) {
      buf_add(out, chunk, (size_t)r);
    } else if (r == 0 || errno != EINTR) {
      close(ch->out);               /* it ended: nothing more will come */
      ch->out = -1;
    }
  }
}

/* Sends lines (one message each) and waits for the replies to requests
** 2..last; then EOF. Returns the replies by id (a JSON object). */
static json_t *converse(const char *const *argv, const char *const *env,
                        const char *lines, int last, int *status) {
  struct child ch;
  struct buf out = { 0 }, err = { 0 };
  json_t *byid = json_object();
  char want[32];
  *status = -1;
  if (!start(&ch, argv, env))
    return byid;
  pump(&ch, lines, strlen(lines), 1, "\"id\":1,", &out, &err);
  for (long long end = now_ms() + 60000; now_ms() < end;) {
    int n = 0;
    for (int id = 2; id <= last; id++) {
      snprintf(want, sizeof want, "\"id\":%d,", id);
      n += out.p != NULL && strstr(out.p, want) != NULL;
    }
    if (n == last - 1 || ch.out < 0)
      break;
    read_some(&ch, &out);
  }
  pump(&ch, NULL, 0, 0, NULL, &out, &err);
  *status = reap(&ch);
  for (char *line = out.p ? strtok(out.p, "\n") : NULL; line != NULL;
       line = strtok(NULL, "\n")) {
    json_t *m = json_loads(line, 0, NULL);
    json_t *id = json_object_get(m, "id");
    if (json_is_integer(id)) {
      snprintf(want, sizeof want, "%lld",
               (long long)json_integer_value(id));
      json_object_set(byid, want, m);
    }
    json_decref(m);
  }
  buf_free(&out);
  buf_free(&err);
  return byid;
}

/* The error code of the tool result answering request id, or "". */
static const char *tool_code(json_t *byid, const char *id) {
  json_t *r = json_object_get(json_object_get(byid, id), "result");
  const char *code = json_string_value(json_object_get(
    json_object_get(r, "structuredContent"), "code"));
  return json_is_true(json_object_get(r, "isError")) && code ? code : "";
}

#define INIT "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"," \
             "\"params\":{\"protocolVersion\":\"2025-03-26\"}}\n"
#define CALL(id, tool, args) "{\"jsonrpc\":\"2.0\",\"id\":" #id "," \
  "\"method\":\"tools/call\",\"params\":{\"name\":\"" tool "\"," \
  "\"arguments\":" args "}}\n"

static void unreachable_backend(void) {
  struct MHD_Daemon *d = MHD_start_daemon(
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
    NULL, not_agentcube, NULL, MHD_OPTION_END);
  const union MHD_DaemonInfo *info =
    d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  char wm[80], rt[80];
  const char *env[] = { wm, rt, NULL };
  const char *noenv[] = { "WORKLOAD_MANAGER_URL=", "ROUTER_URL=",
                          "AGENTCUBE_HOME=/proc/version/home", NULL };
  const char *argv[] = { NULL };
  const char *lines = INIT
    CALL(2, "create_session", "{}")
    CALL(3, "execute_command", "{\"command\":\"true\"}")
    CALL(4, "read_file", "{\"session_id\":\"s-1\",\"remote_path\":\"a\"}")
    CALL(5, "list_files", "{\"session_id\":\"s-1\"}")
    CALL(6, "write_file", "{\"session_id\":\"s-1\",\"content\":\"x\","
                          "\"remote_path\":\"a\"}");
  json_t *byid;
  int status;

  tcase("a server that is not AgentCube, or a runtime that cannot start: "
        "every tool call is an error result, the server goes on");
  REQUIRE(info != NULL, "a web server that answers 404 to everything");
  snprintf(wm, sizeof wm, "WORKLOAD_MANAGER_URL=http://127.0.0.1:%u",
           info->port);
  snprintf(rt, sizeof rt, "ROUTER_URL=http://127.0.0.1:%u", info->port);
  byid = converse(argv, env, lines, 6, &status);
  is_str(tool_code(byid, "2"), "EHTTP", "create_session: EHTTP");
  is_str(tool_code(byid, "3"), "EHTTP", "execute_command (its new session): "
         "EHTTP");
  is_str(tool_code(byid, "4"), "EHTTP", "read_file: EHTTP");
  is_str(tool_code(byid, "5"), "EHTTP", "list_files: EHTTP");
  is_str(tool_code(byid, "6"), "EHTTP", "write_file: EHTTP");
  ok(strstr(json_string_value(json_object_get(json_object_get(json_object_get(
     json_object_get(byid, "4"), "result"), "structuredContent"),
     "session_id")) ? : "", "s-1") != NULL, "  read_file names the session");
  is_int(status, 0, "EOF: exit status 0");
  json_decref(byid);
  MHD_stop_daemon(d);

  /* no endpoint configured and a home where the runtime cannot live */
  byid = converse(argv, noenv, INIT CALL(2, "create_session", "{}"), 2,
                  &status);
  ok(strcmp(tool_code(byid, "2"), "") != 0, "create_session without a "
     "runtime: an error result (%s)", tool_code(byid, "2"));
  is_int(status, 0, "EOF: exit status 0");
  json_decref(byid);
}

static void http_port_in_use(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  char listen_at[64];
  const char *argv[] = { "--transport", "http", "--listen", listen_at, NULL };
  struct buf out = { 0 }, err = { 0 };

  tcase("http: a port in use exits 1 saying it cannot listen");
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
          listen(s, 1) == 0 &&
          getsockname(s, (struct sockaddr *)&sa, &sl) == 0,
          "a port taken by this test");
  snprintf(listen_at, sizeof listen_at, "127.0.0.1:%u", ntohs(sa.sin_port));
  is_int(run(argv, NULL, &out, &err), 1, "--listen %s exits 1", listen_at);
  ok(err.p && strstr(err.p, "cannot listen on") && strstr(err.p, listen_at),
     "  says it cannot listen there");
  close(s);
  buf_free(&out);
  buf_free(&err);
}

int main(void) {
  plan(6);
  unsetenv("MCP_TRANSPORT");
  unsetenv("MCP_HOST");
  unsetenv("MCP_PORT");
  unsetenv("CODE_INTERPRETER_SESSION_TTL");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  options();
  stdio_limits();
  stdio_signals();
  http_refusals();
  http_port_in_use();
  unreachable_backend();
  curl_global_cleanup();
  return done_testing();
}
