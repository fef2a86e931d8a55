"""The FVM SDK (include/fvm/fvm.h, build/win/libfvm.a) through its sample
client, tests/apps/sdkclient.c, under Wine: box lifecycle (the box folder
appears and goes, exit codes pass through, a running box is counted, refused
for removal and stopped), policy evaluation (every action, the audit flag,
rule labels, defaults, program scope, key and object names), the audit
subscription delivering the records a boxed program's denied opens produced,
in order, and errors with their codes and messages."""
import json
import re
import shutil
import time
import uuid

import pytest

from conftest import BUILD, DRIVE_C, Background, run_captured, win_path

# Error codes of include/fvm/fvm.h.
E_INVALID, E_NOTFOUND, E_EXISTS, E_POLICY, E_BUSY = -1, -2, -3, -4, -8

EVAL_POLICY = """[file]
deny audit  C:\\sdkdata\\secret\\**
hide        C:\\sdkdata\\hidden\\**
open audit  C:\\sdkdata\\shared\\**
read        C:\\sdkdata\\ro\\**
cow         C:\\sdkdata\\ro\\scratch\\**
notepad.exe: deny C:\\sdkdata\\notes\\**
[key]
deny audit  HKLM\\Software\\SdkSecret\\**
[object]
hide        Global\\SdkHidden
"""


