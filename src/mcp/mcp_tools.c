/*
** mcp_tools.c -- the tool table: names, descriptions and input schemas
** (what tools/list shows an agent), and dispatch.
**
** AgentCube's own MCP server defines run_code, execute_command,
** write_file, list_files, upload_file, download_file and stop_session;
** they keep their names, arguments and result text here. The other tools
** and arguments are additions.
*/
#include "mcp_toolkit.h"

#include <string.h>

#define SESSION_PROPS                                                       \
  "\"session_id\": {\"type\": \"string\", \"description\": \"A session_id " \
  "from an earlier result or from create_session, to continue in that "     \
  "sandbox; omit for a new sandbox.\"},"                                    \
  "\"session_reuse\": {\"type\": \"boolean\", \"default\": false, "         \
  "\"description\": \"Keep the sandbox after this call and pass its "       \
  "session_id next time; call stop_session when done. Default: the "        \
  "sandbox is deleted after the call (sessions from create_session are "    \
  "kept).\"}"


#define KEPT_SESSION_PROPS                                                  \
  "\"session_id\": {\"type\": \"string\", \"description\": \"The session "  \
  "to use (from create_session or an earlier result); omit for a new one, " \
  "which is kept: its session_id is in the result.\"},"                     \
  "\"session_reuse\": {\"type\": \"boolean\", \"default\": true, "          \
  "\"description\": \"false: delete the session after this call.\"}"

#define NEEDS_SESSION                                                       \
  "\"session_id\": {\"type\": \"string\", \"description\": \"The session "  \
  "the process runs in (from start_process's result).\"},"                  \
  "\"process_id\": {\"type\": \"integer\", \"description\": \"The id "      \
  "from start_process.\"}"

struct tool {
  const char *name;
  const char *title;
  const char *description;
  const char *schema;           /* the inputSchema as JSON text */
  json_t *(*run)(const struct mcp_tools_ctx *ctx, json_t *args);
  int host_files;               /* listed only with --files-dir */
  int read_only, destructive;
};

