/* net.c - a box's network settings and `fvm net NAME` (issue 11).
 *
 * box.ini [box]:
 *   net = isolated   the box has a loopback port space of its own (the
 *                    default for boxes fvm create makes): its servers'
 *                    loopback and wildcard ports are private to the box
 *                    (core/portmap.h, broker/net.c, runtime/net_ports.c);
 *   net = shared     its servers bind the host's ports, as before
 *                    isolation (also what a box.ini without the key means);
 *   publish = 18080:8080,5353:53/udp
 *                    box ports host clients reach, on the host port named
 *                    (only in an isolated box: a shared box's ports are the
 *                    host's already). The policy can publish too, with
 *                    [net] rules `open publish:18080:8080` (core/netrules.h);
 *                    a port both name is published as box.ini says.
 * `fvm create --net MODE --publish H:B` and `fvm net NAME --publish SPEC
 * --net MODE` write them; the mode applies when the box next starts, the
 * published ports at the next bind. `fvm net NAME` shows the mode, the
 * published ports, the port map of a running box (box port -> real port,
 * the process that bound it), every open socket of the box's processes
 * (either mode) and the box's [net] rules. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <winternl.h>

#include "common/boxlife.h"
#include "common/boxshare.h"
#include "common/policyload.h"
#include "core/netrules.h"
#include "core/policy.h"
#include "core/portmap.h"

int net_create_option(int argc, char **argv, int *i, net_settings *s)
{
    const char *opt = argv[*i];
    if (strcmp(opt, "--net") && strcmp(opt, "--publish"))
        return -1;
    if (*i + 1 >= argc)
        return cli_error("%s needs a value", opt), EXIT_USAGE;
    const char *value = argv[++*i];
    if (!strcmp(opt, "--publish"))
        s->publish_set = TRUE;
    if (!strcmp(opt, "--net")) {
        if (strcmp(value, "isolated") && strcmp(value, "shared"))
            return cli_error("--net is isolated or shared, not '%s'", value), EXIT_USAGE;
        snprintf(s->mode, sizeof s->mode, "%s", value);
        return 0;
    }
    portmap_publish list[PORTMAP_PUBLISH_MAX];
    size_t count;
    fvm_error err;
    if (portmap_publish_parse(value, strlen(value), list, PORTMAP_PUBLISH_MAX, &count, &err) != FVM_OK)
        return cli_error("--publish '%s': %s", value, err.message), EXIT_USAGE;
    size_t used = strlen(s->publish);
    if (used + strlen(value) + 2 > sizeof s->publish)
        return cli_error("--publish: too many published ports"), EXIT_USAGE;
    snprintf(s->publish + used, sizeof s->publish - used, "%s%s", used ? "," : "", value);
    /* The whole list again: a port published by two options is refused too. */
    if (portmap_publish_parse(s->publish, strlen(s->publish), list, PORTMAP_PUBLISH_MAX, &count, &err) != FVM_OK)
        return cli_error("--publish: %s (in '%s')", err.message, s->publish), EXIT_USAGE;
    return 0;
}

int net_write_settings(const box *b, const net_settings *s)
{
    /* box.ini rewritten whole and renamed into place (common/boxlife.c). */
    boxlife_error err;
    if (s->mode[0] && boxlife_set_setting(b->path, b->name, "net", s->mode, &err) != FVM_OK)
        return cli_error("%s", err.message);
    if (s->publish_set &&
        boxlife_set_setting(b->path, b->name, "publish", s->publish[0] ? s->publish : NULL, &err) != FVM_OK)
        return cli_error("%s", err.message);
    return 0;
}

static void ini_text(const box *b, const wchar_t *key, char *out, size_t cap)
{
    wchar_t ini[FVM_PATH_MAX], value[512];
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", b->path);
    GetPrivateProfileStringW(L"box", key, L"", value, 512, ini);
    cli_utf8(value, out, cap);
}

static void no_diag(void *ctx, const policy_diag *d)
{
    (void)ctx, (void)d;
}

