"""Registry virtualization (src/runtime/key.c, key_read.c): a boxed program
reads the host registry and writes only into the box's key tree. Real
programs (reg, regedit) and regtool.exe (the NT calls one by one) run in a
box; every test checks the host registry is unchanged (exported before and
after) and the box sees what the same commands give on a host."""
import uuid

import pytest

from conftest import BUILD, linux_path_of_c, run_unboxed, win_path

REGTOOL = BUILD / "apps" / "regtool.exe"


def unique(prefix="FvmReg"):
    return prefix + uuid.uuid4().hex[:8]


@pytest.fixture
def host_key():
    """A host key with a value, a second value and two subkeys."""
    key = f"HKCU\\Software\\{unique()}"
    run_unboxed("reg", "add", key, "/v", "Kept", "/d", "host", "/f")
    run_unboxed("reg", "add", key, "/v", "Other", "/t", "REG_DWORD", "/d", "5", "/f")
    run_unboxed("reg", "add", key + "\\ChildA", "/v", "A", "/d", "a", "/f")
    run_unboxed("reg", "add", key + "\\ChildB", "/f")
    yield key
    run_unboxed("reg", "delete", key, "/f")


def export(key, tmp_path, tag):
    """The key as `reg export` writes it (host view, unboxed)."""
    name = f"C:\\fvm-export-{uuid.uuid4().hex[:8]}.reg"
    # An unboxed reg.exe under Wine has been seen to write nothing for an
    # existing key once in a full suite run (CI, session 7), which read as a
    # changed host key: a failed export is taken again, twice at most.
    for _ in range(3):
        if run_unboxed("reg", "export", key, name, "/y").returncode == 0:
            break
    path = linux_path_of_c(name)
    data = path.read_bytes() if path.exists() else b""
    path.unlink(missing_ok=True)
    return data


def host_value(key, value):
    """The host's data of a value (unboxed reg query), or None."""
    proc = run_unboxed("reg", "query", key, "/v", value)
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == value and parts[1].startswith("REG_"):
            return parts[-1]
    return None


def regtool(fvm, box, *ops, check=0):
    """Runs regtool in the box (box=None: on the host); ops are lists joined with '+'."""
    argv = []
    for op in ops:
        argv += (["+"] if argv else []) + list(op)
    if box is None:
        return run_unboxed(REGTOOL, *argv).stdout
    return fvm("run", "--box", box, str(REGTOOL), *argv, check=check).stdout


def test_reg_add_query_delete_in_a_box(fvm, box, host_key, tmp_path):
    before = export(host_key, tmp_path, "before")
    assert fvm("run", "--box", box, "reg", "add", host_key, "/v", "New", "/d", "boxed", "/f").returncode == 0
    assert fvm("run", "--box", box, "reg", "add", host_key, "/v", "Kept", "/d", "changed", "/f").returncode == 0
    assert fvm("run", "--box", box, "reg", "add", host_key + "\\Sub\\Deeper", "/f").returncode == 0
    assert fvm("run", "--box", box, "reg", "delete", host_key, "/v", "Other", "/f").returncode == 0
    assert fvm("run", "--box", box, "reg", "delete", host_key + "\\ChildA", "/f").returncode == 0
    out = fvm("run", "--box", box, "reg", "query", host_key, "/s", check=0).stdout
    assert "boxed" in out and "changed" in out and "Deeper" in out
    assert "Other" not in out and "ChildA" not in out and "ChildB" in out
    # A later run of the box still sees its changes; the host never did.
    out = fvm("run", "--box", box, "reg", "query", host_key, "/v", "Kept", check=0).stdout
    assert "changed" in out
    assert export(host_key, tmp_path, "after") == before
    assert host_value(host_key, "Kept") == "host"
    assert "Sub" not in run_unboxed("reg", "query", host_key).stdout


