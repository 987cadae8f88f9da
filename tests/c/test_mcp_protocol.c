/*
** test_mcp_protocol.c -- the MCP server's protocol handling, in process:
** message classification, the lifecycle, error codes, tools/list, tool
** argument errors, and the result helpers. No sandbox is needed: nothing
** here reaches the backend.
*/
#include "mcp_toolkit.h"
#include "tap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A sink that keeps every message, and counts finals. */
struct collect {
  struct mcp_sink sink;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  json_t *msgs;
  int finals;
};

static void c_send(struct mcp_sink *s, const char *text, int final) {
  struct collect *c = (struct collect *)s;
  pthread_mutex_lock(&c->mu);
  if (text != NULL)
    json_array_append_new(c->msgs, json_loads(text, 0, NULL));
  if (final)
    c->finals++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void c_ref(struct mcp_sink *s) {
  (void)s;
}

static struct collect col = {
  { c_send, c_ref, c_ref }, PTHREAD_MUTEX_INITIALIZER,
  PTHREAD_COND_INITIALIZER, NULL, 0
};

/* Sends text and returns the last message it produced (after waiting for
** the final one when it was a request), or NULL. */
static json_t *say(struct mcp_conn *c, const char *text) {
  int before, is_req;
  json_t *last = NULL;
  pthread_mutex_lock(&col.mu);
  before = col.finals;
  json_array_clear(col.msgs);
  pthread_mutex_unlock(&col.mu);
  is_req = mcp_conn_handle(c, text, strlen(text), &col.sink);
  pthread_mutex_lock(&col.mu);
  while (is_req && col.finals == before)
    pthread_cond_wait(&col.cv, &col.mu);
  if (json_array_size(col.msgs) > 0)
    last = json_incref(json_array_get(col.msgs,
                                      json_array_size(col.msgs) - 1));
  pthread_mutex_unlock(&col.mu);
  return last;
}

static long long err_code(json_t *m) {
  return json_integer_value(json_object_get(json_object_get(m, "error"),
                                            "code"));
}

static void classify(void) {
  static const struct { const char *text; enum mcp_kind kind; int code; }
  cases[] = {
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", MCP_REQUEST, 0 },
    { "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\"}", MCP_REQUEST,
      0 },
    { "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", MCP_NOTIFICATION, 0 },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", MCP_RESPONSE, 0 },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{}}", MCP_RESPONSE, 0 },
    { "[]", MCP_BAD, MCP_INVALID_REQUEST },
    { "3", MCP_BAD, MCP_INVALID_REQUEST },
    { "{\"id\":1,\"method\":\"ping\"}", MCP_BAD, MCP_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_BAD,
      MCP_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_BAD,
      MCP_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}",
      MCP_BAD, MCP_INVALID_PARAMS },
  };
  tcase("classify: requests, notifications, responses and bad messages");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *m = json_loads(cases[i].text, JSON_DECODE_ANY, NULL), *id;
    int code = 0;
    const char *why = NULL;
    enum mcp_kind k = mcp_rpc_classify(m, &id, &code, &why);
    is_int(k, cases[i].kind, "classify %s", cases[i].text);
    if (cases[i].kind == MCP_BAD)
      ok(code == cases[i].code && why && *why, "  error %d: %s", code,
         why ? why : "");
    json_decref(m);
  }
}

static void lifecycle(struct mcp_conn *c) {
  json_t *m;

  tcase("lifecycle: only ping before initialize, version negotiated once");
  REQUIRE(c != NULL, "an MCP connection");

  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
  is_int(err_code(m), MCP_INVALID_REQUEST, "tools/list before initialize");
  json_decref(m);
  ok(mcp_conn_version(c) == NULL, "no version before initialize");
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
  ok(json_is_object(json_object_get(m, "result")), "ping before initialize");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\","
             "\"params\":{\"protocolVersion\":\"2025-03-26\"}}");
  is_str(json_string_value(json_object_get(json_object_get(m, "result"),
                                           "protocolVersion")),
         "2025-03-26", "a version we speak is echoed");
  ok(json_is_object(json_object_get(json_object_get(json_object_get(m,
     "result"), "capabilities"), "tools")), "tools capability");
  json_decref(m);
  is_str(mcp_conn_version(c), "2025-03-26", "negotiated version kept");
  m = say(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/"
             "initialized\"}");
  ok(m == NULL, "no answer to notifications/initialized");
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\","
             "\"params\":{\"protocolVersion\":\"2025-03-26\"}}");
  is_int(err_code(m), MCP_INVALID_REQUEST, "a second initialize");
  json_decref(m);
}

