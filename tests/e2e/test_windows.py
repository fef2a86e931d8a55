"""Window classes, windows and global atoms in per-box namespaces, with real
windows on an Xvfb display (the xvfb fixture).

single.exe is a single-instance program (a named mutex, a named pipe server
and FindWindow of its own class); wintool.exe makes the individual window
and atom calls. Each test uses names of its own (a uuid part), so windows
and atoms other tests left behind cannot answer for it. Assertions are on
what the programs observe: exit codes and the names they print."""
import json
import time
import uuid

import pytest

from conftest import Background, run_unboxed, wine_env, win_path


def uid():
    return uuid.uuid4().hex[:8]


@pytest.fixture
def boxes(fvm):
    """A factory of fresh boxes, all removed afterwards."""
    made = []

    def make(policy_text=None, tmp=None):
        name = "w" + uid()
        # On the host's Wine server, which holds host and box windows alike
        # (a box with its own server has none of the host's).
        args = ["create", name, "--host-server"]
        if policy_text is not None:
            path = tmp / (name + ".ini")
            path.write_text(policy_text)
            args += ["--policy", win_path(path)]
        fvm(*args, check=0)
        made.append(name)
        return name

    yield make
    for name in made:
        fvm("rm", "--force", name)


class Running:
    """Programs left running until a stop file appears; stopped at the end."""

    def __init__(self, tmp_path):
        self.stop = tmp_path / ("stop-" + uid())
        self.procs = []

    def until(self):
        return ["--until", win_path(self.stop.parent) + "\\" + self.stop.name]

    def start(self, argv, env):
        proc = Background(argv, env)
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if "ready" in proc.output():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"program not ready (exit {proc.poll()}): {proc.output()!r}")

    def finish(self):
        self.stop.write_text("")
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=60))
            except Exception:
                proc.kill()
                codes.append(None)
        return codes


@pytest.fixture
def running(tmp_path):
    r = Running(tmp_path)
    yield r
    if not r.stop.exists():
        r.finish()


def boxed(fvm, box, exe, *args):
    return ["wine", str(fvm.exe), "run", "--box", box, "--", str(exe), *args]


def host(exe, *args):
    return ["wine", str(exe), *args]


def host_window(running, apps, cls, title):
    proc = running.start(host(apps / "wintool.exe", "window", cls, title, *running.until()), wine_env())
    running.wait_ready(proc)
    return proc


def box_window(running, fvm, box, apps, cls, title):
    proc = running.start(boxed(fvm, box, apps / "wintool.exe", "window", cls, title, *running.until()), fvm.env())
    running.wait_ready(proc)
    return proc


def test_single_instance_once_on_the_host_and_once_in_each_of_five_boxes(fvm, boxes, apps, xvfb, running):
    """The window check of single.exe: the host and five boxes each run one
    copy at the same time; a second copy in the same box, and on the host,
    is refused as on a real machine."""
    name = "s" + uid()
    args = ["--checks=window", "--name", name]
    five = [boxes() for _ in range(5)]
    first = [running.start(host(apps / "single.exe", *args, *running.until()), wine_env())]
    first += [running.start(boxed(fvm, b, apps / "single.exe", *args, *running.until()), fvm.env()) for b in five]
    for proc in first:
        running.wait_ready(proc)
    for b in five:
        second = fvm("run", "--box", b, "--", str(apps / "single.exe"), *args)
        assert second.returncode == 22, second.stdout + second.stderr
        assert "running copy found by window" in second.stdout
    second = run_unboxed(apps / "single.exe", *args)
    assert second.returncode == 22, second.stdout
    assert running.finish() == [0] * 6


def test_single_instance_all_three_checks_once_on_the_host_and_in_each_of_five_boxes(fvm, boxes, apps, xvfb,
                                                                                     running):
    """single.exe as real programs combine the checks: mutex, pipe, window."""
    name = "s" + uid()
    args = ["--name", name]
    five = [boxes() for _ in range(5)]
    first = [running.start(host(apps / "single.exe", *args, *running.until()), wine_env())]
    first += [running.start(boxed(fvm, b, apps / "single.exe", *args, *running.until()), fvm.env()) for b in five]
    for proc in first:
        running.wait_ready(proc)
    for b in five:
        second = fvm("run", "--box", b, "--", str(apps / "single.exe"), *args)
        assert second.returncode == 20, second.stdout + second.stderr   # the mutex is checked first
    assert run_unboxed(apps / "single.exe", *args).returncode == 20
    assert running.finish() == [0] * 6


