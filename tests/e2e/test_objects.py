"""Named kernel objects, pipes and mailslots in per-box namespaces, with real
programs (tests/apps/objtool.c) holding objects at the same time on the host
and in boxes: a boxed program cannot open the host's objects nor connect to
its pipes, the host cannot open a box's objects by their plain names, boxes
do not see each other, and two processes of one box share their objects as
on a real machine. [object] policy rules open, hide, deny or make read-only
single names, and name queries report the names the program used."""
import time
import uuid

import pytest

from conftest import Background, run_unboxed, wine_env, win_path

TYPES = ["mutex", "event", "semaphore", "section", "timer", "job", "iocp", "symlink", "dir"]


class Holder:
    """objtool left running until its hold file appears."""

    def __init__(self, argv, hold_file, env):
        self.hold_file = hold_file
        self.bg = Background(argv, env)

    def wait_for(self, text, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            out = self.bg.output()
            if text in out or "ERR" in out or self.bg.poll() is not None:
                return out
            time.sleep(0.05)
        return self.bg.output()

    def release(self):
        self.hold_file.write_text("go")
        try:
            self.bg.wait(timeout=30)
        except Exception:
            self.bg.kill()
            raise


@pytest.fixture
def tool(apps):
    return win_path(apps / "objtool.exe")


@pytest.fixture
def holders(tmp_path):
    made = []

    def start(argv, env, ready):
        hold = tmp_path / ("hold-" + uuid.uuid4().hex[:8])
        h = Holder(argv + [win_path(hold)], hold, env)
        made.append(h)
        out = h.wait_for(ready)
        assert ready in out, f"{out}{h.bg.errors()} (exit {h.bg.poll()})"
        return h

    yield start
    for h in made:
        if not h.hold_file.exists():
            h.release()


def boxed(fvm, box, tool, *args):
    return fvm("run", "--box", box, tool, *args).stdout.strip()


def host(tool_path, *args):
    return run_unboxed(tool_path, *args).stdout.strip()


@pytest.fixture
def two_boxes(fvm):
    names = ["o" + uuid.uuid4().hex[:10] for _ in range(2)]
    for n in names:
        fvm("create", n, check=0)
    yield names
    for n in names:
        fvm("rm", "--force", n)


@pytest.mark.parametrize("kind", TYPES)
def test_each_object_type_is_private_to_its_box(fvm, two_boxes, tool, holders, kind):
    box, other = two_boxes
    name = "Fvm" + kind + uuid.uuid4().hex[:8]
    holders([ "wine", str(fvm.exe), "run", "--box", box, tool, "create", kind, name], fvm.env(), "created")
    assert boxed(fvm, box, tool, "open", kind, name) == "opened"            # same box: shared
    assert boxed(fvm, other, tool, "open", kind, name).startswith("ERR open 2")   # another box: absent
    assert host(tool, "open", kind, name) == "ERR open 2"                   # host: absent
    if kind not in ("iocp", "symlink"):   # Wine has no open-if for these two
        assert boxed(fvm, box, tool, "create", kind, name) == "exists"


def test_boxed_program_cannot_reach_host_event_or_pipe(fvm, box, tool, holders):
    tag = uuid.uuid4().hex[:8]
    holders(["wine", tool, "create", "event", "HostEvt" + tag], wine_env(), "created")
    holders(["wine", tool, "create", "event", "Global\\HostGlobal" + tag], wine_env(), "created")
    holders(["wine", tool, "pipe-server", "hostpipe" + tag], wine_env(), "listening")
    assert host(tool, "open", "event", "HostEvt" + tag) == "opened"          # the host sees them
    assert host(tool, "pipe-client", "hostpipe" + tag, "hi") == "pong:hi"
    assert boxed(fvm, box, tool, "open", "event", "HostEvt" + tag) == "ERR open 2"
    assert boxed(fvm, box, tool, "open", "event", "Global\\HostGlobal" + tag) == "ERR open 2"
    assert boxed(fvm, box, tool, "signal", "HostEvt" + tag) == "ERR OpenEvent 2"
    assert boxed(fvm, box, tool, "pipe-client", "hostpipe" + tag, "hi") == "ERR CreateFile 2"
    assert boxed(fvm, box, tool, "pipe-wait", "hostpipe" + tag, "200") == "ERR WaitNamedPipe 2"
    assert boxed(fvm, box, tool, "pipe-call", "hostpipe" + tag, "hi") == "ERR CallNamedPipe 2"
    # FVM's own objects (of any box) are refused, not just absent.
    assert boxed(fvm, box, tool, "open", "mutex", "Global\\FVM.0123456789abcdef.index") == "ERR open 5"


def test_local_global_and_pipes_inside_one_box(fvm, box, tool, holders):
    tag = uuid.uuid4().hex[:8]
    run = ["wine", str(fvm.exe), "run", "--box", box, tool]
    holders(run + ["create", "mutex", "Global\\G" + tag], fvm.env(), "created")
    holders(run + ["pipe-server", "bp" + tag], fvm.env(), "listening")
    holders(run + ["mailslot-server", "ms" + tag], fvm.env(), "listening")
    assert boxed(fvm, box, tool, "open", "mutex", "Global\\G" + tag) == "opened"
    assert boxed(fvm, box, tool, "open", "mutex", "G" + tag) == "ERR open 2"          # Local is another name
    assert boxed(fvm, box, tool, "open", "mutex", "Local\\G" + tag) == "ERR open 2"
    assert host(tool, "open", "mutex", "Global\\G" + tag) == "ERR open 2"
    assert boxed(fvm, box, tool, "pipe-client", "bp" + tag, "a") == "pong:a"
    assert boxed(fvm, box, tool, "pipe-wait", "bp" + tag, "2000") == "available"
    assert boxed(fvm, box, tool, "pipe-call", "bp" + tag, "b") == "pong:b"
    assert host(tool, "pipe-client", "bp" + tag, "a") == "ERR CreateFile 2"
    assert host(tool, "pipe-wait", "bp" + tag, "200") == "ERR WaitNamedPipe 2"
    assert boxed(fvm, box, tool, "mailslot-send", "ms" + tag, "hello") == "sent"
    assert host(tool, "mailslot-send", "ms" + tag, "hello") == "ERR CreateFile 2"


def test_single_instance_app_on_host_and_in_five_boxes(fvm, tool, holders):
    """The same-named mutex and pipe server held at once by the host and
    five boxes; a second copy is refused in its own box and on the host."""
    name = "Single" + uuid.uuid4().hex[:8]
    boxes = ["s" + uuid.uuid4().hex[:10] for _ in range(5)]
    try:
        for b in boxes:
            fvm("create", b, check=0)
        holders(["wine", tool, "single", name], wine_env(), "first")
        for b in boxes:
            holders(["wine", str(fvm.exe), "run", "--box", b, tool, "single", name], fvm.env(), "first")
        second = fvm("run", "--box", boxes[2], tool, "single", name, "Z:\\nonexistent-hold")
        assert second.returncode == 3 and second.stdout.strip() == "second mutex=1 pipe=1", second.stdout
        second = run_unboxed(tool, "single", name, "Z:\\nonexistent-hold")
        assert second.returncode == 3 and second.stdout.strip() == "second mutex=1 pipe=1", second.stdout
        # Each copy's pipe answers within its own box.
        assert boxed(fvm, boxes[4], tool, "pipe-client", name, "x") == "pong:x"
        assert host(tool, "pipe-client", name, "y") == "pong:y"
    finally:
        for b in boxes:
            fvm("rm", "--force", b)


POLICY = """
[object]
open Global\\Open{t}
read Global\\Read{t}
read Global\\Read{t}s
read Global\\ReadNone{t}
hide Hidden{t}
deny audit Denied{t}
open pipe:openpipe{t}
open \\BaseNamedObjects
"""


def test_object_policy_rules(fvm, tmp_path, tool, holders):
    t = uuid.uuid4().hex[:8]
    policy = tmp_path / "policy.ini"
    policy.write_text(POLICY.format(t=t))
    b = "q" + uuid.uuid4().hex[:10]
    # open reaches the host's objects: on the host's Wine server only.
    fvm("create", b, "--policy", win_path(policy), "--host-server", check=0)
    try:
        holders(["wine", tool, "create", "event", "Global\\Open" + t], wine_env(), "created")
        holders(["wine", tool, "create", "event", "Global\\Read" + t], wine_env(), "created")
        holders(["wine", tool, "pipe-server", "openpipe" + t], wine_env(), "listening")
        holders(["wine", tool, "create", "section", "Global\\Read" + t + "s"], wine_env(), "created")
        assert boxed(fvm, b, tool, "signal", "Global\\Open" + t) == "signalled"       # open: the host's
        assert boxed(fvm, b, tool, "open", "event", "Global\\Read" + t) == "opened"   # read: opens...
        assert boxed(fvm, b, tool, "signal", "Global\\Read" + t) == "ERR SetEvent 5"  # ...cannot change
        assert boxed(fvm, b, tool, "create", "event", "Global\\Read" + t) == "exists"
        assert host(tool, "mapwrite", "Global\\Read" + t + "s") == "mapped"
        assert boxed(fvm, b, tool, "open", "section", "Global\\Read" + t + "s") == "opened"  # a read view
        assert boxed(fvm, b, tool, "mapwrite", "Global\\Read" + t + "s") == "ERR MapViewOfFile 5"
        assert boxed(fvm, b, tool, "create", "mutex", "Global\\ReadNone" + t) == "ERR create 5"   # no host one
        assert boxed(fvm, b, tool, "create", "mutex", "Hidden" + t) == "ERR create 2"
        assert boxed(fvm, b, tool, "create", "mutex", "Denied" + t) == "ERR create 5"
        assert boxed(fvm, b, tool, "open", "mutex", "Local\\Denied" + t) == "ERR open 5"
        assert boxed(fvm, b, tool, "pipe-client", "openpipe" + t, "p") == "pong:p"
        # Only the named ones: a name next to them stays private.
        assert boxed(fvm, b, tool, "open", "event", "Global\\Open" + t + "x") == "ERR open 2"
        # The host's \BaseNamedObjects, opened by the rule: FVM's own entries
        # (boxes' directories, the brokers' objects) are not listed.
        listing = boxed(fvm, b, tool, "list", "\\BaseNamedObjects").splitlines()
        assert "entry: Global SymbolicLink" in listing, listing
        assert not any("FVM." in line for line in listing), listing
        # The host sees them while the box runs: a boxed holder keeps its broker
        # up (a broker ends with its box's last process).
        holders(["wine", str(fvm.exe), "run", "--box", b, tool, "create", "event", "Keep" + t], fvm.env(),
                "created")
        assert any("FVM." in line for line in host(tool, "list", "\\BaseNamedObjects").splitlines())
        # The broker writes the records after the program has gone: wait for them.
        logfile = fvm.box_dir(b) / "audit.jsonl"
        assert fvm.wait_until(lambda: logfile.exists() and "Denied" + t in logfile.read_text(), timeout=20)
        log = logfile.read_text()
        assert "Denied" + t in log and '"deny"' in log
    finally:
        fvm("rm", "--force", b)


def test_name_queries_and_listings_do_not_leak_the_box(fvm, box, tool, holders):
    t = uuid.uuid4().hex[:8]
    assert boxed(fvm, box, tool, "name", "mutex", "N" + t) == f"name: \\Sessions\\1\\BaseNamedObjects\\N{t}"
    assert boxed(fvm, box, tool, "name", "event", "Global\\N" + t) == f"name: \\BaseNamedObjects\\N{t}"
    assert boxed(fvm, box, tool, "name", "section", "Local\\N" + t) == f"name: \\Sessions\\1\\BaseNamedObjects\\N{t}"
    assert boxed(fvm, box, tool, "name", "mutex", "Session\\1\\S" + t) == f"name: \\Sessions\\1\\BaseNamedObjects\\S{t}"
    assert boxed(fvm, box, tool, "name", "dir", "D" + t) == f"name: \\Sessions\\1\\BaseNamedObjects\\D{t}"
    names = boxed(fvm, box, tool, "pipe-names", "np" + t).splitlines()
    assert names == [f"name: \\Device\\NamedPipe\\np{t}", f"file: \\np{t}"], names
    holders(["wine", str(fvm.exe), "run", "--box", box, tool, "create", "mutex", "L" + t], fvm.env(), "created")
    listing = boxed(fvm, box, tool, "list", "\\Sessions\\1\\BaseNamedObjects").splitlines()
    assert f"entry: L{t} Mutant" in listing
    assert not any("FVM." in line for line in listing), listing
    listing = boxed(fvm, box, tool, "list", "\\BaseNamedObjects").splitlines()
    assert not any("FVM." in line for line in listing), listing