static void errors(struct mcp_conn *c) {
  json_t *m;

  tcase("errors: parse error, unknown method and tool, bad tool name");
  REQUIRE(c != NULL, "an MCP connection");

  m = say(c, "{\"jsonrpc\":");
  is_int(err_code(m), MCP_PARSE_ERROR, "parse error");
  ok(json_is_null(json_object_get(m, "id")), "  with a null id");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"nope\"}");
  is_int(err_code(m), MCP_METHOD_NOT_FOUND, "unknown method");
  is_str(json_string_value(json_object_get(m, "id")), "x", "  its id");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"no_such_tool\"}}");
  is_int(err_code(m), MCP_INVALID_PARAMS, "unknown tool");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
             "\"params\":{\"name\":5}}");
  is_int(err_code(m), MCP_INVALID_PARAMS, "tool name not a string");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
             "\"params\":{\"requestId\":12345}}");
  ok(m == NULL, "cancelling an unknown request says nothing");
}

static void tool_args(struct mcp_conn *c) {
  json_t *m, *r;

  tcase("tool arguments: missing, invalid and unknown ones are tool errors");
  REQUIRE(c != NULL, "an MCP connection");
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"run_code\",\"arguments\":"
             "{\"code\":\"1\"}}}");
  r = json_object_get(m, "result");
  ok(json_is_true(json_object_get(r, "isError")),
     "a missing argument is a tool error (isError)");
  ok(strstr(json_string_value(json_object_get(json_object_get(r,
     "structuredContent"), "error")), "'language' is required") != NULL,
     "  naming the argument");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"execute_command\",\"arguments\":"
             "{\"command\":\"x\",\"timeout_seconds\":-1}}}");
  r = json_object_get(m, "result");
  ok(json_is_true(json_object_get(r, "isError")), "a negative timeout");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"stop_session\",\"arguments\":"
             "{\"session_id\":\"a\",\"bogus\":1}}}");
  r = json_object_get(m, "result");
  ok(strstr(json_string_value(json_object_get(r, "content") ?
     json_object_get(json_array_get(json_object_get(r, "content"), 0),
                     "text") : NULL), "unknown argument 'bogus'") != NULL,
     "an unknown argument is named");
  json_decref(m);
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"upload_file\",\"arguments\":{}}}");
  r = json_object_get(m, "result");
  ok(strstr(json_string_value(json_object_get(json_object_get(r,
     "structuredContent"), "error")), "--files-dir") != NULL,
     "host files are off without --files-dir");
  json_decref(m);
}

/* Calls tool with args (JSON text) and returns the error text of its
** result when it is a tool error (isError) with code, else NULL. */
static char *tool_error(struct mcp_conn *c, const char *tool,
                        const char *args, const char *code) {
  static int id = 100;
  char text[1024];
  json_t *m, *r, *sc;
  char *why = NULL;
  snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
           "\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
           id++, tool, args);
  m = say(c, text);
  r = json_object_get(m, "result");
  sc = json_object_get(r, "structuredContent");
  if (json_is_true(json_object_get(r, "isError")) &&
      json_is_string(json_object_get(sc, "error")) &&
      !strcmp(json_string_value(json_object_get(sc, "code")) ?
              json_string_value(json_object_get(sc, "code")) : "", code))
    why = strdup(json_string_value(json_object_get(sc, "error")));
  json_decref(m);
  return why;
}

