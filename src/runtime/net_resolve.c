/* net_resolve.c - host names: the [net] rules on names, and names resolved
 * by the box's broker.
 *
 * Hooks on ws2_32's resolvers (a late group: ws2_32 loads when a program
 * first needs it): getaddrinfo, GetAddrInfoW, GetAddrInfoExW and
 * gethostbyname. On Wine the W and Ex forms resolve through getaddrinfo,
 * so that one hook sees every lookup but gethostbyname's (which
 * WSAAsyncGetHostByName's thread calls: the hook patches the function, so
 * ws2_32's own calls meet it too).
 *
 * Rules. A name a rule denies for every port fails to resolve, as an
 * unknown host (WSAHOST_NOT_FOUND; net.c decides, net_name_denied). The
 * addresses other names resolve to are remembered (the last 64), so a rule
 * on a name for some ports applies when the program connects to one of
 * them (net.c asks net_resolved_name).
 *
 * The broker. A box's programs run in an empty network namespace
 * (floor_ns.c): Winsock's sockets are Wine's server's, made in the host's
 * network, but ws2_32's getaddrinfo runs the C library's resolver in the
 * program's own process, whose DNS queries reach nothing there. So the
 * program's own lookup runs first (a name of the hosts file is answered
 * there in microseconds; anything else fails there at once), and a name it
 * could not resolve (not an address literal, not AI_NUMERICHOST) is sent
 * to the box's broker,
 * which resolves it in the host's network, decides the name rules again
 * for this process (broker/resolve.c), and answers with the list
 * (core/resolvemsg.h); the program gets it as the one block Wine's
 * getaddrinfo returns, allocated where Wine's freeaddrinfo frees it (the C
 * runtime ws2_32 imports free from). gethostbyname is answered from the
 * same list into a HOSTENT of the thread's own, valid until the thread's
 * next call, as Winsock's is (but for the machine's own name, which Wine
 * answers from the host's adapters). Reverse lookups (getnameinfo, which
 * GetNameInfoW calls on Wine, and gethostbyaddr) go the same way. DnsQuery
 * (dnsapi) is not forwarded: in the box it finds nothing.
 * When the broker cannot be reached the program's own lookup runs, and
 * finds what the namespace has: the hosts file. */
#include "runtime/runtime.h"

#include "core/policy_net.h"
#include "core/resolvemsg.h"
#include "runtime/floor.h"
#include "runtime/guard.h"
#include "runtime/net.h"

#define WSAHOST_NOT_FOUND_CODE 11001
#define WSA_NOT_ENOUGH_MEMORY_CODE 8
#define WSANO_RECOVERY_CODE 11003
#define WS_AI_CANONNAME 0x2
#define WS_AI_NUMERICHOST 0x4

typedef struct addrinfo_any {   /* ADDRINFOA and ADDRINFOW share this layout */
    int flags, family, socktype, protocol;
    size_t addrlen;
    void *canonname;
    const uint8_t *addr;
    struct addrinfo_any *next;
} addrinfo_any;

typedef int (WINAPI *getaddrinfo_fn)(const char *, const char *, const void *, addrinfo_any **);
typedef int (WINAPI *GetAddrInfoW_fn)(const wchar_t *, const wchar_t *, const void *, addrinfo_any **);
static getaddrinfo_fn real_getaddrinfo;
static GetAddrInfoW_fn real_GetAddrInfoW;

#define RESOLVED_MAX 64
#define WSAHOST_NOT_FOUND_CODE 11001
static struct {
    net_addr addr;
    uint8_t len;
    char name[NET_NAME_MAX + 1];
} g_resolved[RESOLVED_MAX];
static unsigned g_resolved_next;
static SRWLOCK g_resolved_lock = SRWLOCK_INIT;

size_t net_resolved_name(const net_addr *addr, char name[NET_NAME_MAX + 1])
{
    size_t len = 0;
    net_addr a = *addr;
    net_addr_normalize(&a);
    AcquireSRWLockShared(&g_resolved_lock);
    for (unsigned i = 0; i < RESOLVED_MAX && !len; i++)
        if (g_resolved[i].len && g_resolved[i].addr.family == a.family && !memcmp(g_resolved[i].addr.bytes, a.bytes, 16)) {
            len = g_resolved[i].len;
            memcpy(name, g_resolved[i].name, len + 1);
        }
    ReleaseSRWLockShared(&g_resolved_lock);
    return len;
}

