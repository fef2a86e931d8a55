"""Process and memory isolation (issue 10, issue 17 item 2): a boxed program
reaches no process outside its box, neither a host process (started with
plain wine) nor another box's process, nor any box's broker; inside its box
everything still works.

The target is tests/apps/proctool.c's probe: it prints what an attacker
needs (its ids, the address of a secret page, of a free range, of an APC
routine and a thread routine, an event handle's value), then watches itself
and reports at the end whether anything arrived (page hash, protection,
allocations, APCs, remote threads, stalls, event state, debugger, priority).
The attacker (proctool attack) runs in box A and tries every cross-boundary
action, each printed as "<attempt> refused|DONE"; an unboxed attacker is the
control that shows each attempt works when nothing stops it."""
import re
import subprocess
import time
import uuid

import pytest

from conftest import BUILD, DRIVE_C, Background, run_unboxed, win_path, wine_env

PROCTOOL = BUILD / "apps" / "proctool.exe"
PROCTOOL_WIN = win_path(PROCTOOL)   # for command lines inside cmd (no spaces: unquoted)

ATTEMPTS = [
    "open-process", "open-process-query", "open-thread", "next-process", "read-memory", "write-memory",
    "protect-memory", "query-memory", "allocate-memory", "free-memory", "map-memory", "remote-thread",
    "queue-apc", "suspend-thread", "resume-thread", "get-context", "set-context", "suspend-process",
    "set-information", "duplicate-out", "duplicate-in", "close-remote-handle", "debug-attach",
    "terminate-thread", "terminate-process",
]
UNTOUCHED = {"hash_ok": "1", "apcs": "0", "remote": "0", "prot_ok": "1", "free_ok": "1", "event_signaled": "0",
             "event_valid": "1", "debugger": "0", "priority_ok": "1"}


def stop_path():
    name = "fvmproc-" + uuid.uuid4().hex[:10] + ".stop"
    return DRIVE_C / name, "C:\\" + name


class Target:
    """The probe, on the host (box None) or in a box."""

    def __init__(self, fvm, box=None, seconds=90):
        self.stop, stop_win = stop_path()
        args = [str(PROCTOOL), "target", stop_win, str(seconds)]
        if box:
            self.bg = Background(["wine", str(fvm.exe), "run", "--box", box, *args], fvm.env())
        else:
            self.bg = Background(["wine", *args], wine_env())
        line = fvm.wait_until(lambda: next((l for l in self.bg.output().splitlines() if l.startswith("info ")), None),
                              timeout=60)
        assert line, f"the target did not start: {self.bg.output()}"
        self.info = line.split()[1:]
        self.pid = self.info[0]

    def finish(self):
        """Stops the probe; its report as a dict (empty if it died)."""
        self.stop.write_text("stop")
        try:
            self.bg.wait(timeout=60)
        finally:
            self.stop.unlink()
        line = next((l for l in self.bg.output().splitlines() if l.startswith("report ")), "")
        return dict(kv.split("=", 1) for kv in line.split()[1:])


def outcomes(text):
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ATTEMPTS + ["given-read-memory", "given-write-memory", "given-terminate"]:
            result[parts[0]] = parts[1]
    return result


def attack_from_box(fvm, box, target):
    proc = fvm("run", "--box", box, str(PROCTOOL), "attack", *target.info, timeout=120)
    return outcomes(proc.stdout), proc


@pytest.fixture(scope="module")
def boxes(fvm_root):
    from conftest import Fvm
    fvm = Fvm(fvm_root)
    names = ["pa" + uuid.uuid4().hex[:8], "pb" + uuid.uuid4().hex[:8]]
    # On the host's Wine server, where host and box processes can name each
    # other and the hooks must refuse; a box with its own server cannot even
    # name a host process (test_own_server.py).
    for name in names:
        fvm("create", name, "--host-server", check=0)
    yield fvm, names
    for name in names:
        fvm("rm", "--force", name)


@pytest.fixture(scope="module")
def box_to_host(boxes):
    """Box A against a host process."""
    fvm, (a, _) = boxes
    target = Target(fvm)
    result, proc = attack_from_box(fvm, a, target)
    return result, target.finish(), proc


@pytest.fixture(scope="module")
def box_to_box(boxes):
    """Box A against a process of box B."""
    fvm, (a, b) = boxes
    target = Target(fvm, box=b)
    result, proc = attack_from_box(fvm, a, target)
    return result, target.finish(), proc


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_box_to_host_refused(box_to_host, attempt):
    result, report, proc = box_to_host
    assert result.get(attempt) == "refused", f"{attempt}: {result.get(attempt)}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_box_to_box_refused(box_to_box, attempt):
    result, report, proc = box_to_box
    assert result.get(attempt) == "refused", f"{attempt}: {result.get(attempt)}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("direction", ["box_to_host", "box_to_box"])
