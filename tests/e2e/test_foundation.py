"""Foundation: the fvm CLI, box lifecycle, injection into every boxed process.

probe.exe (tests/apps/probe.c) prints one status line per process telling
whether fvm.dll's hooks were active already in the DllMain of its static
import, in its TLS callback and in main, and its box name. Every test here
also has a control: the same probe run outside any box must say "unhooked"."""
import re
import time

import pytest

from conftest import Background, run_unboxed, win_path

PROBE_LINE = re.compile(r"probe pid=(\d+) ppid=(\d+) box=(\S+) dllmain=(\w+) tls=(\w+) main=(\w+)")


def probes(text):
    return [dict(zip(("pid", "ppid", "box", "dllmain", "tls", "main"), m.groups()))
            for m in PROBE_LINE.finditer(text)]


def assert_all_hooked(lines, box, count):
    assert len(lines) == count, lines
    for line in lines:
        assert line["box"] == box, line
        assert (line["dllmain"], line["tls"], line["main"]) == ("hooked", "hooked", "hooked"), line


def test_probe_unboxed_is_unhooked(apps):
    out = run_unboxed(apps / "probe.exe").stdout
    [line] = probes(out)
    assert (line["box"], line["dllmain"], line["tls"], line["main"]) == ("-", "unhooked", "unhooked", "unhooked")


def test_probe_hooked_before_any_program_code(fvm, box, apps):
    proc = fvm("run", "--box", box, win_path(apps / "probe.exe"), check=0)
    assert_all_hooked(probes(proc.stdout), box, 1)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cmd_chain(fvm, box, apps, depth):
    chain = ["cmd", "/c"] * depth
    proc = fvm("run", "--box", box, *chain, win_path(apps / "probe.exe"), "exit", "9")
    assert proc.returncode == 9, proc.stderr
    assert_all_hooked(probes(proc.stdout), box, 1)


def test_createprocess_chain(fvm, box, apps):
    proc = fvm("run", "--box", box, win_path(apps / "probe.exe"), "spawn", "3", check=0)
    lines = probes(proc.stdout)
    assert_all_hooked(lines, box, 4)
    for parent, child in zip(lines, lines[1:]):
        assert child["ppid"] == parent["pid"]


def test_child_created_suspended_by_the_app(fvm, box, apps):
    proc = fvm("run", "--box", box, win_path(apps / "probe.exe"), "suspended")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert_all_hooked(probes(proc.stdout), box, 2)


def test_system_call_through_cmd(fvm, box, apps):
    proc = fvm("run", "--box", box, win_path(apps / "probe.exe"), "system",
               win_path(apps / "probe.exe"), "exit", "3")
    assert proc.returncode == 3, proc.stderr
    assert_all_hooked(probes(proc.stdout), box, 2)


def test_run_passes_exit_code(fvm, box):
    assert fvm("run", "--box", box, "cmd", "/c", "exit", "7").returncode == 7
    assert fvm("run", "--box", box, "--", "cmd", "/c", "exit 0").returncode == 0


def test_run_passes_stdin_and_quoting(fvm, box):
    proc = fvm("run", "--box", box, "cmd", "/c", "set /p X= & echo got [%X%]", input="hello box\n", check=0)
    assert "got [hello box]" in proc.stdout


def test_start_timing_prints_each_phase_of_each_boxed_process(fvm, box):
    """FVM_START_TIMING=1: every boxed process prints one line of its
    start-up phases (thread block, published section, policy, floor, index, each virtualizer,
    hooks); without it, nothing."""
    proc = fvm("run", "--box", box, "cmd", "/c", "cmd /c exit 0", env={"FVM_START_TIMING": "1"})
    lines = [line for line in proc.stderr.splitlines() if "start-up phases (us):" in line]
    assert len(lines) >= 2, proc.stderr   # the outer cmd and the inner one
    for line in lines:
        phases = line.split(":", 2)[2].split()
        assert len(phases) >= 5 + 15 + 1 and all(p.isdigit() for p in phases), line
    quiet = fvm("run", "--box", box, "cmd", "/c", "exit 0")
    assert "start-up phases" not in quiet.stderr


def test_default_box_created_on_first_use(fvm):
    assert not fvm.box_dir("default").exists()
    fvm("run", "cmd", "/c", "exit 0", check=0)
    assert (fvm.box_dir("default") / "box.ini").exists()
    fvm("rm", "--force", "default", check=0)


