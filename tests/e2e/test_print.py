"""Printing ([print], src/runtime/print.c) with a real printer: CUPS with
cups-pdf, the queue FVM_PDF (scripts/setup.sh), which writes each job as a
PDF to /var/spool/cups-pdf/FVM named after the document. printtool.exe prints
by every path a program has (winspool RAW jobs, W and A; printer DCs, W and
A; AddJob; the printer's port opened directly, as the spooler does; a
printer the box adds for the same host queue; localspl's port monitor
driven by hand, without winspool).
An allowed job's PDF appears with the text printed; a denied job fails with
ERROR_ACCESS_DENIED (5) and no PDF appears (checked after a later job
ahead of which it would have been printed); audit records name the
printer and the document; unboxed, the same jobs print."""
import json
import pathlib
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import DRIVE_C, run_unboxed, win_path

QUEUE = "FVM_PDF"
OUT = pathlib.Path("/var/spool/cups-pdf/FVM")


@pytest.fixture(scope="module")
def printer(apps):
    """The real printer, or a clear failure saying what is missing."""
    if not shutil.which("lpstat"):
        pytest.fail("CUPS is not installed (lpstat missing): run scripts/setup.sh")
    state = subprocess.run(["lpstat", "-r"], capture_output=True, text=True).stdout
    if "is running" not in state:
        pytest.fail(f"cupsd is not running ({state.strip() or 'no answer'}): run scripts/setup.sh")
    queue = subprocess.run(["lpstat", "-v", QUEUE], capture_output=True, text=True)
    if queue.returncode != 0 or "cups-pdf:/fvm" not in queue.stdout:
        pytest.fail(f"the CUPS queue {QUEUE} (cups-pdf:/fvm) is missing: run scripts/setup.sh")
    if not OUT.is_dir():
        pytest.fail(f"{OUT} is missing: run scripts/setup.sh")
    listed = run_unboxed(apps / "printtool.exe", "list").stdout.split()
    if QUEUE not in listed:
        pytest.fail(f"Wine's spooler does not list {QUEUE} (printers: {listed})")
    return QUEUE


def document():
    return "fvm" + uuid.uuid4().hex[:12]


@pytest.fixture
def made():
    """The PDFs a test waited for, removed afterwards."""
    paths = []
    yield paths
    for p in paths:
        p.unlink(missing_ok=True)


def wait_pdf(doc, made, timeout=45):
    """The PDF of a job, once cups-pdf has finished writing it (its size
    stops changing and it ends with the PDF trailer)."""
    path = OUT / f"{doc}.pdf"
    made.append(path)
    end = time.time() + timeout
    last = -1
    while time.time() < end:
        if path.exists():
            data = path.read_bytes()
            if len(data) == last and b"%%EOF" in data[-64:]:
                return path
            last = len(data)
        time.sleep(0.2)
    return None


def pdf_text(path):
    if not shutil.which("pdftotext"):
        return None
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout


def make_box(fvm, tmp_path, policy):
    path = tmp_path / "policy.ini"
    path.write_text(policy)
    name = "p" + uuid.uuid4().hex[:10]
    fvm("create", name, "--policy", win_path(path), check=0)
    return name


def records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "print"]


def wait_records(fvm, box, predicate):
    """The box's print records once predicate(records) holds (the broker
    writes them on its own thread), or as they are after 20 s."""
    return fvm.wait_until(lambda: predicate(records(fvm, box)) and records(fvm, box), timeout=20) or records(fvm, box)


def boxed(fvm, box, program, *args):
    return fvm("run", "--box", box, win_path(program), *args).stdout.strip()


def test_unboxed_baseline_prints(printer, apps, made):
    doc = document()
    assert run_unboxed(apps / "printtool.exe", "raw", printer, doc, f"Baseline {doc}").stdout.startswith("OK")
    pdf = wait_pdf(doc, made)
    assert pdf, "the unboxed job produced no PDF"
    text = pdf_text(pdf)
    assert text is None or f"Baseline {doc}" in text


