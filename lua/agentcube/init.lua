-- agentcube -- drive AgentCube code-interpreter sandboxes from Lua.
--
-- The names mirror the official Python SDK (docs/protocol.md §6):
--
--   local agentcube = require "agentcube"
--   do
--     local ci <close> = agentcube.CodeInterpreterClient{ ttl = 600 }
--     print(ci:run_code("python", "print('hi')"))
--     local r = ci:execute_command_result("ls /nope")  -- never raises
--     ci:write_file("42", "/tmp/value.txt")
--   end                                  -- the session is deleted here
--
-- CodeInterpreterClient{...} takes every SDK option by name: name,
-- namespace, ttl, workload_manager_url, router_url, auth_token, verbose,
-- session_id, auth (agentcube.TokenAuth, agentcube.ServiceAccountAuth, a
-- function returning a token, or an object with get_token()); and, beyond
-- the SDK, connect_timeout and request_timeout (seconds) and max_retries.
-- Without URLs (argument, WORKLOAD_MANAGER_URL/ROUTER_URL) it uses the local
-- runtime in $AGENTCUBE_HOME (default ~/.agentcube), starting
-- `agentcube serve` in the background when none runs.
--
-- Methods: execute_command(cmd [, timeout] [, {env=, working_dir=,
-- timeout=}]) -> stdout (cmd: a string split like shlex.split, or an argv
-- table), execute_command_result(...) -> {stdout, stderr, exit_code},
-- run_code(language, code [, timeout]) -> stdout, write_file(content,
-- path), upload_file(local, remote), download_file(remote, local),
-- list_files([path]) -> { {name, size, modified, mode, is_dir}, ... },
-- read_file(path) -> string, stop(), detach() -> id. Fields: session_id
-- (nil once stopped), name, namespace, ttl, owned, closed, close_error.
--
-- Lifecycle (DESIGN section 5): a session the client created is owned and
-- is deleted by stop(), by <close> at scope exit, by garbage collection
-- (deferred to the next agentcube call or agentcube.flush()) and when the
-- Lua state closes. detach() gives up ownership; a session attached with
-- session_id is deleted only by an explicit stop(). Methods on a stopped
-- client raise an agentcube.Error with code "ECLOSED".
--
-- Failures raise agentcube.Error tables: fields code ("ETIMEOUT"), kind
-- ("TimeoutError", "HTTPError", "CommandExecutionError", ...), message,
-- http_status, and for command failures exit_code, stderr, stdout and
-- command; tostring() gives "agentcube: CODE: message". agentcube.try(fn,
-- ...) turns them (and only them) into nil, err.
local core = require "agentcube.core"

local M = {
  VERSION = core.version,
  Error = core.Error,             -- the metatable: Error.new{...}, Error.is(v)
  null = core.null,               -- JSON null in converted answers
  Session = core.Session,         -- the client methods, for extensions
  TokenAuth = core.TokenAuth,
  ServiceAccountAuth = core.ServiceAccountAuth,
  flush = core.flush,             -- delete collected sessions now
  pending = core.pending,         -- how many wait for that
}

local function new_client(opts)
  if type(opts) == "string" then opts = { name = opts } end
  return core.new(opts)
end

-- Callable as agentcube.CodeInterpreterClient{...} or (...), and as
-- agentcube.CodeInterpreterClient.new(...).
M.CodeInterpreterClient = setmetatable({ new = new_client }, {
  __call = function(_, opts) return new_client(opts) end,
})

--- Whether v is an agentcube.Error.
function M.is_error(v)
  return core.Error.is(v)
end

--- Calls fn(...) and returns its results; an agentcube.Error it raises is
-- returned as nil, err; any other error is raised again unchanged.
function M.try(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return table.unpack(res, 2, res.n)
  end
  if core.Error.is(res[2]) then
    return nil, res[2]
  end
  error(res[2], 0)
end

return M