def test_run_unknown_box_is_an_error(fvm):
    proc = fvm("run", "--box", "nosuchbox", "cmd", "/c", "exit 0")
    assert proc.returncode == 1
    assert "no box named 'nosuchbox'" in proc.stderr


def test_create_list_rm(fvm):
    fvm("create", "lifecycle", check=0)
    folder = fvm.box_dir("lifecycle")
    weight = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert weight < 16 * 1024, f"a fresh box weighs {weight} bytes"
    listing = fvm("list", check=0).stdout
    assert re.search(r"^lifecycle\s+stopped\s+0\s+\d+$", listing, re.M), listing
    again = fvm("create", "lifecycle")
    assert again.returncode == 1 and "already exists" in again.stderr
    fvm("rm", "lifecycle", check=0)
    assert not folder.exists()
    assert "lifecycle" not in fvm("list", check=0).stdout
    missing = fvm("rm", "lifecycle")
    assert missing.returncode == 1 and "no box named" in missing.stderr


def test_create_with_policy_file(fvm, tmp_path):
    policy = tmp_path / "p.ini"
    policy.write_text("[file]\n")
    fvm("create", "withpolicy", "--policy", win_path(policy), check=0)
    assert (fvm.box_dir("withpolicy") / "policy.ini").read_text() == "[file]\n"
    fvm("rm", "withpolicy", check=0)
    bad = fvm("create", "withpolicy2", "--policy", win_path(tmp_path / "missing.ini"))
    assert bad.returncode == 1 and "cannot read policy file" in bad.stderr
    assert not fvm.box_dir("withpolicy2").exists()


@pytest.mark.parametrize("name,message", [
    ("..", "relative folder reference"),
    ("a\\b", "path separator"),
    ("a/b", "path separator"),
    ("CON", "reserved Windows device name"),
    ("lpt1.x", "reserved Windows device name"),
    ("x" * 33, "too long"),
    ("bad name", "not allowed at position 4"),
])
def test_bad_box_names_are_refused(fvm, name, message):
    proc = fvm("create", name)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not (fvm.root / "boxes").exists() or not any(
        p.name.lower() == name.lower() for p in (fvm.root / "boxes").iterdir())


def ps_rows(fvm, box):
    rows = []
    for line in fvm("ps", box, check=0).stdout.splitlines()[1:]:
        name, pid, ppid, image = line.split(None, 3)
        rows.append({"box": name, "pid": pid, "ppid": ppid, "image": image})
    return rows


def test_ps_lists_the_tree_and_stop_ends_a_spawning_box(fvm, box, apps):
    """probe.exe chain keeps growing a chain of processes and respawns a child
    that dies: fvm stop must still end every one of them."""
    runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "chain", "30")
    try:
        # The chain keeps changing (a child dies and is respawned), so a
        # listing may catch a process between its listing and its image
        # lookup ("?"), or a child whose parent has just died: wait for a
        # consistent snapshot rather than judge a torn one.
        def tree(rows):
            pids = {r["pid"] for r in rows}
            roots = [r for r in rows if r["ppid"] not in pids]
            ok = (len(rows) >= 4 and len(roots) == 1 and
                  all(r["box"] == box and r["image"].lower().endswith("probe.exe") for r in rows))
            return rows if ok else None
        # A tree: exactly one root whose parent is outside the box (fvm.exe),
        # every other process's parent is in the box.
        rows = fvm.wait_until(lambda: tree(ps_rows(fvm, box)), timeout=30)
        assert rows, ps_rows(fvm, box)
        listing = fvm("list", check=0).stdout
        assert re.search(rf"^{box}\s+running\s+\d+", listing, re.M), listing
        refused = fvm("rm", box)
        assert refused.returncode == 1 and "is running" in refused.stderr
        stop = fvm("stop", box, check=0)
        assert "stopped box" in stop.stdout
        assert ps_rows(fvm, box) == []
        runner.wait(timeout=30)
        time.sleep(1.0)
        assert ps_rows(fvm, box) == [], "the chain came back after stop"
    finally:
        if runner.poll() is None:
            runner.kill()