/* One address name resolved to (with g_resolved_lock held). */
static void remember_address(const char *name, size_t len, const net_addr *a)
{
    unsigned slot = g_resolved_next++ % RESOLVED_MAX;
    g_resolved[slot].addr = *a;
    memcpy(g_resolved[slot].name, name, len);
    g_resolved[slot].name[len] = 0;
    g_resolved[slot].len = (uint8_t)len;
}

/* The same for a Winsock address of a list entry (NULL, or not IPv4/IPv6: none). */
static void remember_sockaddr(const char *name, size_t len, const uint8_t *sa, size_t sa_len)
{
    net_addr a;
    uint16_t port;
    if (sa && net_read_sockaddr(sa, sa_len, &a, &port))
        remember_address(name, len, &a);
}

static void remember(const char *name, size_t len, const addrinfo_any *list)
{
    AcquireSRWLockExclusive(&g_resolved_lock);
    for (const addrinfo_any *ai = list; ai; ai = ai->next)
        remember_sockaddr(name, len, ai->addr, ai->addrlen);
    ReleaseSRWLockExclusive(&g_resolved_lock);
}

/* The name as ASCII (NUL-terminated in out), or 0 when it is not ASCII. */
static size_t ascii_name_a(const char *in, char out[256])
{
    size_t n = 0;
    if (!in || !guard_readable(in, 1))
        return 0;
    for (; n < 255; n++) {
        char c;
        if (!guard_copy(&c, in + n, 1) || (unsigned char)c > 0x7e)
            return 0;
        if (!c)
            break;
        out[n] = c;
    }
    out[n] = 0;
    return n < 255 ? n : 0;
}

static size_t ascii_name_w(const wchar_t *in, char out[256])
{
    size_t n = 0;
    if (!in)
        return 0;
    for (; n < 255; n++) {
        wchar_t c;
        if (!guard_copy(&c, in + n, sizeof c) || c > 0x7e)
            return 0;
        if (!c)
            break;
        out[n] = (char)c;
    }
    out[n] = 0;
    return n < 255 ? n : 0;
}

/* ---- through the broker ---- */

typedef void *(__cdecl *malloc_fn)(size_t);
static malloc_fn g_crt_malloc;
static INIT_ONCE g_crt_once = INIT_ONCE_STATIC_INIT;

/* The malloc of the C runtime ws2_32 imports free from (ucrtbase on Wine 8),
 * found in ws2_32's import table: freeaddrinfo frees our block with it. */
static BOOL CALLBACK find_crt_malloc(INIT_ONCE *once, void *param, void **ctx)
{
    const uint8_t *base = (const uint8_t *)GetModuleHandleW(L"ws2_32.dll");
    if (!base)
        return TRUE;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + ((const IMAGE_DOS_HEADER *)base)->e_lfanew);
    const IMAGE_DATA_DIRECTORY *dir = &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    if (!dir->VirtualAddress)
        return TRUE;
    for (const IMAGE_IMPORT_DESCRIPTOR *d = (const IMAGE_IMPORT_DESCRIPTOR *)(base + dir->VirtualAddress); d->Name;
         d++) {
        const IMAGE_THUNK_DATA64 *names =
            (const IMAGE_THUNK_DATA64 *)(base + (d->OriginalFirstThunk ? d->OriginalFirstThunk : d->FirstThunk));
        for (; names->u1.AddressOfData; names++) {
            if (IMAGE_SNAP_BY_ORDINAL64(names->u1.Ordinal))
                continue;
            const IMAGE_IMPORT_BY_NAME *by = (const IMAGE_IMPORT_BY_NAME *)(base + names->u1.AddressOfData);
            if (!strcmp((const char *)by->Name, "free")) {
                HMODULE crt = GetModuleHandleA((const char *)(base + d->Name));
                g_crt_malloc = crt ? (malloc_fn)(void *)GetProcAddress(crt, "malloc") : NULL;
                return TRUE;
            }
        }
    }
    return TRUE;
}

