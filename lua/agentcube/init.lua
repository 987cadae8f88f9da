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

-- agentcube.async's "create" counts the same way: pressure before it is
-- submitted, its session tracked once made.
M._pressure = pressure
function M._track(ci) live[ci] = true end

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

-- Each operation below is a plan: plans.NAME(target, args) checks its
-- arguments and returns { session = ci, ext = "process_spawn", call = {...},
-- finish = fn(json) -> value [, next plan], catch = fn(err) -> value,
-- stream = {on_stdout=, on_stderr=} }.
-- The methods run plans through ci:_ext (blocking); agentcube.async runs
-- the same plans on its engine (async.submit(target, NAME, args)): one
-- implementation, one set of argument checks, one result shape.
local plans = {}
M._plans = plans

local function run_plan(plan)
  while true do
    local ok, json = pcall(plan.session._ext, plan.session, plan.ext,
                           plan.call, plan.stream)
    local value, nxt
    if ok then
      value, nxt = plan.finish(json)
    elseif plan.catch then
      value, nxt = plan.catch(json)
    else
      error(json, 0)
    end
    if nxt == nil then return value end
    plan = nxt
  end
end

local function einval(msg)
  error(core.Error.new{ code = "EINVAL", kind = "ValueError",
                        message = msg }, 0)
end

local function need_string(v, what)
  if type(v) ~= "string" then
    einval(("%s must be a string (got %s)"):format(what, type(v)))
  end
  return v
end

local function need_session(t, op)
  if type(t) ~= "userdata" or
     not tostring(t):match("^agentcube%.Session") then
    error(("%s: a CodeInterpreterClient expected, got %s"):format(op,
          type(t)), 0)
  end
  return t
end

local Process = {}
Process.__index = Process

local function process_of(ci, rec)
  rec.ci = ci
  return setmetatable(rec, Process)
end

--- ci:spawn(cmd [, {env=, working_dir=, timeout=, stdin=}]) -> proc
function plans.spawn(ci, a)
  need_session(ci, "spawn")
  local body = { command = argv_of(a.command), env = a.env,
                 working_dir = a.working_dir,
                 timeout = go_duration(a.timeout),
                 stdin = a.stdin and true or nil }
  if body.env and next(body.env) == nil then body.env = nil end
  return { session = ci, ext = "process_spawn",
           call = { json = cjson.encode(body) },
           finish = function(json) return process_of(ci, decode(json)) end }
end

local function with(first_key, first, opts)
  local a = {}
  for k, v in pairs(opts or {}) do a[k] = v end
  a[first_key] = first
  return a
end

function S.spawn(ci, cmd, opts)
  return run_plan(plans.spawn(ci, with("command", cmd, opts)))
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

local function need_process(p, op)
  if getmetatable(p) ~= Process then
    error(("%s: a process (from ci:spawn) expected, got %s"):format(op,
          type(p)), 0)
  end
  return p
end

--- proc:wait([timeout]) -> {exit_code, state, stdout, stderr}: two
-- requests, the wait and then the output.
function plans.wait(p, a)
  need_process(p, "wait")
  local timeout = a.timeout
  local body = timeout and { timeout = go_duration(timeout) } or {}
  local output = { session = p.ci, ext = "process_output",
                   call = { id = p.id },
                   finish = function(json)
    local out = decode(json)
    return { exit_code = p.exit_code ~= null and p.exit_code or nil,
             state = p.state, stdout = out.stdout, stderr = out.stderr }
  end }
  return { session = p.ci, ext = "process_wait",
           call = { id = p.id, json = cjson.encode(body), timeout = timeout },
           finish = function(json)
             refresh(p, decode(json))
             return nil, output
           end }
end

function Process:wait(timeout)
  return run_plan(plans.wait(self, { timeout = timeout }))
end

--- proc:kill([signal]) (default "TERM")
function plans.kill(p, a)
  need_process(p, "kill")
  return { session = p.ci, ext = "process_signal",
           call = { id = p.id, json = cjson.encode{
             signal = tostring(a.signal or "TERM") } },
           finish = function(json) return refresh(p, decode(json)) end }