def test_reg_delete_whole_key_and_recreate(fvm, box, host_key, tmp_path):
    before = export(host_key, tmp_path, "before")
    assert fvm("run", "--box", box, "reg", "delete", host_key, "/f").returncode == 0
    assert fvm("run", "--box", box, "reg", "query", host_key).returncode != 0
    # Re-created: empty, the host's values and subkeys stay hidden.
    assert fvm("run", "--box", box, "reg", "add", host_key, "/v", "Fresh", "/d", "1", "/f").returncode == 0
    out = fvm("run", "--box", box, "reg", "query", host_key, "/s", check=0).stdout
    assert "Fresh" in out and "Kept" not in out and "ChildB" not in out
    assert export(host_key, tmp_path, "after") == before


def test_reg_export_and_import_in_a_box(fvm, box, host_key, tmp_path):
    """reg export in the box writes the merged view; reg import and
    regedit /s change only the box; regedit /e exports the box's view."""
    fvm("run", "--box", box, "reg", "add", host_key, "/v", "BoxOnly", "/d", "b", "/f", check=0)
    exported = tmp_path / "box-export.reg"
    fvm("run", "--box", box, "reg", "export", host_key, win_path(exported), "/y", check=0)
    # The export went to the box's copy of tmp_path, not the host's folder.
    assert not exported.exists()
    imp = tmp_path / "import.reg"
    full = host_key.replace("HKCU", "HKEY_CURRENT_USER")
    imp.write_text(f'REGEDIT4\r\n\r\n[{full}\\Imported]\r\n"Via"="reg-import"\r\n', encoding="ascii")
    fvm("run", "--box", box, "reg", "import", win_path(imp), check=0)
    imp2 = tmp_path / "regedit.reg"
    imp2.write_text(f'REGEDIT4\r\n\r\n[{full}]\r\n"ViaRegedit"="yes"\r\n', encoding="ascii")
    fvm("run", "--box", box, "regedit", "/s", win_path(imp2))
    out = fvm("run", "--box", box, "reg", "query", host_key, "/s", check=0).stdout
    assert "reg-import" in out and "ViaRegedit" in out and "BoxOnly" in out
    # regedit /e in the box: the merged view, into a box file read back in the box.
    dump = "C:\\fvm-regedit-" + uuid.uuid4().hex[:6] + ".reg"
    fvm("run", "--box", box, "regedit", "/e", dump, full)
    assert not linux_path_of_c(dump).exists()
    in_box = fvm.box_dir(box) / "drive" / "C" / dump[3:]
    shown = in_box.read_bytes().decode("utf-16")
    assert "ViaRegedit" in shown and "BoxOnly" in shown and '"Kept"="host"' in shown
    for name in ("BoxOnly", "ViaRegedit"):
        assert host_value(host_key, name) is None
    assert "Imported" not in run_unboxed("reg", "query", host_key).stdout


def test_nt_calls_match_the_host(fvm, box):
    """The same regtool script on a fresh key in a box and on the host gives
    the same output line for line (statuses, dispositions, listings).
    (NtQueryMultipleValueKey is left out: Wine's is a stub that returns
    success and fills nothing; the box's merged one is tested below.)"""
    key = f"HKCU\\Software\\{unique()}"
    script = [
        ["create", key], ["create", key], ["set", key, "s", "sz", "text"], ["set", key, "e", "expand", "%PATH%"],
        ["set", key, "m", "multi", "a|b|c"], ["set", key, "d", "dword", "42"], ["set", key, "q", "qword", "1234567890123"],
        ["set", key, "b", "binary", "00ff10"], ["set", key, "", "sz", "default"], ["create", key + "\\Z"],
        ["create", key + "\\a"], ["create", key + "\\M", "volatile"], ["list", key], ["get", key, "s"],
        ["small", key, "s"], ["delval", key, "s"], ["delval", key, "s"],
        ["get", key, "s"], ["delkey", key], ["delkey", key + "\\Z"], ["delkey", key + "\\Z"],
        ["open", key + "\\Z"], ["create", key + "\\Missing\\Child"], ["rel", key, "Rel", "v", "relative"],
        ["readonly-set", key, "x"], ["tree", key], ["name", key + "\\Rel"],
    ]
    try:
        boxed = regtool(fvm, box, *script)
        assert host_value(key, "d") is None, "the box wrote to the host"
        hosted = regtool(fvm, None, *script)
        assert boxed == hosted
    finally:
        run_unboxed("reg", "delete", key, "/f")