/* FVM_NAMES_OUTSIDE=1 in the environment (for tests): every lookup
 * (getaddrinfo, gethostbyname, getnameinfo, gethostbyaddr) asks outside
 * only, even for a name or address of the hosts file, so
 * that the way out is exercised on a machine without DNS (no answer from
 * outside: WSANO_RECOVERY). A program that sets it changes only where its
 * lookups are answered (both ways meet the same rules). */
static BOOL names_outside_only(void)
{
    static LONG state = -1;   /* -1: not read yet */
    if (state < 0) {
        wchar_t value[4];
        DWORD saved = GetLastError(), n = GetEnvironmentVariableW(L"FVM_NAMES_OUTSIDE", value, 4);
        SetLastError(saved);
        InterlockedExchange(&state, n == 1 && value[0] == L'1');
    }
    return state == 1;
}

/* One message to whoever resolves outside the box: the broker, or in a box
 * with a Wine server of its own (whose broker is in the box's namespace
 * with its programs) the box's relay on the host's side (cli/relay.c). */
#define RESOLVE_DEADLINE_MS 30000   /* a slow resolver's retries: glibc's 5 s times its attempts */

static BOOL ask_outside(const uint8_t *msg, size_t n, uint8_t *answer, size_t cap, DWORD *got)
{
    if (g_fvm.config.flags & FVM_BOX_FLAG_OWN_SERVER) {
        int r = runtime_relay_call("resolve", msg, n, answer, cap, GetTickCount() + RESOLVE_DEADLINE_MS);
        *got = r > 0 ? (DWORD)r : 0;
        return r > 0;
    }
    return runtime_broker_call_alone(msg, (DWORD)n, answer, (DWORD)cap, got);
}

/* Copies a service name (NULL: none) as printable ASCII; FALSE when it is
 * too long or not such a name (the program's own lookup then runs). */
static BOOL service_copy(const char *service, char out[RESOLVE_SERVICE_MAX + 1], size_t *len)
{
    *len = 0;
    if (!service)
        return TRUE;
    for (size_t n = 0; n <= RESOLVE_SERVICE_MAX; n++) {
        char c;
        if (!guard_copy(&c, service + n, 1))
            return FALSE;
        if (!c) {
            *len = n;
            return TRUE;
        }
        if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e || n == RESOLVE_SERVICE_MAX)
            return FALSE;
        out[n] = c;
    }
    return FALSE;
}

/* Asks the broker for name (ASCII, not an address literal). TRUE when it
 * answered: *error is its Winsock code and, when 0, reply holds the list.
 * FALSE: not forwarded (the box has its network, the hints ask for a
 * literal, the broker cannot be reached). */
static BOOL broker_resolve(const char *name, size_t len, const char *service, int32_t hints4[4], resolve_reply *reply)
{
    net_addr literal;
    if (!floor_ns_names_forwarded() || net_addr_parse(name, len, &literal) || (hints4[0] & WS_AI_NUMERICHOST))
        return FALSE;
    resolve_request req;
    memset(&req, 0, sizeof req);
    req.flags = hints4[0], req.family = hints4[1], req.socktype = hints4[2], req.protocol = hints4[3];
    memcpy(req.node, name, len);
    req.node_len = len;
    if (!service_copy(service, req.service, &req.service_len))
        return FALSE;
    uint8_t msg[RESOLVE_REQUEST_MAX];
    size_t n = resolve_request_encode(&req, msg, sizeof msg);
    uint8_t *answer = HeapAlloc(GetProcessHeap(), 0, RESOLVE_REPLY_MAX);
    DWORD got = 0;
    fvm_error err;
    BOOL ok = n && answer && ask_outside(msg, n, answer, RESOLVE_REPLY_MAX, &got) &&
              resolve_reply_decode(answer, got, reply, &err) == FVM_OK;
    if (answer)
        HeapFree(GetProcessHeap(), 0, answer);
    return ok;
}

