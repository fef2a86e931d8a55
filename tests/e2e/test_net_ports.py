"""A box's loopback port space (net = isolated, the default for new boxes;
core/portmap.c, broker/net.c, runtime/net_ports.c), with real sockets on
loopback: two boxes serve the same port at once and each box's client
reaches its own server; the host reaches neither; getsockname and
getpeername show the port the program asked for; a port is the box's once
(a second bind in the box is refused); a published port lets host clients
in; a shared box binds the host's ports as before."""
import socket
import uuid

import pytest

from conftest import win_path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_reply(port, timeout=5):
    """What a Linux-side client gets from 127.0.0.1:port ("refused" when
    nothing listens there)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.sendall(b"ping")
            return c.recv(16).decode()
    except ConnectionRefusedError:
        return "refused"


class Boxes:
    def __init__(self, fvm, apps):
        self.fvm, self.apps, self.names, self.servers = fvm, apps, [], []

    def create(self, *options):
        name = "p" + uuid.uuid4().hex[:10]
        self.fvm("create", name, *options, check=0)
        self.names.append(name)
        return name

    def probe(self, box, *args):
        return self.fvm("run", "--box", box, win_path(self.apps / "netprobe.exe"), *map(str, args)).stdout.strip()

    def serve(self, box, proto, host, port, tag):
        """Starts a boxed server; returns its first line (LISTEN <port> or ERR ...)."""
        bg = self.fvm.popen("run", "--box", box, win_path(self.apps / "netprobe.exe"), "serve", proto, host,
                            str(port), tag)
        self.servers.append(bg)
        line = self.fvm.wait_until(lambda: bg.output().strip() or (bg.poll() is not None and "exited"), timeout=30)
        if line == "exited":   # say why (fvm run's error), so a failure can be told from a flake of Wine's
            return "exited: " + " | ".join(bg.errors().strip().splitlines()[-3:])
        return (line or "").splitlines()[0] if line else ""

    def close(self):
        for name in self.names:
            self.fvm("stop", name)
        for bg in self.servers:
            try:
                bg.wait(10)
            except Exception:
                bg.kill()
        for name in self.names:
            self.fvm("rm", "--force", name)


@pytest.fixture
def boxes(fvm, apps):
    b = Boxes(fvm, apps)
    yield b
    b.close()


def test_two_boxes_serve_one_port_each_client_reaches_its_own(fvm, boxes):
    port = free_port()
    a, b = boxes.create(), boxes.create()
    assert "net=isolated" in (fvm.box_dir(a) / "box.ini").read_text()
    # Each server sees the port it asked for (getsockname).
    assert boxes.serve(a, "tcp", "127.0.0.1", port, "alpha") == f"LISTEN {port}"
    assert boxes.serve(b, "tcp", "127.0.0.1", port, "beta") == f"LISTEN {port}"
    assert boxes.probe(a, "connect", "tcp", "127.0.0.1", port) == "OK alpha"
    assert boxes.probe(b, "connect", "tcp", "127.0.0.1", port) == "OK beta"
    # The host's port is not the boxes': nothing listens there.
    assert host_reply(port) == "refused"
    # The port is the box's once; the other box's use of it does not matter.
    assert boxes.probe(a, "listen", "tcp", "127.0.0.1", port) == "ERR bind 10048"
    # Closing the socket gives the port back to the box at once.
    other = free_port()
    assert boxes.probe(a, "rebind", "127.0.0.1", other) == "OK"
    # The client's view: its peer is on the port it connected to.
    names = boxes.probe(a, "names", "127.0.0.1", port).split()
    assert names[0] == "NAMES" and names[2] == str(port), names
    # UDP has a port space of its own, on the same number.
    assert boxes.serve(a, "udp", "127.0.0.1", port, "alpha-udp") == f"LISTEN {port}"
    assert boxes.probe(a, "connect", "udp", "127.0.0.1", port) == "OK alpha-udp"
    # fvm net lists both, with their real ports (not the box port).
    out = fvm("net", a, check=0).stdout
    assert "net = isolated" in out, out
    bound = lambda text: [line.split() for line in text.splitlines()
                          if line.strip().startswith(("tcp", "udp")) and line.split()[1] in ("ipv4", "ipv6")]
    rows = bound(out)
    assert sorted(r[0] for r in rows) == ["tcp", "udp"], out
    assert all(r[2] == str(port) and r[3] != str(port) for r in rows), out
    real_a = next(int(r[3]) for r in rows if r[0] == "tcp")
    real_b = next(int(r[3]) for r in bound(fvm("net", b, check=0).stdout) if r[0] == "tcp")
    assert real_a != real_b


def test_a_wildcard_bind_is_the_boxs_too(fvm, boxes):
    """A server on 0.0.0.0:P is reached by its box's loopback clients on P,
    by nobody on the host's P; [::1]:P is another server of the box."""
    port = free_port()
    a = boxes.create()
    assert boxes.serve(a, "tcp", "0.0.0.0", port, "wild") == f"LISTEN {port}"
    assert boxes.probe(a, "connect", "tcp", "127.0.0.1", port) == "OK wild"
    assert host_reply(port) == "refused"
    # (hostile) 0.0.0.0 as a destination is loopback on Linux: it reaches the box's port too.
    assert boxes.probe(a, "connect", "tcp", "0.0.0.0", port) == "OK wild"
    # IPv6 loopback: a port space per family, the same port number.
    try:
        socket.socket(socket.AF_INET6).close()
        with socket.socket(socket.AF_INET6) as s6:
            s6.bind(("::1", 0))
    except OSError:
        return
    assert boxes.serve(a, "tcp", "::1", port, "six") == f"LISTEN {port}"
    assert boxes.probe(a, "connect", "tcp", "::1", port) == "OK six"
    assert boxes.probe(a, "connect", "tcp", "127.0.0.1", port) == "OK wild"


