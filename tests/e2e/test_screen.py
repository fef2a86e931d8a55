"""Screen capture, the clipboard and title bars across the box's edge
(src/runtime/screen.c, clipboard.c, title.c; issue 13), on an Xvfb display.

capture.exe paint runs on the host (plain wine): a window filled with a
known colour. capture.exe grab, run in a box, reads it through every capture
path (screen DC, CreateDC("DISPLAY"), the window's DCs, PrintWindow): black
from a box, the colour unboxed; capture.exe self reads its own window: the
colour, in a box too. The clipboard is written and read by separate
processes on both sides; titles are read from the host with GetWindowText
and from the X server with xwininfo."""
import json
import subprocess
import time
import uuid

import pytest

from conftest import Background, run_unboxed, wine_env, win_path

COLOUR = "33cc66"
METHODS = ["screen-bitblt", "screen-stretchblt", "screen-getpixel", "display-bitblt", "windowdc-bitblt",
           "clientdc-bitblt", "printwindow"]


def results(output, prefix=""):
    found = {}
    for line in output.splitlines():
        if line.startswith(prefix):
            parts = line[len(prefix):].split(None, 1)
            if len(parts) == 2:
                found[parts[0]] = parts[1].strip()
    return found


def wait_ready(proc, timeout=60):
    end = time.time() + timeout
    while time.time() < end and "ready" not in proc.output():
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    lines = [l for l in proc.output().splitlines() if l.startswith("ready")]
    assert lines, f"not ready: {proc.output()!r}"
    return lines[0]


class HostWindow:
    """A host window painted COLOUR, until stop()."""

    def __init__(self, apps, tmp_path, *args):
        self.stop_file = tmp_path / ("stop-" + uuid.uuid4().hex[:6])
        self.proc = Background(["wine", str(apps / "capture.exe"), *args, win_path(self.stop_file)], wine_env())
        self.ready = wait_ready(self.proc)
        self.hwnd = self.ready.split()[1]

    def stop(self):
        self.stop_file.write_text("")
        try:
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()


@pytest.fixture
def capture(apps):
    return apps / "capture.exe"


