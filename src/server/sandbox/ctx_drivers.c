/*
** ctx_drivers.c -- the interpreter drivers of language contexts, shipped
** inside the server and passed on the interpreter's command line (nothing
** is written into the workspace).
**
** Every driver reads runs from stdin ("<byte count>\n<code>"), runs the
** code in state kept between runs, and ends each run with one line on
** stderr and then on stdout: "\036" + the context's marker (from the
** environment variable AGENTCUBE_CTX) + " " + a JSON object
** {"value": text?, "error": {"name", "message", "traceback"}?,
**  "status": n?}. The server ends the run when it has seen the line on
** both streams, so everything the code printed before it is delivered
** first. The code's own stdin is /dev/null.
*/
#include "ctx_drivers.h"

#include <string.h>

/* python3 -u -c DRIVER: a notebook cell: the last expression's repr is
** the value; exceptions (KeyboardInterrupt from a timeout's SIGINT and
** SystemExit included) become structured errors and the context lives
** on. Tracebacks keep the cell's frames and the libraries', not the
** driver's (file "<string>"). A SIGINT is a KeyboardInterrupt only while
** a cell runs: one that comes late (the server interrupts a run that has
** just ended) is dropped, instead of killing the idle driver or landing
** on the next cell. */
static const char python_driver[] =
  "import sys, os, ast, json, traceback, signal\n"
  "_m = os.environ.pop('AGENTCUBE_CTX', '')\n"
  "_in = sys.stdin.buffer\n"
  "sys.stdin = open(os.devnull)\n"
  "_g = {'__name__': '__main__', '__builtins__': __builtins__}\n"
  "_busy = [False]\n"
  "def _onint(sig, frame):\n"
  "    if _busy[0]:\n"
  "        raise KeyboardInterrupt\n"
  "signal.signal(signal.SIGINT, _onint)\n"
  "def _send(d):\n"
  "    for f in (sys.stdout, sys.stderr):\n"
  "        try: f.flush()\n"
  "        except Exception: pass\n"
  "    m = ('\\x1e' + _m + ' ' + json.dumps(d) + '\\n').encode()\n"
  "    os.write(2, m); os.write(1, m)\n"
  "def _run(src):\n"
  "    tree = ast.parse(src, '<cell>', 'exec')\n"
  "    last = None\n"
  "    if tree.body and isinstance(tree.body[-1], ast.Expr):\n"
  "        last = ast.Expression(tree.body.pop().value)\n"
  "    exec(compile(tree, '<cell>', 'exec'), _g)\n"
  "    if last is not None:\n"
  "        v = eval(compile(last, '<cell>', 'eval'), _g)\n"
  "        if v is not None:\n"
  "            return repr(v)\n"
  "while True:\n"
  "    line = _in.readline()\n"
  "    if not line:\n"
  "        break\n"
  "    src = _in.read(int(line)).decode('utf-8', 'replace')\n"
  "    res = {}\n"
  "    try:\n"
  "        _busy[0] = True\n"
  "        try:\n"
  "            v = _run(src)\n"
  "        finally:\n"
  "            _busy[0] = False\n"
  "        if v is not None:\n"
  "            res['value'] = v\n"
  "    except BaseException as e:\n"
  "        tb = [f for f in traceback.extract_tb(e.__traceback__)\n"
  "              if f.filename != '<string>']\n"
  "        text = 'Traceback (most recent call last):\\n' + \\\n"
  "            ''.join(traceback.format_list(tb)) + \\\n"
  "            ''.join(traceback.format_exception_only(type(e), e))\n"
  "        res['error'] = {'name': type(e).__name__, 'message': str(e),\n"
  "                        'traceback': text}\n"
  "    _send(res)\n";

