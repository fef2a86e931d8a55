"""Names a virtualizer cannot make canonical (issue 19): a hostile program
(tests/apps/oddnames.c) hands the NT calls doubled and trailing separators,
embedded NULs, odd byte lengths, "." and "..", very long names and names
relative to a root handle, for keys, files, named objects and pipes. Every
form must be decided - mapped into the box's view or refused - never passed
to the host unvirtualised: the host registry is compared by `reg export`
before and after, host files by hash, host events by their state, host pipes
by whether a box reached them."""
import time
import uuid

import pytest

from conftest import BUILD, Background, run_unboxed, wine_env, win_path
from test_files import HOST_FILES, tree_digest, host  # noqa: F401  (fixture)
from test_registry import export

ODD = BUILD / "apps" / "oddnames.exe"


def odd(fvm, box, *ops):
    """Runs oddnames in the box (box=None: on the host); ops joined by '+'."""
    argv = []
    for op in ops:
        argv += (["+"] if argv else []) + list(op)
    if box is None:
        return run_unboxed(ODD, *argv).stdout
    return fvm("run", "--box", box, str(ODD), *argv).stdout


def statuses(out, op):
    """The status of each `op` line, in order (as ints)."""
    return [int(line.split()[1], 16) for line in out.splitlines() if line.startswith(op + " ")]


def fill(form, **names):
    """form with {NAME} replaced (str.format would take the {0} escapes)."""
    for k, v in names.items():
        form = form.replace("{" + k + "}", v)
    return form


def succeeded(status):
    return status < 0x80000000


# ---- keys ------------------------------------------------------------------------

KEY_FORMS = [
    # (id, name relative to the host key K's NT name, or (root, name) for a root handle)
    ("doubled-separator", r"{K}\\X1"),
    ("doubled-separator-twice", r"{K}\\\X1b"),
    ("leading-doubled-separator", r"\{K}\X1c"),
    ("embedded-nul", r"{K}\X2{0}Y"),
    ("embedded-nul-at-end", r"{K}\X2b{0}"),
    ("trailing-doubled-separator", r"{K}\X3\\"),
    ("odd-byte-length", r"{K}\X4{odd}"),
    ("dot", r"{K}\.\X5"),
    ("dotdot", r"{K}\sub\..\X6"),
    ("very-long", r"{K}\{2000x}A"),
    ("root-doubled", ("{K}", r"X7\\")),
    ("root-leading-separator", ("{K}", r"\X8")),
    ("root-nul", ("{K}", r"X9{0}Z")),
    ("root-odd", ("{K}", r"X10{odd}")),
    ("root-dotdot", ("{K}", r"..\X11")),
]


@pytest.fixture
def odd_key():
    key = "HKCU\\Software\\FvmOdd" + uuid.uuid4().hex[:8]
    run_unboxed("reg", "add", key, "/v", "Kept", "/d", "host", "/f")
    yield key
    run_unboxed("reg", "delete", key, "/f")


def key_nt_name(key):
    sid_path = run_unboxed(BUILD / "apps" / "regtool.exe", "name", "HKCU").stdout.split("key=")[-1].split()[0]
    return sid_path + "\\" + key.split("\\", 1)[1]


def test_odd_key_names_never_reach_the_host(fvm, box, odd_key, tmp_path):
    nt = key_nt_name(odd_key)
    before = export("HKCU\\Software", tmp_path, "before")
    ops = []
    for _, form in KEY_FORMS:
        if isinstance(form, tuple):
            ops.append(["create", "key", form[1], fill(form[0], K=nt)])
        else:
            ops.append(["create", "key", fill(form, K=nt)])
    out = odd(fvm, box, *ops)
    assert len(statuses(out, "create")) == len(KEY_FORMS), out
    assert export("HKCU\\Software", tmp_path, "after") == before, out
    # nothing below the key on the host, whatever the name
    host_view = run_unboxed(BUILD / "apps" / "regtool.exe", "list", odd_key).stdout
    assert "subkeys=0" in host_view.replace(" ", "") or "key" not in host_view.lower().split("values")[0], host_view
    # each form was decided: mapped into the box (the registry reads runs of
    # separators as one, so "K\\\\X1" is the box's K\X1, listed by fvm diff)
    # or refused with the status the host gives for such a name
    got = dict(zip([f[0] for f in KEY_FORMS], statuses(out, "create")))
    assert succeeded(got["doubled-separator"]) and succeeded(got["root-doubled"]), out
    for refused in ("embedded-nul", "embedded-nul-at-end", "odd-byte-length", "root-nul", "root-odd",
                    "leading-doubled-separator"):
        assert got[refused] == 0xC0000033, (refused, out)
    diff = fvm("diff", box).stdout
    assert "X1\\" in diff and "X7\\" in diff, diff
    logs = fvm("logs", box).stdout
    assert "unusual name: an embedded NUL" in logs and "unusual name: an odd byte length" in logs, logs


