"""One file, two names (issue 17 item 5): under Wine, Z: is the Unix root,
so every file of C: - and every box's storage - has a second name
Z:\\<prefix>\\drive_c\\... A boxed program must get the same decision
through either name: a `deny C:\\...` rule holds through Z:, and one box can
neither read nor change another box's box.ini or copied-up files through Z:.
Host files are checked by content."""
import uuid

import pytest

from conftest import DRIVE_C, PREFIX, win_path
from test_files import tree_digest

FILETOOL = None


def z_name(linux_path, upper=False):
    name = "Z:" + str(linux_path).replace("/", "\\")
    return name.upper() if upper else name


@pytest.fixture
def secret(fvm, tmp_path):
    ident = uuid.uuid4().hex[:8]
    root = DRIVE_C / "fvmsecret" / ident
    root.mkdir(parents=True)
    (root / "x.txt").write_bytes(b"host secret\r\n")
    policy = tmp_path / "policy.ini"
    policy.write_text(f"[file]\ndeny C:\\fvmsecret\\{ident}\\**\n")
    box = "s" + ident
    fvm("create", box, "--policy", win_path(policy), check=0)
    yield box, root, ident
    fvm("rm", "--force", box)


def tool(fvm, box, apps, *args):
    return fvm("run", "--box", box, win_path(apps / "filetool.exe"), *args)


def test_deny_rule_holds_through_the_z_drive(fvm, secret, apps):
    box, root, ident = secret
    before = tree_digest(root)
    # the rule itself, by the C: name (the control case)
    assert "host secret" not in tool(fvm, box, apps, "read", f"C:\\fvmsecret\\{ident}\\x.txt").stdout
    for name in (z_name(root / "x.txt"), z_name(root / "x.txt", upper=True),
                 "\\\\?\\" + z_name(root / "x.txt"), z_name(root) + "\\sub\\..\\x.txt"):
        out = tool(fvm, box, apps, "read", name).stdout
        assert "host secret" not in out, (name, out)
        tool(fvm, box, apps, "write", name, "changed")
        tool(fvm, box, apps, "write", z_name(root) + "\\new.txt", "new")
    assert tree_digest(root) == before
    assert (root / "x.txt").read_bytes() == b"host secret\r\n"


def test_a_box_cannot_reach_another_box_through_the_z_drive(fvm, apps, tmp_path):
    ident = uuid.uuid4().hex[:8]
    victim, attacker = "v" + ident, "a" + ident
    host_dir = DRIVE_C / "fvmalias" / ident
    host_dir.mkdir(parents=True)
    (host_dir / "f.txt").write_bytes(b"host\r\n")
    fvm("create", victim, check=0)
    fvm("create", attacker, check=0)
    try:
        # the victim copies a host file up: its box now holds "victim data"
        tool(fvm, victim, apps, "write", f"C:\\fvmalias\\{ident}\\f.txt", "victim data")
        vdir = fvm.box_dir(victim)
        copied = vdir / "drive" / "C" / "fvmalias" / ident / "f.txt"
        assert copied.read_bytes().startswith(b"victim data")
        ini_before = (vdir / "box.ini").read_bytes()
        before = tree_digest(vdir / "drive")
        for target in (vdir / "box.ini", copied):
            out = tool(fvm, attacker, apps, "read", z_name(target)).stdout
            assert "victim data" not in out and "[box]" not in out.lower(), (target, out)
            tool(fvm, attacker, apps, "write", z_name(target), "attacker")
            tool(fvm, attacker, apps, "append", z_name(target, upper=True), "attacker")
        listing = tool(fvm, attacker, apps, "list", z_name(vdir)).stdout
        assert "box.ini" not in listing, listing
        assert (vdir / "box.ini").read_bytes() == ini_before
        assert tree_digest(vdir / "drive") == before
        assert (host_dir / "f.txt").read_bytes() == b"host\r\n"
    finally:
        fvm("rm", "--force", victim)
        fvm("rm", "--force", attacker)