static const struct tool tools[] = {
  { "run_code", "Run code",
    "Run a Python or Bash program in an isolated sandbox and return its "
    "stdout as 'output', with stderr, exit_code and duration. A non-zero "
    "exit is reported with isError and the error text in stderr. Each call "
    "is a new process: variables do not survive between calls, files do "
    "(with session_id). To see a plot, save it as PNG and list its path in "
    "'images'.",
    "{\"type\": \"object\", \"properties\": {"
    "\"language\": {\"type\": \"string\", \"enum\": [\"python\", \"bash\"],"
    " \"description\": \"Language (python, bash).\"},"
    "\"code\": {\"type\": \"string\", \"description\": \"Code or script to "
    "run.\"},"
    "\"timeout_seconds\": {\"type\": \"number\", \"exclusiveMinimum\": 0, "
    "\"description\": \"Run timeout in seconds (default 120); the program "
    "is killed after it and exit_code is 124.\"},"
    "\"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": "
    "\"string\"}, \"description\": \"Environment variables for the "
    "program.\"},"
    "\"images\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Paths of PNG files the code writes, returned as "
    "images after the run.\"},"
    "\"context_id\": {\"type\": \"string\", \"description\": \"Run in "
    "this context (from create_context, with its session_id): variables, "
    "imports and functions persist between runs, and the result has the "
    "value of the last expression. The context's language is used.\"},"
    SESSION_PROPS "}, \"required\": [\"language\", \"code\"]}",
    mcp_tool_run_code, 0, 0, 0 },
  { "execute_command", "Execute a command",
    "Run a command in an isolated sandbox and return its stdout as "
    "'output', with stderr, exit_code and duration. The command line is "
    "split like a POSIX shell's words (quotes work) but has no shell "
    "features; set shell=true for pipes, redirection, && and variables. "
    "A non-zero exit is reported with isError. Long commands send progress "
    "notifications when the request has a progressToken and stop when the "
    "request is cancelled.",
    "{\"type\": \"object\", \"properties\": {"
    "\"command\": {\"type\": \"string\", \"description\": \"Shell command "
    "in sandbox, e.g. \\\"ls -l /workspace\\\".\"},"
    "\"shell\": {\"type\": \"boolean\", \"default\": false, \"description\":"
    " \"Run the command with bash -c.\"},"
    "\"working_dir\": {\"type\": \"string\", \"description\": \"Directory "
    "to run in (default /workspace; created if missing).\"},"
    "\"timeout_seconds\": {\"type\": \"number\", \"exclusiveMinimum\": 0, "
    "\"description\": \"Timeout in seconds (default 120); exit_code 124 "
    "when it expires.\"},"
    "\"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": "
    "\"string\"}, \"description\": \"Environment variables.\"},"
    "\"images\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Paths of PNG files the command writes, returned as "
    "images.\"},"
    SESSION_PROPS "}, \"required\": [\"command\"]}",
    mcp_tool_execute_command, 0, 0, 0 },
  { "write_file", "Write a file",
    "Write text (or base64 bytes) to a file in the sandbox workspace, "
    "creating parent directories.",
    "{\"type\": \"object\", \"properties\": {"
    "\"content\": {\"type\": \"string\", \"description\": \"File text.\"},"
    "\"remote_path\": {\"type\": \"string\", \"description\": \"Path under "
    "the workspace (e.g. data/input.txt), or absolute under /workspace or "
    "/tmp.\"},"
    "\"encoding\": {\"type\": \"string\", \"enum\": [\"utf-8\", "
    "\"base64\"], \"default\": \"utf-8\", \"description\": \"base64: "
    "content is base64 of binary data.\"},"
    SESSION_PROPS "}, \"required\": [\"content\", \"remote_path\"]}",
    mcp_tool_write_file, 0, 0, 0 },
  { "read_file", "Read a file",
    "Read a file from the sandbox: text comes back as 'content', a PNG as "
    "an image, other binary data as base64.",
    "{\"type\": \"object\", \"properties\": {"
    "\"remote_path\": {\"type\": \"string\", \"description\": \"Path under "
    "the workspace, or absolute under /workspace or /tmp.\"},"
    "\"max_bytes\": {\"type\": \"integer\", \"minimum\": 1, \"description\":"
    " \"Refuse files larger than this (default 1048576).\"},"
    SESSION_PROPS "}, \"required\": [\"remote_path\"]}",
    mcp_tool_read_file, 0, 1, 0 },
  { "list_files", "List files",
    "List a directory of the sandbox workspace: name, size, modified, "
    "mode and is_dir of each entry.",
    "{\"type\": \"object\", \"properties\": {"
    "\"path\": {\"type\": \"string\", \"default\": \".\", \"description\": "
    "\"Dir to list (default .).\"},"
    SESSION_PROPS "}}",
    mcp_tool_list_files, 0, 1, 0 },
  { "upload_file", "Upload a host file",
    "Upload a file from the host running this MCP server (only inside its "
    "--files-dir) into the sandbox workspace.",
    "{\"type\": \"object\", \"properties\": {"
    "\"local_path\": {\"type\": \"string\", \"description\": \"Path of a "
    "file on the host, relative to the files directory or absolute inside "
    "it (not the sandbox).\"},"
    "\"remote_path\": {\"type\": \"string\", \"description\": "
    "\"Destination in the workspace (relative to session working "
    "directory).\"},"
    SESSION_PROPS "}, \"required\": [\"local_path\", \"remote_path\"]}",
    mcp_tool_upload_file, 1, 0, 0 },
  { "download_file", "Download to the host",
    "Download a workspace file to the host running this MCP server (only "
    "inside its --files-dir; parent directories are created, an existing "
    "file is replaced).",
    "{\"type\": \"object\", \"properties\": {"
    "\"remote_path\": {\"type\": \"string\", \"description\": \"File in "
    "the workspace (relative to session working directory).\"},"
    "\"local_path\": {\"type\": \"string\", \"description\": "
    "\"Destination on the host, relative to the files directory or "
    "absolute inside it (not the sandbox).\"},"
    SESSION_PROPS "}, \"required\": [\"remote_path\", \"local_path\"]}",
    mcp_tool_download_file, 1, 0, 0 },
  { "create_session", "Create a session",
    "Create a sandbox session and return its session_id. Pass it to later "
    "calls to keep files between them; it stays until stop_session or "
    "until this client disconnects.",
    "{\"type\": \"object\", \"properties\": {}}",
    mcp_tool_create_session, 0, 0, 0 },
  { "stop_session", "Stop a session",
    "Stop a session and delete its sandbox (use the session_id from "
    "create_session or from a call with session_reuse).",
    "{\"type\": \"object\", \"properties\": {"
    "\"session_id\": {\"type\": \"string\", \"description\": \"session_id "
    "to stop (from session_reuse).\"}}, \"required\": [\"session_id\"]}",
    mcp_tool_stop_session, 0, 0, 1 },
  { "list_sessions", "List sessions",
    "List the sessions this MCP server created or used, with when each was "
    "first and last used.",
    "{\"type\": \"object\", \"properties\": {}}",
    mcp_tool_list_sessions, 0, 1, 0 },
  { "start_process", "Start a background process",
    "Start a long-running command (a server, a watcher, a training run) in "
    "the background of a sandbox and return at once with its process id; "
    "read its output with read_process_output and end it with "
    "stop_process. It lives until it exits, is stopped, or the session "
    "ends. Local runtime only.",
    "{\"type\": \"object\", \"properties\": {"
    "\"command\": {\"type\": \"string\", \"description\": \"The command "
    "line (shell words, no shell features unless shell=true).\"},"
    "\"shell\": {\"type\": \"boolean\", \"default\": false},"
    "\"working_dir\": {\"type\": \"string\"},"
    "\"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": "
    "\"string\"}},"
    "\"timeout_seconds\": {\"type\": \"number\", \"exclusiveMinimum\": 0, "
    "\"description\": \"Kill it after this long (default: no limit).\"},"
    KEPT_SESSION_PROPS "}, \"required\": [\"command\"]}",
    mcp_tool_start_process, 0, 0, 0 },
  { "read_process_output", "Read a background process's output",
    "Return what a background process wrote (stdout, stderr) from offset "
    "on, the next_offset to read from next time, and its exit record once "
    "it ended (null while it runs).",
    "{\"type\": \"object\", \"properties\": {" NEEDS_SESSION ","
    "\"offset\": {\"type\": \"integer\", \"minimum\": 0, \"description\": "
    "\"Where to start (next_offset of the previous read; default 0).\"}},"
    " \"required\": [\"session_id\", \"process_id\"]}",
    mcp_tool_read_process_output, 0, 1, 0 },
  { "stop_process", "Stop a background process",
    "Send a signal to a background process (default TERM; KILL kills its "
    "whole tree) and return its record.",
    "{\"type\": \"object\", \"properties\": {" NEEDS_SESSION ","
    "\"signal\": {\"type\": \"string\", \"default\": \"TERM\", "
    "\"description\": \"TERM, KILL, INT, HUP, ... (with or without SIG).\"}},"
    " \"required\": [\"session_id\", \"process_id\"]}",
    mcp_tool_stop_process, 0, 0, 1 },
  { "list_processes", "List background processes",
    "List the background processes of a session with their state "
    "(running, exited, killed, timed_out) and exit codes.",
    "{\"type\": \"object\", \"properties\": {\"session_id\": {\"type\": "
    "\"string\"}}, \"required\": [\"session_id\"]}",
    mcp_tool_list_processes, 0, 1, 0 },
  { "create_context", "Create a code context",
    "Start an interpreter (python, bash or lua) in a session whose state "
    "persists between runs, like a notebook kernel; pass the returned "
    "context_id and session_id to run_code. Local runtime only.",
    "{\"type\": \"object\", \"properties\": {"
    "\"language\": {\"type\": \"string\", \"enum\": [\"python\", \"bash\", "
    "\"lua\"], \"default\": \"python\"}," KEPT_SESSION_PROPS "}}",
    mcp_tool_create_context, 0, 0, 0 },
  { "remove_path", "Remove a file or directory",
    "Remove a file, or a directory (non-empty ones need recursive=true), "
    "in the sandbox; returns how many entries were removed.",
    "{\"type\": \"object\", \"properties\": {"
    "\"path\": {\"type\": \"string\"},"
    "\"recursive\": {\"type\": \"boolean\", \"default\": false},"
    KEPT_SESSION_PROPS "}, \"required\": [\"path\"]}",
    mcp_tool_remove_path, 0, 0, 1 },
  { "make_directory", "Make a directory",
    "Create a directory in the sandbox (with its parents unless "
    "parents=false).",
    "{\"type\": \"object\", \"properties\": {"
    "\"path\": {\"type\": \"string\"},"
    "\"parents\": {\"type\": \"boolean\", \"default\": true},"
    KEPT_SESSION_PROPS "}, \"required\": [\"path\"]}",
    mcp_tool_make_directory, 0, 0, 0 },
  { "stat_path", "Describe a path",
    "Type (file, dir, symlink, other), size, mode and modification time "
    "of a path in the sandbox; symlinks are not followed.",
    "{\"type\": \"object\", \"properties\": {"
    "\"path\": {\"type\": \"string\"}," KEPT_SESSION_PROPS "},"
    " \"required\": [\"path\"]}",
    mcp_tool_stat_path, 0, 1, 0 },
  { "rename_path", "Rename or move a path",
    "Rename or move a file or directory in the sandbox; an existing "
    "destination is an error unless overwrite=true.",
    "{\"type\": \"object\", \"properties\": {"
    "\"from\": {\"type\": \"string\"}, \"to\": {\"type\": \"string\"},"
    "\"overwrite\": {\"type\": \"boolean\", \"default\": false},"
    KEPT_SESSION_PROPS "}, \"required\": [\"from\", \"to\"]}",
    mcp_tool_rename_path, 0, 0, 0 },
};