def test_published_port_lets_host_clients_in(fvm, boxes):
    port, host_port = free_port(), free_port()
    c = boxes.create("--publish", f"{host_port}:{port}")
    out = fvm("net", c, check=0).stdout
    assert f"published: {host_port}:{port}" in out, out
    assert boxes.serve(c, "tcp", "127.0.0.1", port, "gamma") == f"LISTEN {port}"
    assert boxes.probe(c, "connect", "tcp", "127.0.0.1", port) == "OK gamma"
    assert host_reply(host_port) == "gamma"   # the host reaches it on the published port
    assert host_reply(port) == "refused"      # and only there
    out = fvm("net", c, check=0).stdout
    assert f"{port} {host_port}" in " ".join(out.split()) and "(published)" in out, out


def test_shared_box_binds_the_hosts_port(fvm, boxes):
    port = free_port()
    d = boxes.create("--net", "shared")
    assert boxes.serve(d, "tcp", "127.0.0.1", port, "delta") == f"LISTEN {port}"
    assert host_reply(port) == "delta"
    assert boxes.probe(d, "connect", "tcp", "127.0.0.1", port) == "OK delta"
    assert "net = shared" in fvm("net", d, check=0).stdout


def test_bad_publish_is_refused_with_its_column(fvm):
    proc = fvm("create", "pbad" + uuid.uuid4().hex[:6], "--publish", "8080:99999", check=2)
    assert "column 6: bad box port in '8080:99999'" in proc.stderr, proc.stderr
    proc = fvm("create", "pbad" + uuid.uuid4().hex[:6], "--net", "bridged", check=2)
    assert "isolated or shared" in proc.stderr, proc.stderr


def test_a_box_cannot_touch_another_boxs_port_map(fvm, boxes):
    """(hostile) A program of box A opens box B's port map section and
    broker pipe by their names: both are refused, and B's server is still
    B's."""
    port = free_port()
    a, b = boxes.create(), boxes.create()
    assert boxes.serve(b, "tcp", "127.0.0.1", port, "beta") == f"LISTEN {port}"
    out = boxes.probe(a, "forge", fvm.root_win + "\\boxes\\" + b)   # the path the box objects are named from
    fields = out.split()
    assert fields[0] == "FORGE", out
    assert fields[2] != "0" and fields[4] != "0" and fields[6] != "0", out
    # Box A's own pipe and map are as closed to the program itself (only the
    # runtime, bypassing its own hooks, reaches them).
    fields = boxes.probe(a, "forge", fvm.root_win + "\\boxes\\" + a).split()
    assert fields[2] != "0" and fields[6] != "0", fields
    assert boxes.probe(b, "connect", "tcp", "127.0.0.1", port) == "OK beta"
    assert boxes.probe(a, "connect", "tcp", "127.0.0.1", port) == "ERR connect 10061"


