"""Escapes through what the box trusts (issue 17, items 6, 7 and 3): the
storage quota's count, the audit log and the box index, the service
manager. Each test runs tests/apps/trustattack.exe, a hostile program, in a
box and checks that the host, another box and the log are as they must be:
host files hashed before and after, the other box's folder hashed, the log
chain verified by `fvm logs --verify`."""
import json
import uuid

import pytest

from conftest import win_path
from test_files import HOST_FILES, box_copy, host, tool, tree_digest  # noqa: F401  (fixtures)


@pytest.fixture
def attack(apps):
    return win_path(apps / "trustattack.exe")


def tree_bytes(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


@pytest.fixture
def small_box(fvm):
    """A box with a 100 KiB storage quota."""
    name = "q" + uuid.uuid4().hex[:10]
    fvm("create", name, "--quota", "100K", check=0)
    yield name
    fvm("rm", "--force", name)


@pytest.fixture
def other_box(fvm):
    """A bystander box with some content: it must not change."""
    name = "o" + uuid.uuid4().hex[:10]
    fvm("create", name, check=0)
    fvm("run", "--box", name, "cmd", "/c", "echo bystander> C:\\bystander.txt", check=0)
    before = tree_digest(fvm.box_dir(name))
    yield name
    assert tree_digest(fvm.box_dir(name)) == before, "another box changed"
    fvm("rm", "--force", name)


# ---- item 6: the storage quota ----

def test_quota_cannot_be_raised_from_inside(fvm, small_box, other_box, host, attack):
    win, root = host
    out = fvm("run", "--box", small_box, attack, "quota", str(100 * 1024), f"{win}\\big.bin",
              str(10 * 1024 * 1024)).stdout
    assert "wrote" in out, out
    written = int(out.split("wrote ")[1].split()[0])
    assert written <= 100 * 1024, out
    assert "error 112" in out, out                      # ERROR_DISK_FULL
    delta = tree_bytes(fvm.box_dir(small_box) / "drive") + tree_bytes(fvm.box_dir(small_box) / "unc")
    assert delta <= 100 * 1024, f"{delta} bytes in a 100 KiB box: {out}"
    assert not (root / "big.bin").exists()
    # the box still works within its quota
    out = fvm("run", "--box", small_box, "cmd", "/c", f"del {win}\\big.bin & echo small> {win}\\s.txt & type {win}\\s.txt",
              check=0).stdout
    assert "small" in out


# ---- item 7: the audit log ----

@pytest.fixture
def audited_box(fvm, tmp_path, host):
    """A 100 KiB box whose policy denies and audits <host>\\sub\\**."""
    win, root = host
    policy = tmp_path / "policy.ini"
    policy.write_text(f"[file]\ndeny audit  {win}\\sub\\**\n")
    name = "a" + uuid.uuid4().hex[:10]
    fvm("create", name, "--policy", win_path(policy), "--quota", "100K", check=0)
    yield name, win, root
    fvm("rm", "--force", name)


def test_audit_cannot_be_forged_or_flooded(fvm, audited_box, other_box, attack):
    box, win, root = audited_box
    out = fvm("run", "--box", box, attack, "audit", f"{win}\\sub\\inner.txt", "2", check=0).stdout
    fields = out.split()
    pid = int(fields[fields.index("pid") + 1])
    assert int(fields[fields.index("pipes") + 1]) >= 1, out            # it found the runtime's connection
    assert int(fields[fields.index("forged") + 1]) >= 2, out
    assert int(fields[fields.index("flood-bytes") + 1]) > 1_000_000, out  # and wrote plenty to it
    log = fvm.box_dir(box) / "audit.jsonl"
    verify = fvm("logs", box, "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    by_process = [r for r in records if r["type"] != "audit"]
    drops = [r for r in records if r["type"] == "audit" and r["op"] == "drop"]
    assert by_process, records
    for r in by_process:     # the subject is the broker's view, the decision the policy's
        assert r["pid"] == pid and r["image"].lower().endswith("trustattack.exe"), r
        assert r["decision"] == "deny" and r["rule"] == "policy.ini:2" and r["subject"] == "broker", r
        assert "secret" not in r["name"] and "services" not in r["image"].lower(), r
    assert drops and "over the rate" in drops[-1]["name"], records[-3:]
    assert log.stat().st_size <= 100 * 1024 + 4096, log.stat().st_size     # counted against the quota


def test_verify_refuses_a_record_whose_subject_is_the_senders_word(fvm, box):
    fvm("__audit-append", box, "file", "open", "deny", "\\??\\C:\\a", check=0)
    fvm("__audit-append", box, "file", "open", "open", "\\??\\C:\\b", "--sender-subject", "--rule", "made-up.ini:1",
        "--image", "C:\\windows\\system32\\services.exe", check=0)
    proc = fvm("logs", box, "--verify")
    assert proc.returncode != 0
    assert "line 2: record 2 does not have its subject from the broker's own view" in proc.stdout + proc.stderr


def test_quota_and_audit_serve_a_box_restarted_at_once(fvm, audited_box, tool):
    """A box run again right after its last process ended gets its previous
    broker's job back (the job outlives that broker for a few seconds) and
    the new broker hears no news of its processes: membership is asked of
    the job, so every run still gets bytes of its quota and its audit
    records (before: the second run's writes failed with the disk full and
    its records were dropped as from outside the box)."""
    box, win, root = audited_box
    runs = 3
    for i in range(runs):
        out = fvm("run", "--box", box, "cmd", "/c", f"{tool} fill {win}\\f{i}.bin 1000 & type {win}\\sub\\inner.txt").stdout
        assert "OK 1000" in out, f"run {i}: {out}"
    log = fvm.box_dir(box) / "audit.jsonl"

    def denied():
        if not log.exists():
            return []
        return [r for r in map(json.loads, log.read_text().splitlines())
                if r["type"] == "file" and r["name"].lower().endswith("sub\\inner.txt")]
    fvm.wait_until(lambda: len(denied()) >= runs, timeout=20)
    got = denied()
    assert len(got) >= runs, got
    assert all(r["subject"] == "broker" and r["image"].lower().endswith("cmd.exe") for r in got), got