/* getaddrinfo answered by the broker: its code, *res the block (or NULL). */
static int forwarded_getaddrinfo(const resolve_reply *reply, addrinfo_any **res)
{
    if (reply->error) {
        SetLastError((DWORD)reply->error);
        return reply->error;
    }
    InitOnceExecuteOnce(&g_crt_once, find_crt_malloc, NULL, NULL);
    size_t size = resolve_layout_size(reply);
    void *block = g_crt_malloc ? g_crt_malloc(size) : NULL;
    if (!block) {
        SetLastError(WSA_NOT_ENOUGH_MEMORY_CODE);
        return WSA_NOT_ENOUGH_MEMORY_CODE;
    }
    resolve_layout(reply, block, (uint64_t)(uintptr_t)block);
    *res = block;
    SetLastError(0);
    return 0;
}

static int WINAPI box_getaddrinfo(const char *node, const char *service, const void *hints, addrinfo_any **res)
{
    char name[256];
    size_t len = runtime_bypassed() ? 0 : ascii_name_a(node, name);
    if (len && net_name_denied(name, len)) {
        if (res)
            *res = NULL;
        SetLastError(WSAHOST_NOT_FOUND_CODE);
        return WSAHOST_NOT_FOUND_CODE;
    }
    /* The namespace's own lookup first: a name of the hosts file (and an
     * address literal) is answered there at once; anything else fails
     * there at once, having no network, and goes out. */
    BOOL outside = len && res && floor_ns_names_forwarded() && names_outside_only(), answered = FALSE;
    int ret = outside ? 0 : real_getaddrinfo(node, service, hints, res);
    if ((outside || ret) && len && res && floor_ns_names_forwarded()) {
        int32_t hints4[4] = {0, 0, 0, 0};
        resolve_reply *reply = HeapAlloc(GetProcessHeap(), 0, sizeof *reply);
        if (reply && (!hints || guard_copy(hints4, hints, sizeof hints4)) &&
            broker_resolve(name, len, service, hints4, reply)) {
            *res = NULL;
            ret = forwarded_getaddrinfo(reply, res);
            answered = TRUE;
        }
        if (reply)
            HeapFree(GetProcessHeap(), 0, reply);
    }
    if (outside && !answered) {   /* the switch says out only: no answer from there is a failure */
        *res = NULL;
        ret = WSANO_RECOVERY_CODE;
        SetLastError((DWORD)ret);
    }
    if (!ret && len && res) {
        DWORD saved = GetLastError();
        remember(name, len, *res);
        SetLastError(saved);
    }
    return ret;
}

static int WINAPI box_GetAddrInfoW(const wchar_t *node, const wchar_t *service, const void *hints, addrinfo_any **res)
{
    char name[256];
    size_t len = runtime_bypassed() ? 0 : ascii_name_w(node, name);
    if (len && net_name_denied(name, len)) {
        if (res)
            *res = NULL;
        SetLastError(WSAHOST_NOT_FOUND_CODE);
        return WSAHOST_NOT_FOUND_CODE;
    }
    int ret = real_GetAddrInfoW(node, service, hints, res);
    if (!ret && len && res) {
        DWORD saved = GetLastError();
        remember(name, len, *res);
        SetLastError(saved);
    }
    return ret;
}

/* gethostbyname: the IPv4 addresses of a HOSTENT (Winsock's 64-bit layout). */
typedef struct hostent_any {
    char *name;
    char **aliases;
    short addrtype, length;
    char **addr_list;
} hostent_any;
typedef hostent_any *(WINAPI *gethostbyname_fn)(const char *);
static gethostbyname_fn real_gethostbyname;

/* The thread's HOSTENT for gethostbyname's answers from the broker. */
typedef struct net_hostent {
    hostent_any h;
    char *aliases[1];
    char *addr_list[RESOLVE_MAX_ENTRIES + 1];
    uint8_t addrs[RESOLVE_MAX_ENTRIES][16];   /* gethostbyaddr's may be IPv6 */
    char name[256];
} net_hostent;

void net_thread_detach(fvm_thread *t)
{
    if (t->hostent) {
        HeapFree(GetProcessHeap(), 0, t->hostent);
        t->hostent = NULL;
    }
}

/* gethostbyname answered by the broker (IPv4, one entry per address): the
 * thread's HOSTENT, or NULL with LastError set; *answered FALSE when the
 * broker was not asked or could not answer. */
