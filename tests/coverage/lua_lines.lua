-- lua_lines.lua -- a line counter for the Lua code of lua/, loaded into
-- every lua5.4 the tests start (LUA_INIT=@this file) when coverage is
-- measured. It counts the lines a debug hook sees in sources whose path
-- holds "/lua/agentcube", and writes them, one "source<TAB>line" per line
-- hit, to $AGENTCUBE_LUA_COVERAGE/<pid>.<n>.hits when the state closes.
local dir = os.getenv("AGENTCUBE_LUA_COVERAGE")
if not dir then return end

local hits = {}            -- source -> { [line] = true }
local mine = {}            -- source -> its hit table, or false
local getinfo = debug.getinfo

local function hook(_, line)
  local src = getinfo(2, "S").source
  local t = mine[src]
  if t == nil then
    t = src:find("/lua/agentcube", 1, true) and {} or false
    mine[src] = t
    if t then hits[src] = t end
  end
  if t then t[line] = true end
end

local function dump()
  debug.sethook()
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
debug.sethook(hook, "l")
