"""A boxed program against other programs' windows, input and clipboard
(src/runtime/desktop.c; issue 17 item 8), on an Xvfb display.

deskspy.exe target runs on the host (or in another box): a window with an
edit control, its text on the clipboard. deskspy.exe attack runs in a box
with the target's window handles (as a brute force would find them) and tries
every way of reaching it: finding it, reading its title, messages (close,
characters, text), moving and hiding it, changing its style, hooks, input
and the clipboard. The target's own report says what arrived: nothing may.
The same attack run unboxed shows each attempt works on this platform, and
deskspy.exe self shows the box still does all of it to its own windows."""
import time
import uuid

import pytest

from conftest import Background, wine_env, win_path

WANT_REFUSED = {
    "find-title": "none", "foreground": "null", "frompoint": "null", "gettitle": "empty",
    "bruteforce-title": "0", "settitle": "0", "settext": "0", "gettext": "empty", "post-char": "0",
    "post-close": "0", "send-close-timeout": "0", "notify-close": "0", "post-thread": "0",
    "broadcast-close": "0", "show": "0", "move": "0", "style": "0", "hook-ll": "0", "hook-thread": "0",
    "clipboard": "(none)",
}


def results(output, prefix=""):
    found = {}
    for line in output.splitlines():
        if line.startswith(prefix):
            parts = line[len(prefix):].split(None, 1)
            if len(parts) == 2:
                found[parts[0]] = parts[1].strip()
    return found


class Target:
    def __init__(self, argv, env, tmp_path):
        self.stop = tmp_path / ("stop-" + uuid.uuid4().hex[:6])
        self.title = "DeskTarget" + uuid.uuid4().hex[:6]
        self.proc = Background(argv + ["target", self.title, win_path(self.stop)], env)
        end = time.time() + 60
        while time.time() < end and "ready" not in self.proc.output():
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        words = [l for l in self.proc.output().splitlines() if l.startswith("ready")]
        assert words, f"target not ready: {self.proc.output()!r}"
        self.hwnd, self.edit = words[0].split()[1:3]

    def final(self):
        self.stop.write_text("")
        try:
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
        lines = [l for l in self.proc.output().splitlines() if l.startswith("final")]
        assert lines, self.proc.output()
        return lines[0]


def untouched(final, title):
    assert f"title={title} " in final, final
    assert "text=untouched " in final and "closes=0 " in final and "keys=0 " in final, final
    assert "visible=1 " in final and "clipboard=host secret" in final, final


@pytest.fixture
def deskspy(apps):
    return apps / "deskspy.exe"


def test_a_box_cannot_reach_a_host_window(fvm, box, deskspy, xvfb, tmp_path):
    target = Target(["wine", str(deskspy)], wine_env(), tmp_path)
    try:
        out = fvm("run", "--box", box, "--", str(deskspy), "attack", target.hwnd, target.edit, target.title,
                  check=0).stdout
    finally:
        final = target.final()
    got = results(out)
    assert {k: got.get(k) for k in WANT_REFUSED} == WANT_REFUSED, out
    assert got.get("sendinput", "").startswith("0 err=5"), out
    untouched(final, target.title)
    # Every refusal is in the box's audit log. (The host's clipboard is not
    # there to refuse: the box's nested display has a clipboard of its own;
    # test_screen.py has the refusal for a box on the user's display.)
    log = fvm("logs", box, check=0).stdout
    for op in ("send-message", "post-message", "read-title", "show-window", "move-window", "set-hook",
               "send-input"):
        assert f'"op":"{op}"' in log, (op, log[-2000:])


def test_a_box_cannot_reach_another_boxs_window(fvm, box, deskspy, xvfb, tmp_path):
    other = "d" + uuid.uuid4().hex[:8]
    fvm("create", other, check=0)
    try:
        target = Target(["wine", str(fvm.exe), "run", "--box", other, "--", str(deskspy)], fvm.env(), tmp_path)
        try:
            out = fvm("run", "--box", box, "--", str(deskspy), "attack", target.hwnd, target.edit, target.title,
                      check=0).stdout
        finally:
            final = target.final()
    finally:
        fvm("rm", "--force", other)
    got = results(out)
    assert {k: got.get(k) for k in WANT_REFUSED if k != "clipboard"} == \
        {k: v for k, v in WANT_REFUSED.items() if k != "clipboard"}, out
    assert "text=untouched " in final and "closes=0 " in final and "visible=1 " in final, final


def test_the_same_attack_unboxed_reaches_the_window(deskspy, xvfb, tmp_path):
    """What the refusals above are worth: unboxed, each attempt lands."""
    target = Target(["wine", str(deskspy)], wine_env(), tmp_path)
    from conftest import run_unboxed
    try:
        out = run_unboxed(deskspy, "attack", target.hwnd, target.edit, target.title).stdout
    finally:
        final = target.final()
    got = results(out)
    for k in ("find-title", "gettitle", "settitle", "post-close", "hook-ll", "clipboard"):
        assert got.get(k) != WANT_REFUSED[k], (k, out)
    assert "closes=0 " not in final and "title=pwned" in final, final


def test_a_box_still_drives_its_own_windows(fvm, box, deskspy, xvfb):
    out = fvm("run", "--box", box, "--", str(deskspy), "self", check=0).stdout
    got = results(out, "self ")
    for k in ("find-title", "gettitle", "gettext"):
        assert got.get(k) in ("found", "read"), (k, out)
    for k in ("settitle", "settext", "post-char", "post-close", "send-close-timeout", "notify-close", "post-thread",
              "show", "move", "style", "hook-thread"):
        assert got.get(k) == "1", (k, out)
    assert got.get("foreground") == "target" and got.get("frompoint") == "target", out
    assert got.get("clipboard") == "box data", out
    # Global hooks and system broadcasts stay refused, even for the box's own use.
    assert got.get("hook-ll") == "0" and got.get("broadcast-close") == "0", out
