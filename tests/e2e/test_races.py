"""A hostile program races the hooks' decision (tests/apps/racer.c): a second
thread flips the caller's name buffer between an allowed and a denied name
while the first opens it, again and again. A hook that decided on one
reading of the name and let the system call read it again would open the
denied object now and then; FVM hands the real call the name it decided on.
The host side of each test shows the race is real (the same program reads
the denied object unboxed)."""
import shutil
import uuid

import pytest

from conftest import BUILD, linux_path_of_c, run_unboxed

RACER = BUILD / "apps" / "racer.exe"
ROUNDS = "3000"


def escaped(output):
    words = output.split()
    assert words[:1] == ["escaped"], output
    return int(words[1]), int(words[-1].rstrip(")"))


@pytest.fixture
def race_box(fvm, tmp_path):
    tag = uuid.uuid4().hex[:6]
    allowed, denied = f"C:\\race{tag}a", f"C:\\race{tag}b"
    for path, text in ((allowed, "public"), (denied, "SECRET")):
        linux_path_of_c(path).mkdir()
        (linux_path_of_c(path) / "x.txt").write_text(text)
    keys = (f"HKCU\\Software\\Race{tag}A", f"HKCU\\Software\\Race{tag}B")
    run_unboxed("reg", "add", keys[0], "/v", "Public", "/d", "1", "/f")
    run_unboxed("reg", "add", keys[1], "/v", "Secret", "/d", "1", "/f")
    policy = tmp_path / "race.ini"
    policy.write_text(f"[file]\ndeny {denied}\\**\n[key]\ndeny {keys[1].replace('HKCU', 'HKEY_CURRENT_USER')}\n")
    name = "race" + tag
    fvm("create", name, "--policy", "Z:" + str(policy).replace("/", "\\"), check=0)
    yield name, allowed, denied, keys
    fvm("rm", "--force", name)
    for path in (allowed, denied):
        shutil.rmtree(linux_path_of_c(path), ignore_errors=True)
    for key in keys:
        run_unboxed("reg", "delete", key, "/f")


def test_file_name_flipped_during_the_call(fvm, race_box):
    box, allowed, denied, _ = race_box
    a, d = f"\\??\\{allowed}\\x.txt", f"\\??\\{denied}\\x.txt"
    host, _ = escaped(run_unboxed(RACER, "file", a, d, ROUNDS).stdout)
    assert host > 0, "the race never landed on the host: the test proves nothing"
    out = fvm("run", "--box", box, str(RACER), "file", a, d, ROUNDS, env={"RACER_HOLD": "1000"}, check=0).stdout
    boxed, opened = escaped(out)
    assert opened > 0, out
    assert boxed == 0, out


def test_key_name_flipped_during_the_call(fvm, race_box):
    box, _, _, keys = race_box
    user = "\\Registry\\User\\S-1-5-21-0-0-0-1000\\Software\\"
    a, d = user + keys[0].split("\\")[-1], user + keys[1].split("\\")[-1]
    host, _ = escaped(run_unboxed(RACER, "key", a, d, ROUNDS).stdout)
    assert host > 0, "the race never landed on the host: the test proves nothing"
    out = fvm("run", "--box", box, str(RACER), "key", a, d, ROUNDS, env={"RACER_HOLD": "1000"}, check=0).stdout
    boxed, opened = escaped(out)
    assert opened > 0, out
    assert boxed == 0, out