static void print_rules(const box *b)
{
    wchar_t path[FVM_PATH_MAX];
    policy *p = NULL;
    char why[512];
    if (fvm_policy_box_path(b->path, path, FVM_PATH_MAX) != FVM_OK ||
        fvm_policy_load(path, &p, no_diag, NULL, why, sizeof why) != FVM_OK) {
        printf("[net] rules: the box's policy cannot be read\n");
        return;
    }
    size_t shown = 0;
    for (size_t i = 0; i < policy_rule_count(p); i++) {
        const policy_rule *r = policy_rule_at(p, i);
        if (r->type == POLICY_TYPE_NET && !_strnicmp(r->text, "publish:", 8))
            printf("published by the policy: %s (%s:%u)\n", r->text + 8, r->file, r->line);
    }
    for (size_t i = 0; i < policy_rule_count(p); i++) {
        const policy_rule *r = policy_rule_at(p, i);
        if (r->type != POLICY_TYPE_NET)
            continue;
        if (!shown++)
            printf("[net] rules (first match by precedence, docs/policy.md):\n");
        printf("  %s:%u  %s%s%s %s%s\n", r->file, r->line, r->scope_name ? r->scope_name : "",
               r->scope_name ? ": " : "", policy_action_name(r->action), r->audit ? "audit " : "", r->text);
    }
    if (!shown)
        printf("[net] rules: none (every address open; raw and ICMP sockets refused)\n");
    policy_free(p);
}

static const char *proto_name(uint8_t proto)
{
    return proto == PORTMAP_TCP ? "tcp" : proto == PORTMAP_UDP ? "udp" : "?";
}

/* ---- the box's open sockets ----
 *
 * The host's socket tables cannot say which process owns a socket under
 * Wine 8 (GetExtendedTcpTable answers owning pid 0), so fvm asks the
 * sockets themselves: the box's processes (its job's list), their handles
 * (NtQuerySystemInformation SystemHandleInformation), each duplicated into
 * fvm and asked of the socket driver (IOCTL_AFD_WINE_GET_INFO: a socket at
 * all; its own and its peer's address; listening or not). Real ports of
 * the box's port space are shown as the box ports the programs see. */

#define AFD_GETSOCKNAME        CTL_CODE(FILE_DEVICE_BEEP, 0x80b, METHOD_NEITHER, FILE_ANY_ACCESS)
#define AFD_WINE_GETPEERNAME   CTL_CODE(FILE_DEVICE_NETWORK, 216, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_GET_INFO      CTL_CODE(FILE_DEVICE_NETWORK, 218, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_GET_ACCEPTCONN CTL_CODE(FILE_DEVICE_NETWORK, 219, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define SYSTEM_HANDLE_INFORMATION_CLASS 16

typedef struct handle_entry {
    ULONG pid;
    BYTE type, flags;
    USHORT handle;
    PVOID object;
    ACCESS_MASK access;
} handle_entry;
typedef struct handle_list {
    ULONG count;
    handle_entry entries[1];
} handle_list;

/* "127.0.0.1:8080" of a Winsock address, the port a box port when the map
 * has it (for a peer: only a loopback one, the box's own). */
static BOOL address_text(const uint8_t *sa, size_t len, const portmap *map, uint8_t proto, BOOL local, char *out,
                         size_t cap)
{
    net_addr a;
    memset(&a, 0, sizeof a);
    if (len >= 16 && sa[0] == 2 && sa[1] == 0) {
        a.family = 4;
        memcpy(a.bytes, sa + 4, 4);
    } else if (len >= 24 && sa[0] == 23 && sa[1] == 0) {
        a.family = 6;
        memcpy(a.bytes, sa + 8, 16);
        net_addr_normalize(&a);
    } else {
        return FALSE;
    }
    uint16_t port = (uint16_t)(sa[2] << 8 | sa[3]);
    BOOL loop = (a.family == 4 && a.bytes[0] == 127) || (a.family == 6 && a.bytes[15] == 1 && !a.bytes[0]);
    uint16_t v = map && port && (local || loop) ? portmap_virtual_of(map, proto, a.family, port) : 0;
    net_addr_format(&a, v ? v : port, out, cap);
    return TRUE;
}