static hostent_any *forwarded_gethostbyname(const char *name, size_t len, BOOL *answered)
{
    int32_t hints4[4] = {WS_AI_CANONNAME, RESOLVE_AF_INET, 1 /* SOCK_STREAM */, 6 /* IPPROTO_TCP */};
    resolve_reply *reply = HeapAlloc(GetProcessHeap(), 0, sizeof *reply);
    fvm_thread *t = fvm_thread_get();
    *answered = FALSE;
    if (!reply || !t || (!t->hostent && !(t->hostent = HeapAlloc(GetProcessHeap(), 0, sizeof *t->hostent))) ||
        !broker_resolve(name, len, NULL, hints4, reply)) {
        if (reply)
            HeapFree(GetProcessHeap(), 0, reply);
        return NULL;
    }
    *answered = TRUE;
    hostent_any *h = NULL;
    if (reply->error) {
        SetLastError((DWORD)reply->error);
    } else {
        net_hostent *e = t->hostent;
        memset(e, 0, sizeof *e);
        if (reply->canon_len)
            memcpy(e->name, reply->canon, reply->canon_len);
        else
            memcpy(e->name, name, len);
        size_t n = 0;
        for (uint32_t i = 0; i < reply->count; i++)
            if (reply->entries[i].family == RESOLVE_AF_INET) {
                memcpy(e->addrs[n], reply->entries[i].addr + 4, 4);
                e->addr_list[n] = (char *)e->addrs[n];
                n++;
            }
        e->h.name = e->name;
        e->h.aliases = e->aliases;
        e->h.addrtype = RESOLVE_AF_INET;
        e->h.length = 4;
        e->h.addr_list = e->addr_list;
        if (n) {
            h = &e->h;
            SetLastError(0);
        } else {
            SetLastError(WSAHOST_NOT_FOUND_CODE);
        }
    }
    HeapFree(GetProcessHeap(), 0, reply);
    return h;
}

/* The machine's own name (ws2_32's gethostname, which is not hooked): Wine
 * answers gethostbyname for it from the host's adapters (through the
 * network service, outside the box), not the resolver, so it is not
 * forwarded. */
static BOOL is_local_hostname(const char *name)
{
    typedef int (WINAPI *gethostname_fn)(char *, int);
    gethostname_fn get = (gethostname_fn)(void *)GetProcAddress(GetModuleHandleW(L"ws2_32.dll"), "gethostname");
    char local[256];
    DWORD saved = GetLastError();
    BOOL same = get && get(local, sizeof local) == 0 && !strcmp(local, name);
    SetLastError(saved);
    return same;
}

static hostent_any *WINAPI box_gethostbyname(const char *node)
{
    char name[256];
    size_t len = runtime_bypassed() ? 0 : ascii_name_a(node, name);
    if (len && net_name_denied(name, len)) {
        SetLastError(WSAHOST_NOT_FOUND_CODE);
        return NULL;
    }
    /* The machine's own name is never forwarded, the test switch or not. */
    BOOL may_forward = len && floor_ns_names_forwarded();
    BOOL outside = may_forward && names_outside_only() && !is_local_hostname(name);
    hostent_any *h = outside ? NULL : real_gethostbyname(node);   /* the hosts file, as getaddrinfo's */
    if (!h && may_forward && (outside || !is_local_hostname(name))) {
        BOOL answered = FALSE;
        hostent_any *forwarded = forwarded_gethostbyname(name, len, &answered);
        if (answered)
            h = forwarded;
        else if (outside)
            SetLastError(WSANO_RECOVERY_CODE);   /* the switch says out only: no answer is a failure */
    }
    if (h && len && h->addrtype == RESOLVE_AF_INET && h->length == 4 && h->addr_list) {
        DWORD saved = GetLastError();
        AcquireSRWLockExclusive(&g_resolved_lock);
        for (int i = 0; i < 35 && h->addr_list[i]; i++) {
            net_addr a;
            memset(&a, 0, sizeof a);
            a.family = 4;
            memcpy(a.bytes, h->addr_list[i], 4);
            remember_address(name, len, &a);
        }
        ReleaseSRWLockExclusive(&g_resolved_lock);
        SetLastError(saved);
    }
    return h;
}