def test_target_untouched(request, direction):
    """The probe's own account: nothing arrived, nothing changed, it was
    never stalled (a suspension would show as a long gap) and it ended on
    its own (a terminated probe writes no report)."""
    result, report, proc = request.getfixturevalue(direction)
    assert report, "the target wrote no report: it was ended"
    for key, value in UNTOUCHED.items():
        assert report.get(key) == value, f"{key}={report.get(key)} in {report}"
    assert int(report["maxgap_ms"]) < 700, report


def test_control_unboxed_attacker_succeeds(fvm):
    """Without FVM the same program does reach the target: the attempts
    above are real ones."""
    target = Target(fvm)
    proc = run_unboxed(PROCTOOL, "attack", *target.info, timeout=120)
    result = outcomes(proc.stdout)
    # Wine ends a process TerminateProcess names a moment later (the
    # server signals it): the probe is given that moment before it is told
    # to stop, or on a busy machine it reads the stop file and reports.
    try:
        target.bg.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    report = target.finish()
    for attempt in ("open-process", "read-memory", "write-memory", "remote-thread", "queue-apc",
                    "duplicate-out", "terminate-process"):
        assert result.get(attempt) == "DONE", f"{attempt}: {proc.stdout}"
    assert report == {}, "the unboxed attacker terminated the probe"


@pytest.mark.parametrize("where", ["host", "box"])
def test_handle_given_from_outside_is_useless(boxes, where):
    """A handle to an outside process that arrives another way (a host
    program duplicates it into the boxed process) is refused at use."""
    fvm, (a, b) = boxes
    target = Target(fvm, box=b if where == "box" else None)
    handle_file = DRIVE_C / ("fvmgive-" + uuid.uuid4().hex[:8])
    user = Background(["wine", str(fvm.exe), "run", "--box", a, str(PROCTOOL), "use",
                       "C:\\" + handle_file.name, target.info[2]], fvm.env())
    try:
        line = fvm.wait_until(lambda: next((l for l in user.output().splitlines() if l.startswith("pid ")), None),
                              timeout=60)
        assert line, user.output()
        given = run_unboxed(PROCTOOL, "give", target.pid, line.split()[1], "C:\\" + handle_file.name)
        assert given.stdout.startswith("given"), given.stdout + given.stderr
        user.wait(timeout=60)
    finally:
        handle_file.unlink(missing_ok=True)
    result = outcomes(user.output())
    report = target.finish()
    for attempt in ("given-read-memory", "given-write-memory", "given-terminate"):
        assert result.get(attempt) == "refused", user.output()
    assert report.get("hash_ok") == "1", report


@pytest.mark.parametrize("where", ["host", "box"])
def test_listings_show_only_the_box(boxes, where):
    fvm, (a, b) = boxes
    target = Target(fvm, box=b if where == "box" else None)
    proc = fvm("run", "--box", a, str(PROCTOOL), "list", target.pid, check=0)
    target.finish()
    assert "toolhelp=0 enumprocesses=0 ntquery=0 nextprocess=0 handles=0" in proc.stdout, proc.stdout


def test_listing_unboxed_sees_the_target(fvm):
    target = Target(fvm)
    proc = run_unboxed(PROCTOOL, "list", target.pid)
    target.finish()
    assert "toolhelp=1 enumprocesses=1 ntquery=1" in proc.stdout, proc.stdout


def broker_pids():
    proc = run_unboxed(PROCTOOL, "pidof", "fvm-broker.exe")
    return proc.stdout.split()


@pytest.mark.parametrize("whose", ["own", "other"])
def test_brokers_are_unreachable(boxes, whose):
    """Issue 17: 27 handles were duplicated out of another box's broker and
    killing it ended that box. Now no broker can be opened from a box."""
    fvm, (a, b) = boxes
    target = Target(fvm, box=b)   # keeps box B (and its broker) running
    before = broker_pids()
    assert before, "no broker is running"
    results = [fvm("run", "--box", a, str(PROCTOOL), "plunder", pid, check=0).stdout for pid in before]
    report = target.finish()
    for out in results:
        assert "open=0 dup=0 kill=0" in out, results
    assert report.get("hash_ok") == "1", "box B's target was ended with its broker"


