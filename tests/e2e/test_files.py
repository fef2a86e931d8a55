"""File virtualization: real programs (Wine's cmd and xcopy, filetool.exe)
change files in a box; the host tree stays byte-identical (hashed before and
after every test) and the box sees what the same commands produce on the
host."""
import hashlib
import pathlib
import shutil
import uuid

import pytest

from conftest import DRIVE_C, Background, run_unboxed, win_path, wine_env

HOST_FILES = {
    "a.txt": b"alpha\r\n",
    "b.txt": b"bravo\r\n",
    "Zed.txt": b"zulu\r\n",
    "sub/inner.txt": b"inner\r\n",
    "sub/deeper/leaf.bin": bytes(range(256)) * 8,
}


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        if p.is_file():
            h.update(p.read_bytes())
        st = p.stat()
        h.update(str((p.is_dir(), st.st_size, int(st.st_mtime))).encode())
    return h.hexdigest()


@pytest.fixture
def host():
    """A host folder C:\\fvmhost\\<id> with known content; asserts at the end
    that nothing in it changed."""
    name = uuid.uuid4().hex[:10]
    root = DRIVE_C / "fvmhost" / name
    for rel, data in HOST_FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    before = tree_digest(root)
    yield "C:\\fvmhost\\" + name, root
    assert tree_digest(root) == before, "the host tree changed"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tool(apps):
    return win_path(apps / "filetool.exe")


def box_copy(fvm, box, host_root, rel=""):
    """Linux path of the box copy of a file under the host fixture."""
    parts = ["drive", "C", "fvmhost", host_root.name] + [p for p in rel.split("/") if p]
    return fvm.box_dir(box).joinpath(*parts)


def cmd(fvm, box, line, check=0):
    return fvm("run", "--box", box, "cmd", "/c", line, check=check)


def test_new_file_lands_in_the_box(fvm, box, host):
    win, root = host
    out = cmd(fvm, box, f"echo hello>{win}\\new.txt& type {win}\\new.txt").stdout
    assert "hello" in out
    assert not (root / "new.txt").exists()
    assert box_copy(fvm, box, root, "new.txt").read_bytes() == b"hello\r\n"


def test_append_copies_up_and_keeps_host(fvm, box, host):
    win, root = host
    out = cmd(fvm, box, f"echo more>>{win}\\a.txt& type {win}\\a.txt").stdout
    assert "alpha" in out and "more" in out
    assert box_copy(fvm, box, root, "a.txt").read_bytes() == b"alpha\r\nmore\r\n"


def test_overwrite_of_host_file(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"echo replaced> {win}\\b.txt")
    assert box_copy(fvm, box, root, "b.txt").read_bytes() == b"replaced\r\n"
    assert "replaced" in cmd(fvm, box, f"type {win}\\b.txt").stdout


def test_persistence_across_runs(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"echo persisted> {win}\\p.txt")
    assert "persisted" in cmd(fvm, box, f"type {win}\\p.txt").stdout


def test_mkdir_and_nested_files(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"mkdir {win}\\newdir\\deep & echo x> {win}\\newdir\\deep\\f.txt")
    assert box_copy(fvm, box, root, "newdir/deep/f.txt").exists()
    out = cmd(fvm, box, f"dir /b {win}\\newdir\\deep").stdout
    assert out.split() == ["f.txt"]


def test_merged_listing_matches_host_semantics(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"echo c> {win}\\c.txt & echo changed> {win}\\b.txt & mkdir {win}\\newdir")
    listing = cmd(fvm, box, f"dir /b {win}").stdout.split()
    assert listing == ["a.txt", "b.txt", "c.txt", "newdir", "sub", "Zed.txt"]
    assert cmd(fvm, box, f"dir /b {win}\\*.txt").stdout.split() == ["a.txt", "b.txt", "c.txt", "Zed.txt"]
    assert cmd(fvm, box, f"dir /b {win}\\?.txt").stdout.split() == ["a.txt", "b.txt", "c.txt"]


def test_listing_through_findfirstfile(fvm, box, host, tool):
    win, root = host
    fvm("run", "--box", box, tool, "write", f"{win}\\sub\\added.txt", "x", check=0)
    out = fvm("run", "--box", box, tool, "list", f"{win}\\sub", check=0).stdout.split()
    assert out == ["OK", ".", "..", "added.txt", "deeper", "inner.txt"]


