"""Boxed services (src/runtime/scm.c): each box runs its own service control
manager (Wine's services.exe, started boxed on the first svcctl client), so
services created, changed, started, stopped and deleted in a box live in the
box - their registry keys in the box's delta, their processes boxed - and
the host's service manager never hears of them. Every test checks the host
afterwards: `sc query` of the names used and `reg export` of the host's
Services key are unchanged, and no file the services write lands on the
host.

The hostile test speaks DCE/RPC on \\pipe\\svcctl itself (svctool rawrpc: a
bind and OpenSCManagerW / CreateServiceW / StartServiceW requests built by
hand, no sechost at all): issue 17 item 3, where a renamed copy of sechost
created and started a host service that ran unboxed."""
import json
import shutil
import subprocess
import uuid

import pytest

from conftest import BUILD, linux_path_of_c, run_unboxed, win_path

SVCTOOL = BUILD / "apps" / "svctool.exe"
SERVICES = "HKLM\\System\\CurrentControlSet\\Services"


def unique(prefix):
    return prefix + uuid.uuid4().hex[:8]


def host_services_export():
    """The host's Services key as `reg export` writes it (unboxed)."""
    name = f"C:\\fvm-svc-export-{uuid.uuid4().hex[:8]}.reg"
    run_unboxed("reg", "export", SERVICES, name, "/y")
    path = linux_path_of_c(name)
    data = path.read_bytes() if path.exists() else b""
    path.unlink(missing_ok=True)
    return data


def host_knows(name):
    return run_unboxed("sc", "query", name).returncode == 0


def box_file(fvm, box, win):
    """Where a box's copy of C:\\X lives in its delta."""
    return fvm.box_dir(box) / "drive" / "C" / win[3:].replace("\\", "/")


def script(tmp_path, lines):
    path = tmp_path / (uuid.uuid4().hex[:8] + ".cmd")
    path.write_text("@echo off\r\n" + "\r\n".join(lines) + "\r\n")
    return win_path(path)


def ps(fvm, box):
    return fvm("ps", box).stdout


def test_service_lifecycle_in_a_box(fvm, box, tmp_path):
    """sc create/description/start/query/stop/delete in a box (Wine's sc has
    no `config`; `description` is ChangeServiceConfig2): the service runs
    boxed (its marker file lands in the box's delta, the process is a child
    of the box's services.exe), the host's service manager never has it."""
    name = unique("fvmsvc")
    marker = f"C:\\{name}.txt"
    before = host_services_export()
    install = script(tmp_path, [
        f'sc create {name} binPath= "{win_path(SVCTOOL)} service {marker}" DisplayName= "FVM test" start= auto',
        "echo create=%errorlevel%",
        f'sc description {name} "boxed demo"',
        "echo config=%errorlevel%",
        f"sc start {name}",
        "echo start=%errorlevel%",
        f"sc query {name}",
        f"reg query {SERVICES}\\{name} /v Description",
    ])
    out = fvm("run", "--box", box, "--", "cmd", "/c", install).stdout
    for step in ("create", "config", "start"):
        assert f"{step}=0" in out, out
    assert "RUNNING" in out and "boxed demo" in out, out
    assert box_file(fvm, box, marker).read_text().startswith("started"), "the service did not run in the box"
    assert not linux_path_of_c(marker).exists()
    listing = ps(fvm, box)
    assert "services.exe" in listing and "svctool.exe" in listing, listing
    # No host auto-start service was started in the box (PlugPlay, the driver host...).
    assert "winedevice" not in listing.lower() and "plugplay" not in listing.lower(), listing
    assert not host_knows(name)

    # A later program of the box finds it running, stops and deletes it.
    remove = script(tmp_path, [
        f"sc query {name}",
        f"sc stop {name}",
        "echo stop=%errorlevel%",
        f"sc delete {name}",
        "echo delete=%errorlevel%",
        f"sc query {name}",
        "echo query=%errorlevel%",
    ])
    out = fvm("run", "--box", box, "--", "cmd", "/c", remove).stdout   # its last query fails
    assert "RUNNING" in out and "stop=0" in out and "delete=0" in out, out
    assert "query=0" not in out, out
    # An idle manager ends itself: the box stops once its programs are gone.
    assert fvm.wait_until(lambda: "svctool" not in ps(fvm, box) and "services.exe" not in ps(fvm, box)), ps(fvm, box)
    assert not host_knows(name)
    assert host_services_export() == before


def test_raw_rpc_on_svcctl_reaches_only_the_box(fvm, box):
    """Issue 17 item 3: a client speaking RPC on \\pipe\\svcctl without
    sechost creates and starts a service; it must be the box's, and what it
    runs is boxed."""
    name = unique("fvmraw")
    marker = f"C:\\{name}.txt"
    before = host_services_export()
    proc = fvm("run", "--box", box, "--", str(SVCTOOL), "rawrpc", name,
               f"C:\\windows\\system32\\cmd.exe /c echo escaped > {marker}")
    assert "bind: ok" in proc.stdout and "CreateServiceW: 0" in proc.stdout, proc.stdout + proc.stderr
    assert fvm.wait_until(lambda: box_file(fvm, box, marker).exists()), "the service's command did not run boxed"
    assert not linux_path_of_c(marker).exists()
    assert not host_knows(name)
    assert host_services_export() == before
    # The box's manager has it.
    assert name in fvm("run", "--box", box, "sc", "query", name).stdout