def test_merged_view_of_a_changed_host_key(fvm, box, host_key, tmp_path):
    before = export(host_key, tmp_path, "before")
    out = regtool(fvm, box, ["set", host_key, "Kept", "sz", "boxed"], ["set", host_key, "Added", "dword", "9"],
                  ["delval", host_key, "Other"], ["delkey", host_key + "\\ChildA\\"], ["delkey", host_key + "\\ChildA"],
                  ["create", host_key + "\\Child0"], ["list", host_key], ["get", host_key, "Other"],
                  ["multi", host_key, "Kept", "Added"])
    listing = out[out.index("\nkey HKCU"):]
    assert 'subkeys=2 values=2' in listing
    assert 'value "Added" dword 9' in listing and 'value "Kept" sz boxed' in listing
    assert listing.index("subkey Child0") < listing.index("subkey ChildB")
    assert "ChildA" not in listing and '"Other"' not in listing
    assert f"get {host_key} Other: 0xc0000034" in out
    assert "multi" in out and "sz:boxed dword:9" in out
    assert export(host_key, tmp_path, "after") == before


def test_processes_of_a_box_see_each_others_changes_at_once(fvm, box, host_key):
    watcher = fvm.popen("run", "--box", box, str(REGTOOL), "notify", host_key, "20000", "+", "get", host_key, "Live")
    assert fvm.wait_until(lambda: "ready" in watcher.output(), timeout=30)
    regtool(fvm, box, ["set", host_key, "Live", "sz", "now"])
    watcher.wait(timeout=30)
    out = watcher.output()
    assert "changed" in out, out
    assert f"get {host_key} Live: 0x00000000 sz now" in out
    assert host_value(host_key, "Live") is None


def test_name_queries_do_not_leak_the_box(fvm, box, host_key):
    out = regtool(fvm, box, ["create", host_key + "\\New"], ["set", host_key, "x", "sz", "1"],
                  ["name", host_key + "\\New"], ["name", host_key])
    assert "FVM." not in out
    assert "\\Software\\" in out and "key=\\REGISTRY\\" in out and "object=\\REGISTRY\\" in out


def test_box_tree_is_out_of_reach(fvm, host_box, host_key):
    box = host_box   # the box's tree is in the host's HKEY_USERS then
    """The box's own key tree (HKU\\FVM.<hash>, live while the box runs) is
    not listed in HKEY_USERS inside a box, and cannot be opened from it."""
    keeper = fvm.popen("run", "--box", box, str(REGTOOL), "set", host_key, "x", "sz", "1", "+", "sleep", "8000")
    try:
        trees = fvm.wait_until(lambda: [line.split("\\")[-1].strip()
                                        for line in run_unboxed("reg", "query", "HKU").stdout.splitlines()
                                        if "\\FVM." in line], timeout=30)
        assert trees, "no box tree in HKEY_USERS while the box runs"
        out = regtool(fvm, box, ["list", "HKU"], *[["open", f"HKU\\{t}"] for t in trees])
        assert "subkey FVM." not in out
        for t in trees:
            assert f"open HKU\\{t}: 0xc0000022" in out
        assert "subkeys=" in out and "subkeys=0 " not in out
    finally:
        keeper.wait(timeout=60)


ESCAPES = [
    # (description, regtool ops) - each tries to change the host key K.
    ("set value", [["set", "K", "Esc", "sz", "1"]]),
    ("set through \\Registry\\User\\<SID>", [["set", "NT", "Esc", "sz", "1"]]),
    ("set through upper-case \\REGISTRY", [["set", "NTUP", "Esc", "sz", "1"]]),
    ("set through HKU\\<SID>", [["set", "HKU", "Esc", "sz", "1"]]),
    ("relative create and set", [["rel", "K", "RelSub", "Esc", "1"]]),
    ("relative to the hive root", [["rel", "HKCU", "REL", "Esc", "1"]]),
    ("read-only handle", [["readonly-set", "K", "Esc"]]),
    ("delete value", [["delval", "K", "Kept"]]),
    ("delete subkey", [["delkey", "K\\ChildB"]]),
    ("delete with children refused", [["delkey", "K"]]),
    ("rename", [["rename", "K\\ChildB", "Renamed"]]),
    ("create volatile", [["create", "K\\Vol", "volatile"]]),
    ("trailing backslash", [["set", "K\\", "Esc", "sz", "1"]]),
    ("default value", [["set", "K", "", "sz", "1"]]),
]


