"""The floor under the hooks (src/runtime/floor.c): a hostile program in a
box (tests/apps/hostile_floor.c) tries to get around the hooks with raw
Linux system calls, native Linux children, signals, ptrace, abstract
sockets, its own NT stubs and a restored ntdll. Each attempt runs in a fresh
box and the test asserts the host is untouched: the host tree by hash,
another box's folder by hash, a host Linux process alive and untraced, a
host listener never reached, the host registry by query.

Attempts that still escape a box on the host's Wine server (--host-server,
the default before session 18) are the ones that server carries out for
the program (it opens, renames and deletes files and writes the registry
itself, outside any per-process kernel domain): they are strict xfails
here, run against such boxes (the host_box fixture), so the day they are
closed the suite says so (docs/design.md, "The floor"). A box as `fvm
create` makes it now, on a Wine server of its own, holds them:
test_own_server.py runs the same attempts there."""
import contextlib
import ctypes
import hashlib
import os
import pathlib
import random
import re
import socket
import stat
import subprocess
import tempfile
import uuid

import pytest

from conftest import DRIVE_C, PREFIX, run_captured, run_unboxed, win_path, wine_env

HOST_ID = "fvmfloor" + uuid.uuid4().hex[:8]
HOST = DRIVE_C / HOST_ID            # C:\fvmfloorXXXX: the host tree under attack
HOST_WIN = "C:\\" + HOST_ID


def tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        h.update(("D" + os.path.relpath(dirpath, root)).encode())
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = pathlib.Path(dirpath, name)
            st = p.lstat()
            h.update(f"F{name}:{st.st_size}:{st.st_mtime_ns}".encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def host():
    (HOST / "sub" / "empty").mkdir(parents=True, exist_ok=True)
    (HOST / "a.txt").write_text("host a\n")
    (HOST / "sub" / "b.txt").write_text("host b\n")
    before = tree_hash(HOST)
    yield HOST
    assert tree_hash(HOST) == before, "the host tree changed"
    subprocess.run(["rm", "-rf", str(HOST)])


@pytest.fixture
def other_box(fvm, apps):
    """A second box that has run a program (so it has an index)."""
    name = "o" + uuid.uuid4().hex[:10]
    fvm("create", name, check=0)
    fvm("run", "--box", name, "cmd", "/c", "exit", check=0)
    folder = fvm.box_dir(name)
    before = tree_hash(folder)
    yield folder
    assert tree_hash(folder) == before, "another box's folder changed"
    fvm("rm", "--force", name)


@pytest.fixture
def victim():
    """A host Linux process."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
    assert proc.poll() is None, "the host process was killed"
    assert "TracerPid:\t0" in status, "the host process is being traced"
    proc.kill()
    proc.wait()


@pytest.fixture
def listener():
    """A host abstract unix socket: nobody may connect from a box."""
    name = "fvmfloor-" + uuid.uuid4().hex[:8]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    s.listen(4)
    s.setblocking(False)
    yield name
    with pytest.raises(BlockingIOError):
        s.accept()
    s.close()


@pytest.fixture
def tcp_listener():
    """A host TCP server on 127.0.0.1: a raw connect from a box must not reach it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    s.setblocking(False)
    yield s.getsockname()[1]
    with pytest.raises(BlockingIOError):
        s.accept()
    s.close()


def hostile(fvm, box, apps, *args, run_opts=(), display=True):
    argv = ["run", "--box", box, *run_opts, str(apps / "hostile_floor.exe"), *args]
    if display:
        return fvm(*argv)
    env = fvm.env()
    env.pop("DISPLAY", None)   # abstract sockets are scoped only in boxes without a display
    return run_captured(["wine", str(fvm.exe), *argv], env)


# name: (fixtures it needs, arguments; {u} = the host tree's Linux path,
# {o} = the other box's folder, {pid} = the victim, {sock} = the listener)
RAW = {
    "raw-open-write": ("host", ["raw-write", "{u}/a.txt"]),
    "raw-create": ("host", ["raw-create", "{u}/new.txt"]),
    "raw-unlink": ("host", ["raw-unlink", "{u}/a.txt"]),
    "raw-rename": ("host", ["raw-rename", "{u}/a.txt", "{u}/moved.txt"]),
    "raw-mkdir": ("host", ["raw-mkdir", "{u}/newdir"]),
    "raw-rmdir": ("host", ["raw-rmdir", "{u}/sub/empty"]),
    "raw-symlink": ("host", ["raw-symlink", "/etc/passwd", "{u}/link"]),
    "raw-hardlink": ("host", ["raw-link", "{u}/a.txt", "{u}/hard"]),
    "raw-truncate": ("host", ["raw-truncate", "{u}/a.txt"]),
    "raw-fork-execve-shell": ("host", ["raw-exec", "/bin/sh", "-c", "echo pwned > {u}/a.txt"]),
    # ld.so runs any readable program (no execve of it), but inside the domain: the write fails.
    "raw-execve-via-ld-so": ("host", ["raw-exec", "/lib64/ld-linux-x86-64.so.2", "/bin/sh", "-c",
                                      "echo pwned > {u}/a.txt"]),
    "raw-fork-execve-touch": ("host", ["raw-exec", "/usr/bin/touch", "{u}/marker"]),
    "raw-write-other-box": ("other_box", ["raw-write", "{o}/box.ini"]),
    "raw-plant-in-other-box": ("other_box", ["raw-create", "{o}/drive/planted.txt"]),
    "raw-corrupt-other-box-index": ("other_box", ["raw-write", "{o}/index-1.fvm"]),
    "raw-read-other-box-index": ("other_box", ["raw-read", "{o}/index-1.fvm"]),
    "raw-signal-host-process": ("victim", ["raw-kill", "{pid}"]),
    "raw-ptrace-host-process": ("victim", ["raw-ptrace", "{pid}"]),
    "raw-process-vm-writev": ("victim", ["raw-vmwrite", "{pid}"]),
    "raw-proc-mem-write": ("victim", ["raw-procmem", "{pid}"]),
    "raw-abstract-socket": ("listener", ["raw-abstract", "{sock}"]),
    "raw-user-namespace": ("host", ["raw-unshare"]),
    # TCP: the kernel domain handles bind and connect with no port allowed.
    # Winsock's are made by wineserver, outside the domain, and decided by
    # [net]: test_net.py's boxed clients and servers run under this floor.
    "raw-tcp-connect-host": ("tcp_listener", ["raw-tcp", "{port}"]),
    "raw-tcp-bind": ("host", ["raw-bind-tcp"]),
    # Raw IP sockets: refused by the seccomp filter (as root, the kernel would allow them).
    "raw-icmp-socket": ("host", ["raw-icmp-socket"]),
}


@pytest.mark.parametrize("name", sorted(RAW))
def test_raw_linux_attempt_is_refused(request, fvm, box, apps, name):
    fixture, args = RAW[name]
    value = request.getfixturevalue(fixture)
    fmt = {"u": HOST, "o": value, "pid": value, "sock": value, "port": value}
    proc = hostile(fvm, box, apps, *[a.format(**fmt) for a in args], display=fixture != "listener")
    # Exit 0: the kernel refused the call (the fixtures check the effect).
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_abstract_socket_with_a_display(fvm, apps):
    """A box on the host's display (--host-display) does not get Landlock's
    abstract-socket scope (libxcb gives up on its EPERM instead of trying
    the display's pathname socket), but abstract names belong to a network
    namespace, and the box's programs have an empty one of their own: the
    host's listener is not there to reach (was a strict xfail before every
    box got one)."""
    box = "x" + uuid.uuid4().hex[:10]
    fvm("create", box, "--host-display", check=0)
    try:
        abstract_listener_out_of_reach(fvm, box, apps)
    finally:
        fvm("rm", "--force", box)


def test_a_box_run_with_a_dead_display_runs_without_one(fvm, box, apps):
    """A DISPLAY that names no X server (a stale one): Xephyr cannot open it,
    so the box's nested display is not there, and the box runs with no
    display, saying so, instead of refusing to run at all."""
    proc = fvm("run", "--box", box, "cmd", "/c", "echo [%DISPLAY%]", env={"DISPLAY": ":1999"})
    assert proc.returncode == 0 and "[%DISPLAY%]" in proc.stdout, proc.stdout + proc.stderr
    assert "Xephyr could not open the user's display" in proc.stderr, proc.stderr


def abstract_listener_out_of_reach(fvm, box, apps):
    name = "fvmfloor-" + uuid.uuid4().hex[:8]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind("\0" + name)
        s.listen(4)
        env = fvm.env({"DISPLAY": os.environ.get("DISPLAY", ":0")})
        proc = run_captured(["wine", str(fvm.exe), "run", "--box", box, str(apps / "hostile_floor.exe"),
                             "raw-abstract", name], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def x_window_titles(display):
    """The names of every window on an X display (xwininfo -root -tree)."""
    out = subprocess.run(["xwininfo", "-root", "-tree", "-display", display], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextlib.contextmanager
def box_window_elsewhere(fvm, name, apps, xvfb, tmp_path, prefix):
    """A window of box name kept open while the with-block runs, on a display
    of the box's own (not the user's, xvfb): yields (that display ":N", the
    window's title), which the broker wrote to <box>\\display; the display
    has no abstract socket, and the title is not on the user's display."""
    stop = tmp_path / ("stop-" + uuid.uuid4().hex[:6])
    title = prefix + uuid.uuid4().hex[:6]
    bg = fvm.popen("run", "--box", name, str(apps / "wintool.exe"), "window", prefix + "Class", title,
                   "--until", win_path(stop), "--timeout", "60")
    try:
        assert fvm.wait_until(lambda: "ready" in bg.output(), timeout=60), bg.output() + bg.errors()
        own = (fvm.box_dir(name) / "display").read_text().strip()
        assert own.startswith(":") and own != xvfb, own
        assert f"@/tmp/.X11-unix/X{own[1:]}\n" not in pathlib.Path("/proc/net/unix").read_text()
        yield own, title
        assert title not in x_window_titles(xvfb)
    finally:
        stop.write_text("")
        bg.wait(timeout=60)


@contextlib.contextmanager
def own_display_box_window(fvm, name, apps, xvfb, tmp_path):
    """In box name (created with --own-display): the host's abstract
    sockets and the user's display's pathname socket are refused; then a
    box window is kept open while the with-block runs. Yields (the box's
    display ":N", the window's title); afterwards the window is closed and
    the box's display file is gone with the box."""
    aname = "fvmfloor-" + uuid.uuid4().hex[:8]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind("\0" + aname)
        s.listen(4)
        proc = fvm("run", "--box", name, str(apps / "hostile_floor.exe"), "raw-abstract", aname)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # 0: refused
    # Nor by its pathname socket: the box sees only its own display's in
    # /tmp/.X11-unix (src/runtime/floor_ns.c, or the init's for its own server).
    proc = fvm("run", "--box", name, str(apps / "hostile_floor.exe"), "raw-unix", f"/tmp/.X11-unix/X{xvfb[1:]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with box_window_elsewhere(fvm, name, apps, xvfb, tmp_path, "FvmOwnDisplay") as (own, title):
        yield own, title
    # The box ended: its display file with it.
    assert fvm.wait_until(lambda: not (fvm.box_dir(name) / "display").exists(), timeout=30)


def test_own_display_scopes_abstract_sockets(fvm, apps, xvfb, tmp_path):
    """A box on the host's server created with --own-display
    (src/broker/display.c) gets an Xvfb of its own while it runs, listening on its pathname socket only,
    and its floor scopes abstract unix sockets: the host's abstract sockets
    (X11's of the user's display, a D-Bus bus, anything) are refused, yet
    the box's windows work, on its own display and not on the user's."""
    name = "d" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-server", "--own-display", check=0)
    try:
        with own_display_box_window(fvm, name, apps, xvfb, tmp_path) as (own, title):
            assert title in x_window_titles(own)
        assert fvm.wait_until(lambda: not pathlib.Path(f"/tmp/.X11-unix/X{own[1:]}").exists(), timeout=30)
    finally:
        fvm("rm", "--force", name)


def test_own_display_box_window_when_the_host_server_has_no_desktop(fvm, apps, xvfb):
    """Wine starts a server's desktop (explorer.exe /desktop) for the first
    process that needs a window, with that process's DISPLAY: for an
    own-display box's program that was the box's display, and the box's
    window failed ("cannot create the window"). fvm run starts the host
    server's desktop first, on the user's display."""
    me = os.readlink("/proc/self/ns/user")
    prefix = f"WINEPREFIX={wine_env()['WINEPREFIX']}\0".encode()
    for proc in pathlib.Path("/proc").iterdir():
        try:
            # This prefix's only: another test worker's desktop is not ours to end.
            if proc.name.isdigit() and b"explorer.exe\0/desktop" in (proc / "cmdline").read_bytes() and \
                    os.readlink(proc / "ns" / "user") == me and prefix in (proc / "environ").read_bytes():
                os.kill(int(proc.name), 9)   # the host server's desktop: none now
        except OSError:
            continue
    name = "d" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-server", "--own-display", check=0)
    try:
        out = fvm("run", "--box", name, str(apps / "wintool.exe"), "window", "FvmNoDesk", "NoDesk", "--timeout", "3")
        assert "ready" in out.stdout, out.stdout + out.stderr
    finally:
        fvm("rm", "--force", name)


def test_native_linux_child_via_start_unix_does_not_run(fvm, box, host):
    # No display: with one (an earlier test may have set DISPLAY for the session),
    # start.exe reports its failure in a message box and waits for a click.
    fvm("run", "--box", box, "cmd", "/c", "start", "/wait", "/unix", "/usr/bin/touch", f"{host}/unix-marker",
        env={"DISPLAY": ""}, timeout=60)
    assert not (host / "unix-marker").exists()


@pytest.mark.parametrize("path", ["Z:{unix}\\a.txt", "\\\\?\\unix{unix}\\a.txt"])
def test_z_drive_and_unix_names_do_not_reach_the_host(fvm, box, apps, host, path):
    unix = str(host).replace("/", "\\")
    fvm("run", "--box", box, str(apps / "filetool.exe"), "write", path.format(unix=unix), "X")


def test_the_floor_is_applied_and_inherited(fvm, box, apps):
    # The box's first process is fvm run's launcher (`fvm.exe __start`,
    # cli/run.c): it sets the floor up (state 1, FVM_BOX_FLAG_FLOOR_SET into
    # what its children are injected with) and the program, its child,
    # inherits it (state 2). fvm.exe itself never sets the flag, so state 2
    # in the program means its boxed parent applied the floor.
    first = hostile(fvm, box, apps, "floor")
    state, abi = first.stdout.split()[1:3]
    assert state == "2" and int(abi) >= 1, first.stdout + first.stderr
    child = fvm("run", "--box", box, "cmd", "/c", win_path(apps / "hostile_floor.exe"), "floor",
                check=0)
    assert child.stdout.split()[1] == "2", child.stdout   # inherited from the boxed parent


def test_no_floor_runs_without_it_and_is_audited(fvm, box, apps, tmp_path):
    target = tmp_path / "written-without-floor.txt"
    proc = hostile(fvm, box, apps, "raw-create", str(target), run_opts=("--no-floor",))
    assert proc.returncode == 1 and target.exists(), proc.stdout + proc.stderr
    assert "--no-floor" in proc.stderr
    state = hostile(fvm, box, apps, "floor", run_opts=("--no-floor",))
    assert state.stdout.split()[1] == "0"
    audit = fvm.box_dir(box) / "audit.jsonl"
    assert fvm.wait_until(lambda: audit.exists() and "no-floor" in audit.read_text()), "no audit record"


def _sixteen_landlock_layers():
    """preexec_fn: fill Landlock's 16 nested domains (each handling only
    MAKE_BLOCK, so nothing else changes): no further domain can be added."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = (ctypes.c_uint64 * 1)(1 << 11)   # LANDLOCK_ACCESS_FS_MAKE_BLOCK
    libc.prctl(38, 1, 0, 0, 0)               # PR_SET_NO_NEW_PRIVS
    for _ in range(16):
        fd = libc.syscall(444, attr, 8, 0)
        libc.syscall(446, fd, 0)
        os.close(fd)


def run_in_full_landlock_stack(fvm, argv):
    """Run argv (under the box's environment) with Landlock's nesting
    exhausted: (exit code, output)."""
    with tempfile.TemporaryFile() as out:
        code = subprocess.run(argv, env=fvm.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              preexec_fn=_sixteen_landlock_layers, timeout=120).returncode
        out.seek(0)
        return code, out.read().decode("utf-8", "replace")


def test_a_box_whose_floor_cannot_be_set_up_does_not_start(fvm, host_box, apps, tmp_path):
    """(The floor of fvm.dll; a box with its own server needs a mount
    namespace first: test_own_server.py.)"""
    box = host_box
    target = tmp_path / "must-not-exist.txt"
    argv = ["wine", str(fvm.exe), "run", "--box", box, str(apps / "hostile_floor.exe"), "raw-create", str(target)]
    code, text = run_in_full_landlock_stack(fvm, argv)
    assert code != 0 and not target.exists(), text
    assert "floor" in text and "--no-floor" in text, text
    # and --no-floor starts it, without the floor
    code, text = run_in_full_landlock_stack(fvm, argv[:5] + ["--no-floor"] + argv[5:])
    assert code == 1 and target.exists(), text


def _foreign_seccomp_filter():
    """preexec_fn: a filter that allows everything, as a container runtime's."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    allow = (ctypes.c_uint16 * 4)(0x06, 0, 0, 0x7fff)   # BPF_RET|BPF_K, SECCOMP_RET_ALLOW
    prog = (ctypes.c_uint64 * 2)(1, ctypes.addressof(allow))
    libc.prctl(38, 1, 0, 0, 0)
    libc.syscall(317, 1, 0, prog)


def test_a_foreign_seccomp_filter_is_not_taken_for_the_floor(fvm, box, apps, tmp_path):
    """Under a filter FVM did not install, the floor is still set up (by fvm
    run's launcher, inherited by the program) and in force: a raw create on
    the host fails."""
    target = tmp_path / "foreign-filter.txt"
    for args in (["floor"], ["raw-create", str(target)]):
        argv = ["wine", str(fvm.exe), "run", "--box", box, str(apps / "hostile_floor.exe"), *args]
        with tempfile.TemporaryFile() as out:
            subprocess.run(argv, env=fvm.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                           preexec_fn=_foreign_seccomp_filter, timeout=120)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        if args == ["floor"]:
            assert text.startswith("floor 2 "), text
    assert not target.exists(), text


def test_doctor_reports_the_floor(fvm):
    out = fvm("doctor", check=0).stdout
    assert "Landlock" in out and "seccomp filter" in out and "user namespaces" in out and "network namespaces" in out
    assert re.search(r"own X display \(--own-display\) +available", out), out
    assert re.search(r"nested X display \(default\) +available", out), out
    assert "active for new boxes: yes" in out


# What the floor does not stop: Wine's server performs these for the
# program. Strict xfails: they document the escape, and fail the suite the
# day it is closed so the docs get updated.
SERVER_SIDE = {
    "own-stub-NtCreateFile": ["stub-create", "\\??\\" + HOST_WIN + "\\a.txt", "PWNED"],
    "own-stub-NtDeleteFile": ["stub-delete", "\\??\\" + HOST_WIN + "\\a.txt"],
    "own-stub-NtSetInformationFile-rename": ["stub-rename", "\\??\\" + HOST_WIN + "\\a.txt",
                                             "\\??\\" + HOST_WIN + "\\moved.txt"],
    "unhook-ntdll-from-disk-then-write": ["unhook-write", HOST_WIN + "\\a.txt", "PWNED"],
}


@pytest.mark.xfail(strict=True, reason="Wine's server opens, renames and deletes files for the program, "
                                       "outside the box's Landlock domain, in a box on the host's server "
                                       "(held in a box created with --own-server: test_own_server.py)")
@pytest.mark.parametrize("name", sorted(SERVER_SIDE))
def test_server_side_file_change_without_hooks(fvm, host_box, apps, name):
    server_side_attack(fvm, host_box, apps, name)


def server_side_attack(fvm, box, apps, name):
    """SERVER_SIDE[name] against a fresh host tree, which must be unchanged
    after it; the attack's output."""
    (HOST / "sub").mkdir(parents=True, exist_ok=True)
    (HOST / "a.txt").write_text("host a\n")
    before = tree_hash(HOST)
    try:
        proc = hostile(fvm, box, apps, *SERVER_SIDE[name])
        assert tree_hash(HOST) == before, "the host tree changed\n" + proc.stdout + proc.stderr
        return proc
    finally:
        subprocess.run(["rm", "-rf", str(HOST)])


def test_server_side_write_into_another_box_index(fvm, host_box, apps):
    """Wine's server opens files for the program, but the program's own
    ntdll first turns the NT name into a Linux path, in the box's mount
    namespace, where other boxes are not there (an empty tmpfs over the
    FVM root): so the own stub's open of another box's index fails in the
    box's process, before the host's server is asked
    (STATUS_OBJECT_PATH_NOT_FOUND), even on the host's server. (A host
    file outside the FVM root is there to be named: the strict xfails
    above.)"""
    box = host_box
    name = "o" + uuid.uuid4().hex[:10]
    fvm("create", name, check=0)
    try:
        fvm("run", "--box", name, "cmd", "/c", "exit", check=0)
        index = fvm.box_dir(name) / "index-1.fvm"
        before = index.read_bytes()
        proc = hostile(fvm, box, apps, "stub-create", "\\??\\unix" + str(index).replace("/", "\\"), "CORRUPT")
        assert index.read_bytes() == before, "another box's index changed"
        assert "NtCreateFile: -1073741766" in proc.stdout, proc.stdout + proc.stderr
    finally:
        fvm("rm", "--force", name)


@pytest.mark.xfail(strict=True, reason="Wine's server writes the registry for the program, in a box on the "
                                       "host's server (held with --own-server: test_own_server.py)")
def test_server_side_registry_write_without_hooks(fvm, host_box, apps):
    box = host_box
    key = "FvmFloor" + uuid.uuid4().hex[:8]
    sid_path = "\\Registry\\User\\S-1-5-21-0-0-0-1000\\Software\\" + key
    hostile(fvm, box, apps, "stub-setvalue", sid_path, "V")
    query = run_unboxed("reg", "query", "HKCU\\Software\\" + key)
    run_unboxed("reg", "delete", "HKCU\\Software\\" + key, "/f")
    assert query.returncode != 0, "the host registry changed"


def listener_outside_ephemeral_ports(kind=socket.SOCK_STREAM):
    """A host TCP listener (or a UDP socket, kind SOCK_DGRAM) on 127.0.0.1
    at a port below the kernel's ephemeral range (an isolated box's servers
    listen in that range, which an own server's floor leaves open:
    docs/design.md)."""
    lo = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        port = random.randrange(10000, max(10001, lo))
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        if kind == socket.SOCK_STREAM:
            s.listen(8)
        s.settimeout(1)
        return s, port
    pytest.fail("no free port")


def unhooked_connect_attack(fvm, apps, tmp_path, server_opt, policy_text="[net]\ndeny tcp:*:{denied}\n"):
    """A box (created with server_opt) whose policy (policy_text, {denied}
    and {allowed} the ports) denies TCP to 127.0.0.1:P for every program;
    the program undoes the [net] hook and connects to a host listener on P
    through Winsock, and then to Q, which the policy allows: {port: (the
    program's output, the listener saw it)}."""
    denied, denied_port = listener_outside_ephemeral_ports()
    allowed, allowed_port = listener_outside_ephemeral_ports()
    policy = tmp_path / "net.ini"
    policy.write_text(policy_text.format(denied=denied_port, allowed=allowed_port))
    name = "n" + uuid.uuid4().hex[:10]
    fvm("create", name, server_opt, "--policy", str(policy), check=0)
    seen = {}
    try:
        for listener, port in ((denied, denied_port), (allowed, allowed_port)):
            proc = hostile(fvm, name, apps, "unhook-connect", str(port))
            try:
                listener.accept()[0].close()
                reached = True
            except OSError:
                reached = False
            seen[port] = (proc.stdout + proc.stderr, reached)
        seen["net"] = fvm("net", name).stdout
    finally:
        denied.close()
        allowed.close()
        fvm("rm", "--force", name)
    return seen, denied_port, allowed_port


@pytest.mark.xfail(strict=True, reason="Wine's server makes Winsock's connections for the program, outside its "
                                       "floor, in a box on the host's server (held in a box created with "
                                       "--own-server, whose server's domain mirrors the policy's TCP denies: "
                                       "test_own_server.py)")
def test_unhooked_connect_to_a_denied_port(fvm, apps, tmp_path):
    seen, denied_port, _ = unhooked_connect_attack(fvm, apps, tmp_path, "--host-server")
    assert not seen[denied_port][1], seen


def listed_by_raw_calls(fvm, box, apps, path):
    """The names a raw getdents64 of the Linux folder path shows in box."""
    out = hostile(fvm, box, apps, "raw-list", str(path)).stdout
    return [line[6:] for line in out.splitlines() if line.startswith("entry ")]


@pytest.mark.parametrize("server_opt", ["--host-server", "--own-server"])
def test_other_boxes_cannot_even_be_listed(fvm, apps, server_opt):
    """The domain lets every folder be listed (Wine's lookups read
    folders), so the box's namespace lays an empty tmpfs over the FVM root
    with only the box's own folder (and its server's) bound back: raw
    calls see no other box's name, nor fvm's other storage."""
    names = ["l" + uuid.uuid4().hex[:10] for _ in range(2)]
    for name in names:
        fvm("create", name, server_opt, check=0)
    try:
        box_dir = fvm.box_dir(names[0])
        boxes = box_dir.parent.resolve()
        assert names[1] in os.listdir(boxes)
        assert listed_by_raw_calls(fvm, names[0], apps, boxes) == [names[0]]
        assert "box.ini" in listed_by_raw_calls(fvm, names[0], apps, box_dir.resolve())
        assert set(listed_by_raw_calls(fvm, names[0], apps, boxes.parent)) <= {"boxes", "servers"}
        servers = boxes.parent / "servers"
        if server_opt == "--host-server":
            assert listed_by_raw_calls(fvm, names[0], apps, servers) == []
        else:   # its own server's folder and lock only
            assert len(listed_by_raw_calls(fvm, names[0], apps, servers)) == 2
    finally:
        for name in names:
            fvm("rm", "--force", name)


@pytest.mark.parametrize("server_opt", ["--host-server", "--own-server"])
def test_a_folder_the_policy_hides_is_out_of_reach_below_the_hooks(fvm, apps, tmp_path, server_opt):
    """hide FOLDER\\** for every program (and nothing allowing within): the
    box's namespace lays an empty tmpfs over the folder, so a raw read of a
    file in it fails, and so does an own-stub NtCreateFile that opens one
    to read, even on the host's server (the program's ntdll resolves the
    name in its own namespace first: not found). A folder next to it stays
    readable below the hooks (the floor's read rules). An own-stub write of
    a new name into it fails too (the folder cannot be looked into: the
    box's processes have no capability, root or not), on both servers, and
    the host tree is unchanged."""
    secret, public = HOST / "secret", HOST / "public"
    secret.mkdir(parents=True, exist_ok=True)
    public.mkdir(parents=True, exist_ok=True)
    (secret / "key.txt").write_text("private\n")
    (public / "readme.txt").write_text("public\n")
    policy = tmp_path / "hide.ini"
    policy.write_text(f"[file]\nhide audit {HOST_WIN}\\secret\\**\n")
    name = "f" + uuid.uuid4().hex[:10]
    fvm("create", name, server_opt, "--policy", str(policy), check=0)
    try:
        before = tree_hash(HOST)
        out = hostile(fvm, name, apps, "raw-read", str(secret / "key.txt")).stdout
        assert out.startswith("open: -"), out
        assert hostile(fvm, name, apps, "raw-read", str(public / "readme.txt")).stdout.startswith("read: "), out
        out = hostile(fvm, name, apps, "stub-read", "\\??\\" + HOST_WIN + "\\secret\\key.txt").stdout
        assert "NtCreateFile: -" in out, out
        # A new name in it: its folder cannot be looked into (no capability
        # passes mode 000), so the name never reaches the server either.
        out = hostile(fvm, name, apps, "stub-create", "\\??\\" + HOST_WIN + "\\secret\\new.txt", "PWNED").stdout
        assert "NtCreateFile: -" in out, out
        assert tree_hash(HOST) == before, "the host tree changed"
    finally:
        fvm("rm", "--force", name)
        subprocess.run(["rm", "-rf", str(HOST)])


def raw_udp_attack(fvm, apps, tmp_path, server_opt, policy_text):
    """A box (created with server_opt and the policy) sends a UDP datagram
    to a host listener with raw Linux calls: (the program's output, the
    listener got it)."""
    policy = tmp_path / "udp.ini"
    policy.write_text(policy_text)
    name = "u" + uuid.uuid4().hex[:10]
    fvm("create", name, server_opt, "--policy", str(policy), check=0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(1)
        try:
            proc = hostile(fvm, name, apps, "raw-udp", str(listener.getsockname()[1]))
            try:
                got = listener.recvfrom(64)[0] == b"LEAK"
            except OSError:
                got = False
        finally:
            fvm("rm", "--force", name)
    return proc.stdout + proc.stderr, got


def test_a_box_whose_policy_lets_nothing_leave_has_no_network(fvm, apps, tmp_path):
    """[net] deny *: the box's processes run in a network namespace of
    their own with no network, so a raw UDP datagram (which Landlock has no
    rule for) goes nowhere (ENETUNREACH), while cmd still runs."""
    out, got = raw_udp_attack(fvm, apps, tmp_path, "--host-server", "[net]\ndeny *\n")
    assert "sendto: -101" in out and not got, out


def test_raw_udp_from_a_box_with_network_goes_nowhere(fvm, apps, tmp_path):
    """Landlock has no UDP rule, so a box whose policy lets some traffic out
    held raw UDP nowhere (a strict xfail until session 17). Every box's
    programs now run in an empty network namespace of their own
    (src/runtime/floor_ns.c): the raw datagram gets ENETUNREACH and the
    listener sees nothing, while Winsock's sockets, which Wine's server
    makes in the host's network, still work as the policy says
    (test_net.py runs in such boxes)."""
    out, got = raw_udp_attack(fvm, apps, tmp_path, "--host-server", "[net]\ndeny tcp:*:25\n")
    assert "sendto: -101" in out and not got, out


def prefix_wineserver_socket():
    return prefix_wineserver()[1]


def prefix_wineserver():
    """The prefix's wineserver: its pid and the Linux path of its socket,
    found from the server process: its working directory is Wine's
    server-DEV-INODE directory (under /tmp/.wine-UID upstream, a random
    /tmp/wine-XXXXXX in Debian's build)."""
    run_unboxed("cmd", "/c", "exit")   # the server is up
    st = os.stat(wine_env()["WINEPREFIX"])
    want = f"server-{st.st_dev:x}-{st.st_ino:x}"
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip().startswith("wineserver"):
                cwd = os.readlink(proc / "cwd")
                if os.path.basename(cwd) == want and os.path.exists(os.path.join(cwd, "socket")):
                    return int(proc.name), os.path.join(cwd, "socket")
        except OSError:
            continue
    pytest.fail("the prefix's wineserver socket was not found")


def test_raw_connect_to_the_host_wineserver_is_refused(fvm, host_box, apps):
    """(A box with its own server: test_own_server.py.) Landlock ABI 7 has no rule for connect() to a pathname unix socket;
    the host's wineserver socket would let a raw client speak Wine's
    protocol as a new process of its own, outside the hooks and the job.
    The floor's mount namespace (src/runtime/floor_ns.c) lays an empty tmpfs
    over every Wine server directory, which a boxed process never needs
    (a Wine child inherits its connection). Before it: `connect: 0`."""
    box = host_box
    path = prefix_wineserver_socket()
    proc = hostile(fvm, box, apps, "raw-unix", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # 0: refused
    # The box's own programs and their children still work.
    out = fvm("run", "--box", box, "cmd", "/c", "cmd /c echo child& exit 3")
    assert out.returncode == 3 and "child" in out.stdout, out.stdout + out.stderr


def test_raw_connect_to_the_host_x_display(fvm, box, apps, xvfb):
    """A box as fvm create makes it sees a nested display of its own
    (src/cli/ownserver_display.c): its /tmp/.X11-unix holds that display's
    socket alone, so a raw X11 client in it cannot reach the user's display
    (before session 19 this was a strict xfail for every default box)."""
    path = f"/tmp/.X11-unix/X{xvfb[1:]}"
    assert os.path.exists(path), path
    proc = hostile(fvm, box, apps, "raw-unix", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # 0: refused
    # Nor when run without a display: then the box has none at all.
    proc = hostile(fvm, box, apps, "raw-unix", path, display=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.xfail(strict=True, reason="a box created with --host-display shares the user's display, which needs "
                                       "that display's pathname socket, and Landlock ABI 7 has no rule for it: a "
                                       "raw X11 client reaches the user's display (the default nested display and "
                                       "--own-display do not; docs/design.md, The floor)")
def test_raw_connect_to_the_host_x_display_from_a_shared_display_box(fvm, apps, xvfb):
    name = "x" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-display", check=0)
    try:
        path = f"/tmp/.X11-unix/X{xvfb[1:]}"
        proc = hostile(fvm, name, apps, "raw-unix", path)
        assert proc.returncode == 0, proc.stdout + proc.stderr   # 0: refused
    finally:
        fvm("rm", "--force", name)


def test_nested_display_shows_the_box_in_one_window(fvm, box, apps, xvfb, tmp_path):
    """The box's display is an Xephyr shown as one window ("FVM box NAME")
    on the user's display: the box's windows are made there, not on the
    user's display, in a Wine virtual desktop of the nested screen's size
    (which draws their frames); a run joining the box gets the same display, whatever
    its own DISPLAY; the display ends with the box's server (fvm stop),
    socket and window too."""
    ini = (fvm.box_dir(box) / "box.ini").read_text()
    assert "display=nested" in ini and "server=own" in ini, ini
    with box_window_elsewhere(fvm, box, apps, xvfb, tmp_path, "FvmNested") as (own, title):
        user = x_window_titles(xvfb)
        assert f'"FVM box {box}"' in user, user[-3000:]
        nested = x_window_titles(own)
        assert title in nested, nested
        # Frames drawn by Wine: the box's desktop is a virtual desktop of the
        # nested screen's size (its server's copy of HKCU says so; the host's
        # registry does not).
        assert re.search(r'"Default - Wine desktop".*1280x800\+0\+0', nested), nested
        assert run_unboxed("reg", "query", "HKCU\\Software\\Wine\\Explorer\\Desktops",
                           "/v", "Default").returncode != 0
        out = fvm("run", "--box", box, "cmd", "/c", "echo [%DISPLAY%]", env={"DISPLAY": ""})
        assert f"[{own}]" in out.stdout, out.stdout + out.stderr
    fvm("stop", box, check=0)
    assert fvm.wait_until(lambda: not pathlib.Path(f"/tmp/.X11-unix/X{own[1:]}").exists(), timeout=30)
    assert fvm.wait_until(lambda: f'"FVM box {box}"' not in x_window_titles(xvfb), timeout=30)


def test_a_prefix_given_the_host_registry_by_a_box_gets_no_nested_desktop(fvm, box):
    """A prefix whose host server has not written user.reg yet (a new one)
    is given the box's copy of the host registry, so that the box's server
    has a file to bind it over (ownserver.c, give_prefix_its_hive). A
    nested box's copy of HKCU ends with the box's virtual desktop, which is
    the box's: it reached the host once (session 20: every host program
    then ran in a 1280x800 virtual desktop, and three display tests
    failed). The prefix gets the copy without it."""
    user_reg = PREFIX / "user.reg"
    run_unboxed("cmd", "/c", "exit")   # the host's server is up, its registry loaded
    saved = user_reg.read_bytes()
    try:
        user_reg.unlink()
        out = fvm("run", "--box", box, "cmd", "/c", "echo", "given")
        assert "given" in out.stdout, out.stdout + out.stderr
        if stat.S_IMODE(user_reg.stat().st_mode) != 0o600:
            pytest.skip("the host's server wrote user.reg before the box's init did: the path was not taken")
        given = user_reg.read_bytes()
        assert b"[Software\\\\Wine\\\\Explorer\\\\Desktops]" not in given, given[-300:]
        assert b'"Desktop"="Default"' not in given, given[-300:]
        assert b"[Software\\\\Wine" in given, given[:300]   # the host's registry otherwise
    finally:
        fvm("stop", box, check=0)
        user_reg.write_bytes(saved)


def test_hostile_suite_is_large_enough():
    assert len(RAW) + 3 + len(SERVER_SIDE) + 2 + 2 >= 20