static void tool_arg_table(struct mcp_conn *c) {
  json_t *m;
  /* Each is refused before any session is made (no sandbox here). */
  static const struct { const char *tool, *args, *says; } cases[] = {
    { "create_session", "{\"ttl\":5}",
      "unknown argument 'ttl' (the tool takes none)" },
    { "list_sessions", "{\"all\":true}", "unknown argument 'all' (the tool "
      "takes none)" },
    { "stop_session", "{\"id\":\"s\"}",
      "unknown argument 'id' (valid: session_id)" },
    { "stop_session", "{\"session_id\":5}", "'session_id' must be a string" },
    { "execute_command", "{\"command\":\"ls\",\"session_reuse\":\"yes\"}",
      "'session_reuse' must be true or false" },
    { "execute_command", "{\"command\":\"ls\",\"timeout_seconds\":\"5\"}",
      "'timeout_seconds' must be a number" },
    { "execute_command", "{\"command\":\"ls\",\"env\":[\"A=1\"]}",
      "'env' must be an object of strings" },
    { "execute_command", "{\"command\":\"ls\",\"env\":{\"A=B\":\"x\"}}",
      "'env' must map variable names (no '=') to strings" },
    { "execute_command", "{\"command\":\"ls\",\"env\":{\"A\":1}}",
      "'env' must map variable names" },
    { "run_code", "{\"language\":\"python\",\"code\":\"1\",\"images\":"
      "\"a.png\"}", "'images' must be an array of paths" },
    { "run_code", "{\"language\":\"python\",\"code\":\"1\",\"images\":[1]}",
      "'images' must be an array of paths" },
    { "run_code", "{\"language\":\"python\",\"code\":\"1\",\"context_id\":"
      "\"c1\"}", "'session_id' is required" },
    { "run_code", "{\"language\":\"python\",\"code\":\"1\",\"context_id\":"
      "\"c1\",\"session_id\":\"s\",\"timeout_seconds\":0}",
      "'timeout_seconds' must be between 0.001 and 86400" },
    { "write_file", "{\"content\":\"x\"}", "'remote_path' is required" },
    { "write_file", "{\"content\":\"@@@@\",\"remote_path\":\"a\","
      "\"encoding\":\"base64\"}", "'content' is not valid base64" },
    { "write_file", "{\"content\":\"abc\",\"remote_path\":\"a\","
      "\"encoding\":\"base64\"}", "'content' is not valid base64" },
    { "write_file", "{\"content\":\"x\",\"remote_path\":\"a\","
      "\"encoding\":\"latin1\"}",
      "'encoding' must be \"utf-8\" or \"base64\"" },
    { "read_file", "{\"remote_path\":\"a\",\"max_bytes\":0}",
      "'max_bytes' must be between 1 and" },
    { "read_file", "{\"remote_path\":\"a\",\"max_bytes\":\"all\"}",
      "'max_bytes' must be a number" },
    { "list_files", "{\"path\":5}", "'path' must be a string" },
    { "start_process", "{\"command\":\"x\",\"shell\":\"yes\"}",
      "'shell' must be true or false" },
    { "start_process", "{\"command\":\"x\",\"timeout_seconds\":0}",
      "'timeout_seconds' must be between" },
    { "start_process", "{\"command\":\"x\",\"working_dir\":1}",
      "'working_dir' must be a string" },
    { "start_process", "{\"command\":\"x\",\"env\":\"A=1\"}",
      "'env' must be an object" },
    { "start_process", "{\"command\":\"   \"}", "the command is empty" },
    { "start_process", "{\"command\":\"echo 'open\"}", "quot" },
    { "read_process_output", "{\"session_id\":\"s\"}",
      "'process_id' is required (the id from start_process)" },
    { "read_process_output", "{\"session_id\":\"s\",\"process_id\":\"\"}",
      "'process_id' is required" },
    { "read_process_output", "{\"process_id\":1}", "'session_id' is required" },
    { "read_process_output", "{\"session_id\":\"s\",\"process_id\":\"7\","
      "\"offset\":-1}", "'offset' must be between 0 and" },
    { "stop_process", "{\"session_id\":\"s\",\"process_id\":1,"
      "\"signal\":9}", "'signal' must be a string" },
    { "list_processes", "{}", "'session_id' is required" },
    { "create_context", "{\"language\":5}", "'language' must be a string" },
    { "remove_path", "{\"path\":\"a\",\"recursive\":\"yes\"}",
      "'recursive' must be true or false" },
    { "make_directory", "{\"path\":\"a\",\"parents\":1}",
      "'parents' must be true or false" },
    { "stat_path", "{\"path\":5}", "'path' must be a string" },
    { "rename_path", "{\"from\":\"a\",\"to\":\"b\",\"overwrite\":\"no\"}",
      "'overwrite' must be true or false" },
    { "write_file", "{\"content\":\"x\",\"remote_path\":\"a\","
      "\"session_reuse\":1}", "'session_reuse' must be true or false" },
    { "create_context", "{\"session_reuse\":\"yes\"}",
      "'session_reuse' must be true or false" },
  };
  char *why;

  tcase("tool arguments: every tool names the argument at fault (EINVAL)");
  REQUIRE(c != NULL, "an MCP connection");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    why = tool_error(c, cases[i].tool, cases[i].args, "EINVAL");
    ok(why != NULL && strstr(why, cases[i].says) != NULL,
       "%s %s: %s", cases[i].tool, cases[i].args, why ? why : "(no error)");
    free(why);
  }
  m = say(c, "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"list_files\",\"arguments\":"
             "{\"path\":1},\"_meta\":{\"progressToken\":{\"a\":1}}}}");
  ok(json_is_true(json_object_get(json_object_get(m, "result"), "isError")),
     "a progressToken that is neither string nor integer is ignored: the "
     "call is answered");
  json_decref(m);
  why = tool_error(c, "download_file", "{\"remote_path\":\"a\","
                   "\"local_path\":\"b\"}", "EACCESS");
  ok(why != NULL && strstr(why, "start the server with --files-dir DIR"),
     "download_file without --files-dir: EACCESS, saying how to turn it on");
  free(why);
}

