"""Install in a box, then use it (issue 20): a real NSIS installer (makensis)
and a real MSI package (wixl) are installed in a box; the installed program
runs from the box by full path, from cmd and via `start`, reporting its own
name; the NSIS uninstaller's relaunch chain (it copies itself to %TEMP% and
runs that copy, a program that exists only in the box) removes it again.
After every step the host is compared with its state before: the listing of
all of C: (names and sizes, but the test sessions' FVM roots) and the
registry keys an install writes."""
import hashlib
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

from conftest import DRIVE_C, TOP, run_unboxed, win_path

SOURCES = TOP / "tests" / "installers"


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
    return path


@pytest.fixture(scope="module")
def installers(apps, tmp_path_factory):
    """setup.exe (NSIS) and app.msi, built from tests/installers around spawn.exe."""
    out = tmp_path_factory.mktemp("installers")
    shutil.copy(apps / "spawn.exe", out / "app.exe")
    shutil.copy(SOURCES / "app.nsi", out / "app.nsi")
    shutil.copy(SOURCES / "app.wxs", out / "app.wxs")
    subprocess.run([tool("makensis"), "-V1", "app.nsi"], cwd=out, check=True)
    subprocess.run([tool("wixl"), "-a", "x64", "-o", "app.msi", "app.wxs"], cwd=out, check=True,
                   stderr=subprocess.DEVNULL)
    return out


def reg_export_digest(key):
    name = f"C:\\fvm-export-{uuid.uuid4().hex[:8]}.reg"
    run_unboxed("reg", "export", key, name, "/y")
    path = DRIVE_C / name[3:]
    data = path.read_bytes() if path.exists() else b""
    path.unlink(missing_ok=True)
    return hashlib.sha256(data).hexdigest()


def host_files():
    """Every file and folder of the host's C: (names and sizes), but the FVM
    roots of the test sessions (C:\\fvmtest): Program Files, the Windows
    folder (msiexec's C:\\windows\\Installer cache) and the user's %TEMP%
    (where the NSIS uninstaller copies itself) included."""
    skip = DRIVE_C / "fvmtest"
    out = []
    for root, dirs, names in os.walk(DRIVE_C):
        if pathlib.Path(root) == DRIVE_C and "fvmtest" in dirs:
            dirs.remove("fvmtest")
        for name in dirs + names:
            path = pathlib.Path(root) / name
            try:
                size = path.stat().st_size if path.is_file() else -1
            except OSError:
                size = -2   # a dangling link
            out.append((str(path.relative_to(DRIVE_C)), size))
    assert skip.exists()
    return sorted(out)


def host_state():
    """What an install would change on the host: the file listing of C: and
    the registry keys installers write (uninstall entries, the MSI product
    registration, the programs' own keys)."""
    keys = {key: reg_export_digest(key) for key in (
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Installer",
        "HKLM\\Software\\Classes\\Installer", "HKCU\\Software", "HKLM\\Software\\FvmMsiApp")}
    return host_files(), keys


def assert_host_unchanged(before, step):
    after = host_state()
    if after == before:
        return
    files = sorted(set(before[0]) ^ set(after[0]))
    keys = [k for k in before[1] if before[1][k] != after[1][k]]
    pytest.fail(f"{step} changed the host: files {files[:20]}, keys {keys}")


def box_idle(fvm, box):
    return len(fvm("ps", box).stdout.strip().splitlines()) <= 1


def test_nsis_install_run_and_uninstall_in_a_box(fvm, box, installers):
    before = host_state()
    exe = "C:\\Program Files\\FvmTestApp\\app.exe"
    proc = fvm("run", "--box", box, win_path(installers / "setup.exe"), "/S")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fvm.wait_until(lambda: box_idle(fvm, box), timeout=30)
    diff = fvm("diff", box).stdout
    assert f"A {exe}" in diff and "HKEY_CURRENT_USER\\Software\\FvmTestApp\\" in diff, diff
    assert_host_unchanged(before, "the NSIS install")

    proc = fvm("run", "--box", box, exe, "selfname")
    assert f"selfname: {exe}\n" in proc.stdout, proc.stdout + proc.stderr
    assert fvm("run", "--box", box, "cmd", "/c", exe, "exit", "6").returncode == 6
    assert fvm("run", "--box", box, "cmd", "/c", "start", "/wait", "", exe, "exit", "7").returncode == 7
    assert_host_unchanged(before, "running the installed program")

    # The uninstaller copies itself to %TEMP% and runs the copy (box-only)
    # with _?=INSTDIR, then exits: wait for the copy to finish.
    proc = fvm("run", "--box", box, "C:\\Program Files\\FvmTestApp\\uninstall.exe", "/S")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fvm.wait_until(lambda: box_idle(fvm, box) and f"A {exe}" not in fvm("diff", box).stdout, timeout=60)
    diff = fvm("diff", box).stdout
    assert "FvmTestApp" not in diff, diff
    assert fvm("run", "--box", box, exe, "exit", "0").returncode != 0   # gone in the box too
    assert_host_unchanged(before, "the NSIS uninstall")


def test_msi_install_and_run_in_a_box(fvm, box, installers):
    before = host_state()
    exe = "C:\\Program Files\\FvmMsiApp\\msiapp.exe"
    proc = fvm("run", "--box", box, "msiexec", "/i", win_path(installers / "app.msi"), "/qn", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fvm.wait_until(lambda: box_idle(fvm, box), timeout=60)
    diff = fvm("diff", box).stdout
    assert f"A {exe}" in diff and "HKEY_LOCAL_MACHINE\\Software\\FvmMsiApp\\" in diff, diff
    assert_host_unchanged(before, "the MSI install")

    proc = fvm("run", "--box", box, exe, "selfname")
    assert f"selfname: {exe}\n" in proc.stdout, proc.stdout + proc.stderr
    assert fvm("run", "--box", box, "cmd", "/c", exe, "exit", "6").returncode == 6
    assert fvm("run", "--box", box, "cmd", "/c", "start", "/wait", "", exe, "exit", "7").returncode == 7
    assert_host_unchanged(before, "running the MSI-installed program")

    proc = fvm("run", "--box", box, "msiexec", "/x", win_path(installers / "app.msi"), "/qn", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fvm.wait_until(lambda: box_idle(fvm, box), timeout=60)
    assert fvm("run", "--box", box, exe, "exit", "0").returncode != 0
    assert_host_unchanged(before, "the MSI uninstall")