def test_a_boxed_program_cannot_find_a_host_window(fvm, boxes, apps, xvfb, running):
    cls, title = "FvmHost" + uid(), "Host window " + uid()
    host_window(running, apps, cls, title)
    box = boxes()
    # The host itself finds it (the window really exists)...
    assert run_unboxed(apps / "wintool.exe", "find", cls).stdout.strip() == "found " + cls
    assert run_unboxed(apps / "wintool.exe", "find", "-", title).returncode == 0
    # ...the box does not: by class, by title, or by walking the windows.
    for args in (["find", cls], ["find", "-", title], ["find", cls, title], ["enum", cls], ["enum", title],
                 ["walk", title]):
        proc = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
    # The tray stays reachable: default.ini opens class:Shell_TrayWnd.
    tray = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), "find", "Shell_TrayWnd")
    assert tray.stdout.strip() == "found Shell_TrayWnd", tray.stdout + tray.stderr


def test_a_host_program_cannot_find_a_boxed_window_by_class(fvm, boxes, apps, xvfb, running):
    cls, title = "FvmBoxed" + uid(), "Boxed window " + uid()
    box = boxes()
    box_window(running, fvm, box, apps, cls, title)
    assert run_unboxed(apps / "wintool.exe", "find", cls).returncode == 1
    # Another process of the same box finds it, under the name it was registered with.
    proc = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), "find", cls)
    assert proc.stdout.strip() == "found " + cls, proc.stdout + proc.stderr
    for walk in ("enum", "walk"):
        proc = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), walk, title)
        assert proc.returncode == 0 and f"match {cls}|{title}" in proc.stdout, proc.stdout
    # On the host the window exists under the box's identity of the class.
    listing = run_unboxed(apps / "wintool.exe", "enum", title)
    assert listing.returncode == 0
    line = [l for l in listing.stdout.splitlines() if l.startswith("match ")][0]
    assert line.startswith("match FVM.") and line.endswith(f":{cls}|{title}"), line


def test_a_system_class_window_is_found_by_another_process_of_its_box(fvm, boxes, apps, xvfb, running):
    """A window of a system class (Static) carries no box prefix: it is the
    box's because its process is in the box's job. The process that looks
    for it has started no child, so it opens the job only to ask that (the
    runtime's box job helper: it must bypass the runtime's own refusal of FVM
    object names, which gui.c's copy once did not)."""
    title = "Boxed static " + uid()
    box = boxes()
    proc = running.start(boxed(fvm, box, apps / "wintool.exe", "syswindow", "Static", title, *running.until()),
                         fvm.env())
    running.wait_ready(proc)
    for args in (["find", "-", title], ["find", "Static", title], ["enum", title]):
        found = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), *args)
        assert found.returncode == 0, (args, found.stdout, found.stderr)
    # Another box does not see it.
    other = fvm("run", "--box", boxes(), "--", str(apps / "wintool.exe"), "find", "-", title)
    assert other.returncode == 1, other.stdout


def test_notepad_on_the_host_and_in_a_box(fvm, boxes, apps, xvfb):
    """A real program: notepad registers class "Notepad". One copy runs on
    the host and one in a box; each side finds only its own by class."""
    box = boxes()
    host_np = Background(["wine", "notepad.exe"], wine_env())
    box_np = fvm.popen("run", "--box", box, "--", "notepad.exe")
    try:
        def both_up():
            listing = run_unboxed(apps / "wintool.exe", "enum", "Untitled - Notepad").stdout
            return listing.count("match ") == 2
        assert fvm.wait_until(both_up, timeout=60), run_unboxed(apps / "wintool.exe", "enum", "Notepad").stdout
        inside = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), "enum", "Notepad")
        assert inside.stdout.count("match ") == 1 and "match Notepad|Untitled - Notepad" in inside.stdout, inside.stdout
        outside = run_unboxed(apps / "wintool.exe", "enum", "Untitled - Notepad").stdout
        assert "match Notepad|Untitled - Notepad" in outside                  # the host's
        assert ":Notepad|Untitled - Notepad" in outside                       # the box's, under its identity
    finally:
        fvm("stop", box)
        run_unboxed(apps / "wintool.exe", "close", "Notepad")
        for proc in (host_np, box_np):
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()


