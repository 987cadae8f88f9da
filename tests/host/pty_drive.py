# pty_drive.py -- drives `agentcube repl` through a pseudo-terminal step by
# step, with timing, and prints what the terminal showed. Steps:
#   >TEXT    type TEXT (Python escapes: \n Enter, \t Tab)
#   ^C       press Ctrl-C
#   ?REGEX   wait until the output since the last wait matches REGEX
#            (Python's re, over the output with CRLF as LF; at most
#            PTY_WAIT_LIMIT s, default 60); "[match N S]" in the report gives the
#            seconds since the last thing typed
#   ~SECS    let the terminal show what it shows for SECS seconds
# At the end ^D is pressed; the report is the transcript (without
# terminal escapes), the match lines and "[exit N]".
import codecs
import os
import pty
import re
import select
import sys
import time

LIMIT = float(os.environ.get("PTY_WAIT_LIMIT", "60"))


def main():
    binary = os.environ["AGENTCUBE_BIN"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary, [binary, "repl"])
    shown = b""
    mark = 0
    sent_at = time.time()
    report = []

    def pump(seconds):
        nonlocal shown
        r, _, _ = select.select([fd], [], [], seconds)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return False
            if not data:
                return False
            shown += data
        return True

    def wait_for(pattern, limit):
        nonlocal mark
        end = time.time() + limit
        rx = re.compile(pattern.encode())
        while time.time() < end:
            m = rx.search(shown.replace(b"\r\n", b"\n"), mark)
            if m:
                mark = m.end()
                return time.time() - sent_at
            if not pump(0.02):
                break
        return None

    wait_for(r"> $", 30)
    for n, step in enumerate(sys.argv[1:], 1):
        if step.startswith(">"):
            # the prompt is on the terminal a moment before the line
            # editor takes the keys: typed earlier, a line is echoed twice
            settle = time.time() + 0.15
            while time.time() < settle:
                pump(0.02)
            os.write(fd, codecs.decode(step[1:], "unicode_escape").encode())
            sent_at = time.time()
        elif step == "^C":
            os.write(fd, b"\x03")
            sent_at = time.time()
        elif step.startswith("?"):
            t = wait_for(step[1:], LIMIT)
            report.append("[match %d %s]" % (n, "none" if t is None
                                               else "%.2f" % t))
        elif step.startswith("~"):
            end = time.time() + float(step[1:])
            while time.time() < end:
                pump(0.05)
    # ^D as a person presses it: once the line editor holds the terminal
    # (sent while the terminal is still in line mode, the kernel keeps it
    # as an end-of-file mark that the switch to raw mode drops)
    settle = time.time() + 0.15
    while time.time() < settle:
        pump(0.02)
    os.write(fd, b"\x04")
    # the REPL deletes its sessions, then exits: a REPL still there after
    # LIMIT seconds is a failure of its own, not a hang of the suite
    end = time.time() + LIMIT
    status = None
    while time.time() < end:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            status = st
            break
        pump(0.05)
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        report.append("[did not exit within %g s after ^D]" % LIMIT)
    # what is left to read (the terminal closes once the REPL is gone)
    while pump(0.05):
        pass
    # cursor moves and bells (libedit redrawing a completed word) go, so
    # that a completed line reads as it ran
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\x07", "",
                  shown.decode("utf-8", "replace"))
    sys.stdout.write(text.replace("\r\n", "\n").replace("\r", ""))
    sys.stdout.write("\n" + "\n".join(report))
    if status is not None:
        sys.stdout.write("\n[exit %d]\n" % os.waitstatus_to_exitcode(status))
    else:
        sys.stdout.write("\n[exit none]\n")


main()
