"""Shared fixtures for the end-to-end tests: real programs run in boxes by the
real fvm.exe under Wine.

Each test session uses its own FVM root inside the Wine prefix's C: drive, so
tests see both sides: the Windows path a boxed program uses and the Linux path
where the test checks host and box state. Tests assert on observable effects:
exit codes, program output, files on the host and in the box folder."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = TOP / "build" / "win"
BASE_PREFIX = pathlib.Path(os.environ.get("WINEPREFIX") or
                           pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
                           / "fvm" / "wineprefix")


def worker_prefix(worker):
    """The Wine prefix of a pytest-xdist worker (scripts/test.sh runs the
    suite on several): gw0 uses the prefix itself, every other worker a copy
    of it, so that each worker has its own Wine server, Xvfb, FVM root and C:
    drive, and one worker's `wineserver -k` (the xvfb fixture) or killed
    desktop never reaches another's programs."""
    if not worker or worker == "gw0":
        return BASE_PREFIX
    return BASE_PREFIX.with_name(BASE_PREFIX.name + "-" + worker)


PREFIX = worker_prefix(os.environ.get("PYTEST_XDIST_WORKER"))
os.environ["WINEPREFIX"] = str(PREFIX)   # for every Wine process a test starts, whatever env it builds
# Without Wine's HID bus driver (winebus.sys): a test machine has no game
# controller, and its SDL backend polls about 1.6 % of a CPU for as long as
# a Wine server lives (the host's and each box's) and costs about 0.2 s of
# CPU at every server start, 12 % of a box's cold start (session 21: the
# suite's test_registry.py and test_escape.py 16 % less CPU, 10 % less
# time). Nothing under test uses it; a box's own server starts it as the
# host's would, from the caller's environment.
_overrides = os.environ.get("WINEDLLOVERRIDES") or "mscoree,mshtml="
if "winebus" not in _overrides:
    os.environ["WINEDLLOVERRIDES"] = _overrides + ";winebus.sys=d"
DRIVE_C = PREFIX / "drive_c"