def test_two_boxes_do_not_see_each_others_windows(fvm, boxes, apps, xvfb, running):
    cls, title = "FvmPeer" + uid(), "Peer window " + uid()
    a, b = boxes(), boxes()
    box_window(running, fvm, a, apps, cls, title)
    for args in (["find", cls], ["find", "-", title], ["enum", title]):
        proc = fvm("run", "--box", b, "--", str(apps / "wintool.exe"), *args)
        assert proc.returncode == 1, (args, proc.stdout)
    # Box b can use the same class name for a window of its own.
    box_window(running, fvm, b, apps, cls, title)
    for box in (a, b):
        proc = fvm("run", "--box", box, "--", str(apps / "wintool.exe"), "enum", title)
        assert proc.stdout.count("match ") == 1, proc.stdout


def test_class_names_read_back_without_the_box_identity(fvm, boxes, apps, xvfb):
    cls = "FvmInfo" + uid()
    proc = fvm("run", "--box", boxes(), "--", str(apps / "wintool.exe"), "classinfo", cls)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert out["user32-at-start"] == "0"     # the hooks came with the DLL notification
    assert out["getclassname"] == cls
    assert out["realgetwindowclass"] == cls
    assert out["atomname"] == cls
    assert out["getclassinfo"].split(" ", 1)[1] == cls
    assert out["findwindow"] == "1"
    assert out["unregister"] == "1"
    assert out["getclassinfo-after"] == "0"


def test_policy_opens_hides_and_denies_classes(fvm, boxes, apps, xvfb, running, tmp_path):
    opened, hidden, denied, plain = ("FvmOpen" + uid(), "FvmHidden" + uid(), "FvmDenied" + uid(),
                                     "FvmPlain" + uid())
    for cls in (opened, hidden, plain):
        host_window(running, apps, cls, cls + " title")
    box = boxes(f"template default\n[object]\nopen class:{opened}\nhide class:{hidden}\ndeny audit class:{denied}\n",
                tmp_path)

    def run(*args):
        return fvm("run", "--box", box, "--", str(apps / "wintool.exe"), *args)

    assert run("find", opened).stdout.strip() == "found " + opened
    assert run("enum", opened + " title").returncode == 0
    assert run("find", hidden).returncode == 1
    assert run("window", hidden, "x", "--timeout", "0").returncode == 3     # nor can the box make one
    assert run("find", plain).returncode == 1
    assert run("enum", plain + " title").returncode == 1
    refused = run("window", denied, "x", "--timeout", "0")
    assert refused.returncode == 3 and "cannot register the class (error 5)" in refused.stdout, refused.stdout
    log = fvm.box_dir(box) / "audit.jsonl"

    def denial_recorded():
        # The broker writes the record after the program has gone: wait for it.
        records = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        return any(r["type"] == "object" and r["op"] == "create" and r["name"] == "class:" + denied
                   and r["decision"] == "deny" for r in records)
    assert fvm.wait_until(denial_recorded, timeout=20), log.read_text() if log.exists() else "no audit.jsonl"


def test_global_atoms_are_per_box(fvm, boxes, apps, xvfb):
    host_atom, box_atom = "FvmHostAtom" + uid(), "FvmBoxAtom" + uid()
    a, b = boxes(), boxes()

    def tool(box, *args):
        if box is None:
            return run_unboxed(apps / "wintool.exe", *args)
        return fvm("run", "--box", box, "--", str(apps / "wintool.exe"), *args)

    try:
        assert tool(None, "atom", "add", host_atom).returncode == 0
        assert tool(None, "atom", "find", host_atom).returncode == 0
        assert tool(a, "atom", "find", host_atom).returncode == 1
        added = tool(a, "atom", "add", box_atom)
        assert added.returncode == 0 and added.stdout.strip().endswith("name " + box_atom), added.stdout
        assert tool(a, "atom", "find", box_atom).returncode == 0      # another process of the box
        assert tool(None, "atom", "find", box_atom).returncode == 1
        assert tool(b, "atom", "find", box_atom).returncode == 1
        # Integer atoms have no name to rename.
        assert tool(a, "atom", "add", "#4321").stdout.strip() == "atom 0x10e1 name #4321"
    finally:
        tool(None, "atom", "delete", host_atom)
        tool(a, "atom", "delete", box_atom)
