"""I/O limits (issue 12): io-bandwidth and io-ops held by the broker's token
buckets for all the processes of a box, measured on real copies; fvm set on
a running box; fvm stats' I/O rate; the rate-limited audit of waits.

Reads and writes are limited separately (like cgroup v2's rbps/wbps), so a
copy of N MiB at B MiB/s takes N/B s. Each program measures its own copy
time (QueryPerformanceCounter); the bounds are the issue's 10%."""
import json
import os
import re
import time
import uuid

from conftest import BUILD, win_path

QUOTATOOL = BUILD / "apps" / "quotatool.exe"


def new_box(fvm, *options):
    name = "i" + uuid.uuid4().hex[:8]
    fvm("create", name, *options, check=0)
    return name


def audit_records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def source_file(tmp_path, mib):
    src = tmp_path / f"src{mib}.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for _ in range(mib):
            f.write(block)
    return src


def copy_times(stdout):
    found = re.findall(r"copy_ms=(\d+) bytes=(\d+) who=(\d+)", stdout)
    assert found, stdout
    return [(int(ms), int(n)) for ms, n, _ in found]


def test_io_bandwidth_holds_a_copy(fvm, tmp_path):
    """48 MiB copied at 8 MiB/s: 6 s +- 10%; one audit record, not one per wait."""
    src = source_file(tmp_path, 48)
    name = new_box(fvm, "--io-bandwidth", "8MB/s")
    try:
        proc = fvm("run", "--box", name, str(QUOTATOOL), "copy", win_path(src), win_path(tmp_path / "dst.bin"), "64",
                   check=0, timeout=120)
        [(ms, n)] = copy_times(proc.stdout)
        assert n == 48 << 20, proc.stdout
        assert 5400 <= ms <= 6600, f"48 MiB at 8 MiB/s took {ms} ms"
        io = [r for r in audit_records(fvm, name) if r["op"] == "quota" and r["name"].startswith("io-")]
        assert io and io[0]["decision"] == "throttle" and io[0]["name"].startswith("io-bandwidth 8M/s"), io
        assert io[0]["image"].lower().endswith("quotatool.exe") and io[0]["pid"], io
        # one record per process and limit every 10 s (the copy takes 6 s: reads and writes share it)
        assert len(io) <= 2, io
    finally:
        fvm("rm", "--force", name)


def test_io_ops_holds_small_writes(fvm, tmp_path):
    """600 writes of 512 bytes at 200 ops/s: 3 s +- 10%."""
    name = new_box(fvm, "--io-ops", "200")
    try:
        proc = fvm("run", "--box", name, str(QUOTATOOL), "ops", win_path(tmp_path / "ops.bin"), "600",
                   check=0, timeout=120)
        ms = int(re.search(r"ops_ms=(\d+)", proc.stdout).group(1))
        assert 2700 <= ms <= 3300, f"600 writes at 200/s took {ms} ms"
        io = [r for r in audit_records(fvm, name) if r["op"] == "quota" and r["name"].startswith("io-ops 200/s")]
        assert len(io) == 1, io
    finally:
        fvm("rm", "--force", name)


def test_two_processes_share_the_budget(fvm, tmp_path):
    """Two processes each copy 24 MiB at 8 MiB/s for the box: together 6 s,
    not 3 s each."""
    src = source_file(tmp_path, 24)
    name = new_box(fvm, "--io-bandwidth", "8MB/s")
    try:
        proc = fvm("run", "--box", name, str(QUOTATOOL), "copies", "2", win_path(src), win_path(tmp_path / "dst"),
                   "64", check=0, timeout=120)
        runs = [tuple(map(int, r)) for r in re.findall(r"bytes=(\d+) who=\d+ start=(\d+) end=(\d+)", proc.stdout)]
        assert len(runs) == 2 and all(n == 24 << 20 for n, _, _ in runs), proc.stdout
        span = max(e for _, _, e in runs) - min(s for _, s, _ in runs)
        overlap = min(e for _, _, e in runs) - max(s for _, s, _ in runs)
        # 48 MiB for the box at 8 MiB/s, whatever the second's start delay
        assert 5400 <= span <= 6600, runs
        assert overlap >= 2000, runs   # they did run at once
    finally:
        fvm("rm", "--force", name)


def test_unlimited_box_is_not_slowed(fvm, tmp_path):
    """Without I/O limits the same copy runs at the machine's speed (the
    detour reads one hint; bench/limits.sh measures the ratio)."""
    src = source_file(tmp_path, 48)
    name = new_box(fvm)
    try:
        proc = fvm("run", "--box", name, str(QUOTATOOL), "copy", win_path(src), win_path(tmp_path / "dst.bin"), "64",
                   check=0, timeout=120)
        [(ms, n)] = copy_times(proc.stdout)
        assert n == 48 << 20 and ms < 3000, proc.stdout
        assert not [r for r in audit_records(fvm, name) if r["op"] == "quota"]
    finally:
        fvm("rm", "--force", name)


