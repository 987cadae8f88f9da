-- agentcube.workflow.expr -- the ${{ expr }} language of workflows.
--
-- An expression is a Lua expression over inputs, steps, sessions, env and
-- workflow, evaluated in a sandboxed environment: only the names listed in
-- BUILTINS exist, every other name raises "unknown name", nothing can be
-- assigned, and a runaway expression is stopped after a million VM
-- instructions. A string that is exactly one `${{ x }}` (surrounding
-- blanks aside) gives x's value with its type; `${{ }}` embedded in text
-- is replaced by the value's text (nil and null become "", tables their
-- JSON). Expressions are the workflow author's own code: the sandbox
-- keeps mistakes from reaching io/os/require, it is not a security
-- boundary against a hostile author.
local cjson = require("cjson").new()   -- private: our encoding settings
local hooked = require "agentcube.workflow.hooked"

local M = {}

M.null = cjson.null
M.MAX_INSTRUCTIONS = 1000000

local OPEN, CLOSE = "${{", "}}"

-- Where the "}}" closing an expression starting at i is: the first one
-- outside a quoted Lua string, so that format('{{x}}') stays whole.
local function close_of(s, i)
  local quote
  while i <= #s do
    local c = s:sub(i, i)
    if quote then
      if c == "\\" then
        i = i + 1
      elseif c == quote then
        quote = nil
      end
    elseif c == "'" or c == '"' then
      quote = c
    elseif s:sub(i, i + #CLOSE - 1) == CLOSE then
      return i
    end
    i = i + 1
  end
  return nil
end

--- Splits s into literal text and expressions.
-- Returns { {text=...} | {src=..., at=byte offset}, ... } or nil, message.
function M.parse(s)
  local parts, pos = {}, 1
  while true do
    local a = s:find(OPEN, pos, true)
    if not a then
      if pos <= #s then parts[#parts + 1] = { text = s:sub(pos) } end
      return parts
    end
    if a > pos then parts[#parts + 1] = { text = s:sub(pos, a - 1) } end
    local b = close_of(s, a + #OPEN)
    if not b then
      return nil, "unterminated '" .. OPEN .. "' (no closing '" .. CLOSE ..
                  "')"
    end
    local src = s:sub(a + #OPEN, b - 1):match("^%s*(.-)%s*$")
    if src == "" then return nil, "empty expression '${{ }}'" end
    parts[#parts + 1] = { src = src, at = a }
    pos = b + #CLOSE
  end
end

--- Whether s holds any ${{ }}.
function M.has(s)
  return type(s) == "string" and s:find(OPEN, 1, true) ~= nil
end

-- The source of s when s is exactly one expression, else nil.
local function whole(parts)
  if #parts == 1 and parts[1].src then return parts[1].src end
  if #parts == 2 and parts[1].src and parts[2].text and
     parts[2].text:match("^%s*$") then
    return parts[1].src
  end
  if #parts == 2 and parts[2].src and parts[1].text and
     parts[1].text:match("^%s*$") then
    return parts[2].src
  end
  if #parts == 3 and parts[2].src and parts[1].text and
     parts[3].text and parts[1].text:match("^%s*$") and
     parts[3].text:match("^%s*$") then
    return parts[2].src
  end
  return nil
end

local cache = setmetatable({}, { __mode = "v" })

--- Compiles one expression source; returns a function whose first
-- upvalue is its _ENV, or nil, message.
function M.compile(src)
  local fn = cache[src]
  if fn then return fn end
  local err
  fn, err = load("return " .. src, "=expression", "t", {})
  if not fn then
    -- "expression:1: unexpected symbol near '+'" -> the part after it
    err = err:gsub("^expression:%d+: ", "")
    -- Lua's words for `x = 0` say nothing of the usual cause
    if err:find("near '='", 1, true) and
       src:gsub("[=~<>]=", ""):find("=", 1, true) then
      err = err .. " (did you mean '=='? an expression compares, it "
            .. "cannot assign)"
    end
    return nil, err
  end
  cache[src] = fn
  return fn
end

--- Checks the syntax of every expression in s; returns the sources, or
-- nil, message.
function M.check(s)
  local parts, err = M.parse(s)
  if not parts then return nil, err end
  local srcs = {}
  for _, p in ipairs(parts) do
    if p.src then
      local ok, e = M.compile(p.src)
      if not ok then
        return nil, ("bad expression '${{ %s }}': %s"):format(p.src, e)
      end
      srcs[#srcs + 1] = p.src
    end
  end
  return srcs
end

-- ---------------------------------------------------------------------
-- Helpers users know from GitHub Actions

local function lower(v) return type(v) == "string" and v:lower() or v end

local function contains(hay, needle)
  if type(hay) == "string" then
    return hay:lower():find(tostring(needle):lower(), 1, true) ~= nil
  end
  if type(hay) == "table" then
    for _, v in ipairs(hay) do
      if lower(v) == lower(needle) then return true end
    end
  end
  return false
end

-- Read-only views: what an expression is given is never the engine's own
-- table, and no function it can call gets one either (pairs, next).
local raw_of = setmetatable({}, { __mode = "k" })     -- view -> table
local view_of = setmetatable({}, { __mode = "kv" })   -- table -> view

local function readonly(t)
  if type(t) ~= "table" or raw_of[t] then return t end
  local v = view_of[t]
  if v then return v end
  v = setmetatable({}, {
    __index = function(_, k) return readonly(t[k]) end,
    __newindex = function(_, k)
      error(("'%s' cannot be changed in an expression"):format(
        tostring(k)), 0)
    end,
    __pairs = function(self)
      local f, st, k0 = pairs(t)
      return function(_, k)
        local nk, x = f(st, k)
        return nk, readonly(x)
      end, self, k0
    end,
    __len = function() return #t end,
    __metatable = false,
  })
  raw_of[v], view_of[t] = t, v
  return v
end
M.readonly = readonly

--- The table behind a read-only view (or v itself); a table an
-- expression built is searched for views (depth-bounded).
local function unwrap(v, depth)
  if raw_of[v] then return raw_of[v] end
  depth = depth or 0
  if type(v) == "table" and depth < 100 and getmetatable(v) == nil then
    for k, x in pairs(v) do
      if type(x) == "table" then v[k] = unwrap(x, depth + 1) end
    end
  end
  return v
end
M.unwrap = unwrap

local function text(v)
  if v == nil or v == cjson.null then return "" end
  if type(v) == "table" then return cjson.encode(unwrap(v)) end
  if math.type(v) == "float" and v == math.floor(v) and v > -2^53 and
     v < 2^53 then
    return ("%d"):format(v)
  end
  return tostring(v)
end
M.text = text

local function format(fmt, ...)
  local args = table.pack(...)
  local s = tostring(fmt):gsub("{{", "\1"):gsub("}}", "\2")
  s = s:gsub("{(%d+)}", function(i)
    i = tonumber(i) + 1
    if i > args.n then error("format: no argument {" .. (i - 1) .. "}", 0) end
    return text(args[i])
  end)
  return (s:gsub("\1", "{"):gsub("\2", "}"))
end

-- cjson reads every number as a float; JSON has one number type, and
-- users expect 3 to print as 3: integral values become integers.
local function integers(v, depth)
  if math.type(v) == "float" and v == math.floor(v) and v > -2^53 and
     v < 2^53 then
    return math.tointeger(v)
  end
  if type(v) == "table" and depth < 1000 then
    for k, x in pairs(v) do v[k] = integers(x, depth + 1) end
  end
  return v
end

local function from_json(s)
  if type(s) ~= "string" then
    error("fromJSON: a string expected, got " .. type(s), 0)
  end
  local ok, v = pcall(cjson.decode, s)
  if not ok then error("fromJSON: " .. tostring(v), 0) end
  return integers(v, 0)
end

local function to_json(v)
  local ok, s = pcall(cjson.encode, unwrap(v))
  if not ok then error("toJSON: " .. tostring(s), 0) end
  return s
end

local function join(t, sep)
  if type(t) ~= "table" then return text(t) end
  local out = {}
  for i, v in ipairs(t) do out[i] = text(v) end
  return table.concat(out, sep or ",")
end

local function trim(v)
  return (text(v):match("^%s*(.-)%s*$"))
end

local safe_string = {}
for _, k in ipairs{ "byte", "char", "find", "format", "gmatch", "gsub",
                    "len", "lower", "match", "reverse", "sub", "upper" } do
  safe_string[k] = string[k]
end
local safe_utf8 = {}
for k, v in pairs(utf8) do safe_utf8[k] = v end
local safe_math = {}
for k, v in pairs(math) do safe_math[k] = v end
safe_math.random, safe_math.randomseed = nil, nil

M.BUILTINS = {
  fromJSON = from_json, toJSON = to_json, contains = contains,
  format = format, join = join,
  trim = trim,
  startsWith = function(s, p)
    return type(s) == "string" and s:lower():sub(1, #tostring(p)) ==
           tostring(p):lower()
  end,
  endsWith = function(s, p)
    p = tostring(p)
    return type(s) == "string" and
           (p == "" or s:lower():sub(-#p) == p:lower())
  end,
  tostring = tostring, tonumber = tonumber, type = type, pairs = pairs,
  ipairs = ipairs, select = select, math = safe_math,
  next = function(t, k)
    local r = raw_of[t]
    if not r then return next(t, k) end
    local nk, v = next(r, k)
    return nk, readonly(v)
  end,
  string = safe_string, utf8 = safe_utf8, table = { concat = table.concat },
  null = cjson.null,
}

--- A read-only view of t whose unknown keys raise "what 'k'". (An
-- expression sees it through readonly; a lua step sees it as it is.)
function M.strict(t, what)
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if v == nil then error(("no %s '%s'"):format(what, tostring(k)), 0) end
      return v
    end,
    __newindex = function()
      error(what .. " values cannot be changed", 2)    -- at the user's line
    end,
    __pairs = function(self)
      return function(_, k) return next(t, k) end, self, nil
    end,
    __len = function() return #t end,
  })
end

--- The environment of expressions for ctx (inputs, steps, sessions, env,
-- workflow, and optionally the status functions of `if`).
function M.env(ctx)
  local names = {}
  for k, v in pairs(M.BUILTINS) do names[k] = readonly(v) end
  for k, v in pairs(ctx) do names[k] = readonly(v) end
  return setmetatable({}, {
    __index = function(_, k)
      local v = names[k]
      if v == nil then
        error(("unknown name '%s'"):format(tostring(k)), 0)
      end
      return v
    end,
    __newindex = function(_, k)
      error(("cannot assign '%s' in an expression"):format(tostring(k)), 0)
    end,
  })
end

-- Runs fn with _ENV = env under an instruction limit; returns ok, value.
--- Whether the run was interrupted (Ctrl-C, SIGTERM): the scheduler sets
-- it for the time of a run, so a long expression stops too.
M.interrupted = function() return false end
M.MAX_SECONDS = 2

-- Runs fn with _ENV = env under an instruction and CPU-time limit, and
-- with the methods of strings ('x':rep(n)) those of the sandbox's string
-- table. Returns ok, value.
local function call(fn, env)
  debug.setupvalue(fn, 1, env)
  local smt = getmetatable("")
  local index = smt.__index
  local n, t0 = 0, os.clock()
  local function budget()
    n = n + 1000
    if n >= M.MAX_INSTRUCTIONS then
      error("expression stopped after " .. M.MAX_INSTRUCTIONS ..
            " instructions", 0)
    end
    if os.clock() - t0 > M.MAX_SECONDS then
      error("expression stopped after " .. M.MAX_SECONDS .. " s", 0)
    end
    if M.interrupted() then error("expression interrupted", 0) end
  end
  smt.__index = safe_string
  local ok, v = hooked.run(budget, "", 1000, pcall, fn)
  smt.__index = index
  debug.setupvalue(fn, 1, nil)
  if ok then v = unwrap(v) end
  return ok, v
end

--- Evaluates one expression source in env: value, or nil, message.
function M.eval(src, env)
  local fn, err = M.compile(src)
  if not fn then return nil, err end
  local ok, v = call(fn, env)
  if not ok then
    if type(v) ~= "string" then v = tostring(v) end
    return nil, ("'${{ %s }}': %s"):format(src, v:gsub("^expression:%d+: ",
                                                        ""))
  end
  return v
end

--- Expands the ${{ }} of s: a whole-string expression keeps its value's
-- type, embedded ones become text. Returns ok, value|message.
function M.expand(s, env)
  if not M.has(s) then return true, s end
  local parts, err = M.parse(s)
  if not parts then return false, err end
  local src = whole(parts)
  if src then
    local v, e = M.eval(src, env)
    if e then return false, e end
    return true, v
  end
  local out = {}
  for i, p in ipairs(parts) do
    if p.text then
      out[i] = p.text
    else
      local v, e = M.eval(p.src, env)
      if e then return false, e end
      -- a table with functions (the string library, say) has no text
      local ok, t = pcall(text, v)
      if not ok then
        return false, ("'%s' has no text form: %s"):format(p.src,
          tostring(t):gsub("^.-:%d+: ", ""))
      end
      out[i] = t
    end
  end
  return true, table.concat(out)
end

--- Expands every string inside v (keys stay), copying tables. Functions
-- and other values pass through. Returns ok, value|message.
function M.expand_deep(v, env, depth)
  depth = depth or 0
  if depth > 100 then return false, "value nested too deeply" end
  if type(v) == "string" then return M.expand(v, env) end
  if type(v) ~= "table" then return true, v end
  local out = {}
  for k, x in pairs(v) do
    local ok, y = M.expand_deep(x, env, depth + 1)
    if not ok then return false, y end
    out[k] = y
  end
  return true, out
end

--- GitHub's truthiness: false, nil, null, 0, -0, "" are false.
function M.truthy(v)
  return not (v == nil or v == false or v == cjson.null or v == 0 or
              v == "")
end

--- Evaluates an `if` condition: a boolean, a bare expression or a
-- string with ${{ }}. Returns ok, boolean|message.
function M.condition(c, env)
  if type(c) == "boolean" then return true, c end
  if M.has(c) then
    local ok, v = M.expand(c, env)
    if not ok then return false, v end
    return true, M.truthy(v)
  end
  local v, err = M.eval(c, env)
  if err then return false, err end
  return true, M.truthy(v)
end

--- The expression sources of an `if` condition (for validation).
function M.condition_sources(c)
  if type(c) ~= "string" then return {} end
  if M.has(c) then return M.check(c) end
  local ok, err = M.compile(c)
  if not ok then
    return nil, ("bad expression '%s': %s"):format(c, err)
  end
  return { c }
end

-- ---------------------------------------------------------------------
-- Names and fields, checked before anything runs

--- The fields a step result has (steps.ID.FIELD), a session entry
-- (sessions.NAME.FIELD) and workflow (workflow.FIELD).
M.STEP_FIELDS = {
  "id", "name", "kind", "session", "status", "phase", "outcome",
  "conclusion", "exit_code", "stdout", "stderr", "duration", "files",
  "result", "outputs", "error", "traceback", "timed_out", "attempts",
  "value", "pid", "process_id",
  "session_id", "started", "elapsed", "bytes", "transfer",
}
M.SESSION_FIELDS = { "id", "name", "template", "attached", "kept",
                     "deleted" }
M.WORKFLOW_FIELDS = { "name", "file", "dir" }
M.CONTEXT = { "inputs", "steps", "sessions", "env", "workflow" }
M.STATUS = { "success", "failure", "always", "cancelled" }

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
            local nil not or repeat return then true until while]]):gmatch(
            "%a+") do
  KEYWORDS[w] = true
end

-- The tokens of a Lua expression, strings and comments skipped (a string
-- becomes one "string" token): { {t = kind, v = text, at = offset} }.
local function tokens(src)
  local out, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local lvl = src:match("^%-%-%[(=*)%[", i)
      if lvl then
        local e = src:find("]" .. lvl .. "]", i, true)
        i = e and e + #lvl + 2 or n + 1
      else
        i = (src:find("\n", i, true) or n) + 1
      end
    elseif c == "'" or c == '"' then
      local j = i + 1
      while j <= n and src:sub(j, j) ~= c do
        if src:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      out[#out + 1] = { t = "string", v = src:sub(i + 1, j - 1), at = i }
      i = j + 1
    elseif src:match("^%[=*%[", i) then
      local lvl = src:match("^%[(=*)%[", i)
      local e = src:find("]" .. lvl .. "]", i, true) or n
      out[#out + 1] = { t = "string", v = src:sub(i + #lvl + 2, e - 1),
                        at = i }
      i = e + #lvl + 2
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", i)
      out[#out + 1] = { t = KEYWORDS[w] and "kw" or "name", v = w, at = i }
      i = i + #w
    elseif c:match("%d") or (c == "." and src:match("^%.%d", i)) then
      local w = src:match("^0[xX][%x%.pP%+%-]+", i) or
                src:match("^[%d%.]+[eE][%+%-]?%d+", i) or
                src:match("^[%d%.]+", i)
      out[#out + 1] = { t = "number", v = w, at = i }
      i = i + #w
    else
      local w = src:match("^%.%.%.", i) or src:match("^%.%.", i) or
                src:match("^[=~<>]=", i) or src:match("^//", i) or
                src:match("^::", i) or c
      out[#out + 1] = { t = "op", v = w, at = i }
      i = i + #w
    end
  end
  return out
end

--- The step ids, input names and session names an expression source
-- mentions (steps.x, steps["x"], inputs.x, sessions.x, ...), for
-- validation: from its tokens, so that text in a string or a comment is
-- no reference. Returns { steps =, inputs =, sessions = } lists.
function M.references(src)
  local refs = { steps = {}, inputs = {}, sessions = {} }
  local toks = tokens(src)
  for i, t in ipairs(toks) do
    local before, a, b = toks[i - 1], toks[i + 1], toks[i + 2]
    local list = t.t == "name" and refs[t.v]
    if list and not (before and (before.v == "." or before.v == ":")) and
       a and b then
      if a.v == "." and b.t == "name" then
        list[#list + 1] = b.v
      elseif a.v == "[" and b.t == "string" and toks[i + 3] and
             toks[i + 3].v == "]" then
        list[#list + 1] = b.v
      end
    end
  end
  return refs
end

local function in_list(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

local function nearest(word, list)
  local best, bd = nil, math.min(3, #word // 2 + 1)
  for _, k in ipairs(list) do
    local a, b = word:lower(), k:lower()
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1,
                          prev[j - 1] + (a:sub(i, i) == b:sub(j, j) and 0
                                         or 1))
      end
      prev = cur
    end
    if prev[#b] < bd then best, bd = k, prev[#b] end
  end
  return best and (" (did you mean '%s'?)"):format(best) or ""
end

--- The unknown names and fields of an expression source, found without
-- running it. opts.status: the status functions of `if` exist. Returns
-- a list of { msg =, at = byte offset in src }.
function M.lint(src, opts)
  opts = opts or {}
  local names = {}
  for k in pairs(M.BUILTINS) do names[#names + 1] = k end
  for _, k in ipairs(M.CONTEXT) do names[#names + 1] = k end
  if opts.status then
    for _, k in ipairs(M.STATUS) do names[#names + 1] = k end
  end
  table.sort(names)
  local known = {}
  for _, k in ipairs(names) do known[k] = true end
  local toks, problems = tokens(src), {}
  local function tok(i) return toks[i] or { t = "eof", v = "" } end
  -- the field named after a '.' or as ["x"] at i: name, next index
  local function field(i)
    local a, b = tok(i), tok(i + 1)
    if a.v == "." and b.t == "name" then return b.v, i + 2, b end
    if a.v == "[" and b.t == "string" and tok(i + 2).v == "]" then
      return b.v, i + 3, b
    end
    return nil
  end
  for i, t in ipairs(toks) do
    local before = tok(i - 1)
    local is_key = (before.v == "{" or before.v == ",") and
                   tok(i + 1).v == "=" and tok(i + 2).v ~= "="
    if t.t == "name" and before.v ~= "." and before.v ~= ":" and
       before.v ~= "::" and before.v ~= "goto" and not is_key then
      if not known[t.v] then
        problems[#problems + 1] = { at = t.at, msg = ("unknown name '%s'%s")
          :format(t.v, nearest(t.v, names)) }
      else
        local lib = M.BUILTINS[t.v]
        local f, j, ft = field(i + 1)
        if type(lib) == "table" and lib ~= cjson.null and f then
          if lib[f] == nil then
            local fields = {}
            for k in pairs(lib) do fields[#fields + 1] = k end
            table.sort(fields)
            problems[#problems + 1] = { at = ft.at, msg = ("unknown "
              .. "function '%s.%s'%s"):format(t.v, f, nearest(f, fields)) }
          end
        elseif (t.v == "steps" or t.v == "sessions") and f then
          local g, _, gt = field(j)
          local list = t.v == "steps" and M.STEP_FIELDS or
                       M.SESSION_FIELDS
          if g and not in_list(list, g) then
            problems[#problems + 1] = { at = gt.at, msg = ("unknown field "
              .. "'%s' of %s.%s%s"):format(g, t.v, f, nearest(g, list)) }
          end
        elseif t.v == "workflow" and f and
               not in_list(M.WORKFLOW_FIELDS, f) then
          problems[#problems + 1] = { at = ft.at, msg = ("unknown field "
            .. "'%s' of workflow%s"):format(f, nearest(f,
                                                     M.WORKFLOW_FIELDS)) }
        end
      end
    end
  end
  return problems
end

M.json = cjson

return M
