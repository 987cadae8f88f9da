/*
** mcp_rpc.c -- JSON-RPC 2.0 as MCP uses it: what a message is, and the
** three messages we build (result, error, notification).
**
** MCP narrows JSON-RPC: ids are strings or integers (never null), and
** since revision 2025-06-18 there are no batches.
*/
#include "mcp.h"

#include <string.h>

const char *const mcp_protocol_versions[] = {
  MCP_PROTOCOL_LATEST, "2025-06-18", "2025-03-26", "2024-11-05", NULL
};

static int valid_id(json_t *id) {
  return json_is_string(id) || json_is_integer(id);
}

enum mcp_kind mcp_rpc_classify(json_t *msg, json_t **id, int *code,
                               const char **why) {
  json_t *v, *method, *params;

  *id = NULL;
  *code = MCP_INVALID_REQUEST;
  if (json_is_array(msg)) {
    *why = "JSON-RPC batches are not supported";
    return MCP_BAD;
  }
  if (!json_is_object(msg)) {
    *why = "a message must be a JSON object";
    return MCP_BAD;
  }
  v = json_object_get(msg, "id");
  if (v != NULL && valid_id(v))
    *id = v;
  if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
      strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0")) {
    *why = "\"jsonrpc\" must be \"2.0\"";
    return MCP_BAD;
  }
  method = json_object_get(msg, "method");
  if (method == NULL) {
    if (v != NULL && (json_object_get(msg, "result") != NULL ||
                      json_object_get(msg, "error") != NULL))
      return MCP_RESPONSE;
    *why = "a message needs a \"method\" (or a result or error)";
    return MCP_BAD;
  }
  if (!json_is_string(method)) {
    *why = "\"method\" must be a string";
    return MCP_BAD;
  }
  params = json_object_get(msg, "params");
  if (params != NULL && !json_is_object(params)) {
    /* MCP params are always objects; JSON-RPC allows arrays, which no
    ** MCP method takes. */
    *code = MCP_INVALID_PARAMS;
    *why = "\"params\" must be an object";
    return MCP_BAD;
  }
  if (v == NULL)
    return MCP_NOTIFICATION;
  if (!valid_id(v)) {
    *why = "\"id\" must be a string or an integer";
    return MCP_BAD;
  }
  return MCP_REQUEST;
}

json_t *mcp_rpc_result(json_t *id, json_t *result) {
  return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id,
                   "result", result);
}

json_t *mcp_rpc_error(json_t *id, int code, const char *message) {
  return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                   id != NULL ? id : json_null(), "error", "code", code,
                   "message", message);
}

json_t *mcp_rpc_notification(const char *method, json_t *params) {
  return json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method,
                   "params", params);
}