def test_set_io_limit_on_a_running_box_and_stats(fvm, tmp_path):
    """A reader runs unlimited, and fvm stats shows its rate already (from the
    box's tally); fvm set io-bandwidth=4MB/s holds it to about 4 MiB/s within
    a second or two, and fvm stats shows that rate."""
    src = source_file(tmp_path, 8)
    name = new_box(fvm)
    # 14 s of reading: the steps below ask the broker several times, which
    # in a box on its own server goes through that server (about 0.3 s a
    # question), and with two test workers 9 s ran out before the last.
    bg = fvm.popen("run", "--box", name, str(QUOTATOOL), "reads", win_path(src), "14")
    try:
        def stats():
            proc = fvm("stats", name, "--json")
            return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.startswith("{") else None
        first = fvm.wait_until(lambda: (s := stats()) and s["processes"] >= 1 and s["io_read_bytes_per_s"] > (8 << 20)
                               and s, timeout=30)
        assert first and first["io_measured"] is True and first["io_bandwidth_limit"] == 0, first
        assert first["io_read_bytes"] > (8 << 20), first
        unlimited_table = fvm("stats", name, check=0).stdout
        assert re.search(r"B/s / [0-9.]+\w*/s / -", unlimited_table), unlimited_table
        time.sleep(1.0)
        fvm("set", name, "--io-bandwidth", "4MB/s", check=0)   # fvm create's spelling
        limited = fvm.wait_until(lambda: (s := stats()) and s["io_bandwidth_limit"] == 4 << 20 and s, timeout=10)
        assert limited and limited["io_bandwidth_limit"] == 4 << 20, limited
        # The rate is an average of about a second that decays from the
        # unlimited rate (GiB/s from the page cache): wait for it to settle.
        now = fvm.wait_until(lambda: (s := stats()) and (2 << 20) <= s["io_read_bytes_per_s"] <= (6 << 20) and s,
                             timeout=10)
        assert now, stats()
        table = fvm("stats", name, check=0).stdout
        assert "IO READ / WRITE / LIMIT" in table and "/ 4.0MiB/s" in table, table
        bg.wait(timeout=60)
        seconds = {int(s): int(b) for s, b in re.findall(r"second=(\d+) bytes=(\d+)", bg.output())}
        assert len(seconds) == 14, bg.output()
        assert seconds[1] > 16 << 20, seconds          # unlimited at first
        for s in (12, 13, 14):                         # limited at the end
            assert (3 << 20) <= seconds[s] <= (5 << 20), seconds
    finally:
        fvm("stop", name)
        bg.wait(timeout=60)
        fvm("rm", "--force", name)


def test_a_hostile_program_cannot_lift_its_io_limit(fvm, tmp_path, apps):
    """trustattack.exe tries to make the read-only limits hint writable and
    clear it, and sends forged io requests on the runtime's broker
    connection; its 16 MiB copy at 8 MiB/s still takes 2 s."""
    src = source_file(tmp_path, 16)
    name = new_box(fvm, "--io-bandwidth", "8MB/s")
    try:
        out = fvm("run", "--box", name, win_path(apps / "trustattack.exe"), "iolimit", win_path(src),
                  win_path(tmp_path / "dst.bin"), check=0, timeout=120).stdout
        found = re.search(r"unlocked (\d+) sent (\d+) copy_ms=(\d+)", out)
        assert found, out
        assert found.group(1) == "0", out                # no read-only view became writable
        assert int(found.group(2)) >= 1, out             # the forged requests reached the broker
        assert int(found.group(3)) >= 1800, out          # still 8 MiB/s, not faster
        stats = fvm("stats", name, "--json")             # the box has ended: no stats, and no crash
        assert stats.returncode != 0 or stats.stdout.startswith("{"), stats
    finally:
        fvm("rm", "--force", name)


def test_io_limit_and_storage_quota_together(fvm, tmp_path):
    """The write hook serves both: a 2 MiB copy in a 1 MiB box at 4 MiB/s
    stops at the quota (ERROR_DISK_FULL) and is throttled until then."""
    src = source_file(tmp_path, 2)
    name = new_box(fvm, "--quota", "1M", "--io-bandwidth", "4MB/s")
    try:
        out = fvm("run", "--box", name, str(QUOTATOOL), "copy", win_path(src), win_path(tmp_path / "dst.bin"), "64",
                  check=1, timeout=120).stdout
        assert "write failed error=112" in out, out
        assert not (tmp_path / "dst.bin").exists()
        io = [r for r in audit_records(fvm, name) if r["op"] == "quota" and r["name"].startswith("io-bandwidth")]
        assert io, audit_records(fvm, name)
    finally:
        fvm("rm", "--force", name)
