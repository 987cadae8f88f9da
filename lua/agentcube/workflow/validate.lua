-- agentcube.workflow.validate -- raw workflow values (from YAML or a Lua
-- table) to the normalized workflow the scheduler runs, or every problem
-- found, each as "FILE:LINE:COL: message", sorted by position.
--
-- Nothing here runs anything or creates a session: a workflow that fails
-- here never starts. README, "Workflow files", is the format.
local expr = require "agentcube.workflow.expr"
local graph = require "agentcube.workflow.graph"
local words = require "agentcube.workflow.words"

local M = {}

M.KINDS = { "exec", "run", "write", "upload", "download", "list", "lua",
            "stop" }
M.DEFAULT_MAX_PARALLEL = 4
M.DEFAULT_SESSION = "default"
M.LANGUAGES = { python = true, python3 = true, py = true, bash = true,
                sh = true }

local TOP_KEYS = { "name", "description", "inputs", "sessions", "env",
                   "max_parallel", "steps", "finally", "outputs" }
local STEP_KEYS = { "id", "name", "session", "needs", "if", "timeout",
                    "retry", "continue_on_error", "env", "working_dir",
                    "allowed_exit_codes", "context", "background",
                    "ready" }
local SESSION_KEYS = { "template", "namespace", "ttl", "id", "keep" }
local INPUT_KEYS = { "default", "description", "required", "type" }
local RETRY_KEYS = { "limit", "backoff", "factor" }
local READY_KEYS = { "output", "probe", "interval", "timeout" }
local NAME_PAT = "^[%a_][%w_%-]*$"
local NULL = expr.null

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end
local TOP, STEP, SESSION, INPUT, RETRY, KIND, READY =
  set(TOP_KEYS), set(STEP_KEYS), set(SESSION_KEYS), set(INPUT_KEYS),
  set(RETRY_KEYS), set(M.KINDS), set(READY_KEYS)
-- the one name of each language a context step may use
M.CONTEXT_LANGUAGE = { python = "python", python3 = "python", py = "python",
                       bash = "bash", sh = "bash" }
M.READY_TIMEOUT = 30      -- seconds a background step waits to be ready
M.READY_INTERVAL = 0.2    -- seconds between two looks at readiness

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function suggest(word, ...)
  if type(word) ~= "string" then return "" end
  local best, bd = nil, 3
  for _, list in ipairs{ ... } do
    for _, k in ipairs(list) do
      local d = distance(word:lower(), k)
      if d < bd then best, bd = k, d end
    end
  end
  return best and (" (did you mean '%s'?)"):format(best) or ""
end

-- ---------------------------------------------------------------------
-- The checker: positions and errors

local V = {}
V.__index = V

local function new_checker(file, marks, source, is_lua)
  return setmetatable({ file = file, marks = marks or {}, source = source,
                        is_lua = is_lua, errors = {}, refs = {} }, V)
end

local ORIGIN = { line = 1, col = 1 }

-- Where a string first appears in the source of a Lua table workflow
-- (Lua tables carry no positions, YAML nodes always do; a step is found
-- by its quoted id).
function V:locate(s)
  for _, q in ipairs{ '"', "'" } do
    local a = self.source:find(q .. s .. q, 1, true)
    if a then
      local before = self.source:sub(1, a - 1)
      local line = select(2, before:gsub("\n", "")) + 1
      local col = #(before:match("[^\n]*$")) + 1
      return { line = line, col = col }
    end
  end
  return nil
end

