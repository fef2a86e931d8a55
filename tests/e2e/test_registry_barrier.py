"""Until the registry is virtualized, the host registry is read-only from
inside a box (src/runtime/key.c): reg.exe and regedit cannot change it,
reads work, and the box's policy can deny, hide or open keys."""
import uuid

import pytest

from conftest import run_unboxed, win_path


@pytest.fixture
def host_key():
    name = "FvmTest" + uuid.uuid4().hex[:8]
    key = f"HKCU\\Software\\{name}"
    run_unboxed("reg", "add", key, "/v", "Kept", "/d", "host", "/f")
    yield key
    run_unboxed("reg", "delete", key, "/f")


def host_value(key, value):
    out = run_unboxed("reg", "query", key, "/v", value).stdout
    return out.split()[-1] if value in out else None


def test_reg_writes_do_not_reach_the_host(fvm, box, host_key):
    assert fvm("run", "--box", box, "reg", "add", host_key, "/v", "New", "/d", "x", "/f").returncode != 0
    assert fvm("run", "--box", box, "reg", "add", host_key + "\\Sub", "/f").returncode != 0
    assert fvm("run", "--box", box, "reg", "delete", host_key, "/v", "Kept", "/f").returncode != 0
    assert fvm("run", "--box", box, "reg", "delete", host_key, "/f").returncode != 0
    assert host_value(host_key, "Kept") == "host"
    assert host_value(host_key, "New") is None
    assert "Sub" not in run_unboxed("reg", "query", host_key).stdout


def test_regedit_import_does_not_reach_the_host(fvm, box, host_key, tmp_path):
    reg = tmp_path / "import.reg"
    reg.write_text(f'REGEDIT4\r\n\r\n[{host_key.replace("HKCU", "HKEY_CURRENT_USER")}]\r\n"Imported"="yes"\r\n')
    fvm("run", "--box", box, "regedit", "/s", win_path(reg))
    assert host_value(host_key, "Imported") is None


def test_reads_work_in_a_box(fvm, box, host_key):
    out = fvm("run", "--box", box, "reg", "query", host_key, "/v", "Kept", check=0).stdout
    assert "host" in out


def test_key_policy_deny_hide_open(fvm, host_key, tmp_path):
    policy = tmp_path / "keys.ini"
    policy.write_text(f"[key]\nopen {host_key}\\Open\\**\ndeny {host_key}\\Denied\\**\nhide {host_key}\\Hidden\\**\n")
    for sub in ("Denied", "Hidden"):
        run_unboxed("reg", "add", f"{host_key}\\{sub}", "/v", "V", "/d", "1", "/f")
    name = "k" + uuid.uuid4().hex[:8]
    fvm("create", name, "--policy", win_path(policy), check=0)
    try:
        assert fvm("run", "--box", name, "reg", "add", host_key + "\\Open", "/v", "W", "/d", "ok", "/f").returncode == 0
        assert host_value(host_key + "\\Open", "W") == "ok"          # open: the host itself
        assert fvm("run", "--box", name, "reg", "query", host_key + "\\Denied").returncode != 0
        hidden = fvm("run", "--box", name, "reg", "query", host_key + "\\Hidden")
        assert hidden.returncode != 0
        assert fvm("run", "--box", name, "reg", "query", host_key, "/v", "Kept", check=0).stdout.count("host") == 1
    finally:
        fvm("rm", "--force", name)
