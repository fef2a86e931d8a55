"""Policy enforcement for files, with real programs: a policy denies one
folder, hides another, opens a third to the host and makes a fourth
read-only; cmd and filetool observe exactly that, the host changes only where
the policy opened it, and the audit log holds the expected records in order
and verifies; editing or truncating it makes verification fail at the right
record."""
import json
import shutil
import uuid

import pytest

from conftest import DRIVE_C, win_path

POLICY = """
[file]
deny audit  {h}\\denied\\**
hide audit  {h}\\hidden\\**
open audit  {h}\\shared\\**
read        {h}\\ro\\**
"""


@pytest.fixture
def policy_setup(fvm, tmp_path):
    name = uuid.uuid4().hex[:10]
    root = DRIVE_C / "fvmpolicy" / name
    win = "C:\\fvmpolicy\\" + name
    for folder in ("denied", "hidden", "shared", "ro", "plain"):
        (root / folder).mkdir(parents=True)
        (root / folder / "f.txt").write_bytes(b"host\r\n")
    policy = tmp_path / "policy.ini"
    policy.write_text(POLICY.format(h=win))
    box = "p" + name
    fvm("create", box, "--policy", win_path(policy), check=0)
    yield box, win, root
    fvm("rm", "--force", box)
    shutil.rmtree(root, ignore_errors=True)


def records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_policy_actions_as_programs_see_them(fvm, policy_setup, apps):
    box, win, root = policy_setup
    tool = win_path(apps / "filetool.exe")

    def run(*args):
        return fvm("run", "--box", box, tool, *args).stdout.strip()

    assert run("read", f"{win}\\denied\\f.txt") == "ERR CreateFile 5"           # access denied
    assert run("write", f"{win}\\denied\\new.txt", "x") == "ERR CreateFile 5"
    assert run("read", f"{win}\\hidden\\f.txt") == "ERR CreateFile 2"           # does not exist
    assert run("attrs", f"{win}\\hidden") == "ERR GetFileAttributes 2"
    listing = fvm("run", "--box", box, "cmd", "/c", f"dir /b {win}", check=0).stdout.split()
    assert listing == ["denied", "plain", "ro", "shared"]                        # hidden is not listed
    assert run("write", f"{win}\\shared\\new.txt", "to-host") == "OK"           # open: the host itself
    assert (root / "shared" / "new.txt").read_bytes() == b"to-host"
    assert run("append", f"{win}\\ro\\f.txt", "x") == "ERR CreateFile 5"        # read-only
    assert run("read", f"{win}\\ro\\f.txt") == "OK host"
    assert run("append", f"{win}\\plain\\f.txt", "x") == "OK"                  # cow
    assert (root / "plain" / "f.txt").read_bytes() == b"host\r\n"
    assert (root / "denied" / "f.txt").read_bytes() == b"host\r\n"
    assert not (root / "denied" / "new.txt").exists()


def test_audit_records_in_order_and_verified(fvm, policy_setup, apps):
    box, win, root = policy_setup
    fvm("run", "--box", box, "cmd", "/c",
        f"type {win}\\denied\\f.txt & type {win}\\hidden\\f.txt & echo s>{win}\\shared\\s.txt& type {win}\\ro\\f.txt")
    # The broker writes the records after the program has gone: wait for them.
    fvm.wait_until(lambda: len(records(fvm, box)) >= 3, timeout=20)
    recs = records(fvm, box)
    got = [(r["op"], r["name"].rsplit("\\", 2)[-2] + "\\" + r["name"].rsplit("\\", 1)[-1], r["decision"]) for r in recs]
    assert got == [("open", "denied\\f.txt", "deny"), ("open", "hidden\\f.txt", "hide"),
                   ("create", "shared\\s.txt", "open")], got                     # ro is not audited
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert all(r["box"] == box and r["image"].lower().endswith("cmd.exe") for r in recs)
    assert all(r["rule"].startswith("policy.ini:") for r in recs)
    assert recs[0]["prev"] == "0" * 64 and recs[1]["prev"] == recs[0]["hash"]


def test_policy_error_is_reported_with_its_place(fvm, tmp_path):
    """A box's policy edited into a broken one after create: fvm run refuses
    to start the box and names the place."""
    good = tmp_path / "good.ini"
    good.write_text("[file]\n")
    fvm("create", "badpolicy", "--policy", win_path(good), check=0)
    try:
        (fvm.box_dir("badpolicy") / "policy.ini").write_text("[file]\nfrobnicate C:\\x\n")
        proc = fvm("run", "--box", "badpolicy", "cmd", "/c", "exit 0")
        assert proc.returncode == 1
        assert "policy.ini:2:1" in proc.stderr, proc.stderr
    finally:
        fvm("rm", "--force", "badpolicy")


def test_box_takes_a_copy_of_the_policy_and_its_includes(fvm, tmp_path, apps):
    ident = uuid.uuid4().hex[:8]
    root = DRIVE_C / "fvmpolicy" / ident
    (root / "secret").mkdir(parents=True)
    (root / "secret" / "f.txt").write_bytes(b"host\r\n")
    win = "C:\\fvmpolicy\\" + ident
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "secret.ini").write_text(f"[file]\ndeny {win}\\secret\\**\n")
    (tmp_path / "main.ini").write_text("template untrusted\ninclude rules\\secret.ini\n")
    box = "i" + ident
    fvm("create", box, "--policy", win_path(tmp_path / "main.ini"), check=0)
    try:
        assert (fvm.box_dir(box) / "rules" / "secret.ini").exists()
        shutil.rmtree(tmp_path / "rules")        # the box needs its own copies only
        out = fvm("run", "--box", box, win_path(apps / "filetool.exe"), "read", f"{win}\\secret\\f.txt").stdout
        assert out.strip() == "ERR CreateFile 5"
    finally:
        fvm("rm", "--force", box)
        shutil.rmtree(root, ignore_errors=True)


def test_bad_policy_is_refused_at_create(fvm, tmp_path):
    (tmp_path / "bad.ini").write_text("[file]\ndeny C:\\ok\nfrobnicate C:\\x\n")
    proc = fvm("create", "badcreate", "--policy", win_path(tmp_path / "bad.ini"))
    assert proc.returncode == 1 and "bad.ini:3:1" in proc.stderr, proc.stderr
    assert not fvm.box_dir("badcreate").exists()


def test_include_outside_the_policy_folder_is_refused(fvm, tmp_path):
    (tmp_path / "outside.ini").write_text("[file]\ndeny C:\\x\n")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "main.ini").write_text("include ..\\outside.ini\n")
    proc = fvm("create", "outsideinc", "--policy", win_path(tmp_path / "p" / "main.ini"))
    assert proc.returncode == 1 and "outside the folder" in proc.stderr, proc.stderr
    assert not fvm.box_dir("outsideinc").exists()
