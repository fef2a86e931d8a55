"""Folder change notifications in a box (issue 18, F128/F129): a boxed
program watching a host folder (ReadDirectoryChangesW through filetool.exe
watch) sees the changes host programs make there while it watches, as a
watcher on the host sees them, except for names the box has its own copy
of (the box's view of those does not change). The delivery paths (event,
APC, completion port, a buffer too small, cancelling, closing, a
synchronous handle) are compared with the host's in test_conformance.py
(F151-F159)."""
import shutil
import uuid

from conftest import DRIVE_C, Background, run_unboxed, win_path, wine_env


def records(output):
    return {line for line in output.splitlines() if line[:1].isdigit()}


def watch_host_changes(fvm, tool, folder, boxed, box=None):
    argv = [tool, "watch", folder, "3000"]
    watcher = fvm.popen("run", "--box", box, *argv) if boxed else Background(["wine", *argv], wine_env())
    assert fvm.wait_until(lambda: "OK watching" in watcher.output(), timeout=60), watcher.output()
    run_unboxed(tool, "append", folder + "\\host.txt", "more")
    run_unboxed(tool, "write", folder + "\\fresh.txt", "new")
    run_unboxed(tool, "append", folder + "\\mine.txt", "host's")
    watcher.wait(timeout=60)
    out = watcher.output()
    assert "OK end" in out, out
    return records(out)


def test_a_boxed_watch_sees_host_programs_changes(fvm, box, apps):
    tool = win_path(apps / "filetool.exe")
    name = "fvmwatch" + uuid.uuid4().hex[:8]
    root = DRIVE_C / name
    folder = "C:\\" + name
    try:
        for run in ("box", "host"):
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            (root / "host.txt").write_text("host")
            (root / "mine.txt").write_text("host")
            if run == "box":
                # The box has its own copy of mine.txt: a host change to it is not in the box's view.
                fvm("run", "--box", box, tool, "append", folder + "\\mine.txt", "box's", check=0)
                seen_in_box = watch_host_changes(fvm, tool, folder, True, box)
            else:
                seen_on_host = watch_host_changes(fvm, tool, folder, False)
        assert "3 host.txt" in seen_on_host and "1 fresh.txt" in seen_on_host, seen_on_host
        assert "3 mine.txt" in seen_on_host, seen_on_host
        assert seen_in_box == seen_on_host - {"3 mine.txt"}, (seen_in_box, seen_on_host)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def watch_own_change(fvm, tool, folder, op, box=None):
    """Records a watcher of folder gets while a program of the same side
    (boxed or not) changes the host file h.txt there (op: append or write)."""
    argv = [tool, "watch", folder, "3000"]
    change = [tool, op, folder + "\\h.txt", "x"]
    if box:
        watcher = fvm.popen("run", "--box", box, *argv)
    else:
        watcher = Background(["wine", *argv], wine_env())
    assert fvm.wait_until(lambda: "OK watching" in watcher.output(), timeout=60), watcher.output()
    if box:
        fvm("run", "--box", box, *change, check=0)
    else:
        run_unboxed(*change)
    watcher.wait(timeout=60)
    out = watcher.output()
    assert "OK end" in out, out
    return [line for line in out.splitlines() if line[:1].isdigit()]


def test_a_boxed_change_to_a_host_file_is_reported_as_on_the_host(fvm, box, apps):
    """The copy-up is not reported (F129): appending reports the file
    modified once, overwriting it as the host reports an overwrite."""
    tool = win_path(apps / "filetool.exe")
    name = "fvmwatch" + uuid.uuid4().hex[:8]
    root = DRIVE_C / name
    folder = "C:\\" + name
    try:
        for op, new_box in (("append", False), ("write", True)):
            seen = {}
            for side in ("box", "host"):
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir()
                (root / "h.txt").write_text("host")
                if side == "box" and new_box:
                    fvm("rm", "--force", box)
                    fvm("create", box, check=0)
                seen[side] = watch_own_change(fvm, tool, folder, op, box if side == "box" else None)
            # Distinct records: when the program's write lands before FVM looks at
            # the copy, the copy-up and the write can both be reported (a known race).
            assert seen["host"] and set(seen["box"]) == set(seen["host"]), (op, seen)
    finally:
        shutil.rmtree(root, ignore_errors=True)