static void host_tool_args(struct mcp_conn *c) {
  char longname[300], args[400];
  char *why;

  tcase("host file tools with --files-dir: arguments and names refused "
        "before any session");
  REQUIRE(c != NULL, "an MCP connection with a files dir");
  json_decref(say(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                  "\"initialize\",\"params\":{\"protocolVersion\":"
                  "\"2025-06-18\"}}"));
  why = tool_error(c, "upload_file", "{\"local_path\":5,\"remote_path\":"
                   "\"a\"}", "EINVAL");
  ok(why && strstr(why, "'local_path' must be a string"), "upload_file: %s",
     why ? why : "(no error)");
  free(why);
  why = tool_error(c, "upload_file", "{\"local_path\":\"missing.txt\","
                   "\"remote_path\":\"a\"}", "ENOTFOUND");
  ok(why && strstr(why, "missing.txt: no such file in the files directory"),
     "upload_file of a missing file: ENOTFOUND: %s", why ? why : "(none)");
  free(why);
  why = tool_error(c, "download_file", "{\"remote_path\":\"a\"}",
                   "EINVAL");
  ok(why && strstr(why, "'local_path' is required"), "download_file: %s",
     why ? why : "(no error)");
  free(why);
  memset(longname, 'n', 256);
  longname[256] = '\0';
  snprintf(args, sizeof args, "{\"remote_path\":\"a\",\"local_path\":"
           "\"d/%s\"}", longname);
  why = tool_error(c, "download_file", args, "EINVAL");
  ok(why && strstr(why, "not a file name"), "a local name of 256 bytes: "
     "not a file name (%.40s)", why ? why : "no EINVAL");
  free(why);
  why = tool_error(c, "download_file", "{\"remote_path\":\"a\","
                   "\"local_path\":\"../out\"}", "EACCESS");
  ok(why && strstr(why, "outside the files directory"), "'..' out: %s",
     why ? why : "(no error)");
  free(why);
}

static void tools_list(void) {
  json_t *with = mcp_tools_list(1), *without = mcp_tools_list(0), *t;
  size_t i;
  int schemas = 1;

  tcase("tools/list: descriptions, schemas, 19 tools with --files-dir");
  json_array_foreach(with, i, t) {
    json_t *s = json_object_get(t, "inputSchema");
    schemas &= json_is_object(s) &&
               !strcmp(json_string_value(json_object_get(s, "type")),
                       "object") &&
               json_is_object(json_object_get(s, "properties")) &&
               strlen(json_string_value(json_object_get(t, "description")))
                 > 30;
    schemas &= mcp_tools_exists(json_string_value(json_object_get(t,
                                                                  "name")));
  }
  ok(schemas, "every tool has a description and an object schema");
  is_int(json_array_size(with), 19, "19 tools with --files-dir");
  is_int(json_array_size(without), 17, "17 without");
  ok(!mcp_tools_exists("nope"), "no tool 'nope'");
  json_decref(with);
  json_decref(without);
}

#define FFFD3 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
#define MIXED "\xff" "\xe2\x82\xac" "\xf0\x9f\x98\x80" "\xed\xa0\x80" \
              "\xf0\x80\x80\x80" "\xe2(" "\xf4\x90\x80\x80"

