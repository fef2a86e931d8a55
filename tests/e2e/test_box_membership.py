"""Every process in a box's job runs the runtime (issue 20.2).

A console program started with `start` gets a new console, and Wine's
kernelbase used to start conhost.exe for it before the program's runtime
was up: an unboxed conhost.exe in the box's job that wrote about 30 values
under HKCU\\Console on the host. Now the runtime allocates the console once
hooked, so conhost.exe is boxed and its writes land in the box. Behind that,
the broker checks every new member of the job and stops (and audits) one
that does not run fvm.dll."""
import json
import time

from conftest import run_unboxed, win_path


def host_console_key():
    proc = run_unboxed("reg", "query", "HKCU\\Console")
    return proc.stdout if proc.returncode == 0 else None


def audit_records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_start_of_a_console_program_leaves_host_console_key_alone(fvm, box, apps, xvfb):
    # An unboxed conhost.exe writes HKCU\Console when it has a display: start
    # from a host without the key, so any write shows.
    run_unboxed("reg", "delete", "HKCU\\Console", "/f")
    assert host_console_key() is None
    proc = fvm("run", "--box", box, "cmd", "/c", "start", "/wait", win_path(apps / "spawn.exe"), "exit", "4")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    proc = fvm("run", "--box", box, win_path(apps / "spawn.exe"), "create", "cmd", "/c", "start", "/wait",
               win_path(apps / "probe.exe"), "exit", "5")
    assert "spawn: exit=5" in proc.stdout, proc.stdout + proc.stderr
    assert host_console_key() is None, "conhost.exe wrote the host registry"
    # The console host ran boxed: what it wrote is the box's.
    diff = fvm.wait_until(lambda: "HKEY_CURRENT_USER\\Console\\" in fvm("diff", box).stdout, timeout=10)
    assert diff, fvm("diff", box).stdout
    assert not any(r["op"] == "unboxed-member" for r in audit_records(fvm, box)), audit_records(fvm, box)


def test_a_process_in_the_job_without_the_runtime_is_stopped(fvm, host_box, apps):
    """jobtool.exe, run on the host, puts itself into the box's job: the
    broker must find it unboxed, terminate it and audit the case, while the
    box's own (boxed) process goes on. (A box with its own server: its job
    is not there for a host program to open, test_own_server.py.)"""
    box = host_box
    runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "sleep", "20000")
    try:
        assert fvm.wait_until(lambda: (fvm.box_dir(box) / "audit.head").exists() or
                              "probe" in fvm("ps", box).stdout, timeout=20)
        start = time.time()
        box_path = fvm.root_win + "\\boxes\\" + box
        proc = run_unboxed(apps / "jobtool.exe", "join", box_path, timeout=60)
        assert "joined" in proc.stdout, proc.stdout + proc.stderr
        assert "survived" not in proc.stdout
        assert time.time() - start < 15
        assert fvm.wait_until(lambda: any(r["op"] == "unboxed-member" and r["decision"] == "deny" and
                                          r["image"].lower().endswith("jobtool.exe")
                                          for r in audit_records(fvm, box)), timeout=10), audit_records(fvm, box)
        assert runner.poll() is None, "the box's boxed process was stopped too"
    finally:
        fvm("stop", box)
        runner.wait(timeout=30)


def test_fvm_exe_started_in_a_box_counts_against_the_process_quota(fvm, apps):
    """The broker does not count fvm run's launcher (fvm.exe __start, whose
    parent is the unboxed fvm.exe) against the box's process quota. A boxed
    program that starts fvm.exe itself, as that launcher made to wait 30 s,
    gets counted processes like any other: with `--procs 3`, at most two
    besides itself are alive at once."""
    import uuid
    name = "q" + uuid.uuid4().hex[:8]
    fvm("create", name, "--procs", "3", check=0)
    try:
        proc = fvm("run", "--box", name, win_path(apps / "spawn.exe"), "launchers", "6", win_path(fvm.exe),
                   win_path(apps / "spawn.exe"), "exit", "0", check=0, timeout=120)
        alive = [l for l in proc.stdout.splitlines() if l.startswith("alive=")]
        assert alive and int(alive[0][6:]) <= 2, proc.stdout + proc.stderr
    finally:
        fvm("rm", "--force", name)


def test_the_desktop_process_is_started_outside_the_box(fvm, box, apps, xvfb):
    """Wine's desktop process (explorer.exe /desktop) is started by the first
    process that needs a window, below the hooks: started by a boxed program
    it was an unboxed member of the box's job (stopped by the guard; seen once
    in a full run). The broker starts it first, outside the job. Note: this
    test did not reproduce that failure without the broker's part (the
    killed desktop was not restarted from the box here); it checks that a
    box creates windows after the desktop process was ended, with no
    unboxed member."""
    run_unboxed("taskkill", "/f", "/im", "explorer.exe")   # no desktop process now
    proc = fvm("run", "--box", box, win_path(apps / "wintool.exe"), "window", "FvmBoxDesktop", "probe",
               "--timeout", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    time.sleep(1)   # the guard's first look is 10 ms after a member appears
    assert not any(r["op"] == "unboxed-member" for r in audit_records(fvm, box)), audit_records(fvm, box)