static void print_sockets(const box *b, const portmap *map)
{
    wchar_t job_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, job_name);
    if (!job) {
        printf("open sockets: none (the box is not running)\n");
        return;
    }
    static ULONG_PTR pids[1024];
    int listed = boxlife_job_pids(job, pids, 1024);
    BOOL have = listed >= 0;
    CloseHandle(job);
    ULONG size = 1 << 20, got = 0;
    handle_list *handles = HeapAlloc(GetProcessHeap(), 0, size);
    NTSTATUS st = (NTSTATUS)0xC0000004;
    while (handles && (st = NtQuerySystemInformation(SYSTEM_HANDLE_INFORMATION_CLASS, handles, size, &got)) ==
                          (NTSTATUS)0xC0000004 && size < (64u << 20)) {
        size *= 2;
        handle_list *bigger = HeapReAlloc(GetProcessHeap(), 0, handles, size);
        if (!bigger)
            break;
        handles = bigger;
    }
    if (!have || !handles || st < 0) {
        printf("open sockets: cannot be listed (%s)\n", have ? "the system's handle list" : "the box's processes");
        if (handles)
            HeapFree(GetProcessHeap(), 0, handles);
        return;
    }
    size_t shown = 0;
    for (int k = 0; k < listed; k++) {
        ULONG pid = (ULONG)pids[k];
        HANDLE process = OpenProcess(PROCESS_DUP_HANDLE, FALSE, pid);
        if (!process)
            continue;
        for (ULONG i = 0; i < handles->count; i++) {
            if (handles->entries[i].pid != pid)
                continue;
            HANDLE copy;
            if (!DuplicateHandle(process, (HANDLE)(ULONG_PTR)handles->entries[i].handle, GetCurrentProcess(), &copy,
                                 0, FALSE, DUPLICATE_SAME_ACCESS))
                continue;
            int info[3] = {0, 0, 0}, listening = 0;
            uint8_t me[128], peer[128];
            IO_STATUS_BLOCK io, pio;
            char local[64] = "*", remote[64] = "*";
            if (NtDeviceIoControlFile(copy, NULL, NULL, NULL, &io, AFD_WINE_GET_INFO, NULL, 0, info, sizeof info) >= 0 &&
                (info[0] == 2 || info[0] == 23) && (info[1] == 1 || info[1] == 2)) {
                uint8_t proto = info[1] == 1 ? PORTMAP_TCP : PORTMAP_UDP;
                if (NtDeviceIoControlFile(copy, NULL, NULL, NULL, &io, AFD_GETSOCKNAME, NULL, 0, me, sizeof me) >= 0)
                    address_text(me, io.Information, map, proto, TRUE, local, sizeof local);
                if (NtDeviceIoControlFile(copy, NULL, NULL, NULL, &pio, AFD_WINE_GETPEERNAME, NULL, 0, peer,
                                          sizeof peer) >= 0)
                    address_text(peer, pio.Information, map, proto, FALSE, remote, sizeof remote);
                NtDeviceIoControlFile(copy, NULL, NULL, NULL, &io, AFD_WINE_GET_ACCEPTCONN, NULL, 0, &listening,
                                      sizeof listening);
                if (!shown++)
                    printf("open sockets (box ports as the programs see them):\n  %-5s %-28s %-28s %-9s %8s\n",
                           "PROTO", "LOCAL", "REMOTE", "STATE", "PID");
                printf("  %-5s %-28s %-28s %-9s %8lu\n", proto == PORTMAP_TCP ? "tcp" : "udp", local, remote,
                       listening ? "listen" : strcmp(remote, "*") ? "connected" : proto == PORTMAP_UDP ? "bound" : "open",
                       (unsigned long)pid);
            }
            CloseHandle(copy);
        }
        CloseHandle(process);
    }
    HeapFree(GetProcessHeap(), 0, handles);
    if (!shown)
        printf("open sockets: none\n");
}

/* What the kernel holds below the hooks for Winsock, which Wine's server
 * serves: the policy's TCP denies mirrored into a box's own server's domain
 * (ownserver.c), as port ranges, and its UDP when the policy closes it. */
static void print_kernel_tcp(const box *b)
{
    static uint8_t denied[8192];
    int no_network = own_server_network_cut(b);
    if (no_network == 2) {
        printf("below the hooks: no network at all (the box's Wine server and programs are in an empty network "
               "namespace: the policy lets nothing leave)\n");
        return;
    }
    if (no_network == 1)
        printf("below the hooks: the box's programs have no network of their own (an empty network namespace: "
               "the policy lets nothing leave; raw sockets and their own DNS lookups reach nothing)\n");
    if (no_network == 3)
        printf("below the hooks: the box's programs have no network of their own (an empty network namespace: "
               "raw sockets reach nothing; Winsock's sockets are the Wine server's, and host names are "
               "resolved outside the box)\n");
    if (own_server_udp_closed(b))
        printf("below the hooks: the kernel refuses the box's Wine server UDP sockets (no program may use UDP)\n");
    if (own_server_connects_checked(b))
        printf("below the hooks: the box's Wine server connections are decided one by one by address (the policy "
               "denies addresses or UDP to every program; a datagram sent without connecting is the hooks' alone)\n");
    long n = own_server_tcp_denied(b, denied);
    if (n < 0) {
        printf("below the hooks: nothing for Winsock (its connections are the host's Wine server's; "
               "a box on its own server, the default, has the policy's TCP denies in the kernel)\n");
        return;
    }
    if (n == 0) {
        printf("below the hooks: no TCP port is denied to every program and host, so the kernel refuses none\n");
        return;
    }
    char ranges[256];
    size_t len = 0;
    BOOL cut = FALSE;
    for (uint32_t port = 1; port <= 65535 && !cut; port++) {
        if (!(denied[port / 8] & (1u << (port % 8))))
            continue;
        uint32_t last = port;
        while (last < 65535 && (denied[(last + 1) / 8] & (1u << ((last + 1) % 8))))
            last++;
        char one[24];
        int w = last == port ? snprintf(one, sizeof one, "%s%u", len ? ", " : "", port)
                             : snprintf(one, sizeof one, "%s%u-%u", len ? ", " : "", port, last);
        if (len + (size_t)w + 5 >= sizeof ranges)
            cut = TRUE;
        else
            len += (size_t)snprintf(ranges + len, sizeof ranges - len, "%s", one);
        port = last;
    }
    printf("below the hooks: the kernel refuses the box's Wine server TCP connections to %ld port%s: %s%s\n", n,
           n == 1 ? "" : "s", ranges, cut ? ", ..." : "");
}

