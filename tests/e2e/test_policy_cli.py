"""The policy and audit verbs of fvm.exe: `policy check`, `policy explain`,
`logs` (show, --type, --follow, --verify).

Policies are read by the same loader the broker uses (src/common/policyload.c),
so these tests also cover includes relative to the including file, shipped
templates next to fvm.exe, environment variables and the user's SID.

Audit logs are built with the hidden `fvm __audit-append`, which appends
through the broker's writer (src/common/auditlog.c); the tests then tamper
with the files from Linux and check that --verify names the right line, and
that the writer refuses to extend a tampered log but repairs what a crash
leaves behind."""
import json
import re
import uuid

import pytest

from conftest import BUILD, TOP, win_path

SHIPPED = sorted([TOP / "policy" / "default.ini"] + list((TOP / "policy" / "templates").glob("*.ini")))
DIAG = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning|note): "
                  r"(?P<message>.*)$", re.M)


def diags(text):
    return [m.groupdict() for m in DIAG.finditer(text)]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- policy check ---------------------------------------------------------------

@pytest.mark.parametrize("policy", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_check_clean(fvm, policy):
    proc = fvm("policy", "check", win_path(policy), check=0)
    assert not [d for d in diags(proc.stdout) if d["severity"] != "note"], proc.stdout
    assert re.search(r": ok, \d+ rules \(0 warnings, \d+ notes?\)$", proc.stdout, re.M), proc.stdout
    # make win ships the same files next to fvm.exe, where `template` reads them.
    shipped_copy = BUILD / "policy" / policy.relative_to(TOP / "policy")
    assert shipped_copy.read_bytes() == policy.read_bytes()


def test_check_good_policy_with_includes_templates_and_variables(fvm, tmp_path):
    write(tmp_path / "common" / "shared.ini", "[file]\ndeny C:\\Secret\\**\ninclude ..\\net.ini\n")
    write(tmp_path / "net.ini", "[memory]\ndeny capture\n")
    box = write(tmp_path / "box.ini", "\n".join([
        "template default",
        "template untrusted",
        "include common/shared.ini",
        "[vars]",
        "DATA = D:\\Shared Data",
        "[group:office]",
        "winword.exe",
        "[file]",
        "deny audit %USERPROFILE%\\Documents\\*.kdbx",
        "@office: read %DATA%\\**",
        "acct.exe: open %APPDATA%\\Acct\\**",
        "read %SystemRoot%\\Fonts\\**",
        "[key]",
        "read HKCU\\Software\\Acct\\**",
        "[object]",
        "open Local\\AcctMutex",
        "",
    ]))
    proc = fvm("policy", "check", win_path(box), check=0)
    found = diags(proc.stdout)
    # A reserved type ([memory]) draws a note, named by the file relative to the policy's folder.
    assert [(d["file"], d["line"], d["severity"]) for d in found] == [("net.ini", "1", "note")], proc.stdout
    assert "not enforced yet" in found[0]["message"]
    assert re.search(r"box\.ini: ok, \d+ rules \(0 warnings, 1 note\)$", proc.stdout, re.M), proc.stdout


def test_check_reports_every_error_with_file_line_and_column(fvm, tmp_path):
    write(tmp_path / "sub" / "inc.ini", "[file]\ndeny C:\\ok\nread C:\\a**b\n")
    bad = write(tmp_path / "bad.ini", "\n".join([
        "[file]",                        # 1
        "deny %USERPRFILE%\\x",          # 2: unknown variable, at the %
        "frob C:\\x",                    # 3: unknown action
        "[nope]",                        # 4: unknown section
        "include sub\\inc.ini",          # 5: its line 3 has a bad pattern
        "include missing.ini",           # 6: unreadable include
        "template no-such-template",     # 7: unknown template
        "[file]",
        "@nogroup: deny C:\\y",          # 9: unknown group
        "",
    ]))
    proc = fvm("policy", "check", win_path(bad))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = diags(proc.stdout)
    errors = [(d["file"], int(d["line"]), int(d["column"])) for d in found if d["severity"] == "error"]
    assert ("bad.ini", 2, 6) in errors, proc.stdout
    assert ("bad.ini", 3, 1) in errors, proc.stdout
    assert ("bad.ini", 4, 2) in errors, proc.stdout
    assert ("bad.ini", 6, 9) in errors, proc.stdout
    assert ("bad.ini", 7, 10) in errors, proc.stdout
    assert ("sub\\inc.ini", 3, 6) in errors, proc.stdout
    assert any(f == "bad.ini" and line == 9 for f, line, _ in errors), proc.stdout
    by_line = {(d["file"], int(d["line"])): d["message"] for d in found}
    assert "unknown variable %USERPRFILE%" in by_line[("bad.ini", 2)]
    assert "**" in by_line[("sub\\inc.ini", 3)]
    assert "missing.ini" in by_line[("bad.ini", 6)] and "no such file" in by_line[("bad.ini", 6)]
    assert "no shipped template 'no-such-template'" in by_line[("bad.ini", 7)]
    assert re.search(r"bad\.ini: %d errors, 0 warnings, 0 notes: the policy cannot be used$" % len(errors),
                     proc.stdout, re.M), proc.stdout


def test_check_include_cycle_shows_the_chain(fvm, tmp_path):
    top = write(tmp_path / "top.ini", "include a.ini\n")
    write(tmp_path / "a.ini", "include sub/b.ini\n")
    write(tmp_path / "sub" / "b.ini", "include ../A.INI\n")   # the same file, spelled differently
    proc = fvm("policy", "check", win_path(top))
    assert proc.returncode == 1
    [cycle] = [d for d in diags(proc.stdout) if "include cycle" in d["message"]]
    assert (cycle["file"], cycle["line"]) == ("sub\\b.ini", "1")
    assert "a.ini -> sub\\b.ini -> a.ini" in cycle["message"], proc.stdout


def test_check_file_included_twice_is_read_once(fvm, tmp_path):
    write(tmp_path / "one.ini", "[file]\ndeny C:\\Once\n")
    top = write(tmp_path / "top.ini", "include one.ini\ninclude ONE.ini\ninclude .\\x\\..\\one.ini\n")
    proc = fvm("policy", "check", win_path(top), check=0)
    assert "ok, 1 rule " in proc.stdout, proc.stdout


def test_check_unreadable_policies(fvm, tmp_path):
    missing = fvm("policy", "check", win_path(tmp_path / "missing.ini"))
    assert missing.returncode == 1 and "no such file" in missing.stderr, missing.stderr
    folder = fvm("policy", "check", win_path(tmp_path))
    assert folder.returncode == 1 and "is a folder" in folder.stderr, folder.stderr
    utf16 = tmp_path / "utf16.ini"
    utf16.write_bytes("[file]\r\ndeny C:\\x\r\n".encode("utf-16"))
    proc = fvm("policy", "check", win_path(utf16))
    assert proc.returncode == 1 and "UTF-16" in proc.stdout, proc.stdout
    usage = fvm("policy", "check")
    assert usage.returncode == 2
    assert fvm("policy", "frobnicate").returncode == 2


# ---- policy explain ---------------------------------------------------------------

EXPLAIN_POLICY = "\n".join([
    "template untrusted",
    "[file]",
    "deny audit %USERPROFILE%\\Documents\\*.docx",   # line 3
    "read %USERPROFILE%\\**",                        # line 4
    "excel.exe: open %USERPROFILE%\\**",             # line 5
    "[key]",
    "read HKCU\\Software\\Acct\\**",                 # line 7
    "[object]",
    "open Local\\AcctMutex",                         # line 9
    "",
])


@pytest.fixture
def policy_box(fvm, tmp_path):
    policy = write(tmp_path / "box.ini", EXPLAIN_POLICY)
    name = "pe" + uuid.uuid4().hex[:10]
    fvm("create", name, "--policy", win_path(policy), check=0)
    yield name
    fvm("rm", "--force", name)


def test_explain_most_specific_rule_wins(fvm, policy_box):
    proc = fvm("policy", "explain", policy_box, "%USERPROFILE%\\Documents\\report.docx", "--program", "notepad.exe",
               check=0)
    out = proc.stdout
    assert re.search(r"^policy: .*\\boxes\\%s\\policy\.ini$" % policy_box, out, re.M), out
    assert re.search(r"^file \\\?\?\\C:\\.*\\Documents\\report\.docx$", out, re.M), out
    assert "program: notepad.exe" in out
    assert "decision: deny, audited" in out
    assert re.search(r"^  by policy\.ini:3:1  deny audit %USERPROFILE%\\Documents\\\*\.docx$", out, re.M), out
    beaten = out.split("it beat:")[1].split("also matching")[0]
    assert "templates\\untrusted.ini:" in beaten and "hide audit %USERPROFILE%\\Documents\\**" in beaten, out
    assert "policy.ini:4:1  read %USERPROFILE%\\**" in beaten
    assert "lost at step 2, more literal characters" in beaten
    others = out.split("also matching, but scoped to other programs:")[1]
    assert "policy.ini:5:1  open excel.exe: %USERPROFILE%\\**" in others


def test_explain_program_scope_beats_specific_patterns(fvm, policy_box):
    out = fvm("policy", "explain", policy_box, "%USERPROFILE%\\Documents\\report.docx",
              "--program", "C:\\Tools\\EXCEL.EXE", check=0).stdout
    assert "decision: open, not audited" in out
    assert "by policy.ini:5:1  open excel.exe: %USERPROFILE%\\**" in out
    assert "lost at step 1, narrower program scope" in out
    assert "also matching" not in out


def test_explain_keys_objects_and_defaults(fvm, policy_box):
    key = fvm("policy", "explain", policy_box, "HKCU\\Software\\Acct\\Settings", "--type", "key", check=0).stdout
    assert re.search(r"^key \\REGISTRY\\USER\\S-1-[0-9-]+\\Software\\Acct\\Settings$", key, re.M), key
    assert "decision: read, not audited" in key and "by policy.ini:7:1" in key
    obj = fvm("policy", "explain", policy_box, "Local\\AcctMutex", "--type", "object", check=0).stdout
    assert re.search(r"^object \\Sessions\\\d+\\BaseNamedObjects\\AcctMutex$", obj, re.M), obj
    assert "decision: open" in obj and "by policy.ini:9:1" in obj
    default = fvm("policy", "explain", policy_box, "C:\\Windows\\win.ini", check=0).stdout
    assert "decision: cow, not audited" in default and "no rule matches" in default
    # Any spelling a rule could use: the same canonical name.
    other = fvm("policy", "explain", policy_box, "c:/windows/./x/../WIN.INI", check=0).stdout
    assert "file \\??\\c:\\windows\\win.ini\n" in other.lower(), other


def test_explain_box_without_policy_uses_the_shipped_default(fvm, box):
    out = fvm("policy", "explain", box, "HKLM\\SAM\\SAM\\Domains", "--type", "key", check=0).stdout
    assert re.search(r"^policy: .*\\policy\\default\.ini$", out, re.M), out
    assert "decision: deny, audited" in out
    assert re.search(r"by default\.ini:\d+:1  deny audit HKLM\\SAM\\\*\*", out), out


def test_explain_errors(fvm, box, tmp_path):
    missing = fvm("policy", "explain", "nosuchbox", "C:\\x")
    assert missing.returncode == 1 and "no box named 'nosuchbox'" in missing.stderr
    relative = fvm("policy", "explain", box, "relative\\x")
    assert relative.returncode == 1 and "is not a file name" in relative.stderr
    assert fvm("policy", "explain", box, "C:\\x", "--type", "nonsense").returncode == 2
    assert fvm("policy", "explain", box).returncode == 2
    # A box whose policy has errors (edited after create, which refuses a
    # broken one): they are shown, nothing is explained.
    good = write(tmp_path / "good.ini", "[file]\n")
    fvm("create", "pebroken", "--policy", win_path(good), check=0)
    (fvm.box_dir("pebroken") / "policy.ini").write_text("[file]\ndeny %NOPE%\\x\n")
    try:
        proc = fvm("policy", "explain", "pebroken", "C:\\x")
        assert proc.returncode == 1
        assert "policy.ini:2:6: error: unknown variable %NOPE%" in proc.stderr, proc.stderr
        assert "cannot be used" in proc.stderr
    finally:
        fvm("rm", "pebroken")


# ---- logs -----------------------------------------------------------------------------

def append(fvm, box, type_, op, decision, *names, rule="policy.ini:3"):
    return fvm("__audit-append", box, type_, op, decision, *names, "--rule", rule, check=0)


def log_path(fvm, box):
    return fvm.box_dir(box) / "audit.jsonl"


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def logged_box(fvm, box):
    """A box with five records: file, key, file, object, file."""
    append(fvm, box, "file", "open", "deny", "\\??\\C:\\Data\\a.docx")
    append(fvm, box, "key", "open", "read", "\\REGISTRY\\MACHINE\\SOFTWARE\\X", rule="policy.ini:7")
    append(fvm, box, "file", "create", "hide", "\\??\\C:\\Users\\me\\.ssh\\id_rsa", "\\??\\C:\\Data\\b.docx")
    append(fvm, box, "object", "open", "open", "\\BaseNamedObjects\\Mutex \"quoted\"", rule="default")
    return box


def test_logs_missing_log(fvm, box):
    for args in ([], ["--verify"], ["--type", "file"]):
        proc = fvm("logs", box, *args, check=0)
        assert proc.stdout.strip() == "no audit records yet", args
    assert fvm("logs", "nosuchbox").returncode == 1
    assert fvm("logs").returncode == 2
    assert fvm("logs", box, "--type", "bogus").returncode == 2


def test_logs_prints_records(fvm, logged_box):
    out = fvm("logs", logged_box, check=0).stdout
    recs = records(out)
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert [r["type"] for r in recs] == ["file", "key", "file", "file", "object"]
    assert recs[0]["name"] == "\\??\\C:\\Data\\a.docx" and recs[0]["decision"] == "deny"
    assert recs[0]["rule"] == "policy.ini:3" and recs[0]["box"] == logged_box
    assert recs[4]["name"] == "\\BaseNamedObjects\\Mutex \"quoted\""
    assert recs[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(recs, recs[1:]))
    # Printed exactly as stored.
    assert out.splitlines() == log_path(fvm, logged_box).read_text().splitlines()


def test_logs_type_filter(fvm, logged_box):
    files = records(fvm("logs", logged_box, "--type", "file", check=0).stdout)
    assert [r["seq"] for r in files] == [1, 3, 4]
    keys = records(fvm("logs", logged_box, "--type", "key", check=0).stdout)
    assert [r["seq"] for r in keys] == [2]
    assert fvm("logs", logged_box, "--type", "net", check=0).stdout.strip() == ""


def test_logs_verify_ok(fvm, logged_box):
    proc = fvm("logs", logged_box, "--verify", check=0)
    assert proc.stdout.strip() == "audit log OK: 5 records, last seq 5"
    head = json.loads((fvm.box_dir(logged_box) / "audit.head").read_text())
    assert head["seq"] == 5 and head["hash"] == records(log_path(fvm, logged_box).read_text())[-1]["hash"]


def verify_failure(fvm, box):
    proc = fvm("logs", box, "--verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    prefix = "fvm: the audit log of box '%s' does not verify: " % box
    assert proc.stderr.startswith(prefix), proc.stderr
    return proc.stderr[len(prefix):].strip()


def lines_of(fvm, box):
    return log_path(fvm, box).read_bytes().split(b"\n")[:-1]


def rewrite(fvm, box, lines, end=b"\n"):
    log_path(fvm, box).write_bytes(b"\n".join(lines) + end)


def test_verify_finds_an_edited_record(fvm, logged_box):
    lines = lines_of(fvm, logged_box)
    lines[2] = lines[2].replace(b"\"decision\":\"hide\"", b"\"decision\":\"open\"")
    rewrite(fvm, logged_box, lines)
    assert verify_failure(fvm, logged_box) == "line 3: hash mismatch (edited?)"


def test_verify_finds_a_deleted_record(fvm, logged_box):
    lines = lines_of(fvm, logged_box)
    del lines[1]
    rewrite(fvm, logged_box, lines)
    assert verify_failure(fvm, logged_box) == \
        "line 2: sequence jumps from 1 to 3 (records deleted or inserted)"


def test_verify_finds_an_inserted_record(fvm, logged_box):
    lines = lines_of(fvm, logged_box)
    lines.insert(3, lines[1])   # a copy of record 2 after record 3
    rewrite(fvm, logged_box, lines)
    assert verify_failure(fvm, logged_box) == \
        "line 4: sequence jumps from 3 to 2 (records deleted or inserted)"


def test_verify_finds_a_record_that_is_not_json(fvm, logged_box):
    lines = lines_of(fvm, logged_box)
    lines[1] = lines[1][:40]
    rewrite(fvm, logged_box, lines)
    assert verify_failure(fvm, logged_box).startswith("line 2: not valid JSON at column")


def test_verify_finds_a_cut_last_line(fvm, logged_box):
    path = log_path(fvm, logged_box)
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    assert verify_failure(fvm, logged_box) == "truncated: last line incomplete (line 5)"


@pytest.mark.parametrize("removed", [1, 2, 5])
def test_verify_finds_records_removed_from_the_end(fvm, logged_box, removed):
    lines = lines_of(fvm, logged_box)
    rewrite(fvm, logged_box, lines[:5 - removed], end=b"\n" if removed < 5 else b"")
    assert verify_failure(fvm, logged_box) == (
        "truncated: the log ends at record %d but the head says 5 (records removed from the end)" % (5 - removed))


def test_verify_finds_a_deleted_log_or_head(fvm, logged_box):
    head = fvm.box_dir(logged_box) / "audit.head"
    saved = head.read_bytes()
    head.unlink()
    assert verify_failure(fvm, logged_box).startswith("audit.head is missing")
    head.write_bytes(saved)
    log_path(fvm, logged_box).unlink()
    assert verify_failure(fvm, logged_box) == \
        "truncated: the log ends at record 0 but the head says 5 (records removed from the end)"
    head.write_text("garbage\n")
    assert verify_failure(fvm, logged_box).startswith("audit.head is damaged")


def test_writer_refuses_to_extend_a_tampered_log(fvm, logged_box):
    lines = lines_of(fvm, logged_box)
    del lines[2]
    rewrite(fvm, logged_box, lines)
    before = log_path(fvm, logged_box).read_bytes()
    proc = fvm("__audit-append", logged_box, "file", "open", "deny", "C:\\x")
    assert proc.returncode == 1
    assert "does not verify (line 3: sequence jumps from 2 to 4" in proc.stderr, proc.stderr
    assert log_path(fvm, logged_box).read_bytes() == before
    assert verify_failure(fvm, logged_box).startswith("line 3: sequence jumps")


def test_writer_resumes_after_stopping_between_log_and_head(fvm, logged_box):
    head = fvm.box_dir(logged_box) / "audit.head"
    old_head = head.read_bytes()
    append(fvm, logged_box, "file", "open", "deny", "C:\\six")
    head.write_bytes(old_head)   # as if the writer died before replacing the head
    assert verify_failure(fvm, logged_box).startswith("line 6: record 6 is past the head (5)")
    append(fvm, logged_box, "file", "open", "deny", "C:\\seven")
    assert fvm("logs", logged_box, "--verify", check=0).stdout.strip() == "audit log OK: 7 records, last seq 7"


def test_writer_cuts_a_half_written_record_past_the_head(fvm, logged_box):
    path = log_path(fvm, logged_box)
    with path.open("ab") as f:
        f.write(b'{"seq":6,"time":"2025-')   # died mid-write: the head still says 5
    assert verify_failure(fvm, logged_box) == "truncated: last line incomplete (line 6)"
    append(fvm, logged_box, "key", "open", "read", "\\REGISTRY\\MACHINE\\X")
    assert fvm("logs", logged_box, "--verify", check=0).stdout.strip() == "audit log OK: 6 records, last seq 6"
    assert [r["seq"] for r in records(path.read_text())] == [1, 2, 3, 4, 5, 6]


def test_writer_refuses_to_cut_a_record_the_head_covers(fvm, logged_box):
    path = log_path(fvm, logged_box)
    path.write_bytes(path.read_bytes()[:-10])
    proc = fvm("__audit-append", logged_box, "file", "open", "deny", "C:\\x")
    assert proc.returncode == 1 and "does not verify" in proc.stderr, proc.stderr


def test_logs_follow_prints_records_as_they_come(fvm, box):
    append(fvm, box, "file", "open", "deny", "C:\\first")
    follower = fvm.popen("logs", box, "--follow-seconds", "8")
    try:
        assert fvm.wait_until(lambda: "first" in follower.output(), timeout=20), follower.output()
        append(fvm, box, "key", "open", "read", "\\REGISTRY\\MACHINE\\SECOND")
        append(fvm, box, "file", "delete", "deny", "C:\\third")
        assert fvm.wait_until(lambda: "third" in follower.output(), timeout=20), follower.output()
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
    assert [r["seq"] for r in records(follower.output())] == [1, 2, 3]


def test_logs_follow_with_type_waits_for_the_log(fvm, box):
    follower = fvm.popen("logs", box, "--follow-seconds", "8", "--type", "key")
    try:
        # Wine takes a moment to start the follower; the log does not exist yet either way.
        assert fvm.wait_until(lambda: follower.poll() is None, timeout=5)
        append(fvm, box, "file", "open", "deny", "C:\\one")
        append(fvm, box, "key", "open", "read", "\\REGISTRY\\MACHINE\\TWO")
        assert fvm.wait_until(lambda: "TWO" in follower.output(), timeout=20), follower.output()
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
    assert [(r["seq"], r["type"]) for r in records(follower.output())] == [(2, "key")]
