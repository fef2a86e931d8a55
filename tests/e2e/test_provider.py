"""The `ask` action: a decision provider (tests/apps/provider.exe, speaking
include/fvm/provider.h) answers for the policy; with no provider, or one too
slow, the rule's default applies within the rule's timeout."""
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import DRIVE_C, Background, wine_env, win_path


@pytest.fixture(params=["host", "own"])
def ask_box(fvm, tmp_path, request):
    """A box whose policy asks, on the host's Wine server or on its own (the
    provider is then reached through fvm's relay, src/cli/relay.c)."""
    ident = uuid.uuid4().hex[:8]
    root = DRIVE_C / "fvmask" / ident
    root.mkdir(parents=True)
    (root / "f.txt").write_bytes(b"host\r\n")
    win = "C:\\fvmask\\" + ident
    policy = tmp_path / "ask.ini"
    policy.write_text(f"[file]\nask(timeout=1500ms, default=deny) audit {win}\\**\n")
    box = "a" + ident
    fvm("create", box, "--policy", win_path(policy), f"--{request.param}-server", check=0)
    pipe = "fvm-test-provider-" + ident
    with open(fvm.box_dir(box) / "box.ini", "a") as ini:
        ini.write(f"provider={pipe}\r\n")
    yield box, win, root, pipe
    fvm("rm", "--force", box)
    shutil.rmtree(root, ignore_errors=True)


def start_provider(apps, pipe, word, delay_ms=0):
    proc = Background(["wine", str(apps / "provider.exe"), pipe, word, str(delay_ms)], wine_env())
    end = time.time() + 20
    while "provider ready" not in proc.output() and time.time() < end:
        time.sleep(0.1)
    assert "provider ready" in proc.output()
    return proc


def write(fvm, box, apps, path):
    start = time.time()
    out = fvm("run", "--box", box, win_path(apps / "filetool.exe"), "append", path, "x").stdout.strip()
    return out, time.time() - start


@pytest.mark.parametrize("word,expected", [("allow", "OK"), ("deny", "ERR CreateFile 5")])
def test_provider_answers(fvm, ask_box, apps, word, expected):
    box, win, root, pipe = ask_box
    provider = start_provider(apps, pipe, word)
    try:
        out, _ = write(fvm, box, apps, f"{win}\\f.txt")
        assert out == expected
        assert "FVMASK/1\t" + box in provider.output()
        assert f"\\??\\{win}\\f.txt" in provider.output()
        assert (root / "f.txt").read_bytes() == b"host\r\n"     # allow = copy-on-write
    finally:
        provider.kill()


def test_no_provider_means_the_default(fvm, ask_box, apps):
    box, win, root, pipe = ask_box
    out, elapsed = write(fvm, box, apps, f"{win}\\f.txt")
    assert out == "ERR CreateFile 5"


def test_slow_provider_means_the_default_within_the_timeout(fvm, ask_box, apps):
    box, win, root, pipe = ask_box
    # The provider answers after 30 s; the rule's timeout is 1.5 s. The whole
    # fvm run (start-up included, slow on a loaded machine: 6.1 s was seen
    # with a 6 s provider) must end well before the provider would answer.
    provider = start_provider(apps, pipe, "allow", delay_ms=30000)
    try:
        out, elapsed = write(fvm, box, apps, f"{win}\\f.txt")
        assert out == "ERR CreateFile 5"
        assert elapsed < 20, f"the boxed program waited {elapsed:.1f} s for a slow provider"
    finally:
        provider.kill()