static int show(const box *b)
{
    char mode[32], publish[512];
    ini_text(b, L"net", mode, sizeof mode);
    ini_text(b, L"publish", publish, sizeof publish);
    BOOL isolated = !_stricmp(mode, "isolated");
    printf("box '%s': net = %s\n", b->name,
           isolated ? "isolated (loopback ports of its own)" : "shared (its servers bind the host's ports)");
    printf("published: %s%s\n", publish[0] ? publish : "none",
           publish[0] && !isolated ? " (not used: a shared box's ports are the host's)" : "");
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_SHARED, name, FVM_OBJ_NAME_MAX);
    HANDLE section = isolated ? OpenFileMappingW(FILE_MAP_READ, FALSE, name) : NULL;
    const void *view = section ? MapViewOfFile(section, FILE_MAP_READ, 0, 0, 0) : NULL;
    MEMORY_BASIC_INFORMATION mbi;
    fvm_shared_parts parts = {0};
    if (view && VirtualQuery(view, &mbi, sizeof mbi))
        fvm_shared_open(view, mbi.RegionSize, &parts);   /* the broker's published section */
    const portmap *map = parts.ports;
    if (!map) {
        printf("bound ports: %s\n", isolated ? "none (the box is not running)" : "not tracked (shared)");
    } else {
        static portmap_entry entries[PORTMAP_MAX];
        portmap_publish pub[PORTMAP_PUBLISH_MAX];
        size_t npub;
        size_t n = portmap_snapshot(map, entries, PORTMAP_MAX, pub, PORTMAP_PUBLISH_MAX, &npub);
        printf("bound ports: %u\n", (unsigned)n);
        if (n)
            printf("  %-5s %-6s %9s %10s %8s\n", "PROTO", "FAMILY", "BOX-PORT", "REAL-PORT", "PID");
        for (size_t i = 0; i < n; i++) {
            char real[16];
            if (entries[i].real)
                snprintf(real, sizeof real, "%u", entries[i].real);
            else
                snprintf(real, sizeof real, "binding");
            printf("  %-5s %-6s %9u %10s %8u%s\n", proto_name(entries[i].proto), entries[i].family == 6 ? "ipv6" : "ipv4",
                   entries[i].vport, real, entries[i].pid,
                   entries[i].real && portmap_published(map, entries[i].proto, entries[i].vport) == entries[i].real
                       ? "  (published)"
                       : "");
        }
    }
    print_sockets(b, map);
    if (map)
        UnmapViewOfFile(map);
    if (section)
        CloseHandle(section);
    print_kernel_tcp(b);
    print_rules(b);
    return 0;
}

int cmd_net(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_error("usage: fvm net NAME [--net isolated|shared] [--publish HOSTPORT:BOXPORT[/udp],...|none]"),
               EXIT_USAGE;
    box b;
    if (!box_init(&b, argv[1]))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", argv[1]);
    int code;
    if (own_server_join(&b, &code))
        return code;   /* its ports and sockets are in the box's own Wine server: shown from there (ownserver.c) */
    net_settings s;
    memset(&s, 0, sizeof s);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--publish") && i + 1 < argc && !strcmp(argv[i + 1], "none")) {
            s.publish_set = TRUE;
            s.publish[0] = 0;
            i++;
            continue;
        }
        int taken = net_create_option(argc, argv, &i, &s);
        if (taken > 0)
            return taken;
        if (taken < 0)
            return cli_error("net: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (s.mode[0] || s.publish_set) {
        int rc = net_write_settings(&b, &s);
        if (rc)
            return rc;
        if (s.mode[0] && box_process_count(&b))
            printf("net = %s applies when the box next starts (it is running)\n", s.mode);
    }
    return show(&b);
}
