-- A plain Lua script: it drives the session itself through the module,
-- as the SDK README's quick start does in Python.
--
--   agentcube run workflows/script.lua
local agentcube = require "agentcube"

do
  local ci <close> = agentcube.CodeInterpreterClient{ ttl = 600 }
  ci:write_file("42", "/tmp/value.txt")
  local out = ci:run_code("python", "print(open('/tmp/value.txt').read())")
  print("value: " .. out:gsub("%s+$", ""))
  for _, f in ipairs(ci:list_files("/tmp")) do
    if f.name == "value.txt" then print("file: " .. f.name, f.size) end
  end
end                                  -- the session is deleted here
