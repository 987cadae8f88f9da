# pty_repl.py -- drives `agentcube repl` through a pseudo-terminal, the way
# a person types, and prints everything the terminal showed. Each argument
# is one chunk of input; "\t" in it is a Tab keypress.
import os
import pty
import select
import sys
import time


def read_for(fd, seconds):
    out = b""
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


def main():
    binary = os.environ["AGENTCUBE_BIN"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary, [binary, "repl"])
    shown = read_for(fd, 1.5)
    for chunk in sys.argv[1:]:
        os.write(fd, chunk.encode().replace(b"\\t", b"\t"))
        shown += read_for(fd, 1.0)
    os.write(fd, b"\x04")            # ^D ends the REPL
    shown += read_for(fd, 5.0)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(shown.decode("utf-8", "replace"))
    sys.stdout.write("\n[exit %d]\n" % os.waitstatus_to_exitcode(status))


main()