/* bash -c DRIVER: the code runs in the driver's own shell (variables,
** functions, cwd kept; it is eval'd in a function whose SIGINT trap
** returns from it, so a timeout's SIGINT ends the run, builtin loops
** included); a non-zero status is the error. Code that ignores SIGINT is
** killed after a grace and the context started anew. */
static const char bash_driver[] =
  "__ac_m=$AGENTCUBE_CTX; unset AGENTCUBE_CTX\n"
  "__ac_run() { trap 'trap : INT; return 130' INT; eval \"$1\" </dev/null; }\n"
  "trap : INT\n"
  "while IFS= read -r __ac_n; do\n"
  "  LC_ALL=C IFS= read -r -N \"$__ac_n\" __ac_code\n"
  "  __ac_run \"$__ac_code\"\n"
  "  __ac_s=$?\n"
  "  if [ $__ac_s -eq 0 ]; then __ac_r='{\"status\":0}'; else\n"
  "    __ac_r=\"{\\\"status\\\":$__ac_s,\\\"error\\\":{\\\"name\\\":"
  "\\\"NonZeroExit\\\",\\\"message\\\":\\\"exit status $__ac_s\\\","
  "\\\"traceback\\\":\\\"\\\"}}\"; fi\n"
  "  printf '\\036%s %s\\n' \"$__ac_m\" \"$__ac_r\" >&2\n"
  "  printf '\\036%s %s\\n' \"$__ac_m\" \"$__ac_r\"\n"
  "done\n";

/* lua5.4 -e DRIVER: globals live in one table kept between runs; "return
** <code>" is tried first so that an expression yields its value. lua.c
** turns SIGINT into an "interrupted!" error in the running code. */
static const char lua_driver[] =
  "local m = os.getenv('AGENTCUBE_CTX') or ''\n"
  "local G = setmetatable({}, {__index = _G})\n"
  "io.stdout:setvbuf('no') io.stderr:setvbuf('no')\n"
  "local function q(s)\n"
  "  return '\"' .. tostring(s):gsub('[%c\"\\\\]', function(c)\n"
  "    return string.format('\\\\u%04x', c:byte()) end) .. '\"'\n"
  "end\n"
  "local function err(name, msg, tb)\n"
  "  return '{\"error\":{\"name\":' .. q(name) .. ',\"message\":' ..\n"
  "    q(msg) .. ',\"traceback\":' .. q(tb or '') .. '}}'\n"
  "end\n"
  "while true do\n"
  "  local line = io.read('l')\n"
  "  if not line then break end\n"
  "  local src = io.read(tonumber(line)) or ''\n"
  "  local fn, e = load('return ' .. src, '=cell', 't', G)\n"
  "  if not fn then fn, e = load(src, '=cell', 't', G) end\n"
  "  local res\n"
  "  if not fn then res = err('SyntaxError', e)\n"
  "  else\n"
  "    local r = table.pack(xpcall(fn, function(x)\n"
  "      return {x, debug.traceback(tostring(x), 2)} end))\n"
  "    if r[1] then\n"
  "      if r.n > 1 then\n"
  "        local p = {}\n"
  "        for i = 2, r.n do p[#p + 1] = tostring(r[i]) end\n"
  "        res = '{\"value\":' .. q(table.concat(p, '\\t')) .. '}'\n"
  "      else res = '{}' end\n"
  "    else\n"
  "      local x = r[2]\n"
  "      res = err('RuntimeError', tostring(x[1]), x[2])\n"
  "    end\n"
  "  end\n"
  "  io.stderr:write('\\30' .. m .. ' ' .. res .. '\\n')\n"
  "  io.stdout:write('\\30' .. m .. ' ' .. res .. '\\n')\n"
  "end\n";

int ctx_driver_argv(const char *language, const char *argv[5]) {
  if (strcmp(language, "python") == 0) {
    argv[0] = "python3";
    argv[1] = "-u";
    argv[2] = "-c";
    argv[3] = python_driver;
    argv[4] = NULL;
  } else if (strcmp(language, "bash") == 0) {
    argv[0] = "bash";
    argv[1] = "-c";
    argv[2] = bash_driver;
    argv[3] = "agentcube-context";
    argv[4] = NULL;
  } else if (strcmp(language, "lua") == 0) {
    argv[0] = "lua5.4";
    argv[1] = "-e";
    argv[2] = lua_driver;
    argv[3] = NULL;
  } else {
    return -1;
  }
  return 0;
}
