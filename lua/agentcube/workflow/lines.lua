-- agentcube.workflow.lines -- a stream of output chunks as whole lines.
--
-- Output arrives in chunks cut anywhere (inside a line, inside a UTF-8
-- sequence); `run -v` prints it line by line, each line prefixed with its
-- step, so that the lines of steps running at once interleave only
-- between lines. A line longer than MAX_LINE is passed on in pieces, so
-- that a command printing without newlines cannot grow the buffer
-- without bound; flush() passes on what is left (a last line without its
-- newline) when the step ends.
local M = {}

M.MAX_LINE = 64 * 1024

local Lines = {}
Lines.__index = Lines

--- A splitter calling emit(line) (without its "\n") for each line.
function M.new(emit)
  return setmetatable({ buf = "", emit = emit }, Lines)
end

function Lines:feed(chunk)
  if chunk == nil or chunk == "" then return end
  local s = self.buf .. chunk
  local start = 1
  while true do
    local nl = s:find("\n", start, true)
    if not nl then break end
    self.emit(s:sub(start, nl - 1))
    start = nl + 1
  end
  s = s:sub(start)
  while #s > M.MAX_LINE do
    self.emit(s:sub(1, M.MAX_LINE))
    s = s:sub(M.MAX_LINE + 1)
  end
  self.buf = s
end

function Lines:flush()
  if self.buf ~= "" then
    local rest = self.buf
    self.buf = ""
    self.emit(rest)
  end
end

return M