end

function Process:kill(sig)
  return run_plan(plans.kill(self, { signal = sig }))
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
function plans.create_context(ci, a)
  need_session(ci, "create_context")
  need_string(a.language, "language")
  return { session = ci, ext = "context_create", call = {
             json = cjson.encode{ language = a.language, env = a.env,
                                  working_dir = a.working_dir } },
           finish = function(json)
             local rec = decode(json)
             rec.ci = ci
             return setmetatable(rec, Context)
           end }
end

function S.create_context(ci, language, opts)
  return run_plan(plans.create_context(ci, with("language", language, opts)))
end

--- ctx:run(code [, {timeout=, on_stdout=, on_stderr=}])
-- -> {stdout, stderr, value, error}
function plans.run(ctx, a)
  if getmetatable(ctx) ~= Context then
    error(("run: a context (from ci:create_context) expected, got %s")
          :format(type(ctx)), 0)
  end
  need_string(a.code, "code")
  local stream
  if a.on_stdout or a.on_stderr then
    stream = { on_stdout = a.on_stdout, on_stderr = a.on_stderr }
  end
  return { session = ctx.ci, ext = "context_run", stream = stream, call = {
             id = ctx.id, timeout = a.timeout,
             json = cjson.encode{ code = a.code,
                                  timeout = go_duration(a.timeout) } },
           finish = function(json)
             local r = decode(json)
             if r.value == null then r.value = nil end
             if r.error == null then r.error = nil end
             return r
           end }
end

function Context:run(code, opts)
  return run_plan(plans.run(self, with("code", code, opts)))
end

--- ctx:close()
function Context:close()
  if self.closed then return end
  self.closed = true
  self.ci:_ext("context_delete", { id = self.id })
end
Context.__close = Context.close

local function fs_plan(ci, op, ext, call, finish, catch)
  need_session(ci, op)
  return { session = ci, ext = ext, call = call, finish = finish,
           catch = catch }
end

--- ci:remove(path [, {recursive=}]) -> entries removed
function plans.remove(ci, a)
  return fs_plan(ci, "remove", "fs_remove", { json = cjson.encode{
    path = need_string(a.path, "path"), recursive = a.recursive or false } },
    function(json) return decode(json).removed end)
end

function S.remove(ci, path, opts)
  return run_plan(plans.remove(ci, with("path", path, opts)))
end

--- ci:mkdir(path [, {parents=, mode=}]) -> FileInfo
function plans.mkdir(ci, a)
  local parents = a.parents
  if parents == nil then parents = true end
  return fs_plan(ci, "mkdir", "fs_mkdir", { json = cjson.encode{
    path = need_string(a.path, "path"), parents = parents, mode = a.mode } },
    decode)
end

function S.mkdir(ci, path, opts)
  return run_plan(plans.mkdir(ci, with("path", path, opts)))
end

--- ci:stat(path) -> {path, name, size, mode, modified, type, is_dir}
function plans.stat(ci, a)
  return fs_plan(ci, "stat", "fs_stat",
                 { path = need_string(a.path, "path") }, decode)
end

function S.stat(ci, path)
  return run_plan(plans.stat(ci, { path = path }))
end

--- ci:exists(path) -> boolean
function plans.exists(ci, a)
  return fs_plan(ci, "exists", "fs_stat",
                 { path = need_string(a.path, "path") },
                 function() return true end,
                 function(err)
                   if core.Error.is(err) and err.code == "ENOTFOUND" then
                     return false
                   end
                   error(err, 0)
                 end)
end

function S.exists(ci, path)
  return run_plan(plans.exists(ci, { path = path }))
end

--- ci:rename(from, to [, {overwrite=}]) -> FileInfo
function plans.rename(ci, a)
  return fs_plan(ci, "rename", "fs_rename", { json = cjson.encode{
    from = need_string(a.from, "from"), to = need_string(a.to, "to"),
    overwrite = a.overwrite or false } }, decode)
end

function S.rename(ci, from, to, opts)
  local a = with("from", from, opts)
  a.to = to
  return run_plan(plans.rename(ci, a))
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