def copy_prefix(source, target):
    """A fresh copy of a Wine prefix for a worker, without what earlier test
    sessions and benchmarks left in its C: drive (fvm* folders) and without
    the file naming its server's directory (Debian's wine makes a new one)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name == "wineserver":
            continue
        if entry.name == "drive_c":
            (target / "drive_c").mkdir()
            for inner in entry.iterdir():
                if inner.name.lower().startswith("fvm"):
                    continue
                subprocess.run(["cp", "-a", "--reflink=auto", str(inner), str(target / "drive_c")], check=True)
            continue
        subprocess.run(["cp", "-a", "--reflink=auto", str(entry), str(target)], check=True)


# The longest files first (seconds of a run, session 18): with several
# workers taking a file at a time (test.sh), a long file started last is a
# tail one worker runs alone. Within a file, and among the rest, the order
# is kept (the sort is stable, and the same on every worker).
LONGEST_FIRST = ["test_own_server.py", "test_sync.py", "test_registry.py", "test_process_isolation.py",
                 "test_floor.py", "test_io_limits.py", "test_policy_cli.py", "test_files.py", "test_objects.py"]


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = pathlib.Path(str(item.fspath)).name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)


def pytest_configure(config):
    """With pytest-xdist (-n N), the controller makes each worker's prefix
    before the workers start (worker_prefix)."""
    if hasattr(config, "workerinput"):
        return
    workers = getattr(config.option, "numprocesses", None)
    if not isinstance(workers, int) or workers < 2:
        return
    if not (BASE_PREFIX / ".fvm-prefix-ready").exists():
        pytest.exit(f"the Wine prefix {BASE_PREFIX} is not ready: run scripts/setup.sh first", returncode=2)
    for i in range(1, workers):
        copy_prefix(BASE_PREFIX, worker_prefix(f"gw{i}"))


def win_path(p):
    """Windows path (via Wine's Z: drive) of a Linux path."""
    return "Z:" + str(pathlib.Path(p).resolve()).replace("/", "\\")


def linux_path_of_c(win):
    """Linux path of a C:\\ path inside the prefix."""
    assert win[:3].upper() == "C:\\", win
    return DRIVE_C.joinpath(*[part for part in win[3:].split("\\") if part])


def wine_env(extra=None):
    env = dict(os.environ)
    env["WINEPREFIX"] = str(PREFIX)
    # Whatever else is asked for, Wine's start failure must name itself
    # (WINE_START_FAILURE is an err+virtual message).
    debug = env.get("WINEDEBUG") or "-all"
    env["WINEDEBUG"] = debug if "virtual" in debug else debug + ",err+virtual"
    env.setdefault("WINEDLLOVERRIDES", "mscoree,mshtml=")
    if extra:
        env.update(extra)
    return env


# Wine's loader (Debian's wine64 has no preloader) sometimes finds its
# shared user data page taken, at random, by the randomized brk heap of the
# Linux process, and exits 1 before the program runs: about 1 start in 1000
# (docs/design.md "Wine starts that fail"). The program never ran, so the
# start is tried again; nothing else is retried.
WINE_START_FAILURE = "failed to map the shared user data"


def wine_refused_start(returncode, stdout, stderr):
    """Wine's loader refused the start (exit 1, no output, its message)."""
    return returncode == 1 and not stdout and WINE_START_FAILURE in stderr


def wine_direct(argv):
    """argv with a Wine program named bare ("wine reg ...") given as its
    file in the prefix (C:\\windows\\system32\\reg.exe): Wine's loader
    starts start.exe to find a name that is not a file, one more Wine
    process per command (`wine reg query`: 150 ms and 0.17 s of CPU here,
    60 ms and 0.07 s by its path; 5 % of the suite's CPU, session 21)."""
    if len(argv) < 2 or argv[0] != "wine":
        return argv
    name = str(argv[1])
    if any(c in name for c in "\\/:.") or not name:
        return argv
    for folder in ("windows/system32", "windows"):
        if (DRIVE_C / folder / (name.lower() + ".exe")).exists():
            return [argv[0], "C:\\" + folder.replace("/", "\\") + "\\" + name.lower() + ".exe", *argv[2:]]
    return argv


def run_captured(argv, env, input=None, timeout=120):
    """subprocess.run with output captured through temporary files, not
    pipes: Wine starts services.exe and explorer.exe on demand, they inherit
    the standard handles of the process that triggered them and never exit,
    so a pipe would never reach end-of-file."""
    for attempt in range(3):
        proc = run_captured_once(argv, env, input, timeout)
        if not wine_refused_start(proc.returncode, proc.stdout, proc.stderr):
            break
    return proc


def run_captured_once(argv, env, input, timeout):
    argv = wine_direct(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if input is None:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, env=env)
        else:
            proc = subprocess.run(argv, input=input.encode(), stdout=out, stderr=err, timeout=timeout, env=env)
        out.seek(0)
        err.seek(0)
        # Windows programs write CRLF; tests compare lines.
        return subprocess.CompletedProcess(argv, proc.returncode,
                                           out.read().decode("utf-8", "replace").replace("\r\n", "\n"),
                                           err.read().decode("utf-8", "replace").replace("\r\n", "\n"))


class Background:
    """A program left running (e.g. a box to stop), its output in files.
    A start Wine itself refused (WINE_START_FAILURE: the program never ran)
    is made again, as run_captured does, when the program is next looked at."""

    def __init__(self, argv, env):
        self.argv, self.env, self.restarts = argv, env, 0
        self._start()

    def _start(self):
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(wine_direct(self.argv), stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=self.env)

    @staticmethod
    def _contents(f):
        """The file's bytes so far, read with pread: the program writes
        through the same open file, so moving its offset (seek) would make
        the program's next write land there, over what it wrote before."""
        fd = f.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def _check(self):
        """Starts the program again if it ended because Wine refused it."""
        while (self.restarts < 2 and self.proc.poll() is not None and
               wine_refused_start(self.proc.returncode, self._contents(self.out),
                                  self._contents(self.err).decode("utf-8", "replace"))):
            self.restarts += 1
            self._start()

    def poll(self):
        self._check()
        return self.proc.poll()

    def wait(self, timeout=None):
        while True:
            code = self.proc.wait(timeout=timeout)
            restarts = self.restarts
            self._check()
            if self.restarts == restarts:
                return code

    def kill(self):
        self.proc.kill()

    def output(self):
        self._check()
        return self._contents(self.out).decode("utf-8", "replace").replace("\r\n", "\n")

    def errors(self):
        self._check()
        return self._contents(self.err).decode("utf-8", "replace").replace("\r\n", "\n")


class Fvm:
    """Runs fvm.exe under Wine with a private FVM root."""

    def __init__(self, root_win):
        self.root_win = root_win
        self.root = linux_path_of_c(root_win)
        self.exe = BUILD / "fvm.exe"

    def env(self, extra=None):
        return wine_env(dict({"FVM_ROOT": self.root_win}, **(extra or {})))

    def __call__(self, *args, input=None, timeout=120, check=None, env=None):
        proc = run_captured(["wine", str(self.exe), *args], self.env(env), input=input, timeout=timeout)
        if check is not None:
            assert proc.returncode == check, (
                f"fvm {' '.join(args)} exited {proc.returncode}, expected {check}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def popen(self, *args, env=None):
        return Background(["wine", str(self.exe), *args], self.env(env))

    def box_dir(self, name):
        return self.root / "boxes" / name

    def wait_until(self, predicate, timeout=20, interval=0.1):
        end = time.time() + timeout
        while time.time() < end:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        return predicate()


def run_unboxed(*args, timeout=60, input=None):
    return run_captured(["wine", *map(str, args)], wine_env(), input=input, timeout=timeout)


@pytest.fixture(scope="session", autouse=True)
def wineserver():
    """One persistent wineserver for the session (process starts stay warm);
    at the end every Wine process of the prefix is ended."""
    if not (BUILD / "fvm.exe").exists():
        pytest.exit("build/win/fvm.exe is missing: run make first", returncode=2)
    server = subprocess.Popen(["wineserver", "-p", "-f"], env=wine_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_server_socket(server)
    yield
    subprocess.run(["wineserver", "-k"], env=wine_env())
    server.wait(timeout=30)


def wait_for_server_socket(server, timeout=15):
    """Until the server just started listens (its working directory is
    Wine's server-DEV-INODE directory, with its socket), or has ended (one
    was running already). A Wine program started before that, on a prefix
    copy no server ran on yet, failed now and then with "wine: chdir to
    /tmp/wine-XXXXXX/server-DEV-INODE : No such file or directory" (a
    worker's first test, in a fresh-clone CI of session 19)."""
    st = os.stat(wine_env()["WINEPREFIX"])
    want = f"server-{st.st_dev:x}-{st.st_ino:x}"
    end = time.time() + timeout
    while time.time() < end and server.poll() is None:
        try:
            cwd = os.readlink(f"/proc/{server.pid}/cwd")
            if os.path.basename(cwd) == want and os.path.exists(os.path.join(cwd, "socket")):
                return
        except OSError:
            pass
        time.sleep(0.02)


@pytest.fixture(scope="session")
def fvm_root():
    root_win = "C:\\fvmtest\\" + uuid.uuid4().hex[:12]
    root = linux_path_of_c(root_win)
    yield root_win
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fvm(fvm_root):
    return Fvm(fvm_root)


@pytest.fixture
def box(fvm, request):
    """A fresh box as `fvm create` makes it (since session 18, on a Wine
    server of its own); removed (forcibly) afterwards."""
    name = "t" + uuid.uuid4().hex[:10]
    fvm("create", name, check=0)
    yield name
    fvm("rm", "--force", name)


@pytest.fixture
def host_box(fvm, request):
    """A fresh box on the host's Wine server (--host-server, the default
    before session 18), for what only that mode has: host and box handles,
    windows, keys and objects in one server (docs/design.md, "A box's own
    Wine server"), and for the escapes that mode does not hold (the strict
    xfails of test_floor.py). Removed afterwards."""
    name = "h" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-server", check=0)
    yield name
    fvm("rm", "--force", name)


def own_server(fvm, name):
    """Whether the box has a Wine server of its own (box.ini server=own)."""
    ini = fvm.box_dir(name) / "box.ini"
    return ini.exists() and any(line.strip().lower() == "server=own" for line in ini.read_text().splitlines())


@pytest.fixture(scope="session")
def apps():
    return BUILD / "apps"


@pytest.fixture(scope="session")
def xvfb(wineserver):
    """An X server for tests that need windows; its DISPLAY value.

    Xvfb picks a free display itself (-displayfd). Every Wine process started
    after this fixture sees DISPLAY (it is put in os.environ, which wine_env
    copies). Wine's desktop process (explorer.exe /desktop) is started by the
    first process that needs a window and keeps the display it was started
    with; one started without DISPLAY makes every later CreateWindowEx fail.
    The session's wineserver may already have one, so the fixture ends the
    prefix's Wine processes and starts a fresh persistent wineserver, then
    checks that a window can really be created."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b""
    end = time.time() + 15
    while time.time() < end and not number.endswith(b"\n"):
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    if proc.poll() is not None or not number.strip().isdigit():
        proc.kill()
        pytest.fail("Xvfb did not start")
    display = ":" + number.strip().decode()
    saved = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    subprocess.run(["wineserver", "-k"], env=wine_env())
    subprocess.run(["wineserver", "-w"], env=wine_env(), timeout=60)
    server = subprocess.Popen(["wineserver", "-p", "-f"], env=wine_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = run_unboxed(BUILD / "apps" / "wintool.exe", "window", "FvmXvfbProbe", "probe", "--timeout", "0")
    if probe.returncode != 0:
        pytest.fail(f"no window can be created on {display}: {probe.stdout}{probe.stderr}")
    yield display
    subprocess.run(["wineserver", "-k"], env=wine_env())
    server.wait(timeout=30)
    if saved is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = saved
    proc.terminate()
    proc.wait(timeout=10)