# ---- files ----------------------------------------------------------------------

FILE_FORMS = [
    ("doubled-separator", r"\??\{h}\\n1.txt"),
    ("doubled-after-drive", r"\??\C:\\fvmhost\{id}\n1b.txt"),
    ("embedded-nul", r"\??\{h}\n2{0}.txt"),
    ("embedded-nul-hiding-host", r"\??\{h}\a.txt{0}junk"),
    ("trailing-separator", r"\??\{h}\a.txt\\"),
    ("odd-byte-length", r"\??\{h}\a.txt{odd}"),
    ("dot", r"\??\{h}\.\a.txt"),
    ("dotdot", r"\??\{h}\sub\..\a.txt"),
    ("very-long", r"\??\{h}\{250x}L\{250x}M.txt"),
    ("root-doubled", ("\\??\\{h}", r"sub\\n3.txt")),
    ("root-leading-separator", ("\\??\\{h}", r"\a.txt")),
    ("root-nul", ("\\??\\{h}", r"a.txt{0}x")),
    ("root-odd", ("\\??\\{h}", r"a.txt{odd}")),
    ("root-dotdot", ("\\??\\{h}\\sub", r"..\a.txt")),
    ("root-dosdevices-directory", ("dir:\\??", r"{h}\n4.txt")),
    ("root-dosdevices-directory-existing", ("dir:\\??", r"{h}\a.txt")),
    ("root-device-directory", ("dir:\\Device", r"HarddiskVolume1\fvmhost\{id}\a.txt")),
    ("root-object-root", ("dir:\\", r"??\{h}\a.txt")),
]


def test_odd_file_names_never_reach_the_host(fvm, box, host):  # noqa: F811
    win, root = host
    before = tree_digest(root)
    ops = []
    for _, form in FILE_FORMS:
        if isinstance(form, tuple):
            ops.append(["create", "file", fill(form[1], h=win, id=root.name), fill(form[0], h=win, id=root.name)])
        else:
            ops.append(["create", "file", fill(form, h=win, id=root.name)])
    out = odd(fvm, box, *ops)
    assert len(statuses(out, "create")) == len(FILE_FORMS), out
    assert tree_digest(root) == before, out
    for rel, data in HOST_FILES.items():
        assert (root / rel).read_bytes() == data, (rel, out)
    assert sorted(p.name for p in root.iterdir()) == ["Zed.txt", "a.txt", "b.txt", "sub"], out


# ---- named objects ---------------------------------------------------------------

EVENT_FORMS = [
    ("doubled-separator", r"\Sessions\1\BaseNamedObjects\\{E}"),
    ("leading-doubled-separator", r"\\Sessions\1\BaseNamedObjects\{E}"),
    ("doubled-in-directory", r"\Sessions\\1\BaseNamedObjects\{E}"),
    ("global-doubled", r"\BaseNamedObjects\\Local\{E}"),
    ("trailing-separator", r"\Sessions\1\BaseNamedObjects\{E}\\"),
    ("embedded-nul", r"\Sessions\1\BaseNamedObjects\{E}{0}x"),
    ("odd-byte-length", r"\Sessions\1\BaseNamedObjects\{E}{odd}"),
    ("dot", r"\Sessions\1\BaseNamedObjects\.\{E}"),
    ("dotdot", r"\Sessions\1\BaseNamedObjects\x\..\{E}"),
    ("dosdevices-doubled", r"\??\\..\Sessions\1\BaseNamedObjects\{E}"),
    ("root-doubled", ("\\Sessions\\1\\BaseNamedObjects", r"\{E}")),
    ("root-nul", ("\\Sessions\\1\\BaseNamedObjects", r"{E}{0}")),
    ("root-sessions-dir", ("\\Sessions\\1", r"BaseNamedObjects\\{E}")),
    ("root-root", ("\\", r"Sessions\1\BaseNamedObjects\{E}")),
]


def hold_event(name, hold_ms=60000):
    bg = Background(["wine", str(ODD), "hold", "event", name, str(hold_ms)], wine_env())
    end = time.time() + 30
    while time.time() < end and "hold " not in bg.output():
        time.sleep(0.05)
    assert "hold 00000000" in bg.output(), bg.output()
    return bg


