# probe.py -- runs inside the sandbox and tries one attack per argument,
# printing "name: outcome" lines the security specs assert on. Each probe
# reports the errno it got, or "ALLOWED" when the attack went through.
import ctypes
import errno
import os
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

NR = {  # x86_64 syscall numbers
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "keyctl": 250, "add_key": 248,
    "request_key": 249, "ptrace": 101, "perf_event_open": 298, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "kexec_load": 246,
    "init_module": 175, "open_by_handle_at": 304, "syslog": 103,
    "personality": 135, "swapon": 167, "reboot": 169, "acct": 163,
    "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
    "fsopen": 430, "open_tree": 428, "move_mount": 429, "clone3": 435,
    "process_vm_readv": 310, "kcmp": 312, "pidfd_getfd": 438,
    "iopl": 172, "ioperm": 173, "name_to_handle_at": 303,
}


def errname(e):
    return errno.errorcode.get(e, str(e))


def sys_call(name, *args):
    cargs = [ctypes.c_long(a) for a in args]
    r = libc.syscall(ctypes.c_long(NR[name]), *cargs)
    return "ALLOWED" if r >= 0 else errname(ctypes.get_errno())


def probe_syscalls():
    # arguments chosen so that an allowed call would succeed or fail with
    # an ordinary error, never harm anything
    print("unshare:", sys_call("unshare", 0x10000000))          # CLONE_NEWUSER
    print("unshare_ns:", sys_call("unshare", 0x00020000))       # CLONE_NEWNS
    print("setns:", sys_call("setns", 0, 0))
    print("mount:", sys_call("mount", 0, 0, 0, 0, 0))
    print("umount2:", sys_call("umount2", 0, 0))
    print("pivot_root:", sys_call("pivot_root", 0, 0))
    print("chroot:", sys_call("chroot", 0))
    print("keyctl:", sys_call("keyctl", 0, 0, 0, 0, 0))
    print("add_key:", sys_call("add_key", 0, 0, 0, 0, 0))
    print("request_key:", sys_call("request_key", 0, 0, 0, 0))
    print("ptrace:", sys_call("ptrace", 16, 1, 0, 0))           # ATTACH pid 1
    print("perf_event_open:", sys_call("perf_event_open", 0, 0, -1, -1, 0))
    print("bpf:", sys_call("bpf", 0, 0, 0))
    print("userfaultfd:", sys_call("userfaultfd", 0))
    print("io_uring_setup:", sys_call("io_uring_setup", 1, 0))
    print("kexec_load:", sys_call("kexec_load", 0, 0, 0, 0))
    print("init_module:", sys_call("init_module", 0, 0, 0))
    print("open_by_handle_at:", sys_call("open_by_handle_at", 0, 0, 0))
    print("name_to_handle_at:", sys_call("name_to_handle_at", 0, 0, 0, 0, 0))
    print("syslog:", sys_call("syslog", 3, 0, 0))
    print("personality:", sys_call("personality", 0x0040000))   # ADDR_NO_RANDOMIZE
    print("swapon:", sys_call("swapon", 0, 0))
    print("reboot:", sys_call("reboot", 0, 0, 0, 0))
    print("acct:", sys_call("acct", 0))
    print("settimeofday:", sys_call("settimeofday", 0, 0))
    print("clock_settime:", sys_call("clock_settime", 0, 0))
    print("fsopen:", sys_call("fsopen", 0, 0))
    print("open_tree:", sys_call("open_tree", -100, 0, 0))
    print("move_mount:", sys_call("move_mount", 0, 0, 0, 0, 0))
    print("clone3:", sys_call("clone3", 0, 0))
    print("process_vm_readv:", sys_call("process_vm_readv", 1, 0, 0, 0, 0, 0))
    print("kcmp:", sys_call("kcmp", 1, 1, 0, 0, 0))
    print("pidfd_getfd:", sys_call("pidfd_getfd", 0, 0, 0))
    print("iopl:", sys_call("iopl", 3))
    print("ioperm:", sys_call("ioperm", 0, 1, 1))


def probe_tiocsti():
    import fcntl
    import termios
    for name, req in (("tiocsti", termios.TIOCSTI),
                      ("tiocsti_high", termios.TIOCSTI | (1 << 32))):
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
        except OSError as e:
            print(name + ":", "notty:" + errname(e.errno))
            continue
        try:
            fcntl.ioctl(fd, req, b"x")
            print(name + ":", "ALLOWED")
        except OSError as e:
            print(name + ":", errname(e.errno))
        except OverflowError:
            print(name + ":", "EPERM")
        os.close(fd)


def probe_sockets():
    for name, fam, typ in (("netlink", socket.AF_NETLINK, socket.SOCK_RAW),
                           ("packet", socket.AF_PACKET, socket.SOCK_RAW),
                           ("vsock", 40, socket.SOCK_STREAM),
                           ("unix", socket.AF_UNIX, socket.SOCK_STREAM)):
        try:
            s = socket.socket(fam, typ)
            s.close()
            print(name + ":", "ALLOWED")
        except OSError as e:
            print(name + ":", errname(e.errno))


def probe_tiocsti_pty():
    # a terminal of our own, so the ioctl is really tried (no /dev/tty)
    import fcntl
    import termios
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSTI, b"x")
        print("tiocsti_pty:", "ALLOWED")
    except OSError as e:
        print("tiocsti_pty:", errname(e.errno))
    os.close(master)
    os.close(slave)


def probe_connect(host, port, abstract="agentcube-spec-abstract"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print("connect:", "ALLOWED")
    except OSError as e:
        print("connect:", errname(e.errno) if e.errno else type(e).__name__)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + abstract)
        print("abstract:", "ALLOWED")
    except OSError as e:
        print("abstract:", errname(e.errno))
    try:
        socket.getaddrinfo("example.com", 80)
        print("dns:", "ALLOWED")
    except OSError as e:
        print("dns:", "EAI" if isinstance(e, socket.gaierror) else e.errno)


def probe_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    print("fork:", os.WEXITSTATUS(status))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "syscalls":
        probe_syscalls()
    elif what == "tiocsti":
        probe_tiocsti()
    elif what == "sockets":
        probe_sockets()
    elif what == "tiocsti_pty":
        probe_tiocsti_pty()
    elif what == "connect":
        probe_connect(*sys.argv[2:5])
    elif what == "fork":
        probe_fork()
    sys.stdout.flush()