def test_stop_while_processes_start_leaves_wine_standing(fvm, box, apps):
    """probe.exe storm starts processes without pause, so a stop always
    finds one Wine has created but not started. Wine 8's server crashes when
    such a process is terminated (it takes the first thread of a process
    that has none), taking every Wine process with it: fvm stop must leave
    it for a later round. A host program started first must outlive five
    stops."""
    sentinel = Background(["wine", str(apps / "probe.exe"), "sleep", "300000"], fvm.env())
    try:
        for _ in range(5):
            runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "storm")
            try:
                assert fvm.wait_until(lambda: len(ps_rows(fvm, box)) >= 2, timeout=30), ps_rows(fvm, box)
                stop = fvm("stop", box, check=0)
                assert "stopped box" in stop.stdout
                runner.wait(timeout=30)
                assert ps_rows(fvm, box) == []
            finally:
                if runner.poll() is None:
                    runner.kill()
            assert sentinel.poll() is None, "a host program died with the stop: " + sentinel.errors()
    finally:
        sentinel.kill()


def test_ps_lists_a_box_restarted_right_after_it_ended(fvm, box, apps):
    """`fvm run A; fvm run B` back to back: the second run's broker may open
    the job the first one left (still held while the first run's processes
    are torn down), and a job takes one completion port only. The broker
    reads the job's own process list, so `fvm ps` still shows B."""
    for _ in range(2):
        fvm("run", "--box", box, "cmd", "/c", "echo", "hi")
        runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "sleep", "60000")
        try:
            assert fvm.wait_until(lambda: any("probe.exe" in row["image"] for row in ps_rows(fvm, box)), timeout=20), \
                fvm("ps", box).stdout
        finally:
            fvm("stop", box, check=0)
            runner.wait(timeout=30)


def test_rm_force_stops_a_running_box(fvm, apps):
    fvm("create", "forced", check=0)
    runner = fvm.popen("run", "--box", "forced", win_path(apps / "probe.exe"), "sleep", "60000")
    try:
        assert fvm.wait_until(lambda: ps_rows(fvm, "forced"), timeout=20)
        fvm("rm", "--force", "forced", check=0)
        assert not fvm.box_dir("forced").exists()
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()


def test_unknown_command_and_usage(fvm):
    proc = fvm("frobnicate")
    assert proc.returncode == 2 and "unknown command" in proc.stderr
    proc = fvm("run", "--box")
    assert proc.returncode == 2 and "--box needs a box name" in proc.stderr
    proc = fvm("create", "x", "--quota")
    assert proc.returncode == 2 and "--quota needs a value" in proc.stderr
    fvm("create", "usage", check=0)
    proc = fvm("run", "--box", "usage", "nonexistent-program.exe")
    fvm("rm", "usage", check=0)
    assert proc.returncode == 1 and "cannot start 'nonexistent-program.exe'" in proc.stderr
    assert "usage: fvm" in fvm("help", check=0).stdout
    assert fvm("run").returncode == 2


def test_doctor_reports_measured_facts(fvm):
    out = fvm("doctor", check=0).stdout
    assert "platform: Windows" in out
    # Measured under Wine 8 (docs/wine-platform.md): kill-on-close works,
    # the active-process limit is accepted and ignored.
    assert re.search(r"job: kill on close\s+enforced", out), out
    assert re.search(r"job: active process limit\s+(accepted, NOT enforced|enforced)", out), out
    assert "injection before any program code" in out


def test_a_process_that_cannot_be_boxed_does_not_run(fvm, box, apps, tmp_path):
    """fvm.exe next to a broken fvm.dll: injection is arranged but the loader
    cannot initialise the runtime, so the program must not run at all."""
    import shutil
    for name in ("fvm.exe", "fvm-broker.exe"):
        shutil.copy(fvm.exe.parent / name, tmp_path / name)
    (tmp_path / "fvm.dll").write_bytes(b"MZ" + b"\0" * 200)   # not a loadable image
    fvm.exe = tmp_path / "fvm.exe"
    marker = tmp_path / "ran.txt"
    proc = fvm("run", "--box", box, "cmd", "/c", "echo ran > " + win_path(marker))
    assert proc.returncode != 0
    assert not marker.exists(), "the program ran without its runtime"
    proc = fvm("run", "--box", box, win_path(apps / "probe.exe"))
    assert proc.returncode != 0 and "probe pid=" not in proc.stdout