def audit(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def make_box(fvm, tmp_path, policy=None, settings=None):
    # On the host's Wine server, which holds host and box windows alike (a
    # box with its own server has none of the host's: test_own_server.py).
    name = "s" + uuid.uuid4().hex[:10]
    args = ["create", name, "--host-server"]
    if policy is not None:
        path = tmp_path / (name + ".ini")
        path.write_text(policy)
        args += ["--policy", win_path(path)]
    fvm(*args, check=0)
    if settings:
        ini = fvm.box_dir(name) / "box.ini"
        text = ini.read_text()
        ini.write_text(text.rstrip("\n") + "\n" + settings + "\n")
    return name


def test_capture_of_a_host_window_is_blank_from_a_box(fvm, host_box, capture, apps, xvfb, tmp_path):
    box = host_box
    host = HostWindow(apps, tmp_path, "paint", COLOUR)
    try:
        unboxed = results(run_unboxed(capture, "grab", host.hwnd).stdout)
        boxed_out = fvm("run", "--box", box, "--", str(capture), "grab", host.hwnd, check=0).stdout
    finally:
        host.stop()
    boxed = results(boxed_out)
    # What the refusal is worth: unboxed, the screen paths read the host's pixels.
    for m in ("screen-bitblt", "screen-stretchblt", "screen-getpixel", "display-bitblt"):
        assert unboxed.get(m) == COLOUR, (m, unboxed)
    # From the box: every path gives black (not the sentinel: the blit ran, blank).
    assert {m: boxed.get(m) for m in METHODS} == {m: "000000" for m in METHODS}, boxed_out
    records = [r for r in audit(fvm, box) if r.get("type") == "screen"]
    assert records and all(r["op"] == "capture" and r["decision"] == "deny" for r in records), records


def test_a_box_captures_its_own_window(fvm, box, capture, xvfb):
    out = fvm("run", "--box", box, "--", str(capture), "self", COLOUR, check=0).stdout
    got = results(out, "self ")
    for m in ("windowdc-bitblt", "clientdc-bitblt", "printwindow"):
        assert got.get(m) == COLOUR, (m, out)
    # The screen itself is not the box's, even where its own window is.
    assert got.get("screen-bitblt") == "000000", out


def test_open_capture_lets_one_program_capture(fvm, capture, apps, xvfb, tmp_path):
    name = make_box(fvm, tmp_path, "[screen]\ncapture.exe: open capture\n")
    host = HostWindow(apps, tmp_path, "paint", COLOUR)
    try:
        out = fvm("run", "--box", name, "--", str(capture), "grab", host.hwnd, check=0).stdout
    finally:
        host.stop()
        fvm("rm", "--force", name)
    got = results(out)
    assert got.get("screen-bitblt") == COLOUR and got.get("display-bitblt") == COLOUR, out


class Clipboard:
    """Sets and reads the clipboard from the host or a box. Wine may drop what
    a process put on the clipboard when that process ends, so every writer
    stays alive (capture.exe clip-hold) until the test ends."""

    def __init__(self, fvm, apps, tmp_path):
        self.fvm, self.exe, self.tmp = fvm, apps / "capture.exe", tmp_path
        self.holders = []

    def set(self, text, box=None, how="clip-hold"):
        stop = self.tmp / ("stop-" + uuid.uuid4().hex[:6])
        argv = [str(self.exe), how, text, win_path(stop)]
        if box is None:
            proc = Background(["wine", *argv], wine_env())
        else:
            proc = Background(["wine", str(self.fvm.exe), "run", "--box", box, "--", *argv], self.fvm.env())
        self.holders.append((proc, stop))
        wait_ready(proc)
        assert how != "clip-hold" or "set 1" in proc.output(), proc.output()
        return proc.output()

    def get(self, box=None):
        if box is None:
            out = run_unboxed(self.exe, "clip-get").stdout
        else:
            out = self.fvm("run", "--box", box, "--", str(self.exe), "clip-get", check=0).stdout
        return results(out)

    def text(self, box=None):
        return self.get(box).get("clip")

    def shows(self, expected, box=None, timeout=15):
        """Whether a reader (host or box) reads expected, waiting for it: Wine's
        X11 clipboard bridge takes the clipboard over for a moment after each
        change, so a read right after a write may see it empty."""
        end = time.time() + timeout
        while True:
            got = self.get(box)
            if got.get("clip") == expected:
                return True
            if time.time() > end:
                print("clipboard read:", got)
                return False
            time.sleep(0.5)

    def close(self):
        for proc, stop in self.holders:
            stop.write_text("")
        for proc, stop in self.holders:
            try:
                proc.wait(timeout=60)
            except Exception:
                proc.kill()


@pytest.fixture
def clipboard(fvm, apps, tmp_path, xvfb):
    c = Clipboard(fvm, apps, tmp_path)
    yield c
    c.close()


def test_the_clipboard_is_the_box_own_both_ways(fvm, box, clipboard, tmp_path):
    other = make_box(fvm, tmp_path)
    try:
        clipboard.set("host secret")
        assert clipboard.shows("host secret")
        # host -> box: refused (and audited)
        assert clipboard.text(box) == "(none)"
        # box -> host: the box's copy stays in the box
        clipboard.set("box secret", box)
        assert clipboard.shows("host secret")
        # box -> the same box, another process: its own data, CF_TEXT synthesized
        got = clipboard.get(box)
        assert got.get("clip") == "box secret" and got.get("clipa") == "box secret" and got.get("avail") == "1", got
        # another box sees neither
        assert clipboard.text(other) == "(none)"
    finally:
        fvm("rm", "--force", other)
    # The box's write is audited. Its read of the host's text is not there
    # to refuse: the box's nested display (its default) has a clipboard of
    # its own, which the host's never reaches (a box on the host's display
    # gets it and is refused: test_a_shared_display_box_is_refused_the_host_clipboard).
    ops = {(r["type"], r["op"]) for r in audit(fvm, box)}
    assert ("desktop", "write-clipboard") in ops, ops


def test_a_shared_display_box_is_refused_the_host_clipboard(fvm, clipboard):
    """A box that shares the user's display (--host-display) gets the host's
    clipboard through X11 in its own server: the hooks refuse it, audited."""
    name = "c" + uuid.uuid4().hex[:10]
    fvm("create", name, "--host-display", check=0)
    try:
        clipboard.set("host secret")
        assert clipboard.shows("host secret")
        assert clipboard.text(name) == "(none)"
        assert ("desktop", "read-clipboard") in {(r["type"], r["op"]) for r in audit(fvm, name)}
    finally:
        fvm("rm", "--force", name)


def test_a_box_cannot_write_the_host_clipboard_past_user32(fvm, box, clipboard):
    """Hostile: win32u's NtUserEmptyClipboard/NtUserSetClipboardData called
    directly, past clipboard.c's user32 hooks; desktop.c refuses them."""
    clipboard.set("host text")
    clipboard.set("raw from the host", how="clip-raw")
    assert clipboard.shows("raw from the host")   # the path works on this platform
    out = clipboard.set("raw from the box", box, how="clip-raw")
    assert "emptied=0" in out, out
    assert clipboard.shows("raw from the host")
    assert ("object", "write-clipboard") in {(r["type"], r["op"]) for r in audit(fvm, box)}


def test_desktop_rules_open_the_clipboard(fvm, clipboard, tmp_path):
    inbound = make_box(fvm, tmp_path, "[desktop]\nopen clipboard-in\n")
    both = make_box(fvm, tmp_path, "[desktop]\nopen clipboard-in\nopen clipboard-out\n")
    try:
        clipboard.set("host text")
        assert clipboard.shows("host text", inbound)
        # clipboard-in only: the box's copy still stays in the box...
        clipboard.set("inbound copy", inbound)
        assert clipboard.shows("host text")
        assert clipboard.shows("inbound copy", inbound)
        # ...until the host copies something newer, which the box then sees.
        clipboard.set("newer host text")
        assert clipboard.shows("newer host text", inbound)
        # clipboard-out: the box's copy reaches the host.
        clipboard.set("shared copy", both)
        assert clipboard.shows("shared copy")
    finally:
        fvm("rm", "--force", inbound)
        fvm("rm", "--force", both)


def x_window_names():
    out = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, timeout=30).stdout
    return out


