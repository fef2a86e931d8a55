"""Network rules ([net], src/runtime/net.c) with real sockets on loopback:
servers on the Linux side (python sockets), boxed clients (netprobe.exe)
allowed and denied by address, port, protocol, direction and program, by
every path to the socket driver (connect, ConnectEx, a duplicated handle, an
inherited handle, the driver's requests made by hand without Winsock), over
TCP, UDP and IPv6; raw/ICMP and AF_UNIX sockets refused by default; the
audit records; malformed [net] rules refused with file:line:column; host
names through getaddrinfo, GetAddrInfoW, GetAddrInfoExW and gethostbyname;
a boxed server's accepts decided on the peer's address."""
import json
import os
import re
import socket
import threading
import uuid

import pytest

from conftest import own_server, run_unboxed, win_path


class Server:
    """A loopback server on the Linux side: TCP answers "pong" to each
    connection; UDP records what arrives."""

    def __init__(self, kind="tcp", family=socket.AF_INET, host="127.0.0.1"):
        self.sock = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.kind = kind
        if kind == "tcp":
            self.sock.listen(20)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                if self.kind == "tcp":
                    conn, _ = self.sock.accept()
                    conn.settimeout(5)
                    try:
                        self.received.append(conn.recv(16))
                        conn.sendall(b"pong")
                    except OSError:
                        pass
                    conn.close()
                else:
                    self.received.append(self.sock.recvfrom(64)[0])
            except (socket.timeout, OSError):
                continue

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def servers():
    made = []

    def make(*args, **kw):
        s = Server(*args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def make_box(fvm, tmp_path, policy):
    path = tmp_path / "policy.ini"
    path.write_text(policy)
    name = "n" + uuid.uuid4().hex[:10]
    fvm("create", name, "--policy", win_path(path), check=0)
    return name


def records(fvm, box):
    log = fvm.box_dir(box) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def probe(fvm, box, apps, *args):
    return fvm("run", "--box", box, win_path(apps / "netprobe.exe"), *map(str, args)).stdout.strip()


def test_tcp_rules_hold_on_every_path_to_the_driver(fvm, tmp_path, apps, servers):
    denied, allowed = servers(), servers()
    box = make_box(fvm, tmp_path, f"[net]\ndeny audit tcp:127.0.0.1:{denied.port}\n")
    try:
        for path in (["connect", "tcp"], ["connectex"], ["dup"], ["inherit"]):
            assert probe(fvm, box, apps, *path, "127.0.0.1", denied.port) == f"ERR {path[0]} 10013".replace(
                "ERR connectex", "ERR ConnectEx").replace("ERR dup", "ERR connect").replace(
                "ERR inherit", "ERR connect"), path
            assert probe(fvm, box, apps, *path, "127.0.0.1", allowed.port) in ("OK pong", "OK connected"), path
        # Without Winsock: the driver's own create and connect requests.
        assert probe(fvm, box, apps, "direct", "127.0.0.1", denied.port) == "ERR connect -1073741790"
        assert probe(fvm, box, apps, "direct", "127.0.0.1", allowed.port) == "OK"
        assert denied.received == []   # nothing reached the denied server
        # The host itself is not affected.
        assert run_unboxed(apps / "netprobe.exe", "connect", "tcp", "127.0.0.1", denied.port).stdout.strip() == "OK pong"
        recs = [r for r in records(fvm, box) if r["type"] == "net"]
        assert len(recs) == 5
        assert {r["op"] for r in recs} == {"connect"}
        assert all(r["name"].startswith(f"out:tcp:127.0.0.1:{denied.port} from ") and r["decision"] == "deny"
                   and r["rule"] == "policy.ini:2" and r["box"] == box and r["pid"]
                   and r["image"].endswith("netprobe.exe") for r in recs), recs
        assert len(denied.received) == 1   # the unboxed client
    finally:
        fvm("rm", "--force", box)


def test_udp_ipv6_listen_program_scope_and_raw(fvm, tmp_path, apps, servers):
    udp_denied, udp_allowed = servers("udp"), servers("udp")
    try:
        v6 = servers("tcp", socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    policy = "\n".join([
        "[net]",
        f"deny audit udp:localhost:{udp_denied.port}",
        f"deny tcp:[::1]:{v6.port}",
        "deny in:tcp:*:47001",
        f"other.exe: deny tcp:*",
        "",
    ])
    box = make_box(fvm, tmp_path, policy)
    try:
        assert probe(fvm, box, apps, "sendto", "127.0.0.1", udp_denied.port) == "ERR WSASendTo 10013"
        assert probe(fvm, box, apps, "sendto", "127.0.0.1", udp_allowed.port) == "OK"
        # An IPv4-mapped IPv6 address is the IPv4 address to the rules.
        assert probe(fvm, box, apps, "connect", "udp", "::ffff:127.0.0.1", udp_denied.port) != "OK"
        assert probe(fvm, box, apps, "connect", "tcp", "::1", v6.port) == "ERR connect 10013"
        assert probe(fvm, box, apps, "listen", "tcp", "127.0.0.1", 47001) == "ERR listen 10013"
        assert probe(fvm, box, apps, "listen", "tcp", "127.0.0.1", 47002) == "OK"
        # Raw/ICMP and AF_UNIX: refused by default (the host may make them).
        assert probe(fvm, box, apps, "raw") == "ERR socket 5"
        assert probe(fvm, box, apps, "rawip") == "ERR socket 5"
        assert probe(fvm, box, apps, "unix") == "ERR socket 5"
        assert run_unboxed(apps / "netprobe.exe", "raw").stdout.strip() == "OK"
        assert udp_denied.received == []
        assert udp_allowed.received == [b"ping"]
        names = [(r["op"], r["name"], r["decision"]) for r in records(fvm, box) if r["type"] == "net"]
        assert ("sendto", f"out:udp:127.0.0.1:{udp_denied.port} from *", "deny") in names, names
        assert ("socket", "out:icmp:*", "deny") in names, names
        assert ("socket", "out:raw:*", "deny") in names, names
        assert ("socket", "family:1", "deny") in names, names
    finally:
        fvm("rm", "--force", box)
    # A rule scoped to another program does not touch netprobe; one scoped to it does.
    box = make_box(fvm, tmp_path, f"[net]\nother.exe: deny tcp:*\nnetprobe.exe: deny tcp:*:{v6.port}\n"
                                  "open raw:*\n")
    try:
        assert probe(fvm, box, apps, "connect", "tcp", "::1", v6.port) == "ERR connect 10013"
        # A rule that names raw allows it, as far as the host lets fvm: a box
        # with its own server makes its sockets in a user namespace of its
        # own, which has no CAP_NET_RAW for the host's network (as root here).
        want = "ERR socket 10013" if own_server(fvm, box) and os.geteuid() == 0 else "OK"
        assert probe(fvm, box, apps, "raw") == want
    finally:
        fvm("rm", "--force", box)


def test_host_name_rules(fvm, tmp_path, apps, servers):
    """/etc/hosts here names 127.0.0.1 "vm" and "runsc": a name denied for
    every port does not resolve; a name denied for one port resolves, and
    connecting to its address on that port is refused, on another allowed."""
    a, b = servers(), servers()
    box = make_box(fvm, tmp_path, f"[net]\ndeny audit tcp:runs?\ndeny audit tcp:vm:{a.port}\n")
    try:
        assert probe(fvm, box, apps, "name", "runsc", a.port) == "ERR GetAddrInfoW 11001"
        assert probe(fvm, box, apps, "name", "vm", a.port) == "ERR connect 10013"
        assert probe(fvm, box, apps, "name", "vm", b.port) == "OK pong"
        assert probe(fvm, box, apps, "name", "localhost", a.port) == "OK pong"   # the address, by another name
        names = [(r["op"], r["name"], r["rule"]) for r in records(fvm, box) if r["type"] == "net"]
        assert names == [("resolve", "name:runsc", "policy.ini:2"),
                         ("connect", f"out:tcp:127.0.0.1:{a.port} from * host vm", "policy.ini:3")], names
    finally:
        fvm("rm", "--force", box)


def test_malformed_net_rules_are_refused_with_file_line_column(fvm, tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[net]\ndeny tcp:10.0.0.0/33:80\nopen udp:[::1:53\ndeny tcp:*:99999\ndeny smtp:*:25\n")
    proc = fvm("policy", "check", win_path(path), check=1)
    out = proc.stdout + proc.stderr
    for expected in ("bad.ini:2:19: error: an IPv4 prefix is at most /32",
                     "bad.ini:3:10: error: an IPv6 address without its closing ']'",
                     "bad.ini:4:12: error: bad port",
                     "bad.ini:5:6: error: a [net] pattern starts with a protocol"):
        assert expected in out, out


def test_host_name_rules_cover_gethostbyname_and_getaddrinfoex(fvm, tmp_path, apps, servers):
    """The same name rules through gethostbyname and GetAddrInfoExW: a name
    denied for every port does not resolve; one denied for a port resolves
    and its address on that port is refused."""
    a, b = servers(), servers()
    box = make_box(fvm, tmp_path, f"[net]\ndeny audit tcp:runs?\ndeny tcp:vm:{a.port}\n")
    try:
        assert probe(fvm, box, apps, "hostbyname", "runsc", a.port) == "ERR gethostbyname 11001"
        assert probe(fvm, box, apps, "addrinfoex", "runsc", a.port) == "ERR GetAddrInfoExW 11001"
        assert probe(fvm, box, apps, "hostbyname", "vm", a.port) == "ERR connect 10013"
        assert probe(fvm, box, apps, "addrinfoex", "vm", a.port) == "ERR connect 10013"
        assert probe(fvm, box, apps, "hostbyname", "vm", b.port) == "OK pong"
        names = [(r["op"], r["name"]) for r in records(fvm, box) if r["type"] == "net"]
        assert names == [("resolve", "name:runsc")] * 2, names
    finally:
        fvm("rm", "--force", box)


def test_accept_rules_decide_on_the_peer(fvm, tmp_path, apps):
    """A boxed server's accepts follow accept: rules on the peer's address:
    a client from 127.0.0.2 is closed unanswered (the server never sees it),
    one from 127.0.0.1 is served, on the same port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "policy.ini"
    path.write_text("[net]\ndeny audit accept:tcp:127.0.0.2\n")
    box = "n" + uuid.uuid4().hex[:10]
    fvm("create", box, "--policy", win_path(path), "--net", "shared", check=0)
    server = fvm.popen("run", "--box", box, win_path(apps / "netprobe.exe"), "serve", "tcp", "127.0.0.1", str(port),
                       "served")

    def client(source):
        try:
            with socket.socket() as c:
                c.settimeout(10)
                c.bind((source, 0))
                c.connect(("127.0.0.1", port))
                c.sendall(b"ping")
                return c.recv(16).decode() or "closed"
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
    try:
        assert fvm.wait_until(lambda: "LISTEN" in server.output(), timeout=30), server.output()
        assert client("127.0.0.2") == "closed"
        assert client("127.0.0.1") == "served"
        assert client("127.0.0.2") == "closed"
        fvm("stop", box)
        server.wait(10)
        net_records = lambda: [(r["op"], r["name"], r["decision"]) for r in records(fvm, box) if r["type"] == "net"]
        fvm.wait_until(lambda: len(net_records()) >= 2, timeout=10)
        recs = net_records()
        assert recs == [("accept", f"accept:tcp:127.0.0.2:{port} from 127.0.0.1:{port}", "deny")] * 2, recs
    finally:
        fvm("stop", box)
        server.wait(10)
        fvm("rm", "--force", box)


def test_host_names_are_resolved_by_the_broker(fvm, tmp_path, apps):
    """A box's programs run in an empty network namespace of their own
    (src/runtime/floor_ns.c), where the DNS queries the C library makes for
    ws2_32's getaddrinfo reach nothing; the runtime asks the box's broker
    for a name its own lookup (the hosts file) does not find
    (src/runtime/net_resolve.c, src/broker/resolve.c), which resolves in
    the host's network. The program gets what the host
    resolves: names from /etc/hosts ("vm" is 127.0.0.1 here) with their
    canonical name, by getaddrinfo and gethostbyname; and a DNS name when
    this machine resolves one (the program's own resolver could not: CI may
    have no DNS, and then that part is not checked, as the output says). The broker decides the name rules
    again: a program that opens the broker's pipe by an own stub and asks
    for a name its rules deny gets nothing, an allowed one resolves."""
    box = make_box(fvm, tmp_path, "[net]\ndeny tcp:runs?\n")
    try:
        out = probe(fvm, box, apps, "lookup", "vm")
        assert out.splitlines() == ["CANON vm", "ADDR 127.0.0.1 80", "HOSTNAME vm", "HOST 127.0.0.1"], out
        # The same through the broker: the program's own lookup answers a
        # name of the hosts file itself (in microseconds), so the test
        # switch FVM_NAMES_OUTSIDE=1 sends it out, as a DNS name would go.
        outside = fvm("run", "--box", box, win_path(apps / "netprobe.exe"), "lookup", "localhost",
                      env={"FVM_NAMES_OUTSIDE": "1"}).stdout
        assert outside.splitlines()[:2] == ["CANON localhost", "ADDR 127.0.0.1 80"], outside
        assert "HOST 127.0.0.1" in outside.splitlines(), outside
        denied = fvm("run", "--box", box, win_path(apps / "netprobe.exe"), "lookup", "runsc",
                     env={"FVM_NAMES_OUTSIDE": "1"}).stdout.strip()
        assert denied == "ERR getaddrinfo 11001", denied
        hostile = lambda name: fvm("run", "--box", box, win_path(apps / "hostile_floor.exe"), "stub-broker-resolve",
                                   fvm.root_win + "\\boxes\\" + box, name).stdout.strip()
        assert hostile("runsc") == "broker: 11001 0"
        assert hostile("vm") == "broker: 0 1"
        name = "deb.debian.org"
        try:
            want = sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)})
        except OSError:
            print(f"this machine does not resolve {name}: the DNS part is not checked")
            return
        out = probe(fvm, box, apps, "lookup", name)
        got = {line.split()[1] for line in out.splitlines() if line.startswith("HOST ")}
        # A name served by a CDN may answer each query with other addresses:
        # that the box gets IPv4 addresses for it is what is checked.
        assert got and all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) for a in got), (out, want)
    finally:
        fvm("rm", "--force", box)


def test_reverse_lookups_in_a_box_answer_as_on_the_host(fvm, tmp_path, apps):
    """getnameinfo and gethostbyaddr in a box (in its empty network
    namespace glibc's getnameinfo fails with EAI_AGAIN where the host falls
    back to the numeric form) are the broker's too: what the program gets is
    what the same calls give unboxed, for an address in /etc/hosts and for
    one that is not (a documentation address, TEST-NET-1; on a machine
    without DNS both sides may fail alike, so the hosts-file address is
    also asked through the broker, with the test switch)."""
    box = make_box(fvm, tmp_path, "[net]\ndeny tcp:*:25\n")
    try:
        for address in ("127.0.0.1", "192.0.2.1"):
            boxed = probe(fvm, box, apps, "reverse", address)
            unboxed = run_unboxed(win_path(apps / "netprobe.exe"), "reverse", address).stdout.strip()
            assert boxed == unboxed, (address, boxed, unboxed)
        assert probe(fvm, box, apps, "reverse", "127.0.0.1").splitlines()[0] == "NAMEINFO localhost http"
        # Through the broker (the program's own lookup answers an address of
        # the hosts file itself; the test switch sends it out): the same.
        outside = fvm("run", "--box", box, win_path(apps / "netprobe.exe"), "reverse", "127.0.0.1",
                      env={"FVM_NAMES_OUTSIDE": "1"}).stdout.split("\n")
        assert outside[:2] == ["NAMEINFO localhost http", "HOSTBYADDR localhost"], outside
    finally:
        fvm("rm", "--force", box)


def test_concurrent_lookups_in_processes_of_one_box(fvm, tmp_path, apps):
    """Many lookups at once through the broker: three processes of one box,
    16 threads each, 5 lookups a thread; each lookup has a connection of its
    own (runtime_broker_call_alone), so none waits behind another and every
    one is answered. FVM_NAMES_OUTSIDE=1 sends "vm", a name of the hosts
    file, to the broker too (else the program's own lookup answers it)."""
    box = make_box(fvm, tmp_path, "[net]\ndeny tcp:*:25\n")
    try:
        runs = [fvm.popen("run", "--box", box, win_path(apps / "netprobe.exe"), "lookups", "16", "vm",
                          env={"FVM_NAMES_OUTSIDE": "1"}) for _ in range(3)]
        for run in runs:
            assert fvm.wait_until(lambda: "LOOKUPS" in run.output(), timeout=120), run.output() + run.errors()
            assert run.output().split()[:3] == ["LOOKUPS", "80", "0"], run.output()
    finally:
        fvm("rm", "--force", box)


def test_a_box_whose_policy_lets_nothing_leave_resolves_only_its_hosts_file(fvm, tmp_path, apps):
    """[net] deny *: nothing is forwarded (the broker would be a DNS channel
    out of a box that may send nothing): the program's own lookup finds
    /etc/hosts ("vm") and nothing else, and a program that asks the broker
    by hand gets nothing, not even for a name in the hosts file."""
    box = make_box(fvm, tmp_path, "[net]\ndeny *\n")
    try:
        out = probe(fvm, box, apps, "lookup", "vm")
        assert out.splitlines()[:2] == ["CANON vm", "ADDR 127.0.0.1 80"], out
        proc = fvm("run", "--box", box, win_path(apps / "hostile_floor.exe"), "stub-broker-resolve",
                   fvm.root_win + "\\boxes\\" + box, "vm")
        assert proc.stdout.strip() == "broker: 11001 0", proc.stdout + proc.stderr
    finally:
        fvm("rm", "--force", box)


def test_wsaasyncgethostbyname_meets_the_name_rules(fvm, tmp_path, apps):
    """WSAAsyncGetHostByName resolves on a thread of ws2_32's through
    gethostbyname, whose hook sees it: a name denied for every port fails
    as an unknown host, another resolves (through the broker, the box having
    no network of its own)."""
    box = make_box(fvm, tmp_path, "[net]\ndeny audit tcp:runs?\n")
    try:
        assert probe(fvm, box, apps, "asyncname", "runsc") == "ERR WSAAsyncGetHostByName 11001"
        assert probe(fvm, box, apps, "asyncname", "vm") == "ASYNC 127.0.0.1"
        outside = fvm("run", "--box", box, win_path(apps / "netprobe.exe"), "asyncname", "vm",
                      env={"FVM_NAMES_OUTSIDE": "1"}).stdout.strip()   # the broker answers
        assert outside == "ASYNC 127.0.0.1", outside
        names = [(r["op"], r["name"]) for r in records(fvm, box) if r["type"] == "net"]
        assert names == [("resolve", "name:runsc")], names
    finally:
        fvm("rm", "--force", box)