NSIS_SCRIPT = r"""
Unicode true
Target amd64-unicode
Name "FVM service demo"
OutFile "{out}"
RequestExecutionLevel admin
SilentInstall silent
InstallDir "$PROGRAMFILES64\{name}"
Section
  SetOutPath "$INSTDIR"
  File "/oname=svc.exe" "{tool}"
  StrCpy $5 '"$INSTDIR\svc.exe" service {marker}'
  System::Call 'advapi32::OpenSCManagerW(p 0, p 0, i 0xF003F) p.r1'
  System::Call 'advapi32::CreateServiceW(p r1, w "{name}", w "FVM NSIS demo", i 0xF01FF, i 0x10, i 3, i 1, w r5, p 0, p 0, p 0, p 0, p 0) p.r2 ?e'
  Pop $0
  FileOpen $4 "$INSTDIR\install.log" w
  FileWrite $4 "create $2 $0$\r$\n"
  System::Call 'advapi32::StartServiceW(p r2, i 0, p 0) i.r3 ?e'
  Pop $0
  FileWrite $4 "start $3 $0$\r$\n"
  FileClose $4
  System::Call 'advapi32::CloseServiceHandle(p r2)'
  System::Call 'advapi32::CloseServiceHandle(p r1)'
SectionEnd
"""


@pytest.mark.skipif(shutil.which("makensis") is None, reason="makensis (package nsis) is not installed")
def test_nsis_installer_registers_and_starts_a_boxed_service(fvm, box, tmp_path):
    """A real installer (NSIS, the service API through its System plugin)
    installs a program and registers and starts a service, in a box;
    `fvm stop` ends the service with the box. The service's image is the
    installed copy, which exists only in the box's delta (started through
    the box's view of files, issue 20)."""
    name = unique("fvmnsis")
    marker = f"C:\\{name}.txt"
    setup = tmp_path / "setup.exe"
    nsi = tmp_path / "setup.nsi"
    nsi.write_text(NSIS_SCRIPT.format(out=setup, name=name, tool=SVCTOOL, tool_win=win_path(SVCTOOL), marker=marker))
    built = subprocess.run(["makensis", "-V2", str(nsi)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stdout + built.stderr
    before = host_services_export()
    fvm("run", "--box", box, "--", str(setup), check=0)
    log = box_file(fvm, box, f"C:\\Program Files\\{name}\\install.log")
    assert log.exists(), "the installer did not run in the box"
    text = log.read_text()
    assert "start 1 " in text, text
    assert fvm.wait_until(lambda: box_file(fvm, box, marker).exists()), "the service did not run in the box"
    assert not linux_path_of_c(marker).exists()
    assert not linux_path_of_c(f"C:\\Program Files\\{name}").exists()
    assert "RUNNING" in fvm("run", "--box", box, "sc", "query", name).stdout
    fvm("stop", box)
    assert fvm.wait_until(lambda: "svc.exe" not in ps(fvm, box)), ps(fvm, box)
    assert not host_knows(name)
    assert host_services_export() == before


SERVICE_POLICY = """
[service]
deny audit fvmdeny*
read fvmread*
hide fvmhide*
deny audit fvmlateload
deny audit autostart:*
"""


def test_service_rules(fvm, tmp_path, apps):
    """[service] rules decide by service name at the API: deny, read (queries
    only, no creation), hide; the box's manager auto-starts nothing (the
    refusals audited under autostart:<image>); a sechost loaded again is
    decided again."""
    policy = tmp_path / "policy.ini"
    policy.write_text(SERVICE_POLICY)
    box = unique("v")
    fvm("create", box, "--policy", win_path(policy), check=0)
    try:
        t = uuid.uuid4().hex[:6]
        lines = []
        for kind in ("deny", "read", "hide"):
            lines += [f'sc create fvm{kind}{t} binPath= "{win_path(SVCTOOL)}"', f"echo {kind}=%errorlevel%"]
        out = fvm("run", "--box", box, "--", "cmd", "/c", script(tmp_path, lines)).stdout
        for kind in ("deny", "read", "hide"):
            assert f"{kind}=0" not in out, out
        proc = fvm("run", "--box", box, "--", str(apps / "lateload.exe"), "sechost")
        assert "load 1 unloaded 1 error 5" in proc.stdout.split("\n"), proc.stdout
        assert "load 2 unloaded 1 error 5" in proc.stdout.split("\n"), proc.stdout
        log = fvm.box_dir(box) / "audit.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        service = [r for r in records if r["type"] == "service"]
        assert any(r["op"] == "create" and r["name"] == f"fvmdeny{t}" and r["decision"] == "deny"
                   for r in service), service
        assert any(r["op"] == "autostart" and r["decision"] == "deny" for r in service), service
        for kind in ("deny", "read", "hide"):
            assert not host_knows(f"fvm{kind}{t}")
    finally:
        fvm("rm", "--force", box)
