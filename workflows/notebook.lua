-- A Lua script used like a notebook: one session, cells run one after the
-- other, each printed with its input and its output. Every cell is a new
-- Python process, so the cells share their state through files in the
-- session's workspace (here a JSON file), the way a notebook shares it
-- through its kernel.
--
--   agentcube workflows/notebook.lua [workflows/data/sales.csv]
local agentcube = require "agentcube"

local csv = arg and arg[1] or
            (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") ..
            "/data/sales.csv"

do
  local ci <close> = agentcube.CodeInterpreterClient{ ttl = 600 }
  local n = 0

  -- Runs one cell and prints it like a notebook does.
  local function cell(code)
    n = n + 1
    print(("In [%d]:"):format(n))
    for line in code:gmatch("[^\n]+") do print("    " .. line) end
    local out = ci:run_code("python", code)
    print(("Out[%d]:"):format(n))
    for line in out:gmatch("[^\n]+") do print("    " .. line) end
    print()
    return out
  end

  ci:upload_file(csv, "sales.csv")
  cell([==[
import csv, json
rows = list(csv.DictReader(open('sales.csv')))
json.dump(rows, open('state.json', 'w'))
print(len(rows), 'rows, columns:', ', '.join(rows[0]))
]==])
  cell([==[
import json
rows = json.load(open('state.json'))
by_day = {}
for r in rows:
    by_day[r['date']] = by_day.get(r['date'], 0) + float(r['amount'])
best = max(by_day, key=by_day.get)
print('best day:', best, round(by_day[best], 2))
]==])
  local out = cell([==[
import json, statistics
rows = json.load(open('state.json'))
amounts = [float(r['amount']) for r in rows]
print(json.dumps({'mean': round(statistics.mean(amounts), 2),
                  'stdev': round(statistics.stdev(amounts), 2)}))
]==])
  -- the last cell's output is data for the script itself
  local stats = require("cjson").decode(out)
  print(("mean %.2f, stdev %.2f"):format(stats.mean, stats.stdev))
end                                  -- the session is deleted here
