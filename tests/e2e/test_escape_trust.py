"""Escapes through what the box trusts (issue 17, items 6, 7 and 3): the
storage quota's count, the audit log and the box index, the service
manager. Each test runs tests/apps/trustattack.exe, a hostile program, in a
box and checks that the host, another box and the log are as they must be:
host files hashed before and after, the other box's folder hashed, the log
chain verified by `fvm logs --verify`."""
import hashlib
import json
import uuid

import pytest

from conftest import DRIVE_C, run_unboxed, win_path
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


# ---- item 7: [net] and [process] decisions are the broker's ----

def test_net_and_process_claims_are_decided_again_by_the_broker(fvm, tmp_path, attack):
    """A boxed program claims, on its runtime's broker connection, an allow
    by a made-up rule for a [net] target and a [process] start the policy
    denies, an allow for a target no rule audits, an allow for an
    operation only ever refused, and a start without its target. The log
    holds the broker's decisions, flags the forged claims (keeping them
    beside), drops what the runtime never sends, and `fvm logs --verify`
    reports the forgery; the program's truthful records are marked as
    decided again by the broker."""
    port = 9
    policy = tmp_path / "policy.ini"
    policy.write_text(f"[net]\ndeny audit out:tcp:127.0.0.1:{port}\n"
                      "[process]\ndeny audit **\\powershell.exe\ncow audit **\\trustattack.exe\n")
    box = "n" + uuid.uuid4().hex[:10]
    fvm("create", box, "--policy", win_path(policy), check=0)
    try:
        out = fvm("run", "--box", box, attack, "claims", str(port), check=0).stdout
        fields = out.split()
        assert int(fields[fields.index("pipes") + 1]) >= 1, out
        assert int(fields[fields.index("claims") + 1]) >= 5, out
        assert int(fields[fields.index("connect") + 1]) == 10013, out      # WSAEACCES: the policy's deny
        log = fvm.box_dir(box) / "audit.jsonl"

        def records():
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def forged():
            return [r for r in records() if r.get("decided") == "forged"]
        fvm.wait_until(lambda: len(forged()) >= 3 and any(r["type"] == "audit" for r in records()), timeout=20)
        got = forged()
        assert len(got) == 3, records()
        by_claim = {r["claim"]: r for r in got}
        net = by_claim["open by made-up.ini:1"]
        assert net["type"] == "net" and net["decision"] == "deny" and net["rule"] == "policy.ini:2", net
        assert net["name"] == f"out:tcp:127.0.0.1:{port}", net
        start = by_claim["cow by made-up.ini:2"]
        assert start["type"] == "process" and start["decision"] == "deny" and start["rule"] == "policy.ini:4", start
        assert start["target"].lower().endswith("\\powershell.exe"), start
        quiet = by_claim["open by made-up.ini:3"]          # no rule audits it: no record was ever made
        assert quiet["decision"] == "open" and quiet["rule"] == "default", quiet
        recs = records()
        assert not any("made-up.ini:4" in json.dumps(r) or "made-up.ini:5" in json.dumps(r) for r in recs), recs
        # the program's own records: decided again, and agreed
        truthful = [r for r in recs if r["type"] == "net" and r.get("decided") == "broker"]
        assert truthful and truthful[0]["decision"] == "deny" and truthful[0]["rule"] == "policy.ini:2", recs
        starts = [r for r in recs if r["type"] == "process" and r["op"] == "start" and r.get("decided") == "broker"]
        assert starts and starts[0]["rule"] == "policy.ini:5" and starts[0]["decision"] == "cow", recs
        assert all(r["subject"] == "broker" for r in recs), recs
        verify = fvm("logs", box, "--verify")
        text = verify.stdout + verify.stderr
        assert verify.returncode != 0, text
        assert "the sender forged its decision" in text and "3 such records" in text, text
        assert 'it claimed "open by made-up.ini:1"' in text or 'it claimed "cow by made-up.ini:2"' in text, text
    finally:
        fvm("rm", "--force", box)


# ---- item 7: the box index has one writer, the broker ----

def index_digest(box_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(box_dir.glob("index-*.fvm"))}


def test_boxed_program_cannot_write_its_index(fvm, tmp_path, attack):
    """A boxed program tries to open its box index for writing by every
    path form (Win32, \\?\\, \\??\\, \\Device\\..., GLOBALROOT, the 8.3
    name, relative to a handle of the drive root and of the box folder),
    duplicates any handle it holds to its index (the runtime closes the file
    once the view is mapped, and keeps the PAGE_READONLY section to hand to
    the processes it creates) and any section handle with more access, maps
    it writable, makes the runtime's read-only view writable, and sends
    the broker forged index requests (a key in FVM's storage, a key and path
    that disagree, malformed keys) on its runtime's connection and on
    another running box's broker pipe. Nothing gets through: the index files
    are byte-for-byte unchanged and the box's view is intact."""
    policy = tmp_path / "policy.ini"
    policy.write_text("[file]\ndeny audit C:\\nothing\\**\n")
    box = "x" + uuid.uuid4().hex[:10]
    other = "y" + uuid.uuid4().hex[:10]
    fvm("create", box, "--policy", win_path(policy), check=0)
    fvm("create", other, check=0)
    holder = None
    try:
        fvm("run", "--box", box, "cmd", "/c", "echo keep> C:\\keep-index.txt", check=0)
        box_dir = fvm.box_dir(box)
        before = index_digest(box_dir)
        assert before, list(box_dir.iterdir())
        index_name = sorted(before)[-1]
        box_win = fvm.root_win + "\\boxes\\" + box
        short = run_unboxed("cmd", "/c", f"for %I in ({box_win}\\{index_name}) do @echo %~sI").stdout.strip() or "-"
        holder = fvm.popen("run", "--box", other, attack, "sleep", "60")
        assert fvm.wait_until(lambda: "trustattack" in fvm("ps", other).stdout.lower(), timeout=30)
        out = fvm("run", "--box", box, attack, "index", box_win, index_name, short,
                  fvm.root_win + "\\boxes\\" + other, "C:\\nothing\\x", check=0).stdout
        forms = [line.split()[1] for line in out.splitlines() if line.startswith("FORM ")]
        for form in ("win32", "win32-long", "nt-dos", "nt-device", "globalroot", "relative-to-drive", "reprotect",
                     "index-handles", "request-storage", "request-mismatch", "request-lowercase", "request-kind"):
            assert form in forms, out
        assert any(f.startswith("other-box") for f in forms), out
        assert short == "-" or "short-name" in forms, out
        tail = out.split()
        assert int(tail[tail.index("pipes") + 1]) >= 1, out       # it found the runtime's connection
        assert int(tail[tail.index("wrote") + 1]) == 0, out
        assert int(tail[tail.index("accepted") + 1]) == 0, out
        assert index_digest(box_dir) == before, out
        # the box's view is intact: its file is there, a new change still goes in
        seen = fvm("run", "--box", box, "cmd", "/c", "type C:\\keep-index.txt & echo more> C:\\after-index.txt "
                   "& type C:\\after-index.txt").stdout
        assert "keep" in seen and "more" in seen, seen
        assert not (DRIVE_C / "keep-index.txt").exists() and not (DRIVE_C / "after-index.txt").exists()
    finally:
        if holder:
            holder.kill()
        fvm("rm", "--force", other)
        fvm("rm", "--force", box)