def test_xcopy_into_the_box(fvm, box, host):
    win, root = host
    proc = cmd(fvm, box, f"xcopy /e /i /q {win}\\sub {win}\\copy")
    assert box_copy(fvm, box, root, "copy/deeper/leaf.bin").read_bytes() == HOST_FILES["sub/deeper/leaf.bin"]
    assert not (root / "copy").exists(), proc.stdout


def test_copy_and_move_of_host_files(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"copy {win}\\a.txt {win}\\a2.txt")
    assert box_copy(fvm, box, root, "a2.txt").read_bytes() == HOST_FILES["a.txt"]
    cmd(fvm, box, f"ren {win}\\a2.txt a3.txt")
    assert box_copy(fvm, box, root, "a3.txt").exists() and not box_copy(fvm, box, root, "a2.txt").exists()


@pytest.mark.parametrize("op,args,check", [
    ("truncate", ["3"], lambda data: data == b"alp"),
    ("setattr", ["1"], None),
    ("settime", [], None),
    ("mmap", ["ALPHA"], lambda data: data.startswith(b"ALPHA")),
])
def test_metadata_and_mapped_writes_copy_up(fvm, box, host, tool, op, args, check):
    win, root = host
    proc = fvm("run", "--box", box, tool, op, f"{win}\\a.txt", *args)
    assert proc.stdout.startswith("OK"), proc.stdout
    copy = box_copy(fvm, box, root, "a.txt")
    assert copy.exists()
    if check:
        assert check(copy.read_bytes())


def test_relative_create_through_directory_handle(fvm, box, host, tool):
    win, root = host
    proc = fvm("run", "--box", box, tool, "relcreate", f"{win}\\sub", "rel.txt", "relative", check=0)
    assert proc.stdout.startswith("OK")
    assert box_copy(fvm, box, root, "sub/rel.txt").read_bytes() == b"relative"


def test_name_queries_report_the_host_path(fvm, box, host, tool):
    win, root = host
    cmd(fvm, box, f"echo x>> {win}\\a.txt")     # a.txt now lives in the box
    final = fvm("run", "--box", box, tool, "finalpath", f"{win}\\a.txt", check=0).stdout.strip()
    assert final == f"OK \\\\?\\{win}\\a.txt|\\Device\\HarddiskVolume1{win[2:]}\\a.txt", final
    names = fvm("run", "--box", box, tool, "names", f"{win}\\a.txt", check=0).stdout.strip()
    assert names == f"OK \\??\\{win}\\a.txt|{win[2:]}\\a.txt", names
    assert "fvm" not in final.lower().replace("fvmhost", "")


def test_box_storage_is_not_reachable_from_inside(fvm, box, tool):
    box_win = fvm.root_win + "\\boxes\\" + box + "\\box.ini"
    proc = fvm("run", "--box", box, tool, "read", box_win)
    assert proc.stdout.startswith("ERR"), proc.stdout
    proc = fvm("run", "--box", box, tool, "write", fvm.root_win + "\\boxes\\other.txt", "x")
    assert proc.stdout.startswith("ERR")
    assert not (fvm.root / "boxes" / "other.txt").exists()


def test_program_sees_same_result_as_on_host(fvm, box, host, tool):
    """The same command sequence run on a scratch copy of the host tree and
    in a box gives the same listing and contents."""
    win, root = host
    script = "echo n> {d}\\n.txt & echo m>> {d}\\a.txt & mkdir {d}\\m & copy {d}\\b.txt {d}\\m\\b.txt >nul & dir /b /s {d}"
    scratch_name = root.name + "-scratch"
    scratch = root.parent / scratch_name
    shutil.copytree(root, scratch)
    try:
        on_host = run_unboxed("cmd", "/c", script.format(d=f"C:\\fvmhost\\{scratch_name}")).stdout
        in_box = cmd(fvm, box, script.format(d=win)).stdout
        assert in_box.replace(win, "ROOT") == on_host.replace(f"C:\\fvmhost\\{scratch_name}", "ROOT")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_delete_host_file_hides_it(fvm, box, host, tool):
    win, root = host
    out = cmd(fvm, box, f"del {win}\\a.txt & dir /b {win} & if exist {win}\\a.txt (echo STILL) else (echo GONE)").stdout
    assert out.split() == ["b.txt", "sub", "Zed.txt", "GONE"]
    # persistent, and the other process of the box sees it too
    assert fvm("run", "--box", box, tool, "attrs", f"{win}\\a.txt").stdout.startswith("ERR GetFileAttributes 2")
    assert (root / "a.txt").exists()