def test_odd_object_names_never_reach_host_events(fvm, box):
    event = "FvmOddEv" + uuid.uuid4().hex[:8]
    host_name = "\\Sessions\\1\\BaseNamedObjects\\" + event
    holder = hold_event(host_name)
    try:
        ops = []
        for _, form in EVENT_FORMS:
            if isinstance(form, tuple):
                ops.append(["open", "event", fill(form[1], E=event), form[0]])
            else:
                ops.append(["open", "event", fill(form, E=event)])
        out = odd(fvm, box, *ops)
        opened = statuses(out, "open")
        assert len(opened) == len(EVENT_FORMS), out
        reached = [f[0] for f, st in zip(EVENT_FORMS, opened) if succeeded(st)]
        assert reached == [], out
        assert "clear" in odd(fvm, None, ["state", host_name]), out
    finally:
        holder.kill()


# ---- pipes ----------------------------------------------------------------------

PIPE_FORMS = [
    ("doubled-separator", r"\Device\NamedPipe\\{P}"),
    ("doubled-device", r"\Device\\NamedPipe\{P}"),
    ("leading-doubled", r"\\Device\NamedPipe\{P}"),
    ("dosdevices-doubled", r"\??\\pipe\{P}"),
    ("trailing-separator", r"\Device\NamedPipe\{P}\\"),
    ("embedded-nul", r"\Device\NamedPipe\{P}{0}x"),
    ("odd-byte-length", r"\Device\NamedPipe\{P}{odd}"),
    ("dot", r"\Device\NamedPipe\.\{P}"),
    ("dotdot", r"\Device\NamedPipe\x\..\{P}"),
]


def test_odd_pipe_names_never_reach_host_pipes(fvm, box):
    pipe = "FvmOddPipe" + uuid.uuid4().hex[:8]
    bg = Background(["wine", str(ODD), "hold", "pipe", "\\Device\\NamedPipe\\" + pipe, "60000"], wine_env())
    try:
        end = time.time() + 30
        while time.time() < end and "hold " not in bg.output():
            time.sleep(0.05)
        assert "hold 00000000" in bg.output(), bg.output()
        out = odd(fvm, box, *[["open", "pipe", fill(form, P=pipe)] for _, form in PIPE_FORMS])
        opened = statuses(out, "open")
        assert len(opened) == len(PIPE_FORMS), out
        reached = [f[0] for f, st in zip(PIPE_FORMS, opened) if succeeded(st)]
        assert reached == [], out
        # the host's plain name is not reachable either (the control case)
        out = odd(fvm, box, ["open", "pipe", "\\Device\\NamedPipe\\" + pipe])
        assert not succeeded(statuses(out, "open")[0]), out
    finally:
        bg.kill()


SERVER_FORMS = [
    ("doubled-separator", r"\Device\NamedPipe\\{P}a"),
    ("trailing-separator", r"\Device\NamedPipe\{P}b\\"),
    ("embedded-nul", r"\Device\NamedPipe\{P}c{0}x"),
    ("dot", r"\Device\NamedPipe\.\{P}d"),
    ("dotdot", r"\Device\NamedPipe\x\..\{P}e"),
    ("odd-byte-length", r"\Device\NamedPipe\{P}f{odd}"),
]


def test_odd_pipe_server_names_make_no_host_pipe(fvm, box):
    """A boxed server under an odd name is the box's or refused: no host
    client reaches it by that name."""
    pipe = "FvmOddSrv" + uuid.uuid4().hex[:8]
    argv = []
    for _, form in SERVER_FORMS:
        argv += ["create", "pipe", fill(form, P=pipe), "+"]
    argv += ["hold", "pipe", "\\Device\\NamedPipe\\" + pipe + "z", "30000"]
    bg = fvm.popen("run", "--box", box, str(ODD), *argv)
    try:
        end = time.time() + 60
        while time.time() < end and "hold " not in bg.output():
            time.sleep(0.05)
        assert "hold 00000000" in bg.output(), bg.output()
        out = odd(fvm, None, *[["open", "pipe", fill(form, P=pipe).replace("{odd}", "")]
                               for _, form in SERVER_FORMS])
        reached = [f[0] for f, st in zip(SERVER_FORMS, statuses(out, "open")) if succeeded(st)]
        assert reached == [], (out, bg.output())
    finally:
        bg.kill()