#define NTOOLS (sizeof tools / sizeof tools[0])

json_t *mcp_tools_list(int host_files) {
  json_t *a = json_array();
  for (size_t i = 0; i < NTOOLS; i++) {
    json_error_t jerr;
    json_t *schema, *t;
    if (tools[i].host_files && !host_files)
      continue;
    schema = json_loads(tools[i].schema, 0, &jerr);
    t = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b}}",
                  "name", tools[i].name, "title", tools[i].title,
                  "description", tools[i].description,
                  "inputSchema", schema ? schema : json_object(),
                  "annotations", "title", tools[i].title,
                  "readOnlyHint", tools[i].read_only,
                  "destructiveHint", tools[i].destructive,
                  "openWorldHint", 0);
    json_array_append_new(a, t);
  }
  return a;
}

int mcp_tools_exists(const char *name) {
  for (size_t i = 0; i < NTOOLS; i++)
    if (!strcmp(tools[i].name, name))
      return 1;
  return 0;
}

json_t *mcp_tools_call(const struct mcp_tools_ctx *ctx, const char *name,
                       json_t *args) {
  for (size_t i = 0; i < NTOOLS; i++)
    if (!strcmp(tools[i].name, name)) {
      json_t *r = tools[i].run(ctx, args);
      if (r != NULL)
        return r;
      break;
    }
  return mcp_result(json_pack("{s:s, s:s}", "error", "out of memory",
                              "code", "ENOMEM"), NULL, 1);
}
