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
-- read_file(path) -> string, stop() (also close()), detach() -> id.
-- Fields: session_id (nil once stopped), name, namespace, ttl, owned,
-- closed, close_error. See README (The Lua API) for streaming callbacks,
-- run_code_result, background processes, contexts and file operations.
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
local cjson = require "cjson"

local M = {
  VERSION = core.version,
  Error = core.Error,             -- the metatable: Error.new{...}, Error.is(v)
  null = core.null,               -- JSON null in converted answers
  Session = core.Session,         -- the client methods, for extensions
  TokenAuth = core.TokenAuth,
  ServiceAccountAuth = core.ServiceAccountAuth,
  flush = core.flush,             -- delete collected sessions now
  pending = core.pending,         -- how many wait for that
  collect_every = 8,              -- see new_client
}

-- A remote sandbox is not free, but the garbage collector only sees a
-- small userdata: when agentcube.collect_every clients (default 8) still
-- hold a session, creating another one first runs a full collection and
-- flush(), so clients dropped without stop() are deleted instead of piling
-- up until exit. 0 or false turns this off.
local live = setmetatable({}, { __mode = "k" })

local function pressure()
  local limit = M.collect_every
  if not limit or limit <= 0 then return end
  local n = 0
  for ci in pairs(live) do
    if not ci.closed and ci.owned then n = n + 1 end
  end
  if n >= limit then
    collectgarbage()
    core.flush()
  end
end

local function new_client(opts)
  if type(opts) == "string" then opts = { name = opts } end
  pressure()
  local ci = core.new(opts)
  live[ci] = true
  return ci
end

-- os.exit(code) without `true` would skip every finalizer, leaving the
-- sessions of the script alive: closing the state runs them (each deletes
-- its session within a bounded time).
do
  local exit = os.exit
  os.exit = function(code, close)   -- luacheck: ignore 122
    if close == nil then close = true end
    return exit(code, close)
  end
end

-- ---------------------------------------------------------------------
-- Beyond the SDK: the local runtime's extensions (docs/extensions.md).
-- Against an AgentCube cluster they raise agentcube.Error EUNSUPPORTED.

local S = core.Session
local null = core.null

-- cjson gives every number as a float: ids, pids, sizes and exit codes
-- are integers on the wire and stay integers here.
local function integers(v)
  if type(v) == "number" then
    return math.tointeger(v) or v
  elseif type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  end
  return v
end

local function decode(text)
  return integers(cjson.decode(text))
end

local function go_duration(t)
  if t == nil then return nil end
  if type(t) ~= "number" or t < 0 or t ~= t then
    error(core.Error.new{ code = "EINVAL", kind = "ValueError",
                         message = "bad timeout (seconds expected)" }, 3)
  end
  return string.format("%dms", math.floor(t * 1000 + 0.5))
end

local function argv_of(cmd)
  if type(cmd) == "table" then return cmd end
  if type(cmd) ~= "string" then
    error(core.Error.new{ code = "EINVAL", kind = "ValueError",
                         message = "command must be a string or a table" }, 3)
  end
  return { "sh", "-c", cmd }
end

--- ci:close(): the Lua name of stop().
S.close = S.stop

local Process = {}
Process.__index = Process

local function process_of(ci, rec)
  rec.ci = ci
  return setmetatable(rec, Process)
end

--- ci:spawn(cmd [, {env=, working_dir=, timeout=, stdin=}]) -> proc
function S.spawn(ci, cmd, opts)
  opts = opts or {}
  local body = { command = argv_of(cmd), env = opts.env,
                 working_dir = opts.working_dir,
                 timeout = go_duration(opts.timeout),
                 stdin = opts.stdin and true or nil }
  if body.env and next(body.env) == nil then body.env = nil end
  return process_of(ci, decode(ci:_ext("process_spawn",
                                       { json = cjson.encode(body) })))
end

--- ci:processes() -> { proc, ... } oldest first
function S.processes(ci)
  local list = decode(ci:_ext("process_list", {})).processes or {}
  for i, rec in ipairs(list) do list[i] = process_of(ci, rec) end
  return list
end

local function refresh(p, rec)
  for k, v in pairs(rec) do p[k] = v end
  return p
end

--- proc:wait([timeout]) -> {exit_code, state, stdout, stderr}
function Process:wait(timeout)
  local body = timeout and { timeout = go_duration(timeout) } or {}
  refresh(self, decode(self.ci:_ext("process_wait", {
    id = self.id, json = cjson.encode(body), timeout = timeout })))
  local out = decode(self.ci:_ext("process_output", { id = self.id }))
  return { exit_code = self.exit_code ~= null and self.exit_code or nil,
           state = self.state, stdout = out.stdout, stderr = out.stderr }
