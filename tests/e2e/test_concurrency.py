"""Many processes of one box changing the same folder at once: the final box
view equals the serial result, the box index validates, and a box killed in
the middle of such a run leaves an index that still validates and works."""
import shutil
import uuid

import pytest

from conftest import DRIVE_C, win_path

WORKERS = 8
N = 30


def expected_names():
    names = set()
    for worker in range(WORKERS):
        for i in range(N):
            if i % 3 == 0:
                names.add(f"w{worker}_{i}.txt")
            elif i % 3 == 1:
                names.add(f"r{worker}_{i}.txt")
        names.add(f"hr{worker}_1.txt")
        names.add(f"h{worker}_2.txt")
    return names


@pytest.fixture
def shared_dir():
    name = "churn-" + uuid.uuid4().hex[:8]
    root = DRIVE_C / "fvmhost" / name
    root.mkdir(parents=True)
    for worker in range(WORKERS):
        for k in range(3):
            (root / f"h{worker}_{k}.txt").write_bytes(b"host")
    before = sorted(p.name for p in root.iterdir())
    yield "C:\\fvmhost\\" + name, root
    assert sorted(p.name for p in root.iterdir()) == before, "the host folder changed"
    assert all(p.read_bytes() == b"host" for p in root.iterdir())
    shutil.rmtree(root, ignore_errors=True)


def test_eight_processes_one_folder(fvm, box, apps, shared_dir):
    win, root = shared_dir
    proc = fvm("run", "--box", box, win_path(apps / "churn.exe"), "spawn", win, str(WORKERS), str(N), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = fvm("run", "--box", box, "cmd", "/c", f"dir /b {win}", check=0).stdout.split()
    assert sorted(listing) == sorted(expected_names())
    for worker in range(WORKERS):
        text = fvm("run", "--box", box, "cmd", "/c", f"type {win}\\h{worker}_2.txt", check=0).stdout
        assert text == "host+"
    check = fvm("check", box, check=0).stdout
    assert "OK" in check and "DAMAGED" not in check, check


def test_killed_mid_run_leaves_a_valid_index(fvm, box, apps, shared_dir):
    win, root = shared_dir
    runner = fvm.popen("run", "--box", box, win_path(apps / "churn.exe"), "spawn", win, str(WORKERS), "400")
    try:
        # let the workers get going, then kill the whole box mid-operation
        assert fvm.wait_until(lambda: fvm("ps", box).stdout.count("churn.exe") >= WORKERS, timeout=30)
        fvm.wait_until(lambda: False, timeout=1.5)
        fvm("stop", box, check=0)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    check = fvm("check", box, check=0).stdout
    assert "OK" in check and "DAMAGED" not in check, check
    # the box still works on the same folder afterwards
    proc = fvm("run", "--box", box, "cmd", "/c", f"echo after>{win}\\after.txt& dir /b {win}", check=0)
    assert "after.txt" in proc.stdout.split()