def test_services_exe_cannot_be_opened(boxes):
    """Issue 17: OpenProcess(services.exe) + CreateRemoteThread ran a
    command unboxed."""
    fvm, (a, _) = boxes
    pids = run_unboxed(PROCTOOL, "pidof", "services.exe").stdout.split()
    assert pids
    proc = fvm("run", "--box", a, str(PROCTOOL), "readmem", pids[0], check=0)
    assert proc.stdout.startswith("read=0"), proc.stdout


# ---- what must keep working inside a box -------------------------------------------

def test_children_enumerated_and_waited(fvm, box):
    proc = fvm("run", "--box", box, str(PROCTOOL), "kids", "3", check=0)
    assert "started=3 found=3 waited=3" in proc.stdout, proc.stdout + proc.stderr


def test_cmd_pipeline_and_start_wait(fvm, box):
    proc = fvm("run", "--box", box, "cmd", "/c", "echo hello | more", check=0)
    assert "hello" in proc.stdout
    proc = fvm("run", "--box", box, "cmd", "/c", "start /wait cmd /c exit 7")
    assert proc.returncode == 7, proc.stdout + proc.stderr


def test_start_wine_refused_is_made_again(fvm, box):
    """Wine's loader fails about one start in 1000 before the child runs
    (docs/design.md "Wine starts that fail"), and CreateProcess then fails
    with ERROR_INTERNAL_ERROR; in a box the process virtualizer starts the
    child again, up to three tries. FVM_INJECT_START_FAILURES=N makes each
    boxed process's first N starts fail that way (without calling Wine)."""
    spawn = win_path(BUILD / "apps" / "spawn.exe")
    proc = fvm("run", "--box", box, spawn, "create", spawn, "exit", "7", env={"FVM_INJECT_START_FAILURES": "2"})
    assert "spawn: exit=7" in proc.stdout, proc.stdout + proc.stderr
    # Three failures in a row reach the program, as Windows' error 1359
    # (fvm run's own launcher retries its start once more, so the outer
    # spawn.exe still starts).
    proc = fvm("run", "--box", box, spawn, "create", spawn, "exit", "7", env={"FVM_INJECT_START_FAILURES": "3"})
    assert "spawn: error=1359" in proc.stdout, proc.stdout + proc.stderr


def test_taskkill_inside_the_box(fvm, box):
    """taskkill of a process of the same box ends it (Wine's taskkill lists
    with EnumProcesses and ends with OpenProcess + TerminateProcess)."""
    script = (f'start "" {PROCTOOL_WIN} sleep 60000 & ping -n 2 127.0.0.1 >nul & '
              f'taskkill /f /im proctool.exe')
    started = time.time()
    proc = fvm("run", "--box", box, "cmd", "/c", script, timeout=120)
    assert "terminated" in proc.stdout, proc.stdout + proc.stderr
    assert time.time() - started < 50, "the sleeping process was not ended"
    assert fvm.wait_until(lambda: "proctool" not in fvm("ps", box).stdout, timeout=20), fvm("ps", box).stdout


def test_ps_shows_the_tree(fvm, box):
    bg = fvm.popen("run", "--box", box, "cmd", "/c", f'{PROCTOOL_WIN} spawn 2 8000')
    try:
        out = fvm.wait_until(lambda: (lambda o: o if o.count("proctool") >= 3 else None)(fvm("ps", box).stdout),
                             timeout=30)
        assert out, fvm("ps", box).stdout
        lines = [l for l in out.splitlines() if "proctool" in l]
        assert sum("\\_ " in l for l in lines) >= 3, out   # cmd -> proctool -> 2 children, indented
    finally:
        fvm("stop", box)
        bg.wait(timeout=60)


# ---- the process quota -----------------------------------------------------------------

def test_process_quota(fvm):
    name = "q" + uuid.uuid4().hex[:8]
    fvm("create", name, "--procs", "3", check=0)
    try:
        # proctool + 2 children = 3; the 3 other starts get ERROR_NOT_ENOUGH_QUOTA (the
        # children live long enough that none ends while the starts go on, even under load)
        proc = fvm("run", "--box", name, str(PROCTOOL), "spawn", "5", "6000", check=0)
        assert "started=2 failed=3 error=1816" in proc.stdout, proc.stdout + proc.stderr
        # slots come back when processes end
        assert fvm.wait_until(lambda: len(fvm("ps", name).stdout.strip().splitlines()) <= 1, timeout=30)
        proc = fvm("run", "--box", name, str(PROCTOOL), "spawn", "2", "200", check=0)
        assert "started=2 failed=0" in proc.stdout, proc.stdout
    finally:
        fvm("rm", "--force", name)