@pytest.mark.parametrize("how", ["delete", "ntdelete", "deleteonclose"])
def test_every_delete_path_leaves_a_tombstone(fvm, box, host, tool, how):
    win, root = host
    target = f"\\??\\{win}\\b.txt" if how == "ntdelete" else f"{win}\\b.txt"
    assert fvm("run", "--box", box, tool, how, target).stdout.startswith("OK")
    assert fvm("run", "--box", box, tool, "read", f"{win}\\b.txt").stdout.startswith("ERR CreateFile 2")


def test_recreate_after_delete(fvm, box, host):
    win, root = host
    out = cmd(fvm, box, f"del {win}\\a.txt & echo again>{win}\\a.txt& type {win}\\a.txt").stdout
    assert out.strip() == "again"
    assert box_copy(fvm, box, root, "a.txt").read_bytes() == b"again\r\n"


def test_rmdir_semantics_in_the_merged_view(fvm, box, host):
    win, root = host
    out = cmd(fvm, box, f"rmdir {win}\\sub && echo REMOVED || echo REFUSED").stdout
    assert "REFUSED" in out, out     # not empty: it has host content
    out = cmd(fvm, box, f"del /q {win}\\sub\\deeper\\leaf.bin & (rmdir {win}\\sub\\deeper && echo REMOVED)"
                        f" & dir /b {win}\\sub").stdout
    assert "REMOVED" in out and out.split()[-1] == "inner.txt", out
    out = cmd(fvm, box, f"rmdir /s /q {win}\\sub & dir /b {win}").stdout
    assert out.split() == ["a.txt", "b.txt", "Zed.txt"]
    assert (root / "sub" / "deeper" / "leaf.bin").exists()


def test_rename_host_folder_with_content(fvm, box, host):
    win, root = host
    out = cmd(fvm, box, f"ren {win}\\sub moved & dir /b /s {win}").stdout
    rel = sorted(line.replace(win, "") for line in out.split())
    assert rel == ["\\Zed.txt", "\\a.txt", "\\b.txt", "\\moved", "\\moved\\deeper", "\\moved\\deeper\\leaf.bin",
                   "\\moved\\inner.txt"]
    assert box_copy(fvm, box, root, "moved/deeper/leaf.bin").read_bytes() == HOST_FILES["sub/deeper/leaf.bin"]


def test_move_file_over_existing_host_file(fvm, box, host, tool):
    win, root = host
    fvm("run", "--box", box, tool, "write", f"{win}\\n.txt", "NEW", check=0)
    assert fvm("run", "--box", box, tool, "move", f"{win}\\n.txt", f"{win}\\b.txt", "replace").stdout.startswith("OK")
    assert fvm("run", "--box", box, tool, "read", f"{win}\\b.txt").stdout.strip() == "OK NEW"
    assert cmd(fvm, box, f"dir /b {win}").stdout.split() == ["a.txt", "b.txt", "sub", "Zed.txt"]


def test_diff_lists_added_changed_deleted(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"echo n>{win}\\new.txt& echo m>>{win}\\a.txt& del {win}\\b.txt & mkdir {win}\\nd"
                  f" & rmdir /s /q {win}\\sub & echo z>{win}\\nd\\z.txt")
    lines = fvm("diff", box, check=0).stdout.splitlines()
    assert lines == [f"C {win}\\a.txt", f"D {win}\\b.txt", f"A {win}\\nd\\", f"A {win}\\nd\\z.txt",
                     f"A {win}\\new.txt", f"D {win}\\sub\\"], lines


