-- agentcube.workflow.words -- an `exec:` command line with ${{ }} in it,
-- turned into an argument list in which every substituted value stays
-- inside the argument it was written in.
--
-- The line is split the way the SDK splits a command (POSIX shlex: blanks
-- separate words, '...' is literal, "..." keeps blanks and takes \" \\ \$
-- \` escapes, a backslash outside quotes escapes the next character)
-- before any expression is evaluated, with each ${{ }} standing as one
-- opaque piece. So `--set x='--flag extra'` gives one argument
-- "--flag extra", never two, and quotes in a value are plain characters.
local expr = require "agentcube.workflow.expr"

local M = {}

-- Characters no command line contains mark where expressions were.
local MARK_OPEN, MARK_CLOSE = "\1", "\2"

--- Splits line into words; each word is a list of pieces, a piece being
-- text or { src = expression }. Returns the words, or nil, message.
function M.split(line)
  local parts, err = expr.parse(line)
  if not parts then return nil, err end
  local srcs, marked = {}, {}
  for _, p in ipairs(parts) do
    if p.src then
      srcs[#srcs + 1] = p.src
      marked[#marked + 1] = MARK_OPEN .. #srcs .. MARK_CLOSE
    else
      if p.text:find("[\1\2]") then
        return nil, "control characters \\1 and \\2 in a command line"
      end
      marked[#marked + 1] = p.text
    end
  end
  local s = table.concat(marked)
  local words, cur, i, n = {}, nil, 1, #s
  local function add(text)
    cur = cur or {}
    cur[#cur + 1] = text
  end
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      if cur then words[#words + 1] = cur; cur = nil end
      i = i + 1
    elseif c == "'" then
      local j = s:find("'", i + 1, true)
      if not j then return nil, "unterminated ' in the command line" end
      add(s:sub(i + 1, j - 1))
      i = j + 1
    elseif c == '"' then
      local j, buf = i + 1, {}
      while true do
        if j > n then return nil, 'unterminated " in the command line' end
        local d = s:sub(j, j)
        if d == '"' then break end
        if d == "\\" and s:sub(j + 1, j + 1):match('^["\\$`]') then
          buf[#buf + 1] = s:sub(j + 1, j + 1)
          j = j + 2
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      add(table.concat(buf))
      i = j + 1
    elseif c == "\\" then
      if i == n then return nil, "a command line cannot end with \\" end
      add(s:sub(i + 1, i + 1))
      i = i + 2
    else
      local j = s:find("[%s'\"\\]", i) or n + 1
      add(s:sub(i, j - 1))
      i = j
    end
  end
  if cur then words[#words + 1] = cur end
  -- the marks back into expression pieces
  for w, pieces in ipairs(words) do
    local out = {}
    for _, text in ipairs(pieces) do
      local pos = 1
      while true do
        local a, b, k = text:find(MARK_OPEN .. "(%d+)" .. MARK_CLOSE, pos)
        if not a then break end
        if a > pos then out[#out + 1] = text:sub(pos, a - 1) end
        out[#out + 1] = { src = srcs[tonumber(k)] }
        pos = b + 1
      end
      if pos <= #text then out[#out + 1] = text:sub(pos) end
    end
    words[w] = out
  end
  return words
end

--- The argument list of line with its expressions evaluated in env.
-- Returns argv, or nil, message.
function M.expand(line, env)
  local words, err = M.split(line)
  if not words then return nil, err end
  local argv = {}
  for i, pieces in ipairs(words) do
    local buf = {}
    for j, p in ipairs(pieces) do
      if type(p) == "table" then
        local v, e = expr.eval(p.src, env)
        if e then return nil, e end
        buf[j] = expr.text(v)
      else
        buf[j] = p
      end
    end
    argv[i] = table.concat(buf)
  end
  if #argv == 0 then return nil, "the command line is empty" end
  return argv
end

return M