static void helpers(void) {
  json_t *j = mcp_text("a\xff" "b\xc3", 4), *b;
  unsigned char *raw;
  size_t n;

  tcase("helpers: UTF-8 repair, base64, PNG signature");
  is_str(json_string_value(j), "a\xef\xbf\xbd" "b\xef\xbf\xbd",
         "invalid UTF-8 becomes U+FFFD");
  json_decref(j);
  j = mcp_text("caf\xc3\xa9", 5);
  is_str(json_string_value(j), "caf\xc3\xa9", "valid UTF-8 is kept");
  json_decref(j);
  b = mcp_base64("\x00\x01\xfe\xff", 4);
  is_str(json_string_value(b), "AAH+/w==", "base64");
  ok(mcp_unbase64(json_string_value(b), &raw, &n) && n == 4 &&
     !memcmp(raw, "\x00\x01\xfe\xff", 4), "base64 round trip");
  free(raw);
  json_decref(b);
  ok(!mcp_unbase64("abc", &raw, &n), "malformed base64 refused");
  ok(!mcp_unbase64("@@@@", &raw, &n), "base64 with a foreign alphabet "
     "refused");
  ok(mcp_unbase64("", &raw, &n) && n == 0, "empty base64: no bytes");
  free(raw);
  /* command output that mixes invalid bytes with valid 3- and 4-byte
  ** characters: only the invalid bytes are replaced, one U+FFFD each (a
  ** surrogate and an overlong form are invalid too) */
  j = mcp_text(MIXED, sizeof MIXED - 1);
  is_str(json_string_value(j), "\xef\xbf\xbd" "\xe2\x82\xac"
         "\xf0\x9f\x98\x80" FFFD3 FFFD3 "\xef\xbf\xbd" "\xef\xbf\xbd" "(" FFFD3
         "\xef\xbf\xbd", "3- and 4-byte characters kept, the rest U+FFFD");
  json_decref(j);
  j = mcp_text("\xe2\x82", 2);
  is_str(json_string_value(j), "\xef\xbf\xbd\xef\xbf\xbd",
         "a character cut short at the end");
  json_decref(j);
  j = mcp_text(NULL, 0);
  is_str(json_string_value(j), "", "no output is the empty string");
  json_decref(j);
  ok(mcp_is_png("\x89PNG\r\n\x1a\nxxxx", 12), "PNG signature");
  ok(!mcp_is_png("GIF89a", 6), "not a PNG");
}

static void command_words(void) {
  struct ac_error err;
  json_t *argv = NULL;
  char *t;

  tcase("commands: split like shell words, bash -c with shell, empty refused");
  is_int(mcp_backend_argv("printf '%s|' 'a b' c\\ d", 0, &argv, &err),
         AC_OK, "a command line with quotes and escapes");
  t = argv ? json_dumps(argv, JSON_COMPACT) : NULL;
  is_str(t, "[\"printf\",\"%s|\",\"a b\",\"c d\"]", "  its words");
  free(t);
  json_decref(argv);
  is_int(mcp_backend_argv("echo $HOME | wc", 1, &argv, &err), AC_OK,
         "with shell");
  t = argv ? json_dumps(argv, JSON_COMPACT) : NULL;
  is_str(t, "[\"bash\",\"-c\",\"echo $HOME | wc\"]", "  bash -c LINE");
  free(t);
  json_decref(argv);
  is_int(mcp_backend_argv(" \t ", 0, &argv, &err), AC_EINVAL,
         "blanks only: EINVAL");
  ok(argv == NULL && strstr(err.msg, "the command is empty"), "  %s",
     err.msg);
  is_int(mcp_backend_argv("echo \"open", 0, &argv, &err), AC_EINVAL,
         "an open quote: EINVAL");
  ok(argv == NULL && strstr(err.msg, "No closing quotation"), "  %s",
     err.msg);
}

int main(void) {
  struct mcp_options o = { 0 };
  struct mcp_backend *b = NULL;
  struct mcp_conn *c = NULL, *hc = NULL;
  struct mcp_hostdir *hd = NULL;
  char dir[64] = "/tmp/agentcube-mcp-proto.XXXXXX", cmd[128];

  plan(9);
  o.template_name = AC_DEFAULT_NAME;
  o.ns = AC_DEFAULT_NAMESPACE;
  o.ttl = 60;
  col.msgs = json_array();
  if (mcp_backend_new(&o, &b, NULL) == AC_OK)
    c = mcp_conn_new(b, NULL);
  if (b != NULL && mkdtemp(dir) != NULL &&
      mcp_hostdir_open(dir, &hd, NULL) == AC_OK)
    hc = mcp_conn_new(b, hd);
  classify();
  lifecycle(c);
  errors(c);
  tool_args(c);
  tool_arg_table(c);
  tools_list();
  helpers();
  command_words();
  host_tool_args(hc);
  mcp_conn_close(hc);
  mcp_hostdir_close(hd);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", dir);
  mcp_conn_close(c);
  mcp_backend_free(b);
  json_decref(col.msgs);
  return done_testing();
}