def test_discard_throws_the_delta_away(fvm, box, host):
    win, root = host
    cmd(fvm, box, f"echo n>{win}\\new.txt& del {win}\\a.txt")
    assert fvm("diff", box, check=0).stdout.strip()
    assert "discarded" in fvm("discard", box, check=0).stdout
    assert fvm("diff", box, check=0).stdout == ""
    assert cmd(fvm, box, f"dir /b {win}").stdout.split() == ["a.txt", "b.txt", "sub", "Zed.txt"]
    assert (fvm.box_dir(box) / "box.ini").exists()


def test_discard_refuses_a_running_box(fvm, box, apps):
    runner = fvm.popen("run", "--box", box, win_path(apps / "probe.exe"), "sleep", "60000")
    try:
        assert fvm.wait_until(lambda: "probe.exe" in fvm("ps", box).stdout, timeout=20)
        refused = fvm("discard", box)
        assert refused.returncode == 1 and "is running" in refused.stderr
        assert "discarded" in fvm("discard", "--force", box, check=0).stdout
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()


@pytest.fixture
def quota_box(fvm):
    name = "q" + uuid.uuid4().hex[:10]
    fvm("create", name, "--quota", "1M", check=0)
    yield name
    fvm("rm", "--force", name)


def test_quota_refuses_writes_past_the_limit(fvm, quota_box, host, tool):
    win, root = host
    out = cmd(fvm, quota_box, f"{tool} fill {win}\\one.bin 600000 & {tool} fill {win}\\two.bin 600000",
              check=None).stdout
    assert out.splitlines() == ["OK 600000", "ERR WriteFile 112 after 393216"], out   # 112: disk full
    assert box_copy(fvm, quota_box, root, "two.bin").stat().st_size == 393216     # whole writes only
    # deleting gives the bytes back
    out = cmd(fvm, quota_box, f"del {win}\\one.bin & {tool} fill {win}\\three.bin 600000").stdout
    assert out.strip() == "OK 600000", out


def test_quota_counts_writes_through_a_duplicated_handle(fvm, quota_box, host, tool):
    """DuplicateHandle of a box file opened for writing, the original then
    closed: the copy's writes count against the quota like the original's
    (the handle registry's duplicate callback; copies were once untracked)."""
    win, root = host
    out = fvm("run", "--box", quota_box, tool, "dupfill", f"{win}\\one.bin", "1500000").stdout.strip()
    assert out.startswith("ERR WriteFile 112"), out


def test_quota_is_measured_again_at_box_start(fvm, quota_box, host, tool):
    win, root = host
    assert fvm("run", "--box", quota_box, tool, "fill", f"{win}\\one.bin", "900000").stdout.strip() == "OK 900000"
    out = fvm("run", "--box", quota_box, tool, "fill", f"{win}\\two.bin", "300000").stdout.strip()
    assert out.startswith("ERR WriteFile 112"), out


def test_quota_refuses_a_copy_up_that_does_not_fit(fvm, quota_box, host, tool):
    win, root = host
    (root / "big.bin").write_bytes(b"\0" * 2_000_000)
    out = fvm("run", "--box", quota_box, tool, "append", f"{win}\\big.bin", "x").stdout.strip()
    assert out == "ERR CreateFile 112", out
    assert not box_copy(fvm, quota_box, root, "big.bin").exists()
    (root / "big.bin").unlink()


def test_bad_quota_is_refused(fvm):
    proc = fvm("create", "badquota", "--quota", "12Q")
    assert proc.returncode == 2 and "bad --quota '12Q'" in proc.stderr
    assert not fvm.box_dir("badquota").exists()


def short_name_of(win):
    """Wine's 8.3 alias of a path, as cmd's %~s gives it (run unboxed)."""
    out = run_unboxed("cmd", "/c", f"for %I in ({win}) do @echo %~sI").stdout.strip()
    assert out and out.lower() != win.lower(), f"no short name for {win}: {out!r}"
    return out


def test_short_and_long_names_are_one_file(fvm, box, host, tool):
    win, root = host
    (root / "a-rather-long-file-name.txt").write_bytes(b"long\r\n")
    try:
        short = short_name_of(f"{win}\\a-rather-long-file-name.txt")
        cmd(fvm, box, f"echo via-short>>{short}")
        out = cmd(fvm, box, f"type {win}\\a-rather-long-file-name.txt").stdout
        assert out.split() == ["long", "via-short"], out
        assert f"C {win}\\a-rather-long-file-name.txt" in fvm("diff", box, check=0).stdout
    finally:
        (root / "a-rather-long-file-name.txt").unlink()


