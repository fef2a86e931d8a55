"""Box registry storage: the live tree HKU\\FVM.<h> while a box runs, its
persistence in <box>\\registry.dat, `fvm diff`'s registry lines, and rm and
discard removing both (src/common/regstore.c, src/broker/registry.c,
src/cli/regdiff.c).

The runtime's registry hooks are not part of these tests: the box's tree is
filled from the host, unboxed, with Wine's reg.exe and with regstoretool.exe
(tests/apps/regstoretool.c: values of any type such as FVM's tombstone type, any
names, and the tree as text), while a boxed probe keeps the broker up."""
import os
import signal
import uuid

import pytest

from conftest import run_unboxed, win_path

# A tombstone: the value was deleted in the box (REG_FVM_DELETED).
TOMBSTONE = "46564d44"


def reg(*args):
    proc = run_unboxed("reg", *args)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


class Registry:
    """The box's tree and file, seen from the host."""

    def __init__(self, fvm, box, apps):
        self.fvm, self.box, self.apps = fvm, box, apps
        out = self.tool("tree", fvm.root_win + "\\boxes\\" + box).stdout.strip()
        assert out.startswith("FVM.") and len(out) == 20, out
        self.name = out                              # FVM.<h>
        self.hku = "HKU\\" + out                     # for reg.exe
        self.nt = "\\REGISTRY\\USER\\" + out         # for regstoretool.exe
        self.file = fvm.box_dir(box) / "registry.dat"

    def tool(self, *args, check=0):
        proc = run_unboxed(self.apps / "regstoretool.exe", *args)
        if check is not None:
            assert proc.returncode == check, (args, proc.stdout, proc.stderr)
        return proc

    def tree_exists(self):
        return self.tool("exists", self.nt, check=None).returncode == 0

    def dump(self):
        return self.tool("dump", self.nt).stdout

    def load(self, tmp_path, text):
        src = tmp_path / "load.txt"
        src.write_bytes(text.encode("utf-8"))
        self.tool("load", self.nt, win_path(src))

    def file_text(self):
        return self.file.read_bytes().decode("utf-8") if self.file.exists() else None


@pytest.fixture
def box(fvm):
    """A box on the host's Wine server, where the box's live tree is in the
    host's HKEY_USERS for these tests to look at (a box with its own server
    keeps it in that server)."""
    name = "r" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-server", check=0)
    yield name
    fvm("rm", "--force", name)


@pytest.fixture
def registry(fvm, box, apps):
    return Registry(fvm, box, apps)


def start(fvm, box, apps):
    """A boxed probe that keeps the box (and its broker) running. (Its line
    of output says it runs: `fvm ps` can miss a process when a box restarts
    at once, the new broker then sharing the old one's job.)"""
    runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "sleep", "60000")
    assert fvm.wait_until(lambda: "probe pid=" in runner.output(), timeout=20), runner.output()
    return runner


def stop(fvm, box, runner, registry):
    fvm("stop", box, check=0)
    runner.wait(timeout=30)
    # the broker saves and deletes the tree as it exits
    assert fvm.wait_until(lambda: not registry.tree_exists(), timeout=20), "the live tree outlived the broker"


def broker_pids(fvm, box):
    """Linux pids of the box's broker (its command line names the box folder)."""
    folder = (fvm.root_win + "\\boxes\\" + box).lower().encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().lower()
        except OSError:
            continue
        if b"fvm-broker.exe" in cmdline and folder in cmdline:
            pids.append(int(entry))
    return pids


def lines_by_key(text):
    """Registry text as {key line: set of its value lines}."""
    keys, current = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            current = keys.setdefault(line, set())
        elif line.startswith('"'):
            current.add(line)
    return keys


def test_a_box_that_never_touches_the_registry_has_no_file(fvm, box, apps, registry):
    assert not registry.tree_exists()
    fvm("run", "--box", box, "cmd", "/c", "exit", "0", check=0)
    assert fvm.wait_until(lambda: not registry.tree_exists(), timeout=20)
    assert not registry.file.exists()