def test_process_quota_counts_children_of_children(fvm):
    """cmd + proctool + 1 child = 3."""
    name = "q" + uuid.uuid4().hex[:8]
    fvm("create", name, "--procs", "3", check=0)
    try:
        proc = fvm("run", "--box", name, "cmd", "/c", f'{PROCTOOL_WIN} spawn 5 6000', check=0)
        assert "started=1 failed=4 error=1816" in proc.stdout, proc.stdout + proc.stderr
    finally:
        fvm("rm", "--force", name)


def test_process_quota_with_concurrent_starts(fvm):
    """Two programs of the box start children at the same time: together
    they never get more than the quota leaves (the broker grants under one
    lock)."""
    name = "q" + uuid.uuid4().hex[:8]
    fvm("create", name, "--procs", "6", check=0)
    try:
        script = f"start /b {PROCTOOL_WIN} spawn 5 8000 & {PROCTOOL_WIN} spawn 5 8000"
        proc = fvm("run", "--box", name, "cmd", "/c", script, check=0, timeout=120)
        started = [int(m) for m in re.findall(r"started=(\d+)", proc.stdout)]
        # Whatever the interleaving (Wine's start may run start.exe, which counts too, and
        # may itself be refused): cmd + each spawner that started children + all
        # children <= 6, and the quota refused some start. A spawner refused every
        # start ends at once, and its slot is free for the other's later starts
        # (seen in CI: started=0 and started=4, six at a time).
        alive = len([n for n in started if n > 0])
        assert started and 1 + alive + sum(started) <= 6, proc.stdout + proc.stderr
        assert "error=1816" in proc.stdout or "could not be started" in proc.stdout + proc.stderr
    finally:
        fvm("stop", name)
        fvm("rm", "--force", name)


def test_a_failed_start_gives_its_quota_grant_back(fvm):
    """A start the broker granted but that then failed (here Wine's loader
    failure, injected three times: FVM_INJECT_START_FAILURES) gives its
    grant back at once ("unstart"), instead of holding a slot until the
    grant expires (30 s). Under procs = 3: cmd, whose first start fails
    (as the launcher's first three tries of cmd do), then a spawn.exe and
    its child, three at once, which only fit if no failed grant is held."""
    name = "q" + uuid.uuid4().hex[:8]
    fvm("create", name, "--procs", "3", check=0)
    spawn = win_path(BUILD / "apps" / "spawn.exe")
    try:
        script = f"{spawn} exit 1 & set FVM_INJECT_START_FAILURES=0& {spawn} create {spawn} exit 7"
        proc = fvm("run", "--box", name, "cmd", "/c", script, env={"FVM_INJECT_START_FAILURES": "3"}, timeout=120)
        assert "spawn: exit=7" in proc.stdout, proc.stdout + proc.stderr
    finally:
        fvm("rm", "--force", name)


def test_bad_procs_value(fvm):
    assert fvm("create", "x" + uuid.uuid4().hex[:6], "--procs", "zero").returncode != 0


# ---- [process] rules ---------------------------------------------------------------------

def audit_records(fvm, box):
    import json
    log = fvm.box_dir(box) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def policy_box(fvm, tmp_path):
    made = []

    def make(text):
        policy = tmp_path / ("policy%d.ini" % len(made))
        policy.write_text(text)
        name = "r" + uuid.uuid4().hex[:9]
        fvm("create", name, "--policy", win_path(policy), check=0)
        made.append(name)
        return name
    yield make
    for name in made:
        fvm("rm", "--force", name)


def test_start_denied_by_path_and_audited(fvm, policy_box):
    box = policy_box("[process]\ndeny audit **\\proctool.exe\n")
    proc = fvm("run", "--box", box, "cmd", "/c", f"{PROCTOOL_WIN} kids 0")
    assert "started=" not in proc.stdout, proc.stdout + proc.stderr
    assert "refused by the box's policy" in proc.stderr
    recs = fvm.wait_until(lambda: [r for r in audit_records(fvm, box) if r["type"] == "process" and r["op"] == "start"])
    assert recs and recs[0]["decision"] == "deny" and "proctool.exe" in recs[0]["name"], recs
    assert recs[0]["rule"].startswith("policy.ini:2")
    # other programs still start
    assert fvm("run", "--box", box, "cmd", "/c", "cmd /c exit 3").returncode == 3