def parse_every(out):
    """printtool every: {path: its line's result}."""
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def test_allowed_jobs_print_by_every_path_and_are_audited(fvm, tmp_path, apps, printer, made):
    box = make_box(fvm, tmp_path, f"[print]\ndeny audit **\nopen audit {printer}\n")
    try:
        doc = document()
        results = parse_every(boxed(fvm, box, apps / "printtool.exe", "every", printer, doc, f"Allowed {doc}"))
        assert set(results) == {"raw", "rawa", "gdi", "gdia", "addjob"}, results
        assert all(r.startswith("OK") for r in results.values()), results
        # AddJob's job is named by the spooler (Wine: "Local Downlevel
        # Document"), not by the program: its PDF is not looked for.
        for path in ("raw", "rawa", "gdi", "gdia"):
            pdf = wait_pdf(f"{doc}-{path}", made)
            assert pdf, f"no PDF for the allowed {path} job"
            text = pdf_text(pdf)
            assert text is None or f"Allowed {doc}" in text, (path, text)
        want = {f"{printer}, Document: {doc}-{p}" for p in ("raw", "rawa", "gdi", "gdia")}
        recs = wait_records(fvm, box, lambda rs: len([r for r in rs if r["name"] in want]) >= 8
                            and any(r["op"] == "addjob" for r in rs))
        for path in ("raw", "rawa", "gdi", "gdia"):
            mine = [r for r in recs if r["name"] == f"{printer}, Document: {doc}-{path}"]
            # The program's job, then the spooler's copy of it to the port.
            assert sorted(r["op"] for r in mine) == ["port", "print"], (path, recs)
            assert all(r["decision"] == "open" and r["rule"] == "policy.ini:3"
                       and r["image"].endswith("printtool.exe") for r in mine)
        assert any(r["op"] == "addjob" and r["name"] == printer and r["decision"] == "open" for r in recs)
        assert fvm("logs", box, "--verify").returncode == 0
    finally:
        fvm("rm", "--force", box)


def test_denied_jobs_fail_cleanly_and_print_nothing(fvm, tmp_path, apps, printer, made):
    # The printing protocols a program could speak to CUPS itself are [net]
    # decisions (docs/policy.md, Printing): IPP here.
    box = make_box(fvm, tmp_path, f"[print]\ndeny audit {printer}\n[net]\ndeny tcp:*:631\n")
    try:
        assert boxed(fvm, box, apps / "netprobe.exe", "connect", "tcp", "127.0.0.1", "631") == "ERR connect 10013"
        doc = document()
        results = parse_every(boxed(fvm, box, apps / "printtool.exe", "every", printer, doc, "secret"))
        assert results == {"raw": "ERR StartDocPrinter 5", "rawa": "ERR StartDocPrinter 5",
                           "gdi": "ERR StartDoc 5", "gdia": "ERR StartDoc 5", "addjob": "ERR AddJob 5"}, results
        # Hostile: the printer's port opened directly, as the spooler's print
        # processor does, to skip the printer.
        port_doc = document()
        assert boxed(fvm, box, apps / "printtool.exe", "raw", f"CUPS:{printer}, Port", port_doc,
                     "secret") == "ERR StartDocPrinter 5"
        # Hostile: no winspool at all, localspl's port monitor driven by hand.
        monitor_doc = document()
        assert boxed(fvm, box, apps / "printtool.exe", "monitor", printer, monitor_doc, "secret") == \
            "ERR StartDocPort 5"
        # Hostile: a printer of the box's own, under an allowed name, for the
        # same host queue (its port): refused as the queue, and the host's
        # printers are unchanged.
        alias, alias_doc = "Harmless" + uuid.uuid4().hex[:6], document()
        assert boxed(fvm, box, apps / "printtool.exe", "alias", printer, alias, alias_doc) == \
            f"added CUPS:{printer}: ERR StartDocPrinter 5"
        assert alias not in run_unboxed(apps / "printtool.exe", "list").stdout.split()
        # A job printed after them (unboxed) comes out: had any denied job
        # reached the queue, its PDF would be there by then.
        after = document()
        assert run_unboxed(apps / "printtool.exe", "raw", printer, after, "after").stdout.startswith("OK")
        assert wait_pdf(after, made), "the job after the denied ones produced no PDF"
        for name in [f"{doc}-{p}" for p in ("raw", "rawa", "gdi", "gdia")] + [port_doc, alias_doc, monitor_doc]:
            assert not (OUT / f"{name}.pdf").exists(), name
        recs = wait_records(fvm, box, lambda rs: len(rs) >= 8)
        names = {(r["op"], r["name"]) for r in recs if r["decision"] == "deny" and r["rule"] == "policy.ini:2"}
        for path in ("raw", "rawa", "gdi", "gdia"):
            assert ("print", f"{printer}, Document: {doc}-{path}") in names, (path, recs)
        assert ("addjob", printer) in names
        assert ("port", f"{printer}, Document: {port_doc}") in names
        assert ("print", f"{printer}, Document: {alias_doc}") in names
        assert ("port", f"{printer}, Document: {monitor_doc}") in names
        assert fvm("logs", box, "--verify").returncode == 0
    finally:
        fvm("rm", "--force", box)