/* GetAddrInfoExW: ADDRINFOEXW has the address where ADDRINFOW has it, and
 * more fields after; remembered only when it answers at once (an
 * overlapped call's list arrives later). On Wine it resolves through
 * getaddrinfo, which is hooked too; on Windows it does not. */
typedef struct addrinfoex_any {
    int flags, family, socktype, protocol;
    size_t addrlen;
    void *canonname;
    const uint8_t *addr;
    void *blob;
    size_t bloblen;
    void *provider;
    struct addrinfoex_any *next;
} addrinfoex_any;
typedef int (WINAPI *GetAddrInfoExW_fn)(const wchar_t *, const wchar_t *, DWORD, GUID *, const void *,
                                        addrinfoex_any **, struct timeval *, OVERLAPPED *, void *, HANDLE *);
static GetAddrInfoExW_fn real_GetAddrInfoExW;

static int WINAPI box_GetAddrInfoExW(const wchar_t *node, const wchar_t *service, DWORD space, GUID *space_id,
                                     const void *hints, addrinfoex_any **res, struct timeval *timeout,
                                     OVERLAPPED *overlapped, void *completion, HANDLE *handle)
{
    char name[256];
    size_t len = runtime_bypassed() ? 0 : ascii_name_w(node, name);
    if (len && net_name_denied(name, len)) {
        if (res && !overlapped)
            *res = NULL;
        SetLastError(WSAHOST_NOT_FOUND_CODE);
        return WSAHOST_NOT_FOUND_CODE;
    }
    int ret = real_GetAddrInfoExW(node, service, space, space_id, hints, res, timeout, overlapped, completion, handle);
    if (!ret && len && res && !overlapped) {
        DWORD saved = GetLastError();
        AcquireSRWLockExclusive(&g_resolved_lock);
        for (const addrinfoex_any *ai = *res; ai; ai = ai->next)
            remember_sockaddr(name, len, ai->addr, ai->addrlen);
        ReleaseSRWLockExclusive(&g_resolved_lock);
        SetLastError(saved);
    }
    return ret;
}

/* ---- reverse lookups: getnameinfo (GetNameInfoW on Wine) and gethostbyaddr ----
 * In the box's namespace the C library's PTR queries reach nothing, and
 * glibc's getnameinfo then fails (EAI_AGAIN) even where it would fall back
 * to the numeric form; so a lookup that wants a name is the broker's too. */
#define WS_NI_NUMERICHOST 0x02
#define WS_NI_NAMEREQD 0x04
#define WSAEFAULT_CODE 10014

/* Asks the broker for the names of the address in sa (a SOCKADDR_IN or
 * SOCKADDR_IN6 of salen bytes). FALSE: not forwarded or no answer. */
static BOOL broker_names(const void *sa, int salen, int flags, resolve_names *names)
{
    resolve_reverse req;
    memset(&req, 0, sizeof req);
    uint16_t family = 0;
    if (!floor_ns_names_forwarded() || !sa || !guard_copy(&family, sa, 2))
        return FALSE;
    req.addr_len = family == RESOLVE_AF_INET ? 16 : family == RESOLVE_AF_INET6 ? 28 : 0;
    if (!req.addr_len || salen < (int)req.addr_len || !guard_copy(req.addr, sa, req.addr_len))
        return FALSE;
    req.flags = flags;
    uint8_t msg[RESOLVE_REVERSE_SIZE], answer[RESOLVE_NAMES_MAX];
    DWORD got = 0;
    fvm_error err;
    size_t n = resolve_reverse_encode(&req, msg, sizeof msg);
    return n && ask_outside(msg, n, answer, sizeof answer, &got) &&
           resolve_names_decode(answer, got, names, &err) == FVM_OK;
}

/* Copies name (len bytes and its terminator) to the program's buffer of
 * cap bytes; FALSE when it does not fit or cannot be written. */
static BOOL put_name(char *out, DWORD cap, const char *name, size_t len)
{
    return out && cap > len && guard_copy(out, name, len + 1);
}