def test_tree_is_saved_while_running_and_at_stop_then_restored(fvm, box, apps, registry, tmp_path):
    runner = start(fvm, box, apps)
    try:
        assert registry.tree_exists(), "the broker creates the live tree at start"
        assert not registry.file.exists(), "an empty tree is not written"
        key = f"{registry.hku}\\MACHINE\\SOFTWARE\\FvmStoreTest"
        reg("add", key, "/v", "Count", "/t", "REG_DWORD", "/d", "42", "/f")
        # saved shortly after the change, while the box still runs
        assert fvm.wait_until(lambda: '"Count"=dword:0000002a' in (registry.file_text() or ""), timeout=10), \
            registry.file_text()
        # every name, type and datum the registry can hold
        text = ("FVM REGISTRY 1\n"
                "[MACHINE\\\\SOFTWARE\\\\FvmStoreTest]\n"
                '""=sz:"default"\n'
                '"Quote\\"d\\nname\\0x"=sz:"line1\\nline2 \\"q\\" \\\\ \\u0001"\n'
                '"Bin"=hex(3):00ff10\n'
                '"Odd"=hex(1):410042\n'
                '"Multi"=multi_sz:"a\\0b\\0"\n'
                '"Exp"=expand_sz:"%PATH%;x"\n'
                '"Q"=qword:0000000100000002\n'
                '"Gone"=deleted\n'
                '"Weird type"=hex(1234abcd):0102\n'
                '"Caf\u00e9 \u4e2d"=sz:"\U0001f600"\n'
                "[MACHINE\\\\SOFTWARE\\\\FvmStoreTest\\\\Empty key]\n"
                "[MACHINE\\\\SOFTWARE\\\\FvmStoreTest\\\\Na\\0me]\n"
                '"x"=dword:00000001\n'
                "END\n")
        registry.load(tmp_path, text)
        live = registry.dump()
    finally:
        stop(fvm, box, runner, registry)
    saved = registry.file_text()
    assert saved == live, "registry.dat is the tree as it was at stop"
    expect = lines_by_key(text)
    expect["[MACHINE\\\\SOFTWARE\\\\FvmStoreTest]"].add('"Count"=dword:0000002a')
    expect.update({"[MACHINE]": set(), "[MACHINE\\\\SOFTWARE]": set()})
    assert lines_by_key(saved) == expect
    assert saved.startswith("FVM REGISTRY 1\n") and saved.endswith("END\n")

    runner = start(fvm, box, apps)
    try:
        assert registry.dump() == saved, "the next start loads registry.dat into the tree"
        out = reg("query", f"{registry.hku}\\MACHINE\\SOFTWARE\\FvmStoreTest", "/v", "Count").stdout
        assert "0x2a" in out
    finally:
        stop(fvm, box, runner, registry)
    assert registry.file_text() == saved


def test_diff_lists_registry_changes_after_file_changes(fvm, box, apps, registry):
    host = "FvmDiffHost" + uuid.uuid4().hex[:8]
    new_user_key = "FvmDiffUser" + uuid.uuid4().hex[:8]
    reg("add", f"HKLM\\Software\\{host}", "/v", "Count", "/t", "REG_DWORD", "/d", "1", "/f")
    reg("add", f"HKLM\\Software\\{host}", "/v", "Same", "/t", "REG_SZ", "/d", "s", "/f")
    reg("add", f"HKLM\\Software\\{host}", "/v", "Gone", "/t", "REG_SZ", "/d", "g", "/f")
    reg("add", f"HKLM\\Software\\{host}\\Kept", "/f")
    marker = "C:\\" + host + ".txt"
    try:
        fvm("run", "--box", box, "cmd", "/c", f"echo x>{marker}", check=0)
        runner = start(fvm, box, apps)
        try:
            mine = f"{registry.hku}\\MACHINE\\SOFTWARE\\{host}"
            reg("add", mine, "/v", "Count", "/t", "REG_DWORD", "/d", "2", "/f")          # C
            reg("add", mine, "/v", "Same", "/t", "REG_SZ", "/d", "s", "/f")              # unchanged
            reg("add", mine, "/ve", "/t", "REG_SZ", "/d", "default", "/f")               # A (default value)
            reg("add", f"{mine}\\Kept", "/f")                                            # placeholder
            registry.tool("set", f"{registry.nt}\\MACHINE\\SOFTWARE\\{host}", "Gone", TOMBSTONE)       # D
            registry.tool("set", f"{registry.nt}\\MACHINE\\SOFTWARE\\{host}", "NeverThere", TOMBSTONE)  # nothing
            reg("add", f"{registry.hku}\\USER\\S-1-5-21-0-0-0-1000\\Software\\{new_user_key}\\Sub",
                "/v", "New", "/t", "REG_SZ", "/d", "n", "/f")                            # A key, A key, A value
            # a key holding only a tombstone (Wine's reg.exe gives a new key a default value)
            registry.tool("set", f"{registry.nt}\\USER\\.DEFAULT\\Software\\{new_user_key}", "x", TOMBSTONE)
            live = fvm("diff", box, check=0).stdout.splitlines()
        finally:
            stop(fvm, box, runner, registry)
        stored = fvm("diff", box, check=0).stdout.splitlines()
    finally:
        reg("delete", f"HKLM\\Software\\{host}", "/f")
    hklm = f"HKEY_LOCAL_MACHINE\\SOFTWARE\\{host}\\"
    hkcu = f"HKEY_CURRENT_USER\\Software\\{new_user_key}\\"
    expect_registry = sorted([
        f"A {hkcu}",
        f"A {hkcu}Sub\\",
        f'A {hkcu}Sub\\ value "New"',
        f'A {hklm} value ""',
        f'C {hklm} value "Count"',
        f'D {hklm} value "Gone"',
        f"A HKEY_USERS\\.DEFAULT\\Software\\{new_user_key}\\",
    ], key=lambda line: line[2:].lower())
    file_line = "A " + marker
    assert live[0].lower() == file_line.lower(), live
    assert live[1:] == expect_registry, live
    assert stored == live, "the same from registry.dat once the box stopped"


