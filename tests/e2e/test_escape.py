"""Escape suite: attempts to change a host file from inside a box through
every path form, handle trick and operation we know of. Each attempt runs in
a fresh box against a fresh host tree; the test asserts the host tree is
byte-identical afterwards (hash of names, contents, sizes, times). Whether
the operation itself succeeded (in the box) or was refused does not matter
here: the host must not change."""
import pytest

from conftest import DRIVE_C, PREFIX, win_path
from test_files import HOST_FILES, box_copy, host, tool  # noqa: F401  (fixtures)

# Each attempt: a list of filetool or cmd invocations, formatted with
# {h} = the host folder (C:\fvmhost\ID), {id} = its name, {unix} = its Linux
# path with backslashes, {z} = the same folder through Wine's Z: drive.
ATTEMPTS = {
    "win32-write": [["tool", "write", r"{h}\a.txt", "X"]],
    "win32-append": [["tool", "append", r"{h}\a.txt", "X"]],
    "nt-dosdevices-short": [["tool", "ntcreate", r"\??\{h}\a.txt", "X"]],
    "nt-case": [["tool", "ntcreate", r"\??\c:\FVMHOST\{ID}\A.TXT", "X"]],
    "nt-dosdevices-long": [["tool", "ntcreate", r"\DosDevices\{h}\a.txt", "X"]],
    "nt-global": [["tool", "ntcreate", r"\GLOBAL??\{h}\a.txt", "X"]],
    "nt-volume-device": [["tool", "ntcreate", r"\Device\HarddiskVolume1\fvmhost\{id}\a.txt", "X"]],
    "nt-open-for-write": [["tool", "ntopenw", r"\??\{h}\a.txt"]],
    "win32-verbatim": [["tool", "write", r"\\?\{h}\a.txt", "X"]],
    "win32-device": [["tool", "write", r"\\.\{h}\a.txt", "X"]],
    "unc-localhost-share": [["tool", "write", r"\\localhost\C$\fvmhost\{id}\a.txt", "X"]],
    "unc-verbatim": [["tool", "write", r"\\?\UNC\localhost\C$\fvmhost\{id}\a.txt", "X"]],
    "nt-unc": [["tool", "ntcreate", r"\??\UNC\localhost\C$\fvmhost\{id}\a.txt", "X"]],
    "win32-dotdot": [["tool", "write", r"{h}\sub\..\a.txt", "X"]],
    "nt-dotdot": [["tool", "ntcreate", r"\??\{h}\sub\..\a.txt", "X"]],
    "nt-dotdot-above-box": [["tool", "ntcreate", r"\??\{h}\sub\deeper\..\..\..\{id}\a.txt", "X"]],
    "nt-dot": [["tool", "ntcreate", r"\??\{h}\.\a.txt", "X"]],
    "nt-double-separator": [["tool", "ntcreate", r"\??\{h}\\a.txt", "X"]],
    "win32-trailing-dot": [["tool", "write", r"{h}\a.txt.", "X"]],
    "win32-trailing-space": [["tool", "write", "{h}\\a.txt ", "X"]],
    "win32-forward-slashes": [["tool", "write", "{h}/a.txt".replace("\\", "/"), "X"]],
    "stream-default": [["tool", "write", r"{h}\a.txt::$DATA", "X"]],
    "stream-named": [["tool", "write", r"{h}\a.txt:hidden", "X"]],
    "wine-unix-namespace": [["tool", "ntcreate", r"\??\unix{unix}\a.txt", "X"]],
    "other-drive-z": [["tool", "write", r"{z}\a.txt", "X"]],
    "relative-to-handle": [["tool", "relcreate", r"{h}", "a.txt", "X"]],
    "relative-to-handle-dotdot": [["tool", "relcreate", r"{h}\sub", r"..\a.txt", "X"]],
    "dup-handle-write": [["tool", "dupwrite", r"{h}\a.txt", "X"]],
    "set-attributes": [["tool", "setattr", r"{h}\a.txt", "1"]],
    "set-times": [["tool", "settime", r"{h}\a.txt"]],
    "set-times-on-folder": [["tool", "settime", r"{h}\sub"]],
    "truncate": [["tool", "truncate", r"{h}\a.txt", "0"]],
    "mapped-write": [["tool", "mmap", r"{h}\a.txt", "XXXX"]],
    "delete-win32": [["tool", "delete", r"{h}\a.txt"]],
    "delete-nt": [["tool", "ntdelete", r"\??\{h}\a.txt"]],
    "delete-on-close": [["tool", "deleteonclose", r"{h}\a.txt"]],
    "rmdir-host-folder": [["tool", "rmdir", r"{h}\sub\deeper"]],
    "mkdir-on-host": [["tool", "mkdir", r"{h}\newdir"]],
    "rename-host-file": [["tool", "move", r"{h}\a.txt", r"{h}\moved.txt"]],
    "rename-host-folder": [["tool", "move", r"{h}\sub", r"{h}\sub2"]],
    "replace-host-file-by-move": [["tool", "write", r"{h}\new.txt", "N"],
                                  ["tool", "move", r"{h}\new.txt", r"{h}\b.txt", "replace"]],
    "nt-rename-box-file-onto-host": [["tool", "write", r"{h}\new.txt", "N"],
                                     ["tool", "ntrename", r"{h}\new.txt", r"\??\{h}\b.txt"]],
    "nt-rename-to-unix-namespace": [["tool", "write", r"{h}\new.txt", "N"],
                                    ["tool", "ntrename", r"{h}\new.txt", r"\??\unix{unix}\b.txt"]],
    "hardlink-box-file-into-host": [["tool", "write", r"{h}\new.txt", "N"],
                                    ["tool", "link", r"{h}\new.txt", r"{h}\linked.txt"]],
    "hardlink-host-file": [["tool", "link", r"{h}\a.txt", r"{h}\a-link.txt"],
                           ["tool", "append", r"{h}\a-link.txt", "X"]],
    "symlink-to-host-folder": [["tool", "symlink", r"{h}\sub\lnk", r"{h}", "dir"],
                               ["tool", "write", r"{h}\sub\lnk\a.txt", "X"]],
    "symlink-file-to-host-file": [["tool", "symlink", r"{h}\flink.txt", r"{h}\b.txt"],
                                  ["tool", "append", r"{h}\flink.txt", "X"]],
    "cmd-redirect": [["cmd", "/c", r"echo X> {h}\a.txt"]],
    "cmd-copy-over": [["cmd", "/c", r"copy /y {h}\b.txt {h}\a.txt"]],
    "cmd-del": [["cmd", "/c", r"del /q {h}\a.txt"]],
    "cmd-ren": [["cmd", "/c", r"ren {h}\a.txt z.txt"]],
    "cmd-move": [["cmd", "/c", r"move {h}\a.txt {h}\sub\a.txt"]],
    "cmd-rmdir-tree": [["cmd", "/c", r"rmdir /s /q {h}\sub"]],
    # the target exists, so xcopy does not ask "file or directory?" (Wine's
    # xcopy repeats that question forever at end of input)
    "xcopy-over": [["cmd", "/c", "xcopy", "/y", "/q", r"{h}\b.txt", r"{h}\a.txt"]],
    "attrib": [["cmd", "/c", r"attrib +r +h {h}\a.txt"]],
    "box-storage-other-box": [["tool", "write", r"{root}\boxes\victim\box.ini", "X"]],
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_escape_attempt_leaves_host_unchanged(fvm, box, host, tool, name):   # noqa: F811
    win, root = host
    unix = str(root).replace("/", "\\")
    z = "Z:" + unix
    for step in ATTEMPTS[name]:
        args = [a.format(h=win, id=root.name, ID=root.name.upper(), unix=unix, z=z, root=fvm.root_win)
                for a in step]
        program = tool if args[0] == "tool" else args[0]
        fvm("run", "--box", box, program, *args[1:])
    # the host fixture asserts the tree hash at teardown; check a sample now
    # too, so the failure names the attempt
    for rel, data in HOST_FILES.items():
        assert (root / rel).read_bytes() == data, f"{name}: host file {rel} changed"
    assert sorted(p.name for p in root.iterdir()) == ["Zed.txt", "a.txt", "b.txt", "sub"], name


def test_escape_suite_is_large_enough():
    assert len(ATTEMPTS) >= 40