def test_start_denied_by_hash_wherever_the_file_is(fvm, policy_box):
    import hashlib
    import shutil
    digest = hashlib.sha256(PROCTOOL.read_bytes()).hexdigest()
    copy = DRIVE_C / ("renamed-" + uuid.uuid4().hex[:6] + ".exe")
    shutil.copy(PROCTOOL, copy)
    try:
        box = policy_box(f"[process]\ndeny sha256:{digest.upper()}\n")
        for image in (PROCTOOL_WIN, "C:\\" + copy.name):
            proc = fvm("run", "--box", box, "cmd", "/c", f"{image} kids 0")
            assert "started=" not in proc.stdout, (image, proc.stdout, proc.stderr)
        # a different program is not affected
        assert fvm("run", "--box", box, "cmd", "/c", "echo fine").stdout.strip() == "fine"
    finally:
        copy.unlink()


def test_hash_allow_list(fvm, policy_box):
    """deny ** with one hash allowed: only that program starts."""
    import hashlib
    digest = hashlib.sha256(PROCTOOL.read_bytes()).hexdigest()
    box = policy_box(f"[process]\ndeny **\ncow sha256:{digest}\n")
    proc = fvm("run", "--box", box, str(PROCTOOL), "kids", "0")
    assert "started=0" in proc.stdout, proc.stdout + proc.stderr
    # The first program of fvm run is checked too (fvm run starts it through
    # the box's own creation path): cmd is not on the list.
    proc = fvm("run", "--box", box, "cmd", "/c", "echo nested")
    assert "nested" not in proc.stdout
    assert "refused by the box's policy" in proc.stderr, proc.stdout + proc.stderr


def test_policy_check_rejects_malformed_hash_and_pattern(fvm, tmp_path):
    policy = tmp_path / "bad.ini"
    policy.write_text("[process]\ndeny sha256:12345\n  hide   notepad.exe\n")
    proc = fvm("policy", "check", win_path(policy))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "bad.ini:2:6: error: a SHA-256 is 64 hexadecimal digits, this one has 5" in out, out
    assert "bad.ini:3:10: error:" in out, out


def test_refused_attempts_are_always_audited(boxes):
    """No [process] rule asks for it: a refused cross-boundary attempt is
    recorded anyway."""
    fvm, (a, _) = boxes
    target = Target(fvm)
    fvm("run", "--box", a, str(PROCTOOL), "readmem", target.pid)
    target.finish()

    def refused_open():
        return [r for r in audit_records(fvm, a) if r["type"] == "process" and r["decision"] == "deny"
                and r["op"] == "open-process" and f"pid {target.pid} " in r["name"]]
    assert fvm.wait_until(refused_open, timeout=60), audit_records(fvm, a)[-5:]


def test_process_start_and_exit_audited_by_the_broker(fvm, policy_box):
    box = policy_box("[process]\ncow audit **\\proctool.exe\n")
    fvm("run", "--box", box, "cmd", "/c", f"{PROCTOOL_WIN} sleep 1 & exit 0", check=0)
    recs = fvm.wait_until(lambda: [r for r in audit_records(fvm, box) if r["op"] == "process-exit"], timeout=20)
    ops = [r["op"] for r in audit_records(fvm, box) if r["type"] == "process"]
    assert "start" in ops and "process-start" in ops and "process-exit" in ops, ops
    assert recs[0]["name"].endswith("exit 0") and recs[0]["image"].lower().endswith("proctool.exe"), recs


# ---- confidential boxes ----------------------------------------------------------------

def test_confidential_box_refuses_host_readers(fvm):
    """Host -> box: a host program (not hooked) is refused by the process's
    own security descriptor, which Wine checks at OpenProcess; rewriting
    that descriptor is refused too (SYSTEM owns the process). Box -> box is
    refused by the hooks whatever the setting (tests above). On the host's
    Wine server: a box with its own server has no process a host program
    can name (test_own_server.py)."""
    name = "c" + uuid.uuid4().hex[:8]
    fvm("create", name, "--confidential", "--host-server", check=0)
    try:
        target = Target(fvm, box=name)
        read = run_unboxed(PROCTOOL, "readmem", target.pid).stdout
        unlock = run_unboxed(PROCTOOL, "unlock", target.pid).stdout
        listed = fvm("run", "--box", name, str(PROCTOOL), "kids", "2", check=0).stdout
        report = target.finish()
        assert read.startswith("read=0 error=5"), read
        assert unlock.startswith("rewrite=0 read=0"), unlock
        assert "started=2 found=2 waited=2" in listed, listed   # the box itself still works
        assert report.get("hash_ok") == "1"
        doctor = fvm("doctor", check=0).stdout
        assert re.search(r"process DACL checked at open\s+enforced", doctor), doctor
        # a box that is not confidential: the host can read it (no hook there)
        other = Target(fvm, box=None)
        assert run_unboxed(PROCTOOL, "readmem", other.pid).stdout.startswith("read=1")
        other.finish()
    finally:
        fvm("rm", "--force", name)
