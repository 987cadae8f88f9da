-- lua_lines.lua -- a line counter for the Lua code of lua/, loaded into
-- every lua5.4 the tests start (LUA_INIT=@this file) when coverage is
-- measured. It counts the lines a debug hook sees in sources whose path
-- holds "/lua/agentcube", and writes them, one "source<TAB>line" per line
-- hit, to $AGENTCUBE_LUA_COVERAGE/<pid>.<n>.hits when the state closes.
-- (The agentcube executable counts its own the same way, in C.)
--
-- The engine sets hooks of its own for a while (the budgets of
-- expressions, lua steps and `check`) and restores what debug.gethook
-- gave it. So that counting goes on under those hooks, debug.sethook and
-- debug.gethook keep the code's hook beside the counter, which calls it
-- for the events it asked for.
-- luacheck: ignore 122 (the library functions replaced on purpose)
local dir = os.getenv("AGENTCUBE_LUA_COVERAGE")
if not dir then return end

local hits = {}            -- source -> { [line] = true }
local mine = {}            -- source -> its hit table, or false
local getinfo, sethook = debug.getinfo, debug.sethook
local running, create = coroutine.running, coroutine.create
local user = setmetatable({}, { __mode = "k" })  -- thread -> its own hook

local function hook(event, line)
  if event == "line" then
    local src = getinfo(2, "S").source
    local t = mine[src]
    if t == nil then
      t = src:find("/lua/agentcube", 1, true) and {} or false
      mine[src] = t
      if t then hits[src] = t end
    end
    if t then t[line] = true end
  end
  local u = user[running()]
  if u and (event ~= "line" or u.lines) then return u.fn(event, line) end
end

-- debug.sethook([thread,] [fn, mask [, count]])
function debug.sethook(...)
  local th, fn, mask, count
  if type((...)) == "thread" then
    th, fn, mask, count = ...
  else
    th, fn, mask, count = running(), ...
  end
  if fn == nil then
    user[th] = nil
    return sethook(th, hook, "l")
  end
  if type(fn) ~= "function" or type(mask) ~= "string" then
    return sethook(th, fn, mask, count)   -- lua's own message
  end
  user[th] = { fn = fn, mask = mask, count = count,
               lines = mask:find("l", 1, true) ~= nil }
  return sethook(th, hook, mask:gsub("l", "") .. "l", count)
end

-- debug.gethook([thread]): the code's own hook, never the counter
function debug.gethook(th)
  local u = user[th or running()]
  if u then return u.fn, u.mask, u.count or 0 end
  return nil
end

-- a new coroutine starts without a hook: it gets the counter
function coroutine.create(fn)
  local co = create(fn)
  sethook(co, hook, "l")
  return co
end

local function dump()
  sethook()
  local pf = io.open("/proc/self/stat")
  local pid = pf and pf:read("n") or 0
  if pf then pf:close() end
  local f = io.open(("%s/%d.%d.hits"):format(dir, pid, math.random(1 << 30)),
                    "w")
  if not f then return end
  for src, lines in pairs(hits) do
    for line in pairs(lines) do
      f:write(src:gsub("^@", ""), "\t", line, "\n")
    end
  end
  f:close()
end

-- written when the state closes (os.exit(code, true) and a normal end)
-- luacheck: push ignore 111
AGENTCUBE_LUA_COVERAGE_SENTINEL = setmetatable({}, { __gc = dump })
-- luacheck: pop
sethook(hook, "l")