def test_short_name_of_fvm_storage_is_still_denied(tool):
    from conftest import Fvm
    long_fvm = Fvm("C:\\fvm-storage-with-a-long-name")
    try:
        long_fvm("create", "sn", check=0)
        # cmd's %~s shortens every name but the last one
        short_root = short_name_of(long_fvm.root_win + "\\boxes").rsplit("\\", 1)[0]
        proc = long_fvm("run", "--box", "sn", tool, "read", f"{short_root}\\boxes\\sn\\box.ini")
        assert proc.stdout.startswith("ERR"), proc.stdout
        proc = long_fvm("run", "--box", "sn", tool, "write", f"{short_root}\\boxes\\x.txt", "x")
        assert proc.stdout.startswith("ERR") and not (long_fvm.root / "boxes" / "x.txt").exists()
    finally:
        long_fvm("rm", "--force", "sn")
        shutil.rmtree(long_fvm.root, ignore_errors=True)


def test_copy_up_records_the_host_base_version(fvm, box, host):
    """size and last-write time at copy-up; the content hash is filled in by
    the broker from the unchanged host file, off the program's time."""
    import hashlib
    win, root = host
    cmd(fvm, box, f"echo more>>{win}\\a.txt")
    want = hashlib.sha256(HOST_FILES["a.txt"]).hexdigest()
    expected = f"C {win}\\a.txt  [base size={len(HOST_FILES['a.txt'])} sha256={want}]"
    line = fvm.wait_until(lambda: expected in fvm("diff", box, "--base", check=0).stdout, timeout=15)
    assert line, fvm("diff", box, "--base").stdout


def test_alternate_data_stream_in_the_box(fvm, box, host, tool):
    """A named stream written in the box is read back in the box, and the
    host file and its streams stay as they were (Wine keeps a stream as a
    file named 'a.txt:s', which the host hash would show)."""
    win, root = host
    assert fvm("run", "--box", box, tool, "write", f"{win}\\a.txt:notes", "stream data").stdout.strip() == "OK"
    assert fvm("run", "--box", box, tool, "read", f"{win}\\a.txt:notes").stdout.strip() == "OK stream data"
    assert fvm("run", "--box", box, tool, "read", f"{win}\\a.txt").stdout.strip() == "OK alpha"
    assert fvm("run", "--box", box, tool, "read", f"{win}\\a.txt::$DATA").stdout.strip() == "OK alpha"


def test_sharing_modes_of_host_handles_hold_in_the_box(fvm, host_box, host, tool):
    """Issue 18 (F51): a write open in a box copies the host file up, so the
    box copy would never meet the host's sharing check. A host program holds
    a.txt open sharing reading only: a boxed write to it fails with a sharing
    violation as it would on the host (nothing copied), and works once the
    host's handle is closed. The host file stays unchanged (fixture). On
    the host's Wine server: a box with its own server never sees the host's
    handles (docs/design.md)."""
    box = host_box
    win, root = host
    release = root / "release.flag"
    holder = Background(["wine", tool, "hold", win + "\\a.txt", win + "\\release.flag"], wine_env())
    try:
        fvm.wait_until(lambda: "OK held" in holder.output(), timeout=60)
        out = fvm("run", "--box", box, tool, "append", win + "\\a.txt", "boxed").stdout
        assert "ERR CreateFile 32" in out, out
        assert not box_copy(fvm, box, root, "a.txt").exists(), "copied up although refused"
        out = fvm("run", "--box", box, tool, "read", win + "\\a.txt").stdout
        assert "OK alpha" in out, out      # reading is shared
    finally:
        release.write_bytes(b"")
        holder.wait(timeout=60)
        release.unlink(missing_ok=True)
    out = fvm("run", "--box", box, tool, "append", win + "\\a.txt", "boxed").stdout
    assert out.startswith("OK"), out
    assert box_copy(fvm, box, root, "a.txt").read_bytes() == b"alpha\r\nboxed"