typedef int (WINAPI *getnameinfo_fn)(const void *, int, char *, DWORD, char *, DWORD, int);
static getnameinfo_fn real_getnameinfo;

static int WINAPI box_getnameinfo(const void *sa, int salen, char *host, DWORD hostlen, char *serv, DWORD servlen,
                                  int flags)
{
    BOOL outside = floor_ns_names_forwarded() && names_outside_only();
    int local = outside ? WSANO_RECOVERY_CODE   /* the test switch: out only */
                        : real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);   /* the hosts file first */
    resolve_names *names = NULL;
    if (local && host && hostlen && !(flags & WS_NI_NUMERICHOST) && !runtime_bypassed() &&
        floor_ns_names_forwarded() && (names = HeapAlloc(GetProcessHeap(), 0, sizeof *names)) != NULL &&
        broker_names(sa, salen, flags, names)) {
        int ret = names->error;
        if (!ret && (!put_name(host, hostlen, names->host, names->host_len) ||
                     (serv && servlen && !put_name(serv, servlen, names->serv, names->serv_len))))
            ret = WSAEFAULT_CODE;
        HeapFree(GetProcessHeap(), 0, names);
        SetLastError((DWORD)ret);
        return ret;
    }
    if (names)
        HeapFree(GetProcessHeap(), 0, names);
    return local;
}

typedef hostent_any *(WINAPI *gethostbyaddr_fn)(const char *, int, int);
static gethostbyaddr_fn real_gethostbyaddr;

static hostent_any *WINAPI box_gethostbyaddr(const char *addr, int len, int type)
{
    BOOL outside = floor_ns_names_forwarded() && names_outside_only();
    hostent_any *local = outside ? NULL : real_gethostbyaddr(addr, len, type);   /* the hosts file first */
    if (local || !floor_ns_names_forwarded())
        return local;
    if (outside)
        SetLastError(WSANO_RECOVERY_CODE);   /* what an unanswered lookup says under the switch */
    uint8_t sa[28];
    memset(sa, 0, sizeof sa);
    int salen = type == RESOLVE_AF_INET && len == 4 ? 16 : type == RESOLVE_AF_INET6 && len == 16 ? 28 : 0;
    resolve_names *names = NULL;
    fvm_thread *t = NULL;
    if (salen && !runtime_bypassed() && guard_copy(sa + (salen == 16 ? 4 : 8), addr, (size_t)len)) {
        sa[0] = (uint8_t)type;
        names = HeapAlloc(GetProcessHeap(), 0, sizeof *names);
        t = fvm_thread_get();
    }
    if (names && t && (t->hostent || (t->hostent = HeapAlloc(GetProcessHeap(), 0, sizeof *t->hostent))) &&
        broker_names(sa, salen, WS_NI_NAMEREQD, names)) {
        hostent_any *h = NULL;
        if (names->error) {
            SetLastError((DWORD)names->error);
        } else {
            net_hostent *e = t->hostent;
            memset(e, 0, sizeof *e);
            memcpy(e->name, names->host, names->host_len);
            memcpy(e->addrs[0], sa + (salen == 16 ? 4 : 8), (size_t)len);
            e->addr_list[0] = (char *)e->addrs[0];
            e->h.name = e->name;
            e->h.aliases = e->aliases;
            e->h.addrtype = (short)type;
            e->h.length = (short)len;
            e->h.addr_list = e->addr_list;
            h = &e->h;
            SetLastError(0);
        }
        HeapFree(GetProcessHeap(), 0, names);
        return h;
    }
    if (names)
        HeapFree(GetProcessHeap(), 0, names);
    return NULL;   /* LastError: the local lookup's */
}

void net_resolve_hooks(hook_table *table)
{
    FVM_HOOK(table, "ws2_32.dll", getaddrinfo);
    FVM_HOOK(table, "ws2_32.dll", GetAddrInfoW);
    FVM_HOOK(table, "ws2_32.dll", gethostbyname);
    FVM_HOOK_OPTIONAL(table, "ws2_32.dll", GetAddrInfoExW);
    FVM_HOOK(table, "ws2_32.dll", getnameinfo);
    FVM_HOOK(table, "ws2_32.dll", gethostbyaddr);
}