def test_rm_and_discard_remove_the_tree_and_the_file(fvm, box, apps, registry):
    runner = start(fvm, box, apps)
    reg("add", f"{registry.hku}\\MACHINE\\SOFTWARE\\FvmStoreRm", "/v", "V", "/t", "REG_SZ", "/d", "v", "/f")
    assert fvm.wait_until(lambda: registry.file.exists(), timeout=10)
    # discard of a running box: refused, then forced
    assert fvm("discard", box).returncode == 1
    assert "discarded" in fvm("discard", "--force", box, check=0).stdout
    runner.wait(timeout=30)
    assert not registry.tree_exists() and not registry.file.exists()
    assert fvm("diff", box, check=0).stdout == ""
    assert (fvm.box_dir(box) / "box.ini").exists()

    runner = start(fvm, box, apps)
    reg("add", f"{registry.hku}\\MACHINE\\SOFTWARE\\FvmStoreRm", "/v", "V", "/t", "REG_SZ", "/d", "v", "/f")
    assert fvm.wait_until(lambda: registry.file.exists(), timeout=10)
    fvm("rm", "--force", box, check=0)
    runner.wait(timeout=30)
    assert not registry.tree_exists()
    assert not fvm.box_dir(box).exists()


def test_a_tree_left_by_a_killed_broker_is_kept_by_the_next_start(fvm, box, apps, registry):
    runner = start(fvm, box, apps)
    key = f"{registry.hku}\\MACHINE\\SOFTWARE\\FvmStoreKill"
    reg("add", key, "/v", "Before", "/t", "REG_SZ", "/d", "b", "/f")
    assert fvm.wait_until(lambda: '"Before"' in (registry.file_text() or ""), timeout=10)
    pids = broker_pids(fvm, box)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    runner.wait(timeout=30)          # the job's kill-on-close ends the box's processes
    assert registry.tree_exists(), "the tree outlives a killed broker"
    # a change the dead broker never saved
    reg("add", key, "/v", "After", "/t", "REG_SZ", "/d", "a", "/f")
    assert '"After"' not in registry.file_text()
    # a stopped box: diff reads the tree, which is newer than the file
    assert f'A HKEY_LOCAL_MACHINE\\SOFTWARE\\FvmStoreKill\\ value "After"' in fvm("diff", box, check=0).stdout

    runner = start(fvm, box, apps)
    try:
        assert '"After"=sz:"a"' in registry.dump(), "the next broker kept the tree instead of loading the file"
    finally:
        stop(fvm, box, runner, registry)
    saved = registry.file_text()
    assert '"Before"=sz:"b"' in saved and '"After"=sz:"a"' in saved


def test_a_damaged_registry_file_is_refused_not_overwritten(fvm, box, apps, registry):
    damaged = "FVM REGISTRY 1\n[MACHINE\\\\SOFTWARE\\\\X]\n\"v\"=dword:12\nEND\n"
    registry.file.write_text(damaged)
    proc = fvm("diff", box)
    assert proc.returncode == 1 and "line 3, column 11" in proc.stderr, proc.stderr
    proc = fvm("run", "--box", box, "cmd", "/c", "exit", "0")
    # fvm run reads the file before it starts the broker, and says where it is damaged.
    assert proc.returncode == 1 and "registry" in proc.stderr and "line 3, column 11" in proc.stderr, proc.stderr
    assert registry.file_text() == damaged and not registry.tree_exists()


