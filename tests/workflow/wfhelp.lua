-- wfhelp.lua -- what the workflow engine's specs share: the tree's root,
-- the C modules, temporary files, and running a workflow text against a
-- real `agentcube serve` with a collecting reporter.
local M = {}

M.here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or
         "tests/workflow"
-- tests/lua has luahelp.lua (session counting, the fake server)
package.path = M.here .. "/../lua/?.lua;" .. package.path

local function sh_read(cmd)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  p:close()
  return out
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.q = q

M.root = sh_read("cd " .. q(M.here .. "/../..") .. " && pwd"):gsub("%s+$",
                                                                   "")

function M.cmodule(name)
  return require("agentcube.workflow.load").cmodule(name)
end

function M.tmpdir()
  return sh_read("mktemp -d /tmp/agentcube-wf.XXXXXX"):gsub("%s+$", "")
end

function M.rm(path)
  os.execute("rm -rf " .. q(path))
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Writes text as a workflow file in dir (name default wf.yaml).
function M.file(dir, text, name)
  return M.write(dir .. "/" .. (name or "wf.yaml"), text)
end

-- The client options that point sessions at srv.
function M.client(srv)
  return { workload_manager_url = srv.url, router_url = srv.url }
end

-- Runs the workflow at path against srv; returns code, report, events
-- (a collecting reporter's list). opts are merged into run's options.
function M.run(srv, path, opts)
  local workflow = require "agentcube.workflow"
  local rep = workflow.reporters.collect()
  local null_out = io.open("/dev/null", "w")
  local o = { reporter = rep, client_options = srv and M.client(srv),
              output = null_out, errors = null_out }
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.reporter == false then o.reporter = nil end
  local code, report = workflow.run(path, o)
  null_out:close()
  return code, report, rep.events
end

-- The step entry of a report by id.
function M.step(report, id)
  for _, list in ipairs{ report.steps, report.finally } do
    for _, s in ipairs(list) do
      if s.id == id then return s end
    end
  end
end

-- Sessions a real server holds.
function M.sessions(srv)
  return require("luahelp").session_ids(srv)
end

return M
