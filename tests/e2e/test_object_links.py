"""Symbolic-link objects (issue 17 item 4): a boxed program that makes a link
in a directory the default policy passes to the host (\\??, \\KernelObjects,
\\RPC Control), or a link in its own namespace pointing at the host's, must
not reach a host object through it; names are decided after links are
resolved, and DefineDosDevice in a box defines no host device. The host
holds an event (tests/apps/oddnames.c); every attempt must fail to open it,
and its state must stay clear."""
import uuid

import pytest

from conftest import BUILD, run_unboxed
from test_odd_names import ODD, hold_event, odd, statuses, succeeded

BNO = "\\Sessions\\1\\BaseNamedObjects"

# (id, the oddnames ops, formatted with {L} a fresh link name and {E} the host event)
ATTEMPTS = [
    ("dosdevices-link-to-bno", [["link", "\\??\\{L}", BNO], ["open", "event", "\\??\\{L}\\{E}"]]),
    ("kernelobjects-link-to-bno", [["link", "\\KernelObjects\\{L}", BNO],
                                   ["open", "event", "\\KernelObjects\\{L}\\{E}"]]),
    ("rpc-control-link-to-bno", [["link", "\\RPC Control\\{L}", BNO], ["open", "event", "\\RPC Control\\{L}\\{E}"]]),
    ("dosdevices-link-to-event", [["link", "\\??\\{L}", BNO + "\\{E}"], ["open", "event", "\\??\\{L}"]]),
    ("box-link-to-host-bno", [["link", BNO + "\\{L}", BNO], ["open", "event", BNO + "\\{L}\\{E}"]]),
    ("box-link-to-global", [["link", BNO + "\\{L}", "\\BaseNamedObjects"],
                            ["open", "event", BNO + "\\{L}\\..\\..\\" + "{E}"]]),
    ("box-link-to-dosdevices", [["link", BNO + "\\{L}", "\\??"], ["open", "event", BNO + "\\{L}\\Global\\{E}"]]),
    ("relative-link-in-dosdevices", [["link", "{L}", BNO, "dir:\\??"], ["open", "event", "\\??\\{L}\\{E}"]]),
    ("dosdevices-global-link", [["open", "event", "\\??\\Global\\..\\" + BNO[1:] + "\\{E}"]]),
]


@pytest.mark.parametrize("what,ops", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_links_do_not_reach_host_objects(fvm, box, what, ops):
    event = "FvmLnkEv" + uuid.uuid4().hex[:8]
    link = "FvmLnk" + uuid.uuid4().hex[:8]
    holder = hold_event(BNO + "\\" + event)
    try:
        filled = [[part.replace("{L}", link).replace("{E}", event) for part in op] for op in ops]
        out = odd(fvm, box, *filled)
        opened = statuses(out, "open")
        assert opened and not any(succeeded(s) for s in opened), out
        assert "clear" in odd(fvm, None, ["state", BNO + "\\" + event]), out
    finally:
        holder.kill()


def test_define_dos_device_defines_no_host_device(fvm, box):
    event = "FvmLnkEv" + uuid.uuid4().hex[:8]
    holder = hold_event(BNO + "\\" + event)
    try:
        out = odd(fvm, box, ["dosdev", "Q", BNO], ["open", "event", "\\??\\Q:\\" + event])
        assert not any(succeeded(s) for s in statuses(out, "open")), out
        # after the boxed program is gone, the host has no Q: (Wine's links
        # made by DefineDosDevice are permanent)
        host = odd(fvm, None, ["open", "event", "\\??\\Q:\\" + event])
        assert not succeeded(statuses(host, "open")[0]), host
        assert "clear" in odd(fvm, None, ["state", BNO + "\\" + event])
        # nor can a box remove a host device: Wine resolves C:\ through its
        # drive folder even without the \??\C: link, so the host's name of a
        # file's volume (GetFinalPathNameByHandle) is what shows the link
        final = [BUILD / "apps" / "filetool.exe", "finalpath", "C:\\windows\\win.ini"]
        assert run_unboxed(*final).stdout.startswith("OK ")
        out = odd(fvm, box, ["undosdev", "C"])
        assert not succeeded(statuses(out, "undosdev")[0]), out
        assert run_unboxed("cmd", "/c", "dir", "C:\\").returncode == 0
        assert run_unboxed(*final).stdout.startswith("OK "), "a box removed the host's C: link"
        assert succeeded(statuses(odd(fvm, None, ["link", "\\??\\FvmProbe" + event, "\\??\\C:"]), "link")[0])
    finally:
        holder.kill()
        odd(fvm, None, ["undosdev", "Q"])