def test_fvm_set_net_mode(fvm, boxes):
    """fvm set NAME net=isolated|shared rewrites box.ini whole (nothing
    else in it changes, no draft left), applies at the next start, and is
    refused, changing nothing, while the box runs."""
    port = free_port()
    e = boxes.create("--publish", f"{free_port()}:{port}")
    ini = fvm.box_dir(e) / "box.ini"
    before = ini.read_text()
    out = fvm("set", e, "net=shared", check=0).stdout
    assert f"{e}: net=shared" in out, out
    after = ini.read_text()
    assert "net=shared" in after and "net=isolated" not in after, after
    assert [line for line in before.splitlines() if not line.startswith("net=")] == \
           [line for line in after.splitlines() if not line.startswith("net=")], (before, after)
    assert not (fvm.box_dir(e) / "box.ini.set").exists()
    assert "net=shared" in fvm("set", e, check=0).stdout
    # Shared now: its server binds the host's port.
    assert boxes.serve(e, "tcp", "127.0.0.1", port, "epsilon") == f"LISTEN {port}"
    assert host_reply(port) == "epsilon"
    # Running: refused, box.ini untouched.
    proc = fvm("set", e, "net=isolated", check=1)
    assert "is running" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
    assert ini.read_text() == after
    proc = fvm("set", e, "net=bridged", check=2)
    assert "isolated or shared" in proc.stderr, proc.stderr
    fvm("stop", e)
    fvm.wait_until(lambda: host_reply(port, timeout=2) == "refused", timeout=20)
    assert fvm("set", e, "--net", "isolated", check=0).returncode == 0
    assert "net=isolated" in ini.read_text()
    assert boxes.serve(e, "tcp", "127.0.0.1", port, "isolated-again") == f"LISTEN {port}"
    assert host_reply(port) == "refused"
    assert boxes.probe(e, "connect", "tcp", "127.0.0.1", port) == "OK isolated-again"
    # fvm net --publish rewrites box.ini the same way (the box may run: it applies at the next bind).
    fvm("net", e, "--publish", "none", check=0)
    assert "publish=" not in ini.read_text() and "net=isolated" in ini.read_text(), ini.read_text()
    fvm("net", e, "--publish", f"{port}:{port}/udp", check=0)
    assert f"publish={port}:{port}/udp" in ini.read_text(), ini.read_text()


def test_publish_rule_in_the_policy(fvm, boxes, tmp_path):
    """[net] open publish:HOST:BOX publishes like the box setting; a bad
    one is refused by fvm policy check with file:line:column, and a deny or
    program-scoped publish rule is refused."""
    port, host_port = free_port(), free_port()
    policy = tmp_path / "publish.ini"
    policy.write_text(f"[net]\nopen publish:{host_port}:{port}\n")
    f = boxes.create("--policy", win_path(policy))
    out = fvm("net", f, check=0).stdout
    assert f"published by the policy: {host_port}:{port}" in out, out
    assert boxes.serve(f, "tcp", "127.0.0.1", port, "zeta") == f"LISTEN {port}"
    assert host_reply(host_port) == "zeta"
    assert host_reply(port) == "refused"
    bad = tmp_path / "bad.ini"
    bad.write_text("[net]\nopen publish:8080:99999\ndeny publish:1:2\nx.exe: open publish:3:4\n")
    proc = fvm("policy", "check", win_path(bad), check=1)
    err = proc.stdout + proc.stderr
    assert "bad.ini:2:19: error: bad box port" in err, err
    assert "bad.ini:3:6: error: a publish rule is an open rule" in err, err
    assert "bad.ini:4:13: error: a publish rule is the box's" in err, err


def test_fvm_net_lists_the_boxs_open_sockets(fvm, boxes):
    """fvm net NAME lists every open socket of the box's processes (asked
    of the sockets themselves): a server's listening socket on its box port
    and a client's connection with its peer."""
    port = free_port()
    a = boxes.create()
    with socket.socket() as silent:   # accepts at the TCP level, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent_port = silent.getsockname()[1]
        assert boxes.serve(a, "tcp", "127.0.0.1", port, "eta") == f"LISTEN {port}"
        client = fvm.popen("run", "--box", a, win_path(boxes.apps / "netprobe.exe"), "connect", "tcp", "127.0.0.1",
                           str(silent_port))
        boxes.servers.append(client)

        def rows():
            out = fvm("net", a, check=0).stdout
            return [line.split() for line in out.splitlines() if line.startswith("  tcp ") and len(line.split()) == 5]
        assert fvm.wait_until(lambda: any(r[2] == f"127.0.0.1:{silent_port}" for r in rows()), timeout=30), rows()
        got = rows()
        assert any(r[1] == f"127.0.0.1:{port}" and r[2] == "*" and r[3] == "listen" for r in got), got
        assert any(r[2] == f"127.0.0.1:{silent_port}" and r[3] == "connected" for r in got), got