def test_program_scope_and_the_default_policy(fvm, tmp_path, apps, printer, made):
    # Only printtool.exe may print; the same program under another name may not.
    other = DRIVE_C / "fvmprint" / f"other{uuid.uuid4().hex[:6]}.exe"
    other.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(apps / "printtool.exe", other)
    box = make_box(fvm, tmp_path, f"[print]\ndeny **\nprinttool.exe: open {printer}\n")
    try:
        allowed, refused = document(), document()
        assert boxed(fvm, box, apps / "printtool.exe", "raw", printer, allowed, "scoped").startswith("OK")
        assert boxed(fvm, box, other, "raw", printer, refused, "scoped") == "ERR StartDocPrinter 5"
        assert wait_pdf(allowed, made)
        assert not (OUT / f"{refused}.pdf").exists()
    finally:
        fvm("rm", "--force", box)
        other.unlink()
    # A box made without --policy: printing is allowed and audited.
    name = "p" + uuid.uuid4().hex[:10]
    fvm("create", name, check=0)
    try:
        doc = document()
        assert boxed(fvm, name, apps / "printtool.exe", "raw", printer, doc, "default").startswith("OK")
        assert wait_pdf(doc, made)
        recs = wait_records(fvm, name, lambda rs: any(
            r["op"] == "print" and r["name"] == f"{printer}, Document: {doc}" and r["decision"] == "open" for r in rs))
        assert any(r["op"] == "print" and r["name"] == f"{printer}, Document: {doc}" and r["decision"] == "open"
                   for r in recs), recs
    finally:
        fvm("rm", "--force", name)


def test_hidden_printer_is_not_there(fvm, tmp_path, apps, printer):
    box = make_box(fvm, tmp_path, f"[print]\nhide audit {printer}\n")
    try:
        listed = boxed(fvm, box, apps / "printtool.exe", "list").split()
        assert printer not in listed and listed[-2:] == ["OK", "0"], listed
        # As for a printer that does not exist: ERROR_INVALID_PRINTER_NAME.
        assert boxed(fvm, box, apps / "printtool.exe", "gdi", printer, document(), "x") == "ERR CreateDC 1801"
        hidden = lambda rs: any(r["op"] == "open" and r["name"] == printer and r["decision"] == "hide" for r in rs)
        assert hidden(wait_records(fvm, box, hidden))
    finally:
        fvm("rm", "--force", box)