def test_diff_follows_key_states_of_the_index(fvm, box, apps, registry):
    """Deleted (TOMBSTONE), box-only (CREATED) and re-created (OPAQUE) keys,
    as the registry virtualizer records them in the box index."""
    host = "FvmKeys" + uuid.uuid4().hex[:8]
    base = f"HKLM\\Software\\{host}"
    reg("add", f"{base}\\Del\\Child", "/v", "v", "/t", "REG_SZ", "/d", "1", "/f")
    reg("add", f"{base}\\Opq", "/v", "a", "/t", "REG_SZ", "/d", "1", "/f")
    reg("add", f"{base}\\Opq", "/v", "b", "/t", "REG_SZ", "/d", "2", "/f")
    reg("add", f"{base}\\Opq\\Old", "/f")
    try:
        fvm("run", "--box", box, "cmd", "/c", "exit", "0", check=0)   # the box gets its index
        assert fvm.wait_until(lambda: not registry.tree_exists(), timeout=20)
        nt = f"\\REGISTRY\\MACHINE\\SOFTWARE\\{host}"
        folder = fvm.root_win + "\\boxes\\" + box
        for op, key in (("delete", "Del\\Child"), ("delete", "Del"), ("delete", "Nothing"),
                        ("recreate", "Opq"), ("create", "Made")):
            registry.tool("index", folder, op, f"{nt}\\{key}")
        # the stored tree (the box is stopped): Opq replaces the host key
        # (a kept, c new, b and Old hidden), Made is box-only.
        registry.file.write_text(
            "FVM REGISTRY 1\n"
            f"[MACHINE\\\\SOFTWARE\\\\{host}]\n"
            f"[MACHINE\\\\SOFTWARE\\\\{host}\\\\Opq]\n"
            '"a"=sz:"1"\n"c"=sz:"3"\n'
            f"[MACHINE\\\\SOFTWARE\\\\{host}\\\\Opq\\\\New]\n"
            f"[MACHINE\\\\SOFTWARE\\\\{host}\\\\Made]\n"
            '"x"=dword:00000001\n'
            "END\n")
        out = fvm("diff", box, check=0).stdout.splitlines()
    finally:
        reg("delete", base, "/f")
    k = f"HKEY_LOCAL_MACHINE\\SOFTWARE\\{host}\\"
    assert out == [
        f"D {k}Del\\",
        f"A {k}Made\\",
        f'A {k}Made\\ value "x"',
        f'D {k}Opq\\ value "b"',
        f'A {k}Opq\\ value "c"',
        f"A {k}Opq\\New\\",
        f"D {k}Opq\\Old\\",
    ], out


def test_changes_of_boxed_programs_persist_and_diff(fvm, box, apps, registry):
    """With the registry virtualizer: what reg.exe changes in a box is in
    registry.dat once the box stops, comes back at the next start, and
    `fvm diff` lists it."""
    key = "HKCU\\Software\\FvmStoreRt" + uuid.uuid4().hex[:8]
    reg("add", key, "/v", "Kept", "/d", "host", "/f")
    reg("add", key, "/v", "Other", "/t", "REG_DWORD", "/d", "5", "/f")
    reg("add", key + "\\ChildA", "/v", "A", "/d", "a", "/f")
    try:
        for args in (("add", key, "/v", "New", "/d", "boxed", "/f"),
                     ("add", key, "/v", "Kept", "/d", "changed", "/f"),
                     ("delete", key, "/v", "Other", "/f"),
                     ("delete", key + "\\ChildA", "/f"),
                     ("add", key + "\\Sub\\Deeper", "/v", "d", "/d", "1", "/f")):
            assert fvm("run", "--box", box, "reg", *args).returncode == 0, args
        assert fvm.wait_until(lambda: not registry.tree_exists(), timeout=20)
        saved = registry.file_text()
        assert saved and '"New"=sz:"boxed"' in saved and '"Other"=deleted' in saved
        shown = "HKEY_CURRENT_USER" + key[4:] + "\\"
        expect = [f'C {shown} value "Kept"', f'A {shown} value "New"', f'D {shown} value "Other"',
                  f"D {shown}ChildA\\", f"A {shown}Sub\\", f"A {shown}Sub\\Deeper\\",
                  f'A {shown}Sub\\Deeper\\ value "d"']
        out = fvm("diff", box, check=0).stdout.splitlines()
        assert [line.lower() for line in out] == [line.lower() for line in expect], out
        out = fvm("run", "--box", box, "reg", "query", key, "/s", check=0).stdout
        assert "changed" in out and "boxed" in out and "Deeper" in out and "Other" not in out
        fvm("rm", box, check=0)
        assert not registry.tree_exists() and not fvm.box_dir(box).exists()
    finally:
        reg("delete", key, "/f")
