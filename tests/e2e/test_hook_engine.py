"""The hook engine on real code under Wine.

hooktest.exe (tests/apps/hooktest.c) links the engine directly, installs
real inline hooks on ntdll, kernelbase, kernel32, user32, gdi32, ws2_32 and
winspool functions in one atomic batch while other threads run, and prints
one line per check ("HOOK <name> calls=<n> result=ok", "PARKED ...",
"ALL OK" last). dump_prologues.exe regenerates tests/unit/prologues.h, the
real prologue bytes the native unit tests decode; the last test checks that
the committed header still matches this Wine.

Self-contained on purpose (no fixtures): run it alone with
    pytest-3 -q tests/e2e/test_hook_engine.py"""
import functools
import os
import pathlib
import re
import subprocess
import tempfile

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
APPS = TOP / "build" / "win" / "apps"

# Every function hooked by hooktest.exe, with the prologue shape it covers.
HOOKED = [
    "ntdll!NtCreateFile",               # syscall stub
    "ntdll!NtQueryAttributesFile",      # syscall stub, hammered by a second thread
    "ntdll!NtCreateMutant",
    "kernelbase!CreateFileW",           # hot-patch lea + pushes
    "kernel32!CreateFileW",             # hot-patch lea + ff 25 thunk
    "user32!GetDC",                     # ff 25 at byte 0
    "user32!SetWindowDisplayAffinity",  # test [rip],1 right after the patch
    "gdi32!StartDocW",
    "ws2_32!connect",
    "winspool!OpenPrinterW",            # call rel32 right after the patch
    "hooktest!hot_target",
    "hooktest!park_target",
    "hooktest!solo_target",             # installed with no other thread running
    "ntdll!LdrLoadDll",                 # installed under the loader lock
    "hooktest!hot_target(2nd hook)",    # hooking a hooked function
]


def wine_env():
    env = dict(os.environ)
    env.setdefault("WINEPREFIX", str(pathlib.Path.home() / ".cache" / "fvm" / "wineprefix"))
    env["WINEDEBUG"] = "-all"
    return env


def run_app(name, timeout=180):
    """Runs a test app; output goes through files, not pipes: the first Wine
    process of a prefix starts services.exe, explorer.exe... which inherit
    its standard handles and, under a persistent wineserver, would hold a
    pipe open (and the test waiting) forever."""
    exe = APPS / name
    assert exe.exists(), f"{exe} is missing: run make first"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(["wine", str(exe)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                              timeout=timeout, env=wine_env())
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


@functools.lru_cache(maxsize=None)
def hooktest():
    """hooktest.exe runs once; every test below reads its output."""
    proc = run_app("hooktest.exe")
    return proc.returncode, proc.stdout.replace("\r\n", "\n"), proc.stderr


def output_line(prefix):
    _, out, _ = hooktest()
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{out}"
    return lines[0]


def test_hooktest_passes_every_check():
    rc, out, err = hooktest()
    assert rc == 0, f"hooktest.exe exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert out.rstrip().splitlines()[-1] == "ALL OK", out


@pytest.mark.parametrize("name", HOOKED)
def test_hooked_function_called_through_detour(name):
    line = output_line(f"HOOK {name} ")
    match = re.search(r"calls=(\d+).* result=(\S+)", line)
    assert match, line
    assert int(match.group(1)) >= 1, line
    assert match.group(2) == "ok", line


@pytest.mark.parametrize("label", ["single-thread", "main", "loader-lock"])
def test_batch_installed(label):
    line = output_line(f"BATCH {label} ")
    assert "status=0x00000000" in line and line.endswith("result=ok"), line


def test_single_threaded_batch_suspends_nothing():
    assert output_line("SINGLE ") == "SINGLE other_threads_suspended=0"


@pytest.mark.parametrize("label,why", [
    ("unknown-opcode", "refuse_bad: unsupported opcode 0f 0f at byte 0"),
    ("too-short", "refuse_short: function ends at byte 0 (ret)"),
])
def test_refused_batch_changes_nothing(label, why):
    line = output_line(f"REFUSE {label} ")
    assert "status=0xc00000bb" in line, line   # STATUS_NOT_SUPPORTED
    assert why in line, line
    assert "unchanged=yes" in line and line.endswith("result=ok"), line


def test_thread_inside_patched_bytes_is_moved_to_trampoline():
    # The thread stood at park_target+2; had it not been moved, it would have
    # executed the middle of the new jmp and crashed the process.
    line = output_line("PARKED ")
    assert "exit=42" in line and line.endswith("result=ok"), line


def test_kernel32_thunk_forwards_to_hooked_kernelbase():
    line = output_line("CHAIN ")
    assert "calls=1/1/" in line and line.endswith("result=ok"), line


def test_concurrent_thread_saw_no_wrong_result():
    line = output_line("HAMMER ")
    match = re.search(r"hooked_calls=(\d+)/(\d+) bad=(\d+) result=(\S+)", line)
    assert match, line
    assert int(match.group(1)) > 0 and int(match.group(2)) > 0, line
    assert match.group(3) == "0" and match.group(4) == "ok", line


def prologue_bytes(header_text):
    """{"ntdll!NtCreateFile": "4c 8b d1 ...", ...} from prologues.h text."""
    arrays = re.findall(r"/\* (\S+!\S+) at \S+ \*/\s*static const uint8_t \w+\[\d+\] = \{([^}]*)\}", header_text)
    return {name: " ".join(b[2:] for b in re.findall(r"0x[0-9a-f]{2}", body)) for name, body in arrays}


def test_committed_prologues_match_this_wine():
    proc = run_app("dump_prologues.exe")
    assert proc.returncode == 0, proc.stderr
    dumped = prologue_bytes(proc.stdout)
    committed = prologue_bytes((TOP / "tests" / "unit" / "prologues.h").read_text())
    assert len(committed) >= 30, "prologues.h looks truncated"
    assert dumped == committed, (
        "tests/unit/prologues.h no longer matches this Wine's DLLs; regenerate it with\n"
        "    wine build/win/apps/dump_prologues.exe > tests/unit/prologues.h")
