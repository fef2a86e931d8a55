"""Until services are virtualized, services are read-only from a box
(src/runtime/scm.c): sc.exe in a box cannot create, delete, reconfigure or
start a host service; queries work. Each test checks the host's service
configuration (the SCM's registry key) afterwards."""
import uuid

import pytest

from conftest import run_unboxed, win_path

SERVICES = "HKLM\\System\\CurrentControlSet\\Services\\"


def host_service_exists(name):
    return run_unboxed("reg", "query", SERVICES + name).returncode == 0


@pytest.fixture
def host_service(apps):
    name = "fvmtestsvc" + uuid.uuid4().hex[:6]
    run_unboxed("sc", "create", name, "binPath=", win_path(apps / "probe.exe"), "start=", "demand")
    assert host_service_exists(name)
    yield name
    run_unboxed("sc", "delete", name)


def test_sc_create_in_a_box_makes_no_host_service(fvm, box, apps):
    name = "fvmboxsvc" + uuid.uuid4().hex[:6]
    proc = fvm("run", "--box", box, "sc", "create", name, "binPath=", win_path(apps / "probe.exe"))
    assert proc.returncode != 0
    assert not host_service_exists(name)


def test_existing_host_service_cannot_be_changed_from_a_box(fvm, box, host_service):
    before = run_unboxed("reg", "query", SERVICES + host_service).stdout
    assert fvm("run", "--box", box, "sc", "delete", host_service).returncode != 0
    assert fvm("run", "--box", box, "sc", "config", host_service, "start=", "auto").returncode != 0
    assert fvm("run", "--box", box, "sc", "start", host_service).returncode != 0
    assert run_unboxed("reg", "query", SERVICES + host_service).stdout == before
    assert "STOPPED" in run_unboxed("sc", "query", host_service).stdout


def test_service_queries_work_in_a_box(fvm, box, host_service):
    out = fvm("run", "--box", box, "sc", "query", host_service).stdout
    assert host_service in out and "STOPPED" in out


def test_sechost_loaded_again_is_hooked_again(fvm, box, apps):
    """The refusals go into sechost.dll from the loader's DLL notification.
    A program that frees sechost and loads it again gets a fresh, unpatched
    copy: the runtime must hook that one too (it once hooked only the first,
    so a reloaded sechost could change host services)."""
    proc = fvm("run", "--box", box, "--", str(apps / "lateload.exe"), "sechost")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.split("\n")
    assert "at-start 0" in lines, proc.stdout
    assert "load 1 unloaded 1 error 5" in lines, proc.stdout
    assert "load 2 unloaded 1 error 5" in lines, proc.stdout