class SdkClient:
    def __init__(self, fvm, apps):
        self.fvm = fvm
        self.exe = apps / "sdkclient.exe"

    def env(self):
        # FVM_HOME: where fvm.exe is (the client lives in apps\); FVM_ROOT: the test root.
        return self.fvm.env({"FVM_HOME": win_path(BUILD)})

    def __call__(self, *args, check=None, timeout=120):
        proc = run_captured(["wine", str(self.exe), *map(str, args)], self.env(), timeout=timeout)
        if check is not None:
            assert proc.returncode == check, (
                f"sdkclient {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def popen(self, *args):
        return Background(["wine", str(self.exe), *map(str, args)], self.env())


def fields(line):
    """'word k=v k=v ... last=free text' -> dict (the last value may hold spaces)."""
    out = {}
    for m in re.finditer(r"(\w+)=(.*?)(?= \w+=|$)", line):
        out[m.group(1)] = m.group(2)
    return out


def lines_of(text, word):
    return [fields(l) for l in text.splitlines() if l.startswith(word + " ")]


@pytest.fixture
def sdk(fvm, apps):
    return SdkClient(fvm, apps)


@pytest.fixture
def name(fvm):
    box = "s" + uuid.uuid4().hex[:10]
    yield box
    fvm("rm", "--force", box)


@pytest.fixture
def data():
    """A host folder with files a policy can deny: (Windows path, Linux path)."""
    sub = uuid.uuid4().hex[:10]
    root = DRIVE_C / "sdkaudit" / sub
    (root / "denied").mkdir(parents=True)
    for leaf in ("f.txt", "g.txt"):
        (root / "denied" / leaf).write_bytes(b"secret\r\n")
    yield "C:\\sdkaudit\\" + sub, root
    shutil.rmtree(root, ignore_errors=True)


# ---- lifecycle ----------------------------------------------------------------------------

def test_create_run_remove(sdk, fvm, name):
    assert not fvm.box_dir(name).exists()
    sdk("create", name, check=0)
    assert (fvm.box_dir(name) / "box.ini").is_file()
    assert sdk("exists", name, check=0).stdout.strip() == "exists=1"
    out = sdk("run", name, "cmd", "/c", "exit 7", check=0).stdout
    assert out.strip().splitlines()[-1] == "exit=7"             # the program's exit code passes through
    assert sdk("count", name, check=0).stdout.strip() == "count=0"
    sdk("remove", name, check=0)
    assert not fvm.box_dir(name).exists()
    assert sdk("exists", name, check=0).stdout.strip() == "exists=0"


def test_run_without_waiting_count_stop(sdk, fvm, name, apps):
    """fvm_box_run without FVM_RUN_WAIT returns fvm.exe's handle at once; the
    box counts the program; remove without force is refused while it runs;
    stop ends it (and the handle); remove then works."""
    out = sdk("lifecycle", name, win_path(apps / "probe.exe"), check=0, timeout=90).stdout
    steps = {l.split()[1]: fields(l) for l in out.splitlines() if l.startswith("step ")}
    assert steps["create"]["exists"] == "1"
    assert int(steps["running"]["count"]) >= 1
    assert int(steps["remove-running"]["code"]) == E_BUSY, out
    assert "is running" in steps["remove-running"]["message"]
    assert steps.get("stopped") == {"ended": "1", "count": "0"}, out
    assert steps["removed"]["exists"] == "0"
    assert not fvm.box_dir(name).exists()


def test_count_of_a_box_on_its_own_server_is_exact(sdk, fvm, name):
    """The SDK counts a box on its own server by asking the broker there
    (fvm __stats-json, as fvm list does): three processes running give
    three, the figure of fvm stats, which a fallback of 1 (no answer) would
    not give."""
    fvm("create", name, check=0)
    assert "server=own" in (fvm.box_dir(name) / "box.ini").read_text()
    bg = fvm.popen("run", "--box", name, "cmd", "/c", "cmd /c ping -n 90 127.0.0.1 >nul")
    try:
        def processes():
            proc = fvm("stats", name, "--json")
            return json.loads(proc.stdout)["processes"] if proc.returncode == 0 and \
                proc.stdout.startswith("{") else 0
        assert fvm.wait_until(lambda: processes() == 3, timeout=60), fvm("stats", name, "--json").stdout
        assert sdk("count", name, check=0).stdout.strip() == "count=3"
    finally:
        fvm("stop", name)
        bg.wait(timeout=60)


# ---- evaluation -------------------------------------------------------------------------------

@pytest.fixture
def eval_policy(tmp_path):
    path = tmp_path / "policy.ini"
    path.write_text(EVAL_POLICY)
    return win_path(path)


@pytest.mark.parametrize("typ,resource,program,action,audit,rule", [
    ("file", "C:\\sdkdata\\secret\\a.docx", None, "deny", "1", "policy.ini:2"),
    ("file", "\\??\\c:\\SDKDATA\\Secret\\x\\y", None, "deny", "1", "policy.ini:2"),   # any spelling
    ("file", "C:\\sdkdata\\hidden\\h.txt", None, "hide", "0", "policy.ini:3"),
    ("file", "C:\\sdkdata\\shared\\s.txt", None, "open", "1", "policy.ini:4"),
    ("file", "C:\\sdkdata\\ro\\r.txt", None, "read", "0", "policy.ini:5"),
    ("file", "C:\\sdkdata\\ro\\scratch\\t.txt", None, "cow", "0", "policy.ini:6"),     # more specific wins
    ("file", "C:\\sdkdata\\notes\\n.txt", "C:\\Windows\\notepad.exe", "deny", "0", "policy.ini:7"),
    ("file", "C:\\sdkdata\\notes\\n.txt", "cmd.exe", "cow", "0", "default"),          # scope: not cmd
    ("file", "C:\\elsewhere\\x.txt", None, "cow", "0", "default"),
    ("key", "HKLM\\Software\\SdkSecret\\k", None, "deny", "1", "policy.ini:9"),
    ("key", "HKEY_LOCAL_MACHINE\\Software\\Other", None, "cow", "0", "default"),
    ("object", "Global\\SdkHidden", None, "hide", "0", "policy.ini:11"),
])
def test_evaluate(sdk, eval_policy, typ, resource, program, action, audit, rule):
    args = ["eval", eval_policy, typ, resource] + ([program] if program else [])
    out = sdk(*args, check=0).stdout
    [d] = lines_of(out, "decision")
    assert (d["action"], d["audit"], d["rule"]) == (action, audit, rule), out
    assert d["default"] == ("1" if rule == "default" else "0")
    assert d["resource"] == resource


def test_box_policy_evaluate(sdk, fvm, name, eval_policy):
    sdk("create", name, eval_policy, check=0)
    [d] = lines_of(sdk("boxeval", name, "file", "C:\\sdkdata\\secret\\a", check=0).stdout, "decision")
    assert (d["action"], d["audit"], d["rule"]) == ("deny", "1", "policy.ini:2")
    # A box without a policy of its own uses the shipped default.
    other = name + "d"
    sdk("create", other, check=0)
    try:
        [d] = lines_of(sdk("boxeval", other, "file", "C:\\sdkdata\\secret\\a", check=0).stdout, "decision")
        assert d["action"] != "deny"
    finally:
        fvm("rm", "--force", other)


# ---- audit stream -------------------------------------------------------------------------------

def test_subscription_delivers_audited_denials_in_order(sdk, fvm, name, data, tmp_path):
    win, root = data
    policy = tmp_path / "policy.ini"
    policy.write_text(f"[file]\ndeny audit {win}\\denied\\**\n")
    sdk("create", name, win_path(policy), check=0)
    follower = sdk.popen("follow", name, 1, 2, 30000)
    try:
        assert fvm.wait_until(lambda: "subscribed" in follower.output(), timeout=30), follower.output()
        run = fvm("run", "--box", name, "cmd", "/c", f"type {win}\\denied\\f.txt & type {win}\\denied\\g.txt")
        assert "secret" not in run.stdout
        assert follower.wait(timeout=60) == 0, follower.output()
    finally:
        if follower.poll() is None:
            follower.kill()
    out = follower.output()
    events = lines_of(out, "event")
    assert [e["seq"] for e in events] == ["1", "2"], out
    assert [e["name"].rsplit("\\", 1)[-1] for e in events] == ["f.txt", "g.txt"]
    assert all(e["type"] == "file" and e["op"] == "open" and e["decision"] == "deny" for e in events)
    assert all(e["rule"] == "policy.ini:2" and e["image"].lower().endswith("cmd.exe") for e in events)
    assert "received 2" in out
    # The events are the log's records.
    log = [json.loads(l) for l in (fvm.box_dir(name) / "audit.jsonl").read_text().splitlines()]
    assert [(str(r["seq"]), r["name"], str(r["pid"])) for r in log] == \
           [(e["seq"], e["name"], e["pid"]) for e in events]
    # from_seq: a later subscriber starting at 2 gets only the second record.
    late = sdk("follow", name, 2, 1, 10000, check=0).stdout
    assert [e["seq"] for e in lines_of(late, "event")] == ["2"], late
    assert sdk("verify", name, check=0).stdout.strip() == "records=2"


def test_demo(sdk, fvm, name, data, tmp_path):
    """The sample client's tour: create with a policy, evaluate, subscribe,
    run a program that opens a denied file, receive its record, verify, stop,
    remove."""
    win, root = data
    policy = tmp_path / "demo.ini"
    policy.write_text(f"[file]\ndeny audit {win}\\denied\\**\n")
    denied = f"{win}\\denied\\f.txt"
    proc = sdk("demo", name, win_path(policy), denied, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    decisions = lines_of(out, "decision")
    # The box keeps its own copy of the policy, <box>\policy.ini: labels name it.
    assert (decisions[0]["action"], decisions[0]["rule"], decisions[0]["resource"]) == \
           ("deny", "policy.ini:2", denied)
    assert (decisions[1]["action"], decisions[1]["default"]) == ("cow", "1")
    [event] = lines_of(out, "event")
    assert (event["seq"], event["decision"], event["op"]) == ("1", "deny", "open")
    assert event["name"].lower().endswith("\\denied\\f.txt")
    assert "step run exit=1" in out                        # type failed: access denied
    assert "step verify records=1" in out
    assert "step exists=0" in out
    assert not fvm.box_dir(name).exists()
    assert (root / "denied" / "f.txt").read_bytes() == b"secret\r\n"


# ---- errors ---------------------------------------------------------------------------------------

def error_of(proc):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [e] = lines_of(proc.stdout, "error")
    return int(e["code"]), e["message"]


def test_bad_box_name(sdk):
    code, message = error_of(sdk("exists", "bad/name"))
    assert code == E_INVALID and "box name" in message, message
    code, message = error_of(sdk("create", "a" * 100))
    assert code == E_INVALID, message


def test_missing_box(sdk):
    box = "nobox" + uuid.uuid4().hex[:8]
    for args in (["run", box, "cmd", "/c", "exit 0"], ["stop", box], ["remove", box], ["count", box],
                 ["boxeval", box, "file", "C:\\x"], ["follow", box, 1, 1, 1000]):
        code, message = error_of(sdk(*args))
        assert code == E_NOTFOUND and f"no box named '{box}'" in message, (args, message)


def test_bad_policy_names_file_line_column(sdk, fvm, name, tmp_path):
    policy = tmp_path / "bad.ini"
    policy.write_text("[file]\ndeny C:\\ok\\**\nfrobnicate C:\\x\n")
    code, message = error_of(sdk("create", name, win_path(policy)))
    assert code == E_POLICY and re.search(r"bad\.ini:3:\d+: error: ", message), message
    assert not fvm.box_dir(name).exists()                   # refused before anything was made
    code, message = error_of(sdk("eval", win_path(policy), "file", "C:\\x"))
    assert code == E_POLICY and re.search(r"bad\.ini:3:\d+: error: ", message), message
    code, message = error_of(sdk("eval", win_path(tmp_path / "missing.ini"), "file", "C:\\x"))
    assert code == E_NOTFOUND and "missing.ini" in message, message


def test_bad_evaluation_arguments_and_existing_box(sdk, name, eval_policy):
    code, message = error_of(sdk("eval", eval_policy, "colour", "C:\\x"))
    assert code == E_INVALID and "unknown resource type 'colour'" in message
    sdk("create", name, check=0)
    code, message = error_of(sdk("create", name))
    assert code == E_EXISTS and "already exists" in message


def test_lifecycle_is_a_library_call(sdk, fvm, name, tmp_path, apps):
    """create, stop and remove run common/boxlife.c in the client's own process
    (the code fvm.exe's verbs run), not fvm.exe: with a stand-in fvm.exe that
    does nothing of the sort, the box still appears with its policy and
    settings, and goes again."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(apps / "filetool.exe", home / "fvm.exe")      # not FVM: would fail any verb it is given
    policy = tmp_path / "p.ini"
    policy.write_text("[file]\ndeny C:\\libcall\\**\n")
    env = fvm.env({"FVM_HOME": win_path(home)})

    def client(*args):
        return run_captured(["wine", str(sdk.exe), *map(str, args)], env, timeout=60)

    proc = client("create", name, win_path(policy))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    box = fvm.box_dir(name)
    assert (box / "box.ini").is_file() and (box / "policy.ini").read_text() == policy.read_text()
    assert "name=" + name in (box / "box.ini").read_text()
    code, message = error_of(client("create", name))
    assert code == E_EXISTS and "already exists" in message
    assert client("stop", name).returncode == 0
    assert client("remove", name).returncode == 0
    assert not box.exists()