end

--- proc:kill([signal]) (default "TERM")
function Process:kill(sig)
  return refresh(self, decode(self.ci:_ext("process_signal", {
    id = self.id, json = cjson.encode{ signal = tostring(sig or "TERM") } })))
end

--- proc:output([offset]) -> stdout, stderr, next_offset
function Process:output(offset)
  local o = decode(self.ci:_ext("process_output",
                                { id = self.id, offset = offset or 0 }))
  return o.stdout, o.stderr, o.next_offset
end

--- proc:write(data [, eof]) -> bytes written
function Process:write(data, eof)
  return decode(self.ci:_ext("process_stdin",
                             { id = self.id, data = data, eof = eof })).written
end

local Context = {}
Context.__index = Context

--- ci:create_context(language [, {env=, working_dir=}]) -> ctx
function S.create_context(ci, language, opts)
  opts = opts or {}
  local rec = decode(ci:_ext("context_create", { json = cjson.encode{
    language = language, env = opts.env, working_dir = opts.working_dir } }))
  rec.ci = ci
  return setmetatable(rec, Context)
end

--- ctx:run(code [, {timeout=}]) -> {stdout, stderr, value, error}
function Context:run(code, opts)
  opts = opts or {}
  local r = decode(self.ci:_ext("context_run", {
    id = self.id, timeout = opts.timeout,
    json = cjson.encode{ code = code, timeout = go_duration(opts.timeout) } }))
  if r.value == null then r.value = nil end
  if r.error == null then r.error = nil end
  return r
end

--- ctx:close()
function Context:close()
  if self.closed then return end
  self.closed = true
  self.ci:_ext("context_delete", { id = self.id })
end
Context.__close = Context.close

--- ci:remove(path [, {recursive=}]) -> entries removed
function S.remove(ci, path, opts)
  return decode(ci:_ext("fs_remove", { json = cjson.encode{
    path = path, recursive = opts and opts.recursive or false } })).removed
end

--- ci:mkdir(path [, {parents=, mode=}]) -> FileInfo
function S.mkdir(ci, path, opts)
  opts = opts or {}
  local parents = opts.parents
  if parents == nil then parents = true end
  return decode(ci:_ext("fs_mkdir", { json = cjson.encode{
    path = path, parents = parents, mode = opts.mode } }))
end

--- ci:stat(path) -> {path, name, size, mode, modified, type, is_dir}
function S.stat(ci, path)
  return decode(ci:_ext("fs_stat", { path = path }))
end

--- ci:exists(path) -> boolean
function S.exists(ci, path)
  local ok, err = pcall(S.stat, ci, path)
  if ok then return true end
  if core.Error.is(err) and err.code == "ENOTFOUND" then return false end
  error(err, 0)
end

--- ci:rename(from, to [, {overwrite=}]) -> FileInfo
function S.rename(ci, from, to, opts)
  return decode(ci:_ext("fs_rename", { json = cjson.encode{
    from = from, to = to, overwrite = opts and opts.overwrite or false } }))
end

-- Callable as agentcube.CodeInterpreterClient{...} or (...), and as
-- agentcube.CodeInterpreterClient.new(...).
M.CodeInterpreterClient = setmetatable({ new = new_client }, {
  __call = function(_, opts) return new_client(opts) end,
})

-- The SDK's other client, for agents served behind an AgentCube Router:
-- agentcube.AgentRuntimeClient("name" [, opts]) or {agent_name = ...}, and
-- .new(...). See README (AgentRuntimeClient).
M.AgentRuntimeClient = setmetatable({ new = core.AgentRuntimeClient }, {
  __call = function(_, ...) return core.AgentRuntimeClient(...) end,
})

--- Whether v is an agentcube.Error.
function M.is_error(v)
  return core.Error.is(v)
end

--- Calls fn(...) and returns its results; an agentcube.Error it raises is
-- returned as nil, err; any other error, and an interruption (Ctrl-C:
-- code EINTERRUPTED), is raised again unchanged.
function M.try(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return table.unpack(res, 2, res.n)
  end
  if core.Error.is(res[2]) and res[2].code ~= "EINTERRUPTED" then
    return nil, res[2]
  end
  error(res[2], 0)
end

return M
