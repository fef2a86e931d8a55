"""Differential conformance (issue 18): a boxed program must not be able to
tell it is boxed. tests/apps/conform.c runs the same checks of file,
directory, registry and object-manager semantics once in a box and once on
the host; every output line starts with a check id and holds only what must
be equal on both sides. The box run goes first, so both start from the same
host state (the box's changes never reach the host, which is checked too).

KNOWN lists the checks that still differ, each with its reason: the test
fails on any other difference, and also when a known one stops differing (so
the list only shrinks, and says exactly what is left of issue 18)."""
import hashlib
import re
import shutil
import uuid

import pytest

from conftest import BUILD, linux_path_of_c, own_server, run_unboxed, win_path

CONFORM = BUILD / "apps" / "conform.exe"
CONFORM_WIN = win_path(CONFORM)
LINE = re.compile(r"^([FKOR]\d+) ")

# check id -> why it still differs (open items of issue 18).
KNOWN = {
    "files": {},
    "keys": {},
    "objects": {},
    "robust": {},
}

# ...and in a box with a Wine server of its own (docs/design.md).
KNOWN_OWN_SERVER = {
    "files": {"F51": "the broker's sharing probe opens the host file for writing, which the box's domain refuses"},
}


def checks(output):
    """{id: the line's text}, ignoring Wine's own noise."""
    found = {}
    for line in output.splitlines():
        m = LINE.match(line)
        if m:
            found[m.group(1)] = found.get(m.group(1), "") + line + "\n"
    return found


def differing(boxed, hosted):
    box, host = checks(boxed), checks(hosted)
    return {k for k in box.keys() | host.keys() if box.get(k) != host.get(k)}, box, host


def report(group, diff, box, host):
    lines = []
    for k in sorted(diff, key=lambda k: (k[0], int(k[1:]))):
        why = KNOWN[group].get(k) or KNOWN_OWN_SERVER.get(group, {}).get(k, "NEW DIFFERENCE")
        lines.append(f"{k} [{why}]\n  box : {box.get(k, '<missing>').strip()}\n  host: {host.get(k, '<missing>').strip()}")
    return "\n".join(lines)


def assert_known(group, boxed, hosted, own=False):
    diff, box, host = differing(boxed, hosted)
    assert box and host, f"no output:\nbox:\n{boxed}\nhost:\n{hosted}"
    known = set(KNOWN[group]) | (set(KNOWN_OWN_SERVER.get(group, {})) if own else set())
    assert diff == known, (
        f"new differences: {sorted(diff - known)}; fixed (remove from KNOWN): {sorted(known - diff)}\n"
        + report(group, diff | known, box, host))


def tree_hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_files_box_and_host_agree(fvm, box):
    tag = "fvmconf" + uuid.uuid4().hex[:8]
    where = "C:\\" + tag
    run_unboxed(CONFORM, "seed", "files", where)
    host_dir = linux_path_of_c(where)
    before = tree_hashes(host_dir)
    try:
        boxed = fvm("run", "--box", box, str(CONFORM), "files", where, check=0).stdout
        assert tree_hashes(host_dir) == before, "the box run changed the host fixture"
        hosted = run_unboxed(CONFORM, "files", where).stdout
        assert_known("files", boxed, hosted, own_server(fvm, box))
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


def export_key(key):
    name = f"C:\\fvm-conf-{uuid.uuid4().hex[:8]}.reg"
    run_unboxed("reg", "export", key, name, "/y")
    path = linux_path_of_c(name)
    data = path.read_bytes() if path.exists() else b""
    path.unlink(missing_ok=True)
    return data


def test_keys_box_and_host_agree(fvm, box):
    tag = "FvmConf" + uuid.uuid4().hex[:8]
    key = "HKCU\\Software\\" + tag
    run_unboxed(CONFORM, "seed", "keys", key)
    before = export_key(key)
    try:
        boxed = fvm("run", "--box", box, str(CONFORM), "keys", key, check=0).stdout
        assert export_key(key) == before, "the box run changed the host fixture key"
        hosted = run_unboxed(CONFORM, "keys", key).stdout
        assert_known("keys", boxed, hosted)
    finally:
        run_unboxed("reg", "delete", key, "/f")


def test_objects_box_and_host_agree(fvm, box):
    tag = "FvmConf" + uuid.uuid4().hex[:8]
    boxed = fvm("run", "--box", box, str(CONFORM), "objects", tag, check=0).stdout
    hosted = run_unboxed(CONFORM, "objects", tag).stdout
    assert_known("objects", boxed, hosted)


def test_hooks_do_not_trust_caller_memory(fvm, box):
    """Bad pointers (NULL or unmapped buffers, names, attributes) get the
    status the system call gives, never a crash of the boxed process. Each
    case runs in its own process (one cmd chain per side), so a crash ends
    only that case and leaves no line for it."""
    count = int(run_unboxed(CONFORM, "robust", "count").stdout.split()[0])
    chain = " & ".join(f'"{CONFORM_WIN}" robust {i}' for i in range(count))
    boxed = fvm("run", "--box", box, "cmd", "/c", chain, check=None).stdout
    hosted = run_unboxed("cmd", "/c", chain).stdout

    def by_case(out):
        lines = {}
        for line in out.splitlines():
            m = re.match(r"^R case (\d+): ", line)
            if m:
                lines[f"R{m.group(1)}"] = line
        return "".join(f"{k} {lines.get(k, 'crashed')}\n" for k in (f"R{i}" for i in range(count)))
    assert_known("robust", by_case(boxed), by_case(hosted))
