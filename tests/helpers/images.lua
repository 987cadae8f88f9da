-- The sandbox image the specs share: a small Debian tree (python3-minimal
-- and the standard library the security probe imports, the essential
-- variant), built once per build directory into <build>/test-images and
-- reused by every spec file of the run (and later runs).
local server = require "server"
local q, sh = server.q, server.sh

local M = {}

local function dirname(p) return (p:gsub("/[^/]*$", "")) end

M.bin = server.bin
-- next to the main build's executable, so that a run against the
-- sanitizer build shares the images too
M.dir = os.getenv("AGENTCUBE_TEST_IMAGES") or
        (dirname(os.getenv("AGENTCUBE_BIN") or M.bin) .. "/test-images")
M.packages = "[python3-minimal, libpython3-stdlib]"
M.config = "default:\n  warmPoolSize: 0\n  image: { packages: " ..
           M.packages .. " }\n"

-- Runs `agentcube image ARGS` with a configuration text; returns the exit
-- status and the combined output.
function M.cli(args, config_text, image_dir)
  local cfg = os.tmpname()
  local f = assert(io.open(cfg, "w"))
  f:write(config_text or "")
  f:close()
  local out = os.tmpname()
  local ok, _, code = os.execute(q(M.bin) .. " image " .. args ..
    " --config " .. q(cfg) .. " --image-dir " .. q(image_dir or M.dir) ..
    " >" .. q(out) .. " 2>&1")
  local text = server.read_file(out) or ""
  os.remove(out)
  os.remove(cfg)
  return ok and 0 or code, text
end

-- Builds the shared image unless it is there; returns the build's output
-- (with "built in Ns" the first time). Fails the caller when it cannot.
local built_output
function M.ensure()
  if built_output then return built_output end
  sh("mkdir -p " .. q(M.dir))
  local t0 = os.time()
  local code, out = M.cli("build", M.config)
  assert(code == 0, "building the test image failed:\n" .. out)
  local secs = out:match("built in (%d+)s")
  if secs then
    io.stderr:write("# test image built in " .. secs .. " s (" ..
                    (out:match("built in %d+s, ([%d.]+ MB)") or "?") ..
                    ")\n")
  end
  built_output = out
  M.elapsed = os.time() - t0
  return out
end

-- The shared image's name (debian-<hash>).
function M.id()
  M.ensure()
  local _, out = M.cli("ls", M.config)
  return assert(out:match("\n(debian%-%x+) [^\n]* default "), out)
end

-- Server options for a server whose default template uses the image.
function M.server_opts(opts)
  M.ensure()
  opts = opts or {}
  opts.config = M.config .. (opts.config or "")
  opts.args = opts.args or {}
  table.insert(opts.args, "--image-dir")
  table.insert(opts.args, M.dir)
  return opts
end

-- The sandbox flavours a spec runs over: the host's /usr (the default)
-- and the shared image. AGENTCUBE_TEST_IMAGES=off leaves the image out.
function M.variants()
  local v = { { label = "", opts = function(o) return o end } }
  if os.getenv("AGENTCUBE_TEST_IMAGES") ~= "off" then
    v[#v + 1] = { label = " [image]", opts = M.server_opts }
  end
  return v
end

return M
