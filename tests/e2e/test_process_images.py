"""The image a boxed process starts from (issues 17.1, 20.1, 20.3).

A new process's image is opened as the box sees it, by every creation path
(CreateProcess, ShellExecute, cmd, start, fvm run): an exe that exists only
in the box runs, a host exe the box replaced runs in its box version, one the
box deleted is not found, and the program still reports its own name. Only
x64 Windows images start: Wine would run a Linux program (ELF or #! script)
natively, outside every hook, so those are refused before the real call and
audited (hostile tests: the file the Linux program would touch must not
appear); a 32-bit image gets the clear error the README promises."""
import hashlib
import json
import os
import pathlib
import shutil
import stat
import uuid

import pytest

from conftest import DRIVE_C, win_path

TOUCH = "Z:\\usr\\bin\\touch"


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def audit_records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture
def marker(tmp_path):
    """A Linux path a Linux program would create; it must never appear."""
    path = pathlib.Path("/tmp") / ("fvm-image-" + uuid.uuid4().hex[:12])
    yield path
    if path.exists():
        path.unlink()


@pytest.fixture
def host_dir():
    """A host folder on C: (C:\\<name>) for programs the box then changes."""
    name = "fvmimg-" + uuid.uuid4().hex[:10]
    path = DRIVE_C / name
    path.mkdir()
    yield "C:\\" + name, path
    shutil.rmtree(path, ignore_errors=True)


# ---- 17.1: Linux programs never start from a box --------------------------------------

def assert_refused_linux(fvm, box, proc, marker):
    assert not marker.exists(), "the Linux program ran: " + proc.stdout + proc.stderr
    assert "is a Linux program" in proc.stderr, proc.stderr
    # The broker writes audit records as they arrive: wait for it.
    assert fvm.wait_until(lambda: any(r["type"] == "process" and r["op"] == "start-linux" and
                                      r["decision"] == "deny" for r in audit_records(fvm, box)),
                          timeout=10), audit_records(fvm, box)


def test_elf_by_createprocess_is_refused(fvm, box, apps, marker):
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "create", TOUCH, str(marker))
    assert proc.returncode == 200 and "spawn: error=5" in proc.stdout, proc.stdout + proc.stderr
    assert_refused_linux(fvm, box, proc, marker)


def test_elf_by_shellexecute_is_refused(fvm, box, apps, marker):
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "shell", TOUCH, str(marker))
    assert proc.returncode == 200, proc.stdout + proc.stderr
    assert_refused_linux(fvm, box, proc, marker)


def test_start_unix_is_refused(fvm, box, marker):
    # start.exe shows its failure in a message box when it has a display
    # (an earlier test may have set DISPLAY for the session): none here.
    proc = fvm("run", "--box", box, "cmd", "/c", "start", "/wait", "/unix", "/usr/bin/touch", str(marker),
               env={"DISPLAY": ""}, timeout=60)
    assert_refused_linux(fvm, box, proc, marker)


def test_fvm_run_of_an_elf_is_refused(fvm, box, marker):
    proc = fvm("run", "--box", box, "--", TOUCH, str(marker))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot start" in proc.stderr
    assert_refused_linux(fvm, box, proc, marker)


def test_a_unix_script_is_refused(fvm, box, apps, marker, tmp_path):
    script = tmp_path / "touch.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "create", win_path(script))
    assert proc.returncode == 200, proc.stdout + proc.stderr
    assert_refused_linux(fvm, box, proc, marker)


def test_a_32bit_image_gets_a_clear_error(fvm, box, apps, tmp_path):
    """No 32-bit compiler on this machine: the image is spawn.exe with a PE32
    header (i386 machine, 32-bit optional header magic), which is what the
    check reads."""
    data = bytearray((apps / "spawn.exe").read_bytes())
    pe = int.from_bytes(data[0x3c:0x40], "little")
    data[pe + 4:pe + 6] = (0x14c).to_bytes(2, "little")
    data[pe + 24:pe + 26] = (0x10b).to_bytes(2, "little")
    image = tmp_path / "app32.exe"
    image.write_bytes(bytes(data))
    for args in (["run", "--box", box, win_path(image)],
                 ["run", "--box", box, win_path(apps / "spawn.exe"), "create", win_path(image)]):
        proc = fvm(*args)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "is a 32-bit program: only 64-bit (x64) Windows programs run in a box" in proc.stderr, proc.stderr
        assert "error 1359" not in proc.stderr


# ---- 20.1: the image as the box sees it -------------------------------------------------

