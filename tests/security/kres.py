# kres.py -- takes kernel resources that Linux counts per uid or per host,
# inside a sandbox or on the host (the control). One mode per run:
#   instances SECS   opens inotify instances until refused, prints the
#                    count and errno, holds them SECS seconds
#   watches SECS DIR...  one instance, watches every file below each DIR
#                    until refused, prints "count errno" (count: distinct
#                    watches, as the kernel counts them), holds them
#   aio SECS         io_setup(65536) as often as allowed, prints "count
#                    errno", holds the contexts
#   keyctl           KEYCTL_GET_KEYRING_ID of the user keyring: "id N" or
#                    the errno name
# With READY=path set, the first line also goes to that file once the
# resources are held, so another client knows when to look.
import ctypes
import errno
import os
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR_IO_SETUP, NR_KEYCTL = 206, 250


def report(line):
    print(line)
    sys.stdout.flush()
    ready = os.environ.get("READY")
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write(line + "\n")
        os.rename(ready + ".tmp", ready)


def errname(e):
    return errno.errorcode.get(e, str(e))


def instances():
    fds, err = [], 0
    while len(fds) < 100000:
        fd = libc.inotify_init1(0)
        if fd < 0:
            err = ctypes.get_errno()
            break
        fds.append(fd)
    return "%d %s" % (len(fds), errname(err) if err else "0"), fds


def watches(dirs):
    fd = libc.inotify_init1(0)
    if fd < 0:
        return "0 " + errname(ctypes.get_errno()), None
    wds, err = set(), 0
    for top in dirs:
        for root, subdirs, files in os.walk(top):
            for name in files + subdirs:
                wd = libc.inotify_add_watch(fd, os.path.join(root, name)
                                            .encode(), 0x100)
                if wd >= 0:
                    wds.add(wd)
                elif ctypes.get_errno() == errno.ENOSPC:
                    err = errno.ENOSPC
                    break
            if err:
                break
        if err:
            break
    return "%d %s" % (len(wds), errname(err) if err else "0"), fd


def aio():
    ctxs, err = [], 0
    while len(ctxs) < 64:
        ctx = ctypes.c_ulong(0)
        if libc.syscall(NR_IO_SETUP, 65536, ctypes.byref(ctx)) != 0:
            err = ctypes.get_errno()
            break
        ctxs.append(ctx)
    return "%d %s" % (len(ctxs), errname(err) if err else "0"), ctxs


def keyctl():
    # KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_USER_KEYRING (-4), create 0
    r = libc.syscall(NR_KEYCTL, 0, ctypes.c_long(-4), 0)
    return "id %d" % r if r >= 0 else errname(ctypes.get_errno())


def main():
    mode = sys.argv[1]
    if mode == "keyctl":
        report(keyctl())
        return
    secs = float(sys.argv[2])
    if mode == "instances":
        line, held = instances()
    elif mode == "watches":
        line, held = watches(sys.argv[3:])
    else:
        line, held = aio()
    report(line)
    time.sleep(secs)
    del held


main()