def test_show_box_in_title_marks_what_the_host_sees(fvm, capture, xvfb, tmp_path):
    name = make_box(fvm, tmp_path, settings="show_box_in_title = yes")
    title = "Titled" + uuid.uuid4().hex[:6]
    stop = tmp_path / ("stop-" + uuid.uuid4().hex[:6])
    proc = Background(["wine", str(fvm.exe), "run", "--box", name, "--", str(capture), "titled", title,
                       win_path(stop)], fvm.env())
    try:
        ready = wait_ready(proc)
        hwnd = ready.split()[1]
        # The program reads its own title back unmarked.
        assert f"own={title}-2 " in ready and f"owna={title}-2 " in ready, ready
        assert f"len={len(title) + 2} " in ready and ready.endswith(f"lena={len(title) + 2}"), ready
        # The host (GetWindowText from another process) and the X server see the marker.
        seen = results(run_unboxed(capture, "title", hwnd).stdout)
        assert seen.get("title") == f"[#{name}] {title}-2", seen
        expected = f'"[#{name}] {title}-2"'
        names = fvm.wait_until(lambda: expected in x_window_names() and x_window_names(), timeout=20)
        assert names and expected in names, x_window_names()[-3000:]
    finally:
        stop.write_text("")
        try:
            proc.wait(timeout=60)
        except Exception:
            proc.kill()
        fvm("rm", "--force", name)


def test_titles_are_unmarked_without_the_setting(fvm, host_box, capture, xvfb, tmp_path):
    box = host_box
    title = "Plain" + uuid.uuid4().hex[:6]
    stop = tmp_path / ("stop-" + uuid.uuid4().hex[:6])
    proc = Background(["wine", str(fvm.exe), "run", "--box", box, "--", str(capture), "titled", title,
                       win_path(stop)], fvm.env())
    try:
        hwnd = wait_ready(proc).split()[1]
        assert results(run_unboxed(capture, "title", hwnd).stdout).get("title") == f"{title}-2"
    finally:
        stop.write_text("")
        try:
            proc.wait(timeout=60)
        except Exception:
            proc.kill()