-- Line n of the source text.
function V:line(n)
  if not self.lines then
    self.lines = {}
    for l in (self.source .. "\n"):gmatch("([^\n]*)\n") do
      self.lines[#self.lines + 1] = l
    end
  end
  return self.lines[n] or ""
end

function V:tpos(t)
  local m = type(t) == "table" and self.marks[t]
  if m then return m end
  if type(t) == "table" and type(rawget(t, "id")) == "string" then
    return self:locate(rawget(t, "id")) or ORIGIN
  end
  return ORIGIN
end

function V:pos(t, key)
  local m = self.marks[t]
  return (m and m.v and m.v[key]) or self:tpos(t)
end

function V:kpos(t, key)
  local m = self.marks[t]
  return (m and m.k and m.k[key]) or self:pos(t, key)
end

function V:err(p, fmt, ...)
  p = p or ORIGIN
  self.errors[#self.errors + 1] = {
    line = p.line, col = p.col, msg = select("#", ...) > 0 and
    fmt:format(...) or fmt }
end

function V:message()
  table.sort(self.errors, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.msg < b.msg
  end)
  local lines, seen = {}, {}
  for _, e in ipairs(self.errors) do
    local l = ("%s:%d:%d: %s"):format(self.file, e.line, e.col, e.msg)
    if not seen[l] then
      seen[l] = true
      lines[#lines + 1] = l
    end
  end
  return table.concat(lines, "\n")
end

-- What a value is, in YAML's words.
function V:what(x)
  if x == nil then return "nothing" end
  if x == NULL then return "null" end
  local t = type(x)
  if t ~= "table" then return t == "number" and "a number" or
                       t == "boolean" and "a boolean" or
                       t == "string" and "a string" or "a " .. t end
  local m = self.marks[x]
  if m then return m.k and "a mapping" or "a sequence" end
  -- an object (is_map and is_seq refuse it), not plain data
  if getmetatable(x) ~= nil then return "a table with a metatable" end
  if next(x) == nil then return "an empty table" end
  return #x > 0 and "a sequence" or "a mapping"
end

function V:is_map(x)
  if type(x) ~= "table" or getmetatable(x) ~= nil and not self.marks[x] then
    return false
  end
  local m = self.marks[x]
  if m then return m.k ~= nil end
  return next(x) == nil or #x == 0
end

function V:is_seq(x)
  if type(x) ~= "table" then return false end
  local m = self.marks[x]
  if m then return m.k == nil end
  local n = 0
  for _ in pairs(x) do n = n + 1 end
  return n == #x
end

local function present(x) return x ~= nil and x ~= NULL end

-- Reports keys of t not in allowed; ctx names the place.
function V:keys(t, allowed, ctx, ...)
  local lists = { ... }
  for k in pairs(t) do
    if not allowed[k] then
      if type(k) == "string" then
        self:err(self:kpos(t, k), "unknown key '%s' in %s%s", k, ctx,
                 suggest(k, table.unpack(lists)))
      else
        self:err(self:kpos(t, k), "unexpected key %s in %s", tostring(k),
                 ctx)
      end
    end
  end
end

-- Checks the ${{ }} syntax of every string inside x (at t[key]) and
-- records the references for later; owner is the step (or nil).
function V:exprs(x, t, key, owner, depth)
  depth = depth or 0
  if depth > 50 then return end
  if type(x) == "string" then
    local p = self:pos(t, key)
    local srcs, err = expr.check(x)
    if not srcs then
      self:err(p, "%s", err)
      return
    end
    for _, src in ipairs(srcs) do
      self.refs[#self.refs + 1] = { src = src, pos = p, owner = owner }
    end
  elseif type(x) == "table" then
    for k, v in pairs(x) do self:exprs(v, x, k, owner, depth + 1) end
  end
end

-- x is an expression string standing for a value of another type.
local function is_expr(x)
  return type(x) == "string" and expr.has(x)
end

function V:string_field(t, key, ctx, required)
  local x = t[key]
  if not present(x) then
    if required then
      self:err(self:tpos(t), "%s needs '%s'", ctx, key)
    end
    return nil
  end
  if type(x) == "number" then x = expr.text(x) end
  if type(x) ~= "string" then
    self:err(self:pos(t, key), "'%s' in %s must be a string, not %s", key,
             ctx, self:what(x))
    return nil
  end
  return x
end

function V:number_field(t, key, ctx, min, integer)
  local x = t[key]
  if not present(x) then return nil end
  if is_expr(x) then return x end
  if type(x) ~= "number" or (integer and math.type(x) ~= "integer") or
     x < min or x ~= x then
    self:err(self:pos(t, key), "'%s' in %s must be %s %s >= %s, not %s",
             key, ctx, integer and "an" or "a",
             integer and "integer" or "number", tostring(min),
             type(x) == "number" and tostring(x) or self:what(x))
    return nil
  end
  return x
end

function V:bool_field(t, key, ctx)
  local x = t[key]
  if not present(x) then return nil end
  if is_expr(x) or type(x) == "boolean" then return x end
  self:err(self:pos(t, key), "'%s' in %s must be true or false, not %s",
           key, ctx, self:what(x))
  return nil
end

-- A mapping of names to scalars (env).
function V:env_field(t, key, ctx)
  local x = t[key]
  if not present(x) then return {} end
  if not self:is_map(x) then
    self:err(self:pos(t, key), "'%s' in %s must be a mapping of names to "
             .. "values, not %s", key, ctx, self:what(x))
    return {}
  end
  local out = {}
  for k, v in pairs(x) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      self:err(self:kpos(x, k), "bad variable name '%s' in %s",
               tostring(k), ctx)
    elseif type(v) == "table" or type(v) == "function" then
      self:err(self:pos(x, k), "variable '%s' in %s must be a string, "
               .. "number or boolean, not %s", k, ctx, self:what(v))
    else
      out[k] = v == NULL and "" or v
    end
  end
  return out
end

--- The text forms --set accepts for a boolean input; nil when v is none.
function M.to_bool(v)
  if type(v) == "boolean" then return v end
  local s = tostring(v):lower()
  if s == "true" or s == "1" or s == "yes" or s == "on" then return true end
  if s == "false" or s == "0" or s == "no" or s == "off" or s == "" then
    return false
  end
  return nil
end

-- A literal default must already be of the input's type: `run` would
-- refuse it anyway, after the user waited for nothing.
function V:typed_default(input, d)
  local v = input.default
  if v == nil or is_expr(v) then return end
  local p = self:pos(d, "default")
  if input.type == "number" and not tonumber(v) then
    self:err(p, "default of input '%s' must be a number, not %s",
             input.name, type(v) == "string" and "'" .. v .. "'" or
             self:what(v))
  elseif input.type == "boolean" and
         (type(v) == "table" or M.to_bool(v) == nil) then
    self:err(p, "default of input '%s' must be a boolean (true/false/yes/"
             .. "no/1/0), not %s", input.name,
             type(v) == "string" and "'" .. v .. "'" or
             type(v) == "number" and tostring(v) or self:what(v))
  end
end

-- ---------------------------------------------------------------------
-- Sections

function V:inputs(root)
  local list, byname = {}, {}
  local x = root.inputs
  if not present(x) then return { list = list, byname = byname } end
  if not self:is_map(x) then
    self:err(self:pos(root, "inputs"), "'inputs' must be a mapping of "
             .. "input names, not %s", self:what(x))
    return { list = list, byname = byname }
  end
  for name, d in pairs(x) do
    local p = self:kpos(x, name)
    if type(name) ~= "string" or not name:match(NAME_PAT) then
      self:err(p, "bad input name '%s' (letters, digits, '_' and '-')",
               tostring(name))
    else
      local input = { name = name, pos = p }
      if type(d) == "table" and self:is_map(d) then
        local ctx = "input '" .. name .. "'"
        self:keys(d, INPUT, ctx, INPUT_KEYS)
        input.default = d.default ~= NULL and d.default or nil
        self:exprs(d.default, d, "default", nil)
        input.description = self:string_field(d, "description", ctx)
        input.required = self:bool_field(d, "required", ctx) == true
        input.type = self:string_field(d, "type", ctx)
        if input.type and input.type ~= "string" and
           input.type ~= "number" and input.type ~= "boolean" then
          self:err(self:pos(d, "type"), "'type' in %s must be string, "
                   .. "number or boolean", ctx)
        end
        self:typed_default(input, d)
      elseif type(d) == "table" or type(d) == "function" then
        self:err(self:pos(x, name), "input '%s' must be a value or a "
                 .. "mapping with 'default', not %s", name, self:what(d))
      else
        input.default = d ~= NULL and d or nil
        self:exprs(d, x, name, nil)
      end
      list[#list + 1] = input
      byname[name] = input
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return { list = list, byname = byname }
end

function V:sessions(root)
  local list, byname = {}, {}
  local x = root.sessions
  if not present(x) then return { list = list, byname = byname } end
  if not self:is_map(x) then
    self:err(self:pos(root, "sessions"), "'sessions' must be a mapping "
             .. "of session names, not %s", self:what(x))
    return { list = list, byname = byname }
  end
  for name, d in pairs(x) do
    local p = self:kpos(x, name)
    if type(name) ~= "string" or not name:match(NAME_PAT) then
      self:err(p, "bad session name '%s' (letters, digits, '_' and '-')",
               tostring(name))
    else
      local s = { name = name, pos = p }
      local ctx = "session '" .. name .. "'"
      if type(d) == "table" and self:is_map(d) then
        self:keys(d, SESSION, ctx, SESSION_KEYS)
        s.template = self:string_field(d, "template", ctx)
        s.namespace = self:string_field(d, "namespace", ctx)
        s.ttl = self:number_field(d, "ttl", ctx, 1, true)
        s.id = self:string_field(d, "id", ctx)
        s.keep = self:bool_field(d, "keep", ctx)
        self:exprs(d, x, name, nil)
      elseif present(d) then
        self:err(self:pos(x, name), "%s must be a mapping (template, "
                 .. "namespace, ttl, id, keep), not %s", ctx, self:what(d))
      end
      list[#list + 1] = s
      byname[name] = s
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return { list = list, byname = byname }
end

-- The kind-specific part of a step.
function V:spec(step, raw)
  local kind, x = step.kind, raw[step.kind]
  local p = self:pos(raw, kind)
  local ctx = ("'%s' of step '%s'"):format(kind, step.id)
  if kind == "exec" then
    if type(x) == "string" or type(x) == "number" then
      if type(x) == "string" and x:match("^%s*$") then
        self:err(p, "%s is an empty command", ctx)
      elseif type(x) == "string" and expr.parse(x) then
        local ok, werr = words.split(x)
        if not ok then self:err(p, "%s: %s", ctx, werr) end
      end
      return { command = expr.text(x) }
    end
    if type(x) == "table" and self:is_seq(x) and #x > 0 then
      local argv = {}
      for i, a in ipairs(x) do
        if type(a) == "table" or type(a) == "function" or a == NULL then
          self:err(self:pos(x, i), "argument %d of %s must be a string, "
                   .. "not %s", i, ctx, self:what(a))
        end
        argv[i] = type(a) == "number" and expr.text(a) or a
      end
      return { command = argv }
    end
    self:err(p, "%s must be a command line or a list of arguments, not %s",
             ctx, self:what(x))
  elseif kind == "run" then
    if type(x) == "string" then return { language = "bash", code = x } end
    if type(x) == "table" and self:is_map(x) then
      self:keys(x, { language = true, code = true }, ctx,
                { "language", "code" })
      local lang = self:string_field(x, "language", ctx) or "python"
      local code = self:string_field(x, "code", ctx, true)
      if not is_expr(lang) and not M.LANGUAGES[lang:lower()] then
        self:err(self:pos(x, "language"), "unknown language '%s' in %s "
                 .. "(python or bash)", lang, ctx)
      end
      return { language = lang, code = code }
    end
    self:err(p, "%s must be a mapping with 'language' and 'code' (or a "
             .. "bash script), not %s", ctx, self:what(x))
  elseif kind == "write" then
    if type(x) == "table" and self:is_map(x) then
      self:keys(x, { path = true, content = true }, ctx,
                { "path", "content" })
      local c = x.content
      if c == nil then
        self:err(self:tpos(x), "%s needs 'content'", ctx)
      elseif type(c) == "table" or type(c) == "function" then
        self:err(self:pos(x, "content"), "'content' in %s must be text, "
                 .. "not %s", ctx, self:what(c))
      end
      return { path = self:string_field(x, "path", ctx, true),
               content = c == NULL and "" or
                         (type(c) == "string" and c or expr.text(c)) }
    end
    self:err(p, "%s must be a mapping with 'path' and 'content', not %s",
             ctx, self:what(x))
  elseif kind == "upload" or kind == "download" then
    if type(x) == "table" and self:is_map(x) then
      self:keys(x, { from = true, to = true }, ctx, { "from", "to" })
      return { from = self:string_field(x, "from", ctx, true),
               to = self:string_field(x, "to", ctx, true) }
    end
    self:err(p, "%s must be a mapping with 'from' and 'to', not %s", ctx,
             self:what(x))
  elseif kind == "list" then
    if not present(x) then return { path = "." } end
    if type(x) == "string" then return { path = x } end
    if type(x) == "table" and self:is_map(x) then
      self:keys(x, { path = true }, ctx, { "path" })
      return { path = self:string_field(x, "path", ctx) or "." }
    end
    self:err(p, "%s must be a path, not %s", ctx, self:what(x))
  elseif kind == "stop" then
    if type(x) == "string" and x:match(NAME_PAT) then
      return { target = x }
    end
    self:err(p, "%s must be the id of a background exec step, not %s",
             ctx, type(x) == "string" and "'" .. x .. "'" or self:what(x))
    return {}
  elseif kind == "lua" then
    if type(x) == "function" then return { fn = x } end
    if type(x) == "string" then
      -- line numbers of the code are those of the file: a block scalar
      -- (| or >) starts on the line after its indicator
      local text = self.source and self:line(p.line) or ""
      local c = text:sub(p.col, p.col)
      step.code_line = self.marks[raw] and
                       ((c == "|" or c == ">") and p.line or p.line - 1)
                       or 0
      local chunk, err = load(string.rep("\n", step.code_line) .. x,
                              "=" .. self.file, "t", {})
      if not chunk then
        self:err(p, "%s does not compile: %s", ctx,
                 (err:gsub("^[^\n]-:(%d+): ", "line %1: ")))
      end
      return { code = x }
    end
    self:err(p, "%s must be Lua code%s, not %s", ctx,
             self.is_lua and " or a function" or "", self:what(x))
  end
  return {}
end

function V:retry(raw, ctx)
  local x = raw.retry
  if not present(x) then return nil end
  if type(x) == "number" then
    local limit = self:number_field(raw, "retry", ctx, 0, true)
    return limit and { limit = limit, backoff = 1, factor = 2 }
  end
  if type(x) == "table" and self:is_map(x) then
    local rctx = "'retry' of " .. ctx
    self:keys(x, RETRY, rctx, RETRY_KEYS)
    return {
      limit = self:number_field(x, "limit", rctx, 0, true) or 1,
      backoff = self:number_field(x, "backoff", rctx, 0) or 1,
      factor = self:number_field(x, "factor", rctx, 1) or 2,
    }
  end
  self:err(self:pos(raw, "retry"), "'retry' in %s must be a number of "
           .. "retries or a mapping (limit, backoff, factor), not %s", ctx,
           self:what(x))
  return nil
end

function V:step(raw, parent, index, phase)
  local auto = (phase == "finally" and "finally-" or "step-") .. index
  if type(raw) ~= "table" or not self:is_map(raw) then
    self:err(self:pos(parent, index), "a step must be a mapping, not %s",
             self:what(raw))
    return nil
  end
  local step = { index = index, phase = phase, pos = self:tpos(raw),
                 raw = raw, file = self.file }
  -- the id first: every later message names the step
  local id = raw.id
  if present(id) then
    if type(id) ~= "string" or not id:match(NAME_PAT) then
      self:err(self:pos(raw, "id"), "bad step id %s (letters, digits, '_' "
               .. "and '-', starting with a letter or '_')",
               type(id) == "string" and "'" .. id .. "'" or self:what(id))
      id = auto
    end
  else
    id = auto
  end
  step.id = id
  local ctx = "step '" .. id .. "'"
  local kinds, unknown = {}, {}
  for k in pairs(raw) do
    if KIND[k] then
      kinds[#kinds + 1] = k
    elseif not STEP[k] then
      unknown[#unknown + 1] = k
    end
  end
  for _, k in ipairs(unknown) do
    local p = self:kpos(raw, k)
    if type(k) ~= "string" then
      self:err(p, "unexpected key %s in %s", tostring(k), ctx)
    elseif #kinds > 0 then
      self:err(p, "unknown key '%s' in %s%s", k, ctx,
               suggest(k, STEP_KEYS, M.KINDS))
    elseif suggest(k, M.KINDS) ~= "" or suggest(k, STEP_KEYS) == "" then
      -- no kind given: the stranger is most likely meant as one
      local hint = suggest(k, M.KINDS)
      self:err(p, "unknown step kind '%s' in %s%s", k, ctx,
               hint ~= "" and hint or
               " (one of " .. table.concat(M.KINDS, ", ") .. ")")
    else
      self:err(p, "unknown key '%s' in %s%s", k, ctx,
               suggest(k, STEP_KEYS))
    end
  end
  table.sort(kinds, function(a, b)
    local pa, pb = self:kpos(raw, a), self:kpos(raw, b)
    if pa.line ~= pb.line then return pa.line < pb.line end
    if pa.col ~= pb.col then return pa.col < pb.col end
    return a < b
  end)
  if #kinds == 0 then
    if #unknown == 0 then
      self:err(step.pos, "%s has no kind: give one of %s", ctx,
               table.concat(M.KINDS, ", "))
    end
    return nil
  end
  if #kinds > 1 then
    self:err(self:kpos(raw, kinds[2]), "%s has two kinds, '%s' and '%s': "
             .. "one step does one thing", ctx, kinds[1], kinds[2])
  end
  step.kind = kinds[1]
  step.name = self:string_field(raw, "name", ctx) or id
  step.session = self:string_field(raw, "session", ctx)
  -- needs: one id or a list
  local needs, x = {}, raw.needs
  step.needs_pos = {}
  if type(x) == "string" then
    needs[1] = x
    step.needs_pos[1] = self:pos(raw, "needs")
  elseif type(x) == "table" and self:is_seq(x) then
    for i, d in ipairs(x) do
      if type(d) ~= "string" then
        self:err(self:pos(x, i), "'needs' of %s lists step ids, not %s",
                 ctx, self:what(d))
      else
        needs[#needs + 1] = d
        step.needs_pos[#needs] = self:pos(x, i)
      end
    end
  elseif present(x) then
    self:err(self:pos(raw, "needs"), "'needs' of %s must be a step id or a "
             .. "list of them, not %s", ctx, self:what(x))
  end
  step.needs = needs
  -- if
  local c = raw["if"]
  if present(c) then
    if type(c) == "boolean" then
      step.cond = c
    elseif type(c) == "string" then
      local srcs, err = expr.condition_sources(c)
      if not srcs then
        self:err(self:pos(raw, "if"), "%s", err)
      else
        local bare = not expr.has(c)
        for _, src in ipairs(srcs) do
          self.refs[#self.refs + 1] = { src = src, owner = step,
                                        pos = self:pos(raw, "if"),
                                        bare = bare }
        end
      end
      step.cond = c
    else
      self:err(self:pos(raw, "if"), "'if' of %s must be an expression, "
               .. "not %s", ctx, self:what(c))
    end
  end
  step.cond_pos = self:pos(raw, "if")
  step.timeout = self:number_field(raw, "timeout", ctx, 0)
  if step.timeout == 0 then
    self:err(self:pos(raw, "timeout"), "'timeout' of %s must be more "
             .. "than 0 seconds", ctx)
  end
  step.retry = self:retry(raw, ctx)
  step.continue_on_error = self:bool_field(raw, "continue_on_error", ctx)
  step.env = self:env_field(raw, "env", ctx)
  step.working_dir = self:string_field(raw, "working_dir", ctx)
  if step.working_dir and step.kind ~= "exec" then
    self:err(self:pos(raw, "working_dir"), "'working_dir' applies to "
             .. "exec steps only (%s is a %s step)", ctx, step.kind)
  end
  local codes = raw.allowed_exit_codes
  if present(codes) then
    step.allowed = {}
    if step.kind ~= "exec" and step.kind ~= "run" then
      self:err(self:pos(raw, "allowed_exit_codes"), "'allowed_exit_codes' "
               .. "applies to exec and run steps only")
    elseif type(codes) ~= "table" or not self:is_seq(codes) then
      self:err(self:pos(raw, "allowed_exit_codes"), "'allowed_exit_codes' "
               .. "of %s must be a list of numbers, not %s", ctx,
               self:what(codes))
    else
      for i, n in ipairs(codes) do
        if math.type(n) ~= "integer" or n < 0 or n > 255 then
          self:err(self:pos(codes, i), "exit code %s of %s is not an "
                   .. "integer from 0 to 255", tostring(n), ctx)
        else
          step.allowed[n] = true
        end
      end
    end
  end
  step.spec = self:spec(step, raw)
  self:context_field(step, raw, ctx)
  self:background_fields(step, raw, ctx)
  for _, k in ipairs{ step.kind, "env", "working_dir", "timeout",
                      "continue_on_error", "ready" } do
    if k ~= "lua" then self:exprs(raw[k], raw, k, step) end
  end
  return step
end

-- `context: NAME` (run steps): the step runs in the stateful
-- interpreter NAME of its session, created on first use.
function V:context_field(step, raw, ctx)
  local x = raw.context
  if not present(x) then return end
  local p = self:pos(raw, "context")
  if step.kind ~= "run" then
    self:err(p, "'context' applies to run steps only (%s is %s %s step)",
             ctx, step.kind == "exec" and "an" or "a", step.kind)
    return
  end
  if type(x) ~= "string" or not x:match(NAME_PAT) then
    self:err(p, "'context' of %s must be a name (letters, digits, '_' and "
             .. "'-'), not %s", ctx, type(x) == "string" and
             "'" .. x .. "'" or self:what(x))
    return
  end
  local lang = step.spec.language
  if type(lang) == "string" and is_expr(lang) then
    self:err(self:pos(raw.run, "language"), "the language of context step "
             .. "'%s' must be written out (steps sharing a context share "
             .. "one interpreter)", step.id)
    return
  end
  step.context = x
  step.context_pos = p
  step.context_language = M.CONTEXT_LANGUAGE[(lang or ""):lower()]
  if present(raw.allowed_exit_codes) then
    self:err(self:pos(raw, "allowed_exit_codes"), "'allowed_exit_codes' "
             .. "does not apply to %s: a context run has no exit code "
             .. "(it fails with the error it raises)", ctx)
  end
end

-- `background: true` (exec steps) with `ready: { output:, probe:,
-- interval:, timeout: }`.
function V:background_fields(step, raw, ctx)
  local bg = self:bool_field(raw, "background", ctx)
  local r = raw.ready
  if bg ~= nil and step.kind ~= "exec" then
    self:err(self:pos(raw, "background"), "'background' applies to exec "
             .. "steps only (%s is a %s step)", ctx, step.kind)
    return
  end
  if is_expr(bg) then
    self:err(self:pos(raw, "background"), "'background' of %s must be "
             .. "true or false (expressions are not allowed here)", ctx)
    return
  end
  if present(r) and bg ~= true then
    self:err(self:pos(raw, "ready"), "'ready' of %s needs 'background: "
             .. "true'", ctx)
    return
  end
  if bg ~= true then return end
  step.background = true
  for _, k in ipairs{ "timeout", "allowed_exit_codes" } do
    if present(raw[k]) then
      self:err(self:pos(raw, k), "'%s' does not apply to background %s%s",
               k, ctx, k == "timeout" and
               " (use 'ready: { timeout: }' to bound the wait)" or "")
    end
  end
  local ready = { interval = M.READY_INTERVAL, timeout = M.READY_TIMEOUT }
  step.ready = ready
  if not present(r) then return end
  if not self:is_map(r) then
    self:err(self:pos(raw, "ready"), "'ready' of %s must be a mapping "
             .. "(output, probe, interval, timeout), not %s", ctx,
             self:what(r))
    return
  end
  local rctx = "'ready' of " .. ctx
  self:keys(r, READY, rctx, READY_KEYS)
  ready.output = self:string_field(r, "output", rctx)
  ready.probe = self:string_field(r, "probe", rctx)
  if ready.output == "" then
    self:err(self:pos(r, "output"), "'output' in %s is empty", rctx)
  end
  if ready.probe and ready.probe:match("^%s*$") then
    self:err(self:pos(r, "probe"), "'probe' in %s is an empty command",
             rctx)
  elseif ready.probe and expr.parse(ready.probe) then
    local ok, werr = words.split(ready.probe)
    if not ok then self:err(self:pos(r, "probe"), "%s: %s", rctx, werr) end
  end
  for _, k in ipairs{ "interval", "timeout" } do
    local v = self:number_field(r, k, rctx, 0)
    if is_expr(v) then
      self:err(self:pos(r, k), "'%s' in %s must be a number (expressions "
               .. "are not allowed here)", k, rctx)
    elseif v == 0 then
      self:err(self:pos(r, k), "'%s' in %s must be more than 0 seconds",
               k, rctx)
    elseif v then
      ready[k] = v
    end
  end
end

function V:steps(root, key, phase)
  local x = root[key]
  local out = {}
  if not present(x) then
    if phase == "main" then
      self:err(ORIGIN, "a workflow needs a 'steps' list")
    end
    return out
  end
  if type(x) ~= "table" or not self:is_seq(x) then
    self:err(self:pos(root, key), "'%s' must be a list of steps, not %s",
             key, self:what(x))
    return out
  end
  if phase == "main" and #x == 0 then
    self:err(self:pos(root, key), "'steps' is empty")
  end
  for i, raw in ipairs(x) do
    local s = self:step(raw, x, i, phase)
    if s then out[#out + 1] = s end
  end
  return out
end

-- Ids, needs, cycles, sessions.
function V:link(wf)
  local byid, all = {}, {}
  for _, s in ipairs(wf.steps) do all[#all + 1] = s end
  for _, s in ipairs(wf.finally) do all[#all + 1] = s end
  for _, s in ipairs(all) do
    local first = byid[s.id]
    if first then
      local p = first.raw and self:pos(first.raw, "id") or first.pos
      self:err(self:pos(s.raw, "id"), "duplicate step id '%s' (first at "
               .. "%d:%d)", s.id, p.line, p.col)
    else
      byid[s.id] = s
    end
  end
  wf.byid = byid
  for _, s in ipairs(all) do
    local kept = {}
    for i, d in ipairs(s.needs) do
      local m = byid[d]
      if not m then
        self:err(s.needs_pos[i], "step '%s' needs unknown step '%s'%s",
                 s.id, d, suggest(d, (function()
                   local ids = {}
                   for id in pairs(byid) do ids[#ids + 1] = id end
                   table.sort(ids)
                   return ids
                 end)()))
      elseif m.phase ~= s.phase then
        self:err(s.needs_pos[i], s.phase == "main" and
                 "step '%s' needs '%s', a finally step" or
                 "finally step '%s' needs '%s', a main step (finally steps "
                 .. "run after every main step; use 'if' to look at it)",
                 s.id, d)
      else
        kept[#kept + 1] = d
      end
    end
    s.needs = kept
  end
  self:stop_targets(all, byid)
  -- sessions
  local declared = wf.sessions.list
  for _, s in ipairs(all) do
    if s.kind == "stop" then     -- on its target's session, below
      goto next_step
    end
    if s.session then
      if not wf.sessions.byname[s.session] then
        if #declared == 0 and s.session == M.DEFAULT_SESSION then
          s.session = M.DEFAULT_SESSION
        else
          self:err(self:pos(s.raw, "session"), "step '%s' uses session "
                   .. "'%s', which is not declared in 'sessions'%s", s.id,
                   s.session, suggest(s.session, (function()
                     local names = {}
                     for _, d in ipairs(declared) do
                       names[#names + 1] = d.name
                     end
                     return names
                   end)()))
        end
      end
    elseif #declared == 1 then
      s.session = declared[1].name
    elseif #declared == 0 then
      s.session = M.DEFAULT_SESSION
    elseif s.kind == "lua" then
      -- a lua step runs here; it needs a session only if it touches
      -- `session`, which then says which one to name
      s.session = nil
    else
      local names = {}
      for _, d in ipairs(declared) do names[#names + 1] = d.name end
      self:err(s.pos, "step '%s' has no 'session' and the workflow "
               .. "declares several (%s): say which", s.id,
               table.concat(names, ", "))
    end
    ::next_step::
  end
  self:stop_sessions(all)
  self:contexts(all)
  if #declared == 0 then
    local d = { name = M.DEFAULT_SESSION, implicit = true, pos = ORIGIN }
    wf.sessions.list[1] = d
    wf.sessions.byname[d.name] = d
  end
  -- order and cycles, per phase
  for _, phase in ipairs{ "main", "finally" } do
    local nodes = phase == "main" and wf.steps or wf.finally
    local ordered, cycles = graph.order(nodes, byid)
    if not ordered then
      for _, cycle in ipairs(cycles) do
        local first = byid[cycle[1]]
        local p = first.raw and self:pos(first.raw, "needs") or first.pos
        self:err(p, "cyclic needs: %s", table.concat(cycle, " -> "))
      end
      ordered = nodes
    end
    wf.order[phase] = ordered
    local prev = graph.chains(ordered, function(n) return n.session end)
    for n, p in pairs(prev) do wf.prev[n] = p end
  end
end

-- A stop step names a background exec step; it waits for it (an
-- implicit need when both are in one phase).
function V:stop_targets(all, byid)
  for _, s in ipairs(all) do
    local id = s.kind == "stop" and s.spec.target
    if id then
      local t = byid[id]
      local p = self:pos(s.raw, "stop")
      if not t then
        local ids = {}
        for k, x in pairs(byid) do
          if x.background then ids[#ids + 1] = k end
        end
        table.sort(ids)
        self:err(p, "step '%s' stops unknown step '%s'%s", s.id, id,
                 suggest(id, ids))
      elseif not t.background then
        self:err(p, "step '%s' stops step '%s', which is not a background "
                 .. "exec step (add 'background: true' to it)", s.id, id)
      elseif t.phase == "finally" and s.phase == "main" then
        self:err(p, "step '%s' stops '%s', a finally step that runs after "
                 .. "it", s.id, id)
      else
        s.stop_target = t
        if t.phase == s.phase then
          local has = false
          for _, d in ipairs(s.needs) do has = has or d == id end
          if not has then s.needs[#s.needs + 1] = id end
        end
      end
    end
  end
end

-- A stop step runs on the session of the step it stops.
function V:stop_sessions(all)
  for _, s in ipairs(all) do
    local t = s.stop_target
    if t then
      if s.session and t.session and s.session ~= t.session then
        self:err(self:pos(s.raw, "session"), "step '%s' stops '%s', which "
                 .. "runs on session '%s', not '%s'", s.id, t.id,
                 t.session, s.session)
      end
      s.session = t.session
    end
  end
end

-- Steps naming one context on one session share one interpreter: they
-- must agree on its language.
function V:contexts(all)
  local first = {}
  for _, s in ipairs(all) do
    if s.context and s.session and s.context_language then
      local key = s.session .. "\0" .. s.context
      local f = first[key]
      if not f then
        first[key] = s
      elseif f.context_language ~= s.context_language then
        self:err(s.context_pos, "step '%s' runs %s in context '%s', which "
                 .. "step '%s' (%d:%d) runs %s in: one context has one "
                 .. "language", s.id, s.context_language, s.context, f.id,
                 f.context_pos.line, f.context_pos.col, f.context_language)
      end
    end
  end
end

-- Where the expression src starts in the file, for a value at p: the
-- first "${{ src" at or after p (a bare `if` expression is the value
-- itself). Falls back to p when the text cannot be found (Lua tables).
function V:expr_pos(p, src, bare)
  if bare or not self.source or not self.marks or p == ORIGIN then
    return p
  end
  local first = src:match("^[^\n]*")
  for l = p.line, p.line + 100 do
    local text = self:line(l)
    if not text then break end
    local from = l == p.line and p.col or 1
    while true do
      local a, b = text:find("${{%s*", from)
      if not a then break end
      if text:sub(b + 1, b + #first) == first then
        return { line = l, col = b + 1 }
      end
      from = b + 1
    end
  end
  return p
end

-- Unknown functions, names and fields of known objects, at the
-- expression's own position.
function V:lint_expr(r)
  local start = self:expr_pos(r.pos, r.src, r.bare)
  -- a run-time error of this expression is reported here too
  if r.owner then
    r.owner.expr_pos = r.owner.expr_pos or {}
    r.owner.expr_pos[r.src] = r.owner.expr_pos[r.src] or start
  end
  local first = #r.src:match("^[^\n]*")
  for _, problem in ipairs(expr.lint(r.src, { status = r.owner ~= nil })) do
    local p = start
    if start ~= r.pos or r.bare then
      if problem.at <= first then
        p = { line = start.line, col = start.col + problem.at - 1 }
      end
    end
    self:err(p, "%s in '%s'", problem.msg, r.bare and r.src or
             "${{ " .. r.src .. " }}")
  end
end

-- Names that expressions use must exist, and a step may only read the
-- results of steps certain to have finished before it starts.
function V:check_refs(wf)
  for _, r in ipairs(self.refs) do
    self:lint_expr(r)
    local refs = expr.references(r.src)
    for _, id in ipairs(refs.steps) do
      local m = wf.byid[id]
      if not m then
        self:err(r.pos, "unknown step '%s' in '${{ %s }}'", id, r.src)
      elseif r.owner and r.owner.phase == m.phase and
             not graph.precedes(m, r.owner, wf.byid, wf.prev) then
        self:err(r.pos, "step '%s' reads steps.%s, which may not have run "
                 .. "yet: add '%s' to its needs", r.owner.id, id, id)
      elseif r.owner and r.owner.phase == "main" and m.phase == "finally"
      then
        self:err(r.pos, "step '%s' reads steps.%s, a finally step that "
                 .. "runs after it", r.owner.id, id)
      end
    end
    for _, name in ipairs(refs.inputs) do
      if not wf.inputs.byname[name] then
        self:err(r.pos, "unknown input '%s' in '${{ %s }}'", name, r.src)
      end
    end
    for _, name in ipairs(refs.sessions) do
      if not wf.sessions.byname[name] then
        self:err(r.pos, "unknown session '%s' in '${{ %s }}'", name, r.src)
      end
    end
  end
end

function V:outputs(root)
  local list = {}
  local x = root.outputs
  if not present(x) then return list end
  if not self:is_map(x) then
    self:err(self:pos(root, "outputs"), "'outputs' must be a mapping of "
             .. "names to values, not %s", self:what(x))
    return list
  end
  for name, v in pairs(x) do
    if type(name) ~= "string" or not name:match(NAME_PAT) then
      self:err(self:kpos(x, name), "bad output name '%s'", tostring(name))
    elseif type(v) == "function" then
      self:err(self:pos(x, name), "output '%s' must be a value or an "
               .. "expression, not a function", name)
    else
      list[#list + 1] = { name = name, value = v, pos = self:pos(x, name) }
      self:exprs(v, x, name, nil)
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

--- Validates raw (from load). opts: file, marks, source, is_lua.
-- Returns the normalized workflow, or nil, "FILE:LINE:COL: message"
-- lines.
function M.validate(raw, opts)
  local v = new_checker(opts.file, opts.marks, opts.source, opts.is_lua)
  if type(raw) ~= "table" or not v:is_map(raw) then
    v:err(ORIGIN, "a workflow must be a mapping (name, sessions, steps, "
          .. "...), not %s", v:what(raw))
    return nil, v:message()
  end
  v:keys(raw, TOP, "the workflow", TOP_KEYS)
  local wf = { file = opts.file, order = {}, prev = {},
               is_lua = opts.is_lua }
  wf.name = v:string_field(raw, "name", "the workflow") or
            (opts.file:match("([^/]+)$"):gsub("%.%w+$", ""))
  wf.description = v:string_field(raw, "description", "the workflow")
  wf.max_parallel = v:number_field(raw, "max_parallel", "the workflow", 1,
                                   true) or M.DEFAULT_MAX_PARALLEL
  if is_expr(wf.max_parallel) then
    v:err(v:pos(raw, "max_parallel"), "'max_parallel' must be a number "
          .. "(expressions are not allowed here)")
    wf.max_parallel = M.DEFAULT_MAX_PARALLEL
  end
  wf.env = v:env_field(raw, "env", "the workflow")
  v:exprs(raw.env, raw, "env", nil)
  wf.inputs = v:inputs(raw)
  wf.sessions = v:sessions(raw)
  wf.steps = v:steps(raw, "steps", "main")
  wf.finally = v:steps(raw, "finally", "finally")
  wf.outputs = v:outputs(raw)
  v:link(wf)
  v:check_refs(wf)
  if #v.errors > 0 then return nil, v:message() end
  return wf
end

return M