def test_an_exe_only_in_the_box_runs_by_every_path(fvm, box, apps, host_dir):
    """Installed in the box (copied there by a boxed cmd): runs by full path
    from fvm run, from cmd, via start, CreateProcess and ShellExecute, and
    reports its own name, never the box folder."""
    win_dir, linux_dir = host_dir
    shutil.rmtree(linux_dir)   # the folder too exists only in the box
    exe = win_dir + "\\app.exe"
    fvm("run", "--box", box, "cmd", "/c", f"mkdir {win_dir} && copy {win_path(apps / 'spawn.exe')} {exe}", check=0)
    assert not linux_dir.exists()

    proc = fvm("run", "--box", box, exe, "selfname", check=0)
    for line in ("selfname", "imagepath", "fullname"):
        assert f"{line}: {exe}\n" in proc.stdout, proc.stdout
    proc = fvm("run", "--box", box, "cmd", "/c", exe, "selfname", check=0)
    assert f"selfname: {exe}\n" in proc.stdout, proc.stdout
    spawn = win_path(apps / "spawn.exe")
    proc = fvm("run", "--box", box, spawn, "create", exe, "selfname", check=0)
    assert f"selfname: {exe}\n" in proc.stdout, proc.stdout
    proc = fvm("run", "--box", box, spawn, "shell", exe, "selfname", check=0)
    assert f"selfname: {exe}\n" in proc.stdout, proc.stdout
    assert fvm("run", "--box", box, "cmd", "/c", "start", "/wait", "/b", exe, "exit", "7").returncode == 7
    assert fvm("run", "--box", box, "cmd", "/c", "start", "/wait", exe, "exit", "8").returncode == 8
    assert not linux_dir.exists()


def test_a_host_exe_replaced_in_the_box_runs_the_box_version(fvm, box, apps, host_dir):
    win_dir, linux_dir = host_dir
    shutil.copy(apps / "spawn.exe", linux_dir / "app.exe")
    before = digest(linux_dir / "app.exe")
    exe = win_dir + "\\app.exe"
    fvm("run", "--box", box, "cmd", "/c", f"copy /y {win_path(apps / 'filetool.exe')} {exe}", check=0)
    for args in ([exe], ["cmd", "/c", exe], [win_path(apps / "spawn.exe"), "create", exe]):
        proc = fvm("run", "--box", box, *args)
        assert "ERR usage" in proc.stdout + proc.stderr, (args, proc.stdout, proc.stderr)
    # Unboxed, the host's own program is unchanged and still runs.
    assert digest(linux_dir / "app.exe") == before
    proc = fvm("run", "--box", box, "cmd", "/c", "start", "/wait", exe)
    assert proc.returncode == 1   # filetool's usage exit, not spawn's 2


def test_a_host_exe_deleted_in_the_box_is_not_found(fvm, box, apps, host_dir):
    win_dir, linux_dir = host_dir
    shutil.copy(apps / "spawn.exe", linux_dir / "gone.exe")
    before = digest(linux_dir / "gone.exe")
    exe = win_dir + "\\gone.exe"
    fvm("run", "--box", box, "cmd", "/c", f"del {exe}", check=0)
    proc = fvm("run", "--box", box, exe, "exit", "3")
    assert proc.returncode == 1 and "File not found" in proc.stderr, proc.stdout + proc.stderr
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "create", exe, "exit", "3")
    assert "spawn: error=2" in proc.stdout, proc.stdout + proc.stderr
    proc = fvm("run", "--box", box, "cmd", "/c", exe, "exit", "3")
    assert proc.returncode != 3
    assert digest(linux_dir / "gone.exe") == before


def test_a_child_starts_in_a_folder_that_exists_only_in_the_box(fvm, box, host_dir):
    """The current folder is handed to a new process as the box sees it: a
    box-only folder is found (Wine opens it by name, below the hooks), and
    the child reports its host name and reads relative names there."""
    win_dir, linux_dir = host_dir
    shutil.rmtree(linux_dir)
    proc = fvm("run", "--box", box, "cmd", "/c",
               f"mkdir {win_dir} & cd /d {win_dir} & echo inbox> rel.txt & cmd /c cd & cmd /c type rel.txt")
    assert f"{win_dir}\n" in proc.stdout and "inbox" in proc.stdout, proc.stdout + proc.stderr
    assert "could not open working directory" not in proc.stderr, proc.stderr
    assert not linux_dir.exists()


def test_ps_shows_the_program_name_of_a_box_copy(fvm, box, apps, host_dir):
    win_dir, linux_dir = host_dir
    shutil.rmtree(linux_dir)
    exe = win_dir + "\\app.exe"
    fvm("run", "--box", box, "cmd", "/c", f"mkdir {win_dir} && copy {win_path(apps / 'spawn.exe')} {exe}", check=0)
    runner = fvm.popen("run", "--box", box, exe, "sleep", "8000")
    try:
        listing = fvm.wait_until(lambda: exe in fvm("ps", box).stdout and fvm("ps", box).stdout, timeout=20)
        assert listing, fvm("ps", box).stdout
        assert "boxes" not in listing, listing
    finally:
        runner.wait(timeout=30)


def test_a_batch_file_still_runs(fvm, box, apps, tmp_path):
    """A .bat is no image: the refusal of non-PE files must leave kernelbase's
    own fallback (cmd.exe runs it) working, without a report."""
    script = tmp_path / "five.bat"
    script.write_text("@exit /b 5\r\n")
    proc = fvm("run", "--box", box, win_path(script))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "create", win_path(script))
    assert "spawn: exit=5" in proc.stdout, proc.stdout + proc.stderr
    assert "it was not started" not in proc.stderr