@pytest.mark.parametrize("what,ops", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_escape_attempts_leave_the_host_unchanged(fvm, box, host_key, tmp_path, what, ops):
    sid_path = run_unboxed(REGTOOL, "name", "HKCU").stdout.split("key=")[-1].split()[0]
    rel = host_key.split("\\", 1)[1]
    forms = {"K": host_key, "NT": sid_path.replace("\\REGISTRY", "\\Registry") + "\\" + rel,
             "NTUP": sid_path.upper() + "\\" + rel.upper(),
             "HKU": "HKU\\" + sid_path.split("\\")[-1] + "\\" + rel, "HKCU": "HKCU"}
    if what == "relative to the hive root":
        forms["K"] = "HKCU"
    before_key = export(host_key, tmp_path, "before")
    resolved = []
    for op in ops:
        path = op[1]
        head, _, tail = path.partition("\\")
        base = forms.get(head, path)
        resolved.append([op[0], base + ("\\" + tail if tail else ("\\" if path.endswith("\\") else ""))] + op[2:])
    if what == "relative to the hive root":
        resolved = [["rel", "HKCU", rel + "\\RelRoot", "Esc", "1"]]
    regtool(fvm, box, *resolved)
    assert export(host_key, tmp_path, "after") == before_key, what
    assert host_value(host_key, "Esc") is None


def test_whole_host_registry_unchanged_by_a_busy_box(fvm, box, host_key, tmp_path):
    """HKLM\\Software and HKCU exported before and after a box that writes
    all over them."""
    before = (export("HKLM\\Software", tmp_path, "m"), export("HKCU", tmp_path, "u"))
    regtool(fvm, box, ["create", "HKLM\\Software\\FvmBusy"], ["set", "HKLM\\Software\\FvmBusy", "v", "sz", "1"],
            ["set", "HKLM\\Software\\Microsoft", "Esc", "dword", "1"], ["delkey", "HKLM\\Software\\Classes\\.txt"],
            ["create", "HKCR\\.fvmtest"], ["set", "HKCR\\.fvmtest", "", "sz", "x"],
            ["set", "HKCU\\Environment", "FVMVAR", "sz", "1"], ["delval", host_key, "Kept"])
    fvm("run", "--box", box, "reg", "add", "HKLM\\Software\\FvmBusy2", "/f", check=0)
    after = (export("HKLM\\Software", tmp_path, "m"), export("HKCU", tmp_path, "u"))
    assert after[0] == before[0]
    assert after[1] == before[1]
    out = regtool(fvm, box, ["get", "HKCR\\.fvmtest", ""], ["get", "HKLM\\Software\\FvmBusy", "v"])
    assert "sz x" in out and "sz 1" in out


def test_key_policy_deny_hide_open_read(fvm, host_key, tmp_path):
    policy = tmp_path / "keys.ini"
    policy.write_text(f"[key]\nopen {host_key}\\Open\\**\ndeny {host_key}\\Denied\\**\n"
                      f"hide {host_key}\\Hidden\\**\nread {host_key}\\ReadOnly\\**\n")
    for sub in ("Denied", "Hidden", "ReadOnly"):
        run_unboxed("reg", "add", f"{host_key}\\{sub}", "/v", "V", "/d", "1", "/f")
    name = "k" + uuid.uuid4().hex[:8]
    # open writes the host's key: on the host's Wine server only.
    fvm("create", name, "--policy", win_path(policy), "--host-server", check=0)
    try:
        assert fvm("run", "--box", name, "reg", "add", host_key + "\\Open", "/v", "W", "/d", "ok", "/f").returncode == 0
        assert host_value(host_key + "\\Open", "W") == "ok"          # open: the host itself
        assert fvm("run", "--box", name, "reg", "query", host_key + "\\Denied").returncode != 0
        assert fvm("run", "--box", name, "reg", "query", host_key + "\\Hidden").returncode != 0
        assert "1" in fvm("run", "--box", name, "reg", "query", host_key + "\\ReadOnly", "/v", "V", check=0).stdout
        assert fvm("run", "--box", name, "reg", "add", host_key + "\\ReadOnly", "/v", "W", "/d", "x",
                   "/f").returncode != 0
        assert host_value(host_key + "\\ReadOnly", "W") is None
        # The rest of the key is copy-on-write.
        assert fvm("run", "--box", name, "reg", "add", host_key, "/v", "Cow", "/d", "c", "/f").returncode == 0
        assert host_value(host_key, "Cow") is None
        assert "c" in fvm("run", "--box", name, "reg", "query", host_key, "/v", "Cow", check=0).stdout
    finally:
        fvm("rm", "--force", name)


def test_rename_matches_the_host(fvm, box, host_key, tmp_path):
    """NtRenameKey of a host key with a subtree: the box sees the key under
    its new name with everything below it; the host's is untouched. Then
    the same script on the host gives the same output."""
    before = export(host_key, tmp_path, "before")
    script = [["rename", host_key + "\\ChildA", "Moved"], ["rename", host_key + "\\ChildB", "Moved"],
              ["tree", host_key], ["open", host_key + "\\ChildA"]]
    boxed = regtool(fvm, box, *script)
    assert export(host_key, tmp_path, "after") == before
    assert "subkey Moved" in boxed and 'value "A" sz a' in boxed
    assert regtool(fvm, None, *script) == boxed


def test_save_key_saves_the_merged_view(fvm, box, host_key):
    """RegSaveKeyW (NtSaveKey) of a key the box changed writes what the
    program sees, and the file names the key, not the box."""
    target = "C:\\fvm-save-" + uuid.uuid4().hex[:6] + ".txt"
    out = regtool(fvm, box, ["set", host_key, "Saved", "sz", "boxed"], ["delval", host_key, "Other"],
                  ["save", host_key, target])
    assert f"save {host_key}: 0" in out
    assert not linux_path_of_c(target).exists()
    saved = (fvm.box_dir(box) / "drive" / "C" / target[3:]).read_text(errors="replace")
    assert '"Saved"="boxed"' in saved and '"Kept"="host"' in saved and '"Other"' not in saved
    assert "[ChildA]" in saved and "FVM." not in saved
    assert "\\\\Software\\\\" + host_key.split("\\")[-1] in saved


def test_link_keys_stay_in_the_box(fvm, box, host_key, tmp_path):
    """Issue 18: a boxed program makes link keys (REG_OPTION_CREATE_LINK) as
    on the host, and the box follows them in its own view. Hostile use: a
    link pointing at a host key, then writes, creates and deletes through
    it, change only the box's copy of that key (host export unchanged; the
    link key itself is not on the host). A link into a box's own key tree is
    refused."""
    before = export(host_key, tmp_path, "before")
    link = f"HKCU\\Software\\{unique('FvmLink')}"
    out = regtool(fvm, box, ["link", link, host_key], ["set", link, "Esc", "sz", "1"],
                  ["create", link + "\\ViaLink"], ["delval", link, "Kept"], ["delkey", link + "\\ChildB"],
                  ["get", host_key, "Esc"], ["list", host_key],
                  ["link", link + "Box", "HKU\\FVM.0123456789abcdef\\USER"])
    assert f"link {link}: 0x00000000 target: 0x00000000" in out, out
    assert f"delval {link} Kept: 0x00000000" in out, out
    assert f"delkey {link}\\ChildB: 0x00000000" in out, out
    assert "sz 1" in out, out                      # the write reached the box's copy of the target
    assert "subkey ViaLink" in out and "subkey ChildB" not in out, out
    assert f"link {link}Box: 0x00000000 target: 0xc0000022" in out, out
    assert export(host_key, tmp_path, "after") == before
    assert host_value(host_key, "Esc") is None
    assert run_unboxed("reg", "query", link).returncode != 0, "the link key reached the host"
