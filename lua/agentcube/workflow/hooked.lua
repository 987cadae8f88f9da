-- agentcube.workflow.hooked -- runs a function under a debug hook of its
-- own without touching the caller's.
--
-- Hooks belong to a thread (coroutine). Setting ours on the calling
-- thread and restoring the old one afterwards fails when that one is a
-- C hook (a profiler's, a coverage counter's): debug.gethook() can only
-- name it "external hook", which debug.sethook() refuses. So the function
-- runs in a coroutine of its own that carries our hook, and the calling
-- thread's hook, whatever it is, is never changed.
local M = {}

local pack, unpack = table.pack, table.unpack

-- What run raises when fn yields.
M.YIELDED = "attempt to yield from a bounded call"

-- run(hook, mask, count, fn, ...) -> what fn returns, or raises what fn
-- raised. fn must not yield: a yield out of it is an error.
function M.run(hook, mask, count, fn, ...)
  local co = coroutine.create(fn)
  debug.sethook(co, hook, mask, count)
  local res = pack(coroutine.resume(co, ...))
  if not res[1] then error(res[2], 0) end
  if coroutine.status(co) ~= "dead" then
    error(M.YIELDED, 0)
  end
  return unpack(res, 2, res.n)
end

return M
