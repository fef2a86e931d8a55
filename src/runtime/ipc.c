/* ipc.c - named kernel objects: every box has a namespace of its own.
 *
 * A program that makes a named mutex, event, semaphore, section, timer, job,
 * I/O completion port, symbolic link or directory object in a box gets it
 * in the box's private object directory, \BaseNamedObjects\FVM.<hash>, a
 * mirror of the host's names below it:
 *
 *   CreateMutex("X")         \Sessions\1\BaseNamedObjects\X
 *                        ->  \BaseNamedObjects\FVM.<hash>\Sessions\1\BaseNamedObjects\X
 *   CreateMutex("Global\X")  \BaseNamedObjects\X
 *                        ->  \BaseNamedObjects\FVM.<hash>\BaseNamedObjects\X
 *
 * so programs that allow one running copy find only the copies in their own
 * box, and a boxed program can neither signal, block nor see the host's
 * objects, nor the host the box's. <hash> is the box folder's path hash, as
 * for FVM's own objects (common/boxcfg.c).
 *
 * Every named create and open is first given its full canonical name:
 * kernelbase passes its \Sessions\N\BaseNamedObjects directory handle and the
 * program's relative name, so the names of directory handles are cached
 * (handle -> name, from our own open of the directory or, once, from the
 * object manager; dropped when NtClose closes the handle) and a named call
 * costs no extra wineserver round trip. The Global, Local and Session links
 * are resolved by hand, so every spelling of a name gets one decision, the
 * one `fvm policy explain` shows for the names of docs/policy.md:
 *   cow (default)  the box's private object;
 *   open           the host's object by its name;
 *   read           the host's object, opened without the rights to change it
 *                  (a create opens an existing host object so, or is refused);
 *   hide           STATUS_OBJECT_NAME_NOT_FOUND;   deny  STATUS_ACCESS_DENIED.
 * Only the two BaseNamedObjects trees are private by default: other object
 * directories (\??, \Device, \KernelObjects, \NLS, \Windows...) belong to
 * the system and are passed through unless a rule names them. Names of
 * Wine's own machinery (a last component starting with "__wine", such as
 * the event services.exe signals when it is up) stay the host's unless a
 * rule says otherwise. FVM's own objects (any component "FVM.<16 hex>", of
 * any box) are refused to programs; the runtime's own calls set a
 * per-thread bypass and reach them unchanged.
 *
 * The box's directories are made lazily, the first time a call finds them
 * missing (with OBJ_OPENIF, so concurrent processes meet in one), and this
 * process keeps its handles to them open: an object directory lives while
 * anyone holds it or an object inside it. A directory below is mirrored only
 * where the host has that directory too, so a name below a directory that
 * exists nowhere still fails as it does on the host. Pipes and mailslots are
 * pipe.c's; they use the decision made here. */
#include "runtime/ipc.h"
#include "runtime/guard.h"

#include "core/objname.h"

#include "runtime/file.h"

uint16_t g_ipc_tag[21];                  /* "FVM." + 16 hex */
static uint16_t g_box_dir[64];           /* \BaseNamedObjects\FVM.<hash> */
static size_t g_box_dir_len;

typedef NTSTATUS (NTAPI *open_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
typedef NTSTATUS (NTAPI *NtQueryDirectoryObject_fn)(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN, PULONG, PULONG);

/* ---- small name helpers ----------------------------------------------------- */

static uint16_t up(uint16_t c)
{
    return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
}

/* Does n (len units) start with the ASCII text p, case-insensitively? */
static BOOL starts_ascii(const uint16_t *n, size_t len, const char *p)
{
    size_t i = 0;
    for (; p[i]; i++)
        if (i >= len || up(n[i]) != up((uint16_t)(unsigned char)p[i]))
            return FALSE;
    return TRUE;
}

static BOOL starts_units(const uint16_t *n, size_t len, const uint16_t *p, size_t plen)
{
    if (len < plen)
        return FALSE;
    for (size_t i = 0; i < plen; i++)
        if (up(n[i]) != up(p[i]))
            return FALSE;
    return TRUE;
}

/* "FVM." followed by 16 hex digits: a name FVM made for some box. */
BOOL ipc_is_fvm_component(const uint16_t *s, size_t len)
{
    if (len < 20 || !starts_ascii(s, len, "FVM."))
        return FALSE;
    for (size_t i = 4; i < 20; i++) {
        uint16_t c = up(s[i]);
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return FALSE;
    }
    return TRUE;
}

static BOOL has_fvm_component(const uint16_t *n, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (n[i] == L'\\' && i + 1 < len && ipc_is_fvm_component(n + i + 1, len - i - 1))
            return TRUE;
    return FALSE;
}

/* The pipes system services listen on (Wine's RPC runs over named pipes:
 * ncacn_np endpoints and, below lrpc\, ncalrpc ones): a box-private copy
 * would cut boxed programs off from Plug and Play, the endpoint mapper...
 * Not here, so boxed by default: the service manager (svcctl: each box has
 * its own, scm.c, so neither sechost nor raw RPC reaches the host's), the
 * remote registry (winreg: a way around the registry virtualizer) and the
 * task scheduler (atsvc: a host task would run outside the box). */
static const char *const g_platform_pipes[] = {
    "ntsvcs", "plugplay", "epmapper", "lrpc\\epmapper", "lrpc\\irot", "lsarpc", "lsass", "samr",
    "netlogon", "srvsvc", "wkssvc", "eventlog", "spoolss", "browser",
};

/* Wine's own objects (the font mutex, the clipboard...: a last component
 * starting with "__wine") and the system services' pipes stay the host's.
 * Not the event services.exe signals when it is up: the box's service
 * manager signals its own (scm.c). */
static BOOL is_platform_name(const uint16_t *n, size_t len)
{
    if (starts_ascii(n, len, "\\Device\\NamedPipe\\")) {
        for (size_t i = 0; i < sizeof g_platform_pipes / sizeof g_platform_pipes[0]; i++)
            if (starts_ascii(n + 18, len - 18, g_platform_pipes[i]) && len - 18 == strlen(g_platform_pipes[i]))
                return TRUE;
    }
    size_t start = len;
    while (start && n[start - 1] != L'\\')
        start--;
    if (len - start == 20 && starts_ascii(n + start, len - start, "__wine_SvcctlStarted"))
        return FALSE;
    return starts_ascii(n + start, len - start, "__wine");
}

/* ---- directory handle names ----------------------------------------------- */

#define TAG_DIRECTORY_NAME 1

static BOOL dir_lookup(HANDLE h, uint16_t *out, size_t cap, size_t *len)
{
    return handle_find_name(h, &object_virtualizer, TAG_DIRECTORY_NAME, out, cap, len);
}

static void dir_remember(HANDLE h, const uint16_t *name, size_t len)
{
    handle_put_name(h, &object_virtualizer, TAG_DIRECTORY_NAME, name, len);
}

static void ipc_handle_closed(HANDLE h, unsigned tag, void *data)
{
    HeapFree(GetProcessHeap(), 0, data);
}

/* The program's name of a directory handle: cached, else asked once.
 * 1: named; 0: a handle without a name; -1: not a handle the object
 * manager could name (or a name too long). */
static int root_name(HANDLE root, uint16_t *out, size_t cap, size_t *len)
{
    if (dir_lookup(root, out, cap, len))
        return 1;
    ULONG size = sizeof(OBJECT_NAME_INFORMATION) + (IPC_NAME_UNITS + 64) * 2;
    OBJECT_NAME_INFORMATION *info = HeapAlloc(GetProcessHeap(), 0, size);
    int ok = -1;
    NtQueryObject_fn query = real_NtQueryObject ? real_NtQueryObject : NtQueryObject;
    ULONG got;
    NTSTATUS queried = info ? query(root, ObjectNameInformation, info, size, &got) : STATUS_NO_MEMORY;
    if (queried >= 0 && !info->Name.Length) {
        ok = 0;
    } else if (queried >= 0 && info->Name.Buffer) {
        size_t n = info->Name.Length / 2;
        uint16_t *text = (uint16_t *)info->Name.Buffer;
        size_t program = ipc_program_name(text, n);
        if (program)
            n = program;
        if (n <= cap) {
            memcpy(out, text, n * 2);
            *len = n;
            ok = 1;
            dir_remember(root, out, n);
        }
    }
    if (info)
        HeapFree(GetProcessHeap(), 0, info);
    return ok;
}

/* The full canonical name a call's OBJECT_ATTRIBUTES designate, read as
 * the object manager reads it (core/objname.c), or the status the call is
 * refused with. */
static NTSTATUS full_name(const OBJECT_ATTRIBUTES *oa, ipc_call *c, objname_problem *problem)
{
    const UNICODE_STRING *us = oa->ObjectName;
    uint16_t *root = NULL;
    size_t root_len = 0;
    *problem = OBJNAME_OK;
    c->len = 0;
    if (oa->RootDirectory) {
        /* A directory without a name (a private namespace) is reachable
         * only through its handle: nothing to virtualize. A handle that
         * cannot be named is refused. */
        int named_root = root_name(oa->RootDirectory, c->target, IPC_NAME_UNITS, &root_len);
        if (named_root == 0)
            return STATUS_OBJECT_TYPE_MISMATCH;
        if (named_root < 0)
            return STATUS_INVALID_HANDLE;
        root = c->target;
    }
    *problem = objname_join(OBJNAME_SPACE_OBJECT, root, root_len, (const uint16_t *)us->Buffer, us->Length,
                            c->name, IPC_NAME_UNITS, &c->len);
    return runtime_name_status(*problem);
}

static ipc_route fail(ipc_call *c, NTSTATUS status)
{
    c->status = status;
    return IPC_FAIL;
}

static ipc_route to_host(ipc_call *c, ipc_route route)
{
    memcpy(c->target, c->name, c->len * 2);
    c->target_len = c->len;
    return route;
}

/* The policy's word on c->name; namespace says whether cow boxes it. */
static ipc_route decide_name(ipc_call *c, BOOL boxed_by_default, const char *op)
{
    if (has_fvm_component(c->name, c->len))
        return fail(c, STATUS_ACCESS_DENIED);
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_OBJECT, c->name, c->len, &d);
    runtime_audit(POLICY_TYPE_OBJECT, op, &d, c->name, c->len);
    if (d.is_default && (!boxed_by_default || is_platform_name(c->name, c->len)))
        return to_host(c, IPC_HOST);
    switch (action) {
    case POLICY_ACTION_DENY:
        return fail(c, STATUS_ACCESS_DENIED);
    case POLICY_ACTION_HIDE:
        return fail(c, STATUS_OBJECT_NAME_NOT_FOUND);
    case POLICY_ACTION_OPEN:
        return to_host(c, IPC_HOST);
    case POLICY_ACTION_READ:
        return to_host(c, IPC_HOST_READ);
    default:
        break;
    }
    return IPC_BOX;
}

/* ---- symbolic links (issue 17 item 4) ---------------------------------------
 *
 * A link in a directory the policy passes to the host (\??, \KernelObjects,
 * \RPC Control...) could lead a name that looks like the system's to a host
 * object in a BaseNamedObjects tree. So a name outside those trees has its
 * links resolved here, one prefix at a time, as the object manager would,
 * and is decided on (and passed on as) what it resolves to. Links a boxed
 * program makes live only in the box's namespace and point into it
 * (box_NtCreateSymbolicLinkObject). */
typedef NTSTATUS (NTAPI *NtQuerySymbolicLinkObject_fn)(HANDLE, PUNICODE_STRING, PULONG);
NTSTATUS NTAPI NtQuerySymbolicLinkObject(HANDLE, PUNICODE_STRING, PULONG);
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
static open_fn real_NtOpenSymbolicLinkObject;

/* Replaces c->name[0, end) by the link's target; 1 done, 0 not a link,
 * -1 refused (status in c->status). */
static int follow_link(ipc_call *c, size_t end)
{
    UNICODE_STRING us = {(USHORT)(end * 2), (USHORT)(end * 2), (PWSTR)c->name};
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    HANDLE link;
    open_fn open_link = real_NtOpenSymbolicLinkObject ? real_NtOpenSymbolicLinkObject : NtOpenSymbolicLinkObject;
    if (open_link(&link, 1 /* SYMBOLIC_LINK_QUERY */, &oa) < 0)
        return 0;
    uint16_t *target = c->target;   /* scratch until the decision fills it */
    UNICODE_STRING t = {0, (USHORT)(IPC_NAME_UNITS * 2), (PWSTR)target};
    NTSTATUS status = NtQuerySymbolicLinkObject(link, &t, NULL);
    NtClose(link);
    size_t tl = t.Length / 2;
    if (status < 0 || !tl || target[0] != L'\\' || tl + c->len - end > IPC_NAME_UNITS) {
        c->status = STATUS_OBJECT_NAME_INVALID;
        return -1;
    }
    memmove(c->name + tl, c->name + end, (c->len - end) * 2);
    memcpy(c->name, target, tl * 2);
    c->len = tl + c->len - end;
    if (objname_check(c->name, c->len * 2, OBJNAME_ABSOLUTE, 0, NULL) != OBJNAME_OK ||
        !objname_resolve_links(c->name, &c->len, IPC_NAME_UNITS)) {
        c->status = STATUS_OBJECT_NAME_INVALID;
        return -1;
    }
    return 1;
}

/* Resolves the links of a name outside the BaseNamedObjects trees (the
 * last component too when follow_last). FALSE: refused, c->status set. */
static BOOL resolve_host_links(ipc_call *c, BOOL follow_last)
{
    for (int round = 0; round < 8; round++) {
        if (objname_in_named_objects(c->name, c->len))
            return TRUE;   /* the box's own names: its links are the box's */
        int followed = 0;
        for (size_t end = 2; end <= c->len && !followed; end++) {
            if (end < c->len ? c->name[end] != L'\\' : !follow_last)
                continue;
            followed = follow_link(c, end);
            if (followed < 0)
                return FALSE;
        }
        if (!followed)
            return TRUE;
    }
    c->status = STATUS_OBJECT_NAME_INVALID;   /* links that do not end */
    return FALSE;
}

static ipc_route decide_object(ipc_call *c, const OBJECT_ATTRIBUTES *oa, const char *op, BOOL follow_last)
{
    /* The one rule for names (runtime.h): odd lengths, NULs, empty names
     * and trailing separators are refused as the object manager would
     * (or, for a NUL, which it would take, as the box does), never passed. */
    NTSTATUS status = runtime_name_gate(POLICY_TYPE_OBJECT, op, oa->ObjectName,
                                        (oa->RootDirectory ? OBJNAME_ALLOW_EMPTY : OBJNAME_ABSOLUTE) |
                                            (op[0] == 'o' ? RUNTIME_NAME_OPEN : 0));
    if (status < 0)
        return fail(c, status);
    objname_problem problem;
    status = full_name(oa, c, &problem);
    if (status == STATUS_OBJECT_TYPE_MISMATCH)
        return IPC_PASS;
    if (status < 0) {
        runtime_name_refused(POLICY_TYPE_OBJECT, op,
                             problem != OBJNAME_OK ? objname_problem_text(problem) : "a root handle FVM cannot name",
                             (const uint16_t *)oa->ObjectName->Buffer, oa->ObjectName->Length / 2);
        return fail(c, status);
    }
    if (runtime_bypassed())
        return to_host(c, IPC_HOST);
    if (!objname_in_named_objects(c->name, c->len) && !resolve_host_links(c, follow_last)) {
        runtime_name_refused(POLICY_TYPE_OBJECT, op, "a symbolic link FVM cannot follow", c->name, c->len);
        return IPC_FAIL;
    }
    ipc_route route = decide_name(c, objname_in_named_objects(c->name, c->len), op);
    if (route != IPC_BOX)
        return route;
    memcpy(c->target, g_box_dir, g_box_dir_len * 2);
    memcpy(c->target + g_box_dir_len, c->name, c->len * 2);
    c->target_len = g_box_dir_len + c->len;
    return IPC_BOX;
}

ipc_route ipc_decide_pipe(ipc_call *c, BOOL creating, const char *op)
{
    if (runtime_bypassed())
        return IPC_PASS;
    ipc_route route = decide_name(c, TRUE, op);
    if (route == IPC_HOST_READ && creating)
        return fail(c, STATUS_ACCESS_DENIED);
    if (route != IPC_BOX)
        return route;
    /* \Device\NamedPipe\X -> \Device\NamedPipe\FVM.<hash>\X */
    size_t root = 1;
    while (root < c->len && c->name[root] != L'\\')
        root++;
    root++;
    while (root < c->len && c->name[root] != L'\\')
        root++;
    if (root >= c->len)
        return fail(c, STATUS_OBJECT_NAME_INVALID);
    memcpy(c->target, c->name, (root + 1) * 2);
    memcpy(c->target + root + 1, g_ipc_tag, 20 * 2);
    memcpy(c->target + root + 21, c->name + root, (c->len - root) * 2);
    c->target_len = c->len + 21;
    return IPC_BOX;
}

/* ---- name queries ------------------------------------------------------------ */

size_t ipc_program_name(uint16_t *name, size_t len)
{
    if (!g_box_dir_len)
        return 0;
    if (len > g_box_dir_len && name[g_box_dir_len] == L'\\' && starts_units(name, len, g_box_dir, g_box_dir_len)) {
        memmove(name, name + g_box_dir_len, (len - g_box_dir_len) * 2);
        return len - g_box_dir_len;
    }
    static const char *const roots[] = {"\\Device\\NamedPipe\\", "\\Device\\MailSlot\\"};
    for (int i = 0; i < 2; i++) {
        size_t r = strlen(roots[i]);
        if (starts_ascii(name, len, roots[i]) && len > r + 21 && name[r + 20] == L'\\' &&
            starts_units(name + r, len - r, g_ipc_tag, 20)) {
            memmove(name + r, name + r + 21, (len - r - 21) * 2);
            return len - 21;
        }
    }
    return 0;
}

size_t ipc_program_pipe_file_name(uint16_t *name, size_t len)
{
    if (!g_box_dir_len || len <= 22 || name[0] != L'\\' || name[21] != L'\\' ||
        !starts_units(name + 1, len - 1, g_ipc_tag, 20))
        return 0;
    memmove(name + 1, name + 22, (len - 22) * 2);
    return len - 21;
}

/* ---- the box's directories ------------------------------------------------ */

static open_fn real_NtOpenDirectoryObject;
static NTSTATUS (NTAPI *real_NtCreateDirectoryObject)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);

static HANDLE g_kept[32];
static volatile LONG g_kept_count;

static NTSTATUS make_directory(const uint16_t *name, size_t len, BOOL keep)
{
    UNICODE_STRING us = {(USHORT)(len * 2), (USHORT)(len * 2), (PWSTR)name};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE | OBJ_OPENIF};
    HANDLE h;
    NTSTATUS status = real_NtCreateDirectoryObject(&h, 0xf000f /* DIRECTORY_ALL_ACCESS */, &oa);
    if (status < 0)
        return status;
    LONG slot = keep ? InterlockedIncrement(&g_kept_count) - 1 : 32;
    if (slot < 32)
        g_kept[slot] = h;
    else if (!keep)
        NtClose(h);
    /* With no slot left the handle stays open, unrecorded: the directory
     * must outlive this call. */
    return status;
}

/* Makes the box's mirror of every directory above c->name that the host
 * has (or the box already has). FALSE if a directory above exists on
 * neither side: the call then fails as it would on the host. */
static BOOL make_box_parents(const ipc_call *c)
{
    uint16_t *buf = HeapAlloc(GetProcessHeap(), 0, (g_box_dir_len + IPC_NAME_UNITS) * 2);
    if (!buf)
        return FALSE;
    BOOL ok = make_directory(g_box_dir, g_box_dir_len, TRUE) >= 0;
    memcpy(buf, g_box_dir, g_box_dir_len * 2);
    for (size_t end = 1; ok && end < c->len; end++) {
        if (c->name[end] != L'\\')
            continue;
        if (g_box_dir_len + end > IPC_STRING_UNITS) {
            ok = FALSE;   /* a directory name longer than any the object manager takes */
            break;
        }
        memcpy(buf + g_box_dir_len, c->name, end * 2);
        UNICODE_STRING us = {(USHORT)((g_box_dir_len + end) * 2), 0, (PWSTR)buf};
        us.MaximumLength = us.Length;
        OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
        HANDLE h;
        if (real_NtOpenDirectoryObject(&h, 1 /* DIRECTORY_QUERY */, &oa) >= 0) {
            NtClose(h);
            continue;
        }
        UNICODE_STRING host = {(USHORT)(end * 2), (USHORT)(end * 2), (PWSTR)c->name};
        oa.ObjectName = &host;
        if (real_NtOpenDirectoryObject(&h, 1 /* DIRECTORY_QUERY */, &oa) < 0) {
            ok = FALSE;
            break;
        }
        NtClose(h);
        ok = make_directory(buf, g_box_dir_len + end, TRUE) >= 0;
    }
    HeapFree(GetProcessHeap(), 0, buf);
    return ok;
}

/* A handle of the box's directory name[0, len), for relative calls. */
static HANDLE open_box_directory(const uint16_t *name, size_t len)
{
    UNICODE_STRING us = {(USHORT)(len * 2), (USHORT)(len * 2), (PWSTR)name};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
    HANDLE h;
    return real_NtOpenDirectoryObject(&h, 0xf000f /* DIRECTORY_ALL_ACCESS */, &oa) >= 0 ? h : NULL;
}

/* ---- the hooks ----------------------------------------------------------- */

/* Rights that change an object, by type: a `read` rule opens without them. */
enum { T_MUTANT, T_EVENT, T_SEMAPHORE, T_SECTION, T_TIMER, T_JOB, T_IOCP, T_SYMLINK, T_DIRECTORY, T_COUNT };
static const ACCESS_MASK g_read_rights[T_COUNT] = {
    [T_MUTANT] = 0x0001,   /* MUTANT_QUERY_STATE */
    [T_EVENT] = 0x0001,    /* EVENT_QUERY_STATE */
    [T_SEMAPHORE] = 0x0001,
    [T_SECTION] = 0x0001 | 0x0004 | 0x0008,   /* query, map read, map execute */
    [T_TIMER] = 0x0001,
    [T_JOB] = 0x0004 | 0x0020,   /* query, (and Wine's) query security */
    [T_IOCP] = 0x0001,
    [T_SYMLINK] = 0x0001,
    [T_DIRECTORY] = 0x0001 | 0x0002,   /* query, traverse */
};
static const char *const g_op_create[T_COUNT] = {"create-mutant", "create-event", "create-semaphore",
    "create-section", "create-timer", "create-job", "create-iocp", "create-symlink", "create-directory"};
static const char *const g_op_open[T_COUNT] = {"open-mutant", "open-event", "open-semaphore", "open-section",
    "open-timer", "open-job", "open-iocp", "open-symlink", "open-directory"};

static ACCESS_MASK read_only(ACCESS_MASK access, int type)
{
    ACCESS_MASK out = access & (g_read_rights[type] | SYNCHRONIZE | READ_CONTROL);
    if (access & (GENERIC_READ | GENERIC_ALL | MAXIMUM_ALLOWED | GENERIC_WRITE))
        out |= GENERIC_READ;
    return out ? out : GENERIC_READ;
}

/* One named call in progress. */
typedef struct ipc_op {
    ipc_call *call;
    ipc_route route;
    HANDLE root;   /* the box directory a too long name is passed relative to */
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
} ipc_op;

static BOOL named(const OBJECT_ATTRIBUTES *oa)
{
    return oa && oa->ObjectName && oa->ObjectName->Buffer && oa->ObjectName->Length;
}

/* Decides; returns the attributes for the real call, or NULL with *status. */
static POBJECT_ATTRIBUTES begin(ipc_op *op, POBJECT_ATTRIBUTES oa, const char *what, NTSTATUS *status)
{
    op->call = NULL;
    op->route = IPC_PASS;
    op->root = NULL;
    if ((*status = guard_attributes(oa)) < 0)
        return NULL;
    if (!named(oa))
        return oa;
    op->call = ipc_call_new();
    if (!op->call) {
        *status = STATUS_NO_MEMORY;
        return NULL;
    }
    BOOL link_itself = what == g_op_create[T_SYMLINK] || what == g_op_open[T_SYMLINK];
    op->route = decide_object(op->call, oa, what, !link_itself);
    if (op->route == IPC_FAIL) {
        *status = op->call->status;
        return NULL;
    }
    if (op->route == IPC_PASS) {
        ipc_call_free(op->call);
        op->call = NULL;
        return oa;
    }
    op->oa = *oa;
    op->oa.RootDirectory = NULL;
    op->us.Buffer = (PWSTR)op->call->target;
    size_t units = op->call->target_len;
    if (op->route == IPC_BOX && units > IPC_STRING_UNITS / 2) {
        /* Long with the box's directory in front: the last component
         * relative to the box's directory that holds it (made if need be),
         * so no name is longer than the host's. (Wine refuses an absolute
         * name of 32767 units that it takes relative: the cut is well
         * below; names this long are rare, the extra open does not count.) */
        size_t cut = units;
        while (cut > g_box_dir_len && op->call->target[cut - 1] != L'\\')
            cut--;
        *status = cut - 1 > IPC_STRING_UNITS || units - cut > IPC_STRING_UNITS ? STATUS_NAME_TOO_LONG
                                                                                  : STATUS_OBJECT_PATH_NOT_FOUND;
        if (*status == STATUS_NAME_TOO_LONG || !make_box_parents(op->call) ||
            !(op->root = open_box_directory(op->call->target, cut - 1))) {
            ipc_call_free(op->call);
            op->call = NULL;
            return NULL;
        }
        op->oa.RootDirectory = op->root;
        op->us.Buffer = (PWSTR)(op->call->target + cut);
        units -= cut;
    }
    op->us.Length = op->us.MaximumLength = (USHORT)(units * 2);
    op->oa.ObjectName = &op->us;
    return &op->oa;
}

/* After the call: directory handles keep the program's name for later
 * relative calls. */
static NTSTATUS end(ipc_op *op, NTSTATUS status, PHANDLE handle, int type)
{
    if (op->root)
        NtClose(op->root);
    if (op->call) {
        if (status >= 0 && type == T_DIRECTORY && handle)
            dir_remember(*handle, op->call->name, op->call->len);
        ipc_call_free(op->call);
    }
    return status;
}

/* A creating call whose box directories are not there yet: make them and
 * say whether to try again. */
static BOOL retry_in_box(ipc_op *op, NTSTATUS status)
{
    return status == STATUS_OBJECT_PATH_NOT_FOUND && op->route == IPC_BOX && make_box_parents(op->call);
}

#define OPEN_HOOK(NAME, TYPE)                                                                              \
    static open_fn real_##NAME;                                                                            \
    static NTSTATUS NTAPI box_##NAME(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes)     \
    {                                                                                                      \
        ipc_op op;                                                                                         \
        NTSTATUS status;                                                                                   \
        POBJECT_ATTRIBUTES oa = begin(&op, attributes, g_op_open[TYPE], &status);                          \
        if (!oa)                                                                                           \
            return end(&op, status, NULL, TYPE);                                                           \
        if (op.route == IPC_HOST_READ || (op.route == IPC_HOST && TYPE == T_SYMLINK))                       \
            access = read_only(access, TYPE);                                                              \
        status = real_##NAME(handle, access, oa);                                                          \
        if (retry_in_box(&op, status))                                                                     \
            status = real_##NAME(handle, access, oa);                                                      \
        if (status == STATUS_OBJECT_PATH_NOT_FOUND && op.route == IPC_BOX)                                 \
            status = STATUS_OBJECT_NAME_NOT_FOUND;                                                         \
        return end(&op, status, handle, TYPE);                                                             \
    }

#define COMMA ,
OPEN_HOOK(NtOpenMutant, T_MUTANT)
OPEN_HOOK(NtOpenEvent, T_EVENT)
OPEN_HOOK(NtOpenSemaphore, T_SEMAPHORE)
OPEN_HOOK(NtOpenSection, T_SECTION)
OPEN_HOOK(NtOpenTimer, T_TIMER)
OPEN_HOOK(NtOpenJobObject, T_JOB)
OPEN_HOOK(NtOpenIoCompletion, T_IOCP)
OPEN_HOOK(NtOpenSymbolicLinkObject, T_SYMLINK)

/* The unhooked open of each type (filled when the batch is installed). */
static open_fn *const g_real_open[T_COUNT] = {
    [T_MUTANT] = &real_NtOpenMutant, [T_EVENT] = &real_NtOpenEvent, [T_SEMAPHORE] = &real_NtOpenSemaphore,
    [T_SECTION] = &real_NtOpenSection, [T_TIMER] = &real_NtOpenTimer, [T_JOB] = &real_NtOpenJobObject,
    [T_IOCP] = &real_NtOpenIoCompletion, [T_SYMLINK] = &real_NtOpenSymbolicLinkObject,
    [T_DIRECTORY] = &real_NtOpenDirectoryObject,
};

/* `read` on a create: an existing host object is opened without the rights
 * to change it (as CreateMutex opens an existing mutex); none is refused. */
static NTSTATUS create_read_only(ipc_op *op, PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES oa, int type)
{
    OBJECT_ATTRIBUTES plain = *oa;
    plain.Attributes &= ~OBJ_OPENIF;
    NTSTATUS status = (*g_real_open[type])(handle, read_only(access, type), &plain);
    if (status >= 0)
        return STATUS_OBJECT_NAME_EXISTS;
    return status == STATUS_OBJECT_NAME_NOT_FOUND ? STATUS_ACCESS_DENIED : status;
}

/* PARAMS and ARGS: the arguments after the OBJECT_ATTRIBUTES. */
#define CREATE_HOOK(NAME, TYPE, PARAMS, ARGS)                                                              \
    static NTSTATUS (NTAPI *real_##NAME)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES PARAMS);                 \
    static NTSTATUS NTAPI box_##NAME(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes PARAMS) \
    {                                                                                                      \
        if (!named(attributes))                                                                            \
            return real_##NAME(handle, access, attributes ARGS);                                           \
        ipc_op op;                                                                                         \
        NTSTATUS status;                                                                                   \
        POBJECT_ATTRIBUTES oa = begin(&op, attributes, g_op_create[TYPE], &status);                        \
        if (!oa)                                                                                           \
            return end(&op, status, NULL, TYPE);                                                           \
        if (op.route == IPC_HOST_READ)                                                                     \
            return end(&op, create_read_only(&op, handle, access, oa, TYPE), handle, TYPE);                \
        status = real_##NAME(handle, access, oa ARGS);                                                     \
        if (retry_in_box(&op, status))                                                                     \
            status = real_##NAME(handle, access, oa ARGS);                                                 \
        return end(&op, status, handle, TYPE);                                                             \
    }

static NTSTATUS NTAPI box_NtOpenDirectoryObject(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes)
{
    ipc_op op;
    NTSTATUS status;
    POBJECT_ATTRIBUTES oa = begin(&op, attributes, g_op_open[T_DIRECTORY], &status);
    if (!oa)
        return end(&op, status, NULL, T_DIRECTORY);
    /* A host directory, also one the policy opens, is opened without the
     * rights to change it (DELETE would let NtMakeTemporaryObject remove a
     * permanent one): objects made below it are decided by their names. */
    if (op.route == IPC_HOST_READ || op.route == IPC_HOST)
        access = read_only(access, T_DIRECTORY);
    status = real_NtOpenDirectoryObject(handle, access, oa);
    /* The box's mirror of a host directory is made on first open: the
     * program sees the directory, with the box's objects in it. */
    if ((status == STATUS_OBJECT_NAME_NOT_FOUND || status == STATUS_OBJECT_PATH_NOT_FOUND) && op.route == IPC_BOX) {
        HANDLE host;
        OBJECT_ATTRIBUTES host_oa = *oa;
        UNICODE_STRING us = {(USHORT)(op.call->len * 2), (USHORT)(op.call->len * 2), (PWSTR)op.call->name};
        host_oa.ObjectName = &us;
        if (real_NtOpenDirectoryObject(&host, 1 /* DIRECTORY_QUERY */, &host_oa) >= 0) {
            NtClose(host);
            if (make_box_parents(op.call) && make_directory(op.call->target, op.call->target_len, TRUE) >= 0)
                status = real_NtOpenDirectoryObject(handle, access, oa);
        } else if (status == STATUS_OBJECT_PATH_NOT_FOUND && make_box_parents(op.call)) {
            status = real_NtOpenDirectoryObject(handle, access, oa);
        }
        if (status == STATUS_OBJECT_PATH_NOT_FOUND)
            status = STATUS_OBJECT_NAME_NOT_FOUND;
    }
    return end(&op, status, handle, T_DIRECTORY);
}

CREATE_HOOK(NtCreateMutant, T_MUTANT, COMMA BOOLEAN owner, COMMA owner)
CREATE_HOOK(NtCreateEvent, T_EVENT, COMMA ULONG type COMMA BOOLEAN state, COMMA type COMMA state)
CREATE_HOOK(NtCreateSemaphore, T_SEMAPHORE, COMMA LONG initial COMMA LONG max, COMMA initial COMMA max)
CREATE_HOOK(NtCreateSection, T_SECTION,
            COMMA PLARGE_INTEGER size COMMA ULONG protect COMMA ULONG flags COMMA HANDLE file,
            COMMA size COMMA protect COMMA flags COMMA file)
CREATE_HOOK(NtCreateTimer, T_TIMER, COMMA ULONG type, COMMA type)
CREATE_HOOK(NtCreateJobObject, T_JOB, , )
CREATE_HOOK(NtCreateIoCompletion, T_IOCP, COMMA ULONG threads, COMMA threads)

/* A link a boxed program makes lives in the box's namespace and points into
 * it: made anywhere else (\??, \KernelObjects, \RPC Control..., so also
 * DefineDosDevice) it is refused, and its target is decided like a name the
 * program opens (links resolved, policy, FVM's own names refused) and must
 * be the box's: the link then leads to the box's object of that name. */
static NTSTATUS (NTAPI *real_NtCreateSymbolicLinkObject)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PUNICODE_STRING);

static NTSTATUS NTAPI box_NtCreateSymbolicLinkObject(PHANDLE handle, ACCESS_MASK access,
                                                     POBJECT_ATTRIBUTES attributes, PUNICODE_STRING target)
{
    GUARD_ATTRIBUTES(attributes);
    NTSTATUS guarded = guard_unicode(target);
    if (guarded < 0)
        return guarded;
    if (!named(attributes) || runtime_bypassed())
        return real_NtCreateSymbolicLinkObject(handle, access, attributes, target);
    ipc_op op;
    NTSTATUS status;
    POBJECT_ATTRIBUTES oa = begin(&op, attributes, g_op_create[T_SYMLINK], &status);
    if (!oa)
        return end(&op, status, NULL, T_SYMLINK);
    if (op.route != IPC_BOX) {
        runtime_name_refused(POLICY_TYPE_OBJECT, "create-symlink", "a link outside the box's namespace",
                             op.call ? op.call->name : NULL, op.call ? op.call->len : 0);
        return end(&op, STATUS_ACCESS_DENIED, NULL, T_SYMLINK);
    }
    ipc_call *to = ipc_call_new();
    if (!to)
        return end(&op, STATUS_NO_MEMORY, NULL, T_SYMLINK);
    OBJECT_ATTRIBUTES target_oa;
    InitializeObjectAttributes(&target_oa, target, OBJ_CASE_INSENSITIVE, NULL, NULL);
    ipc_route route = target && target->Length ? decide_object(to, &target_oa, "link-target", TRUE) : IPC_FAIL;
    if (route != IPC_BOX) {
        status = route == IPC_FAIL && target && target->Length ? to->status : STATUS_ACCESS_DENIED;
        if (route != IPC_FAIL)
            runtime_name_refused(POLICY_TYPE_OBJECT, "create-symlink", "a link to a name outside the box",
                                 to->name, to->len);
        ipc_call_free(to);
        return end(&op, status, NULL, T_SYMLINK);
    }
    if (to->target_len > IPC_STRING_UNITS) {   /* the box's target would not fit a link's name */
        ipc_call_free(to);
        return end(&op, STATUS_NAME_TOO_LONG, NULL, T_SYMLINK);
    }
    UNICODE_STRING boxed_target = {(USHORT)(to->target_len * 2), (USHORT)(to->target_len * 2), (PWSTR)to->target};
    status = real_NtCreateSymbolicLinkObject(handle, access, oa, &boxed_target);
    if (retry_in_box(&op, status))
        status = real_NtCreateSymbolicLinkObject(handle, access, oa, &boxed_target);
    ipc_call_free(to);
    return end(&op, status, handle, T_SYMLINK);
}

static NTSTATUS NTAPI box_NtCreateDirectoryObject(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes)
{
    if (!named(attributes))
        return real_NtCreateDirectoryObject(handle, access, attributes);
    ipc_op op;
    NTSTATUS status;
    POBJECT_ATTRIBUTES oa = begin(&op, attributes, g_op_create[T_DIRECTORY], &status);
    if (!oa)
        return end(&op, status, NULL, T_DIRECTORY);
    if (op.route == IPC_HOST_READ)
        return end(&op, create_read_only(&op, handle, access, oa, T_DIRECTORY), handle, T_DIRECTORY);
    status = real_NtCreateDirectoryObject(handle, access, oa);
    if (retry_in_box(&op, status))
        status = real_NtCreateDirectoryObject(handle, access, oa);
    return end(&op, status, handle, T_DIRECTORY);
}

/* Listings: FVM's own objects and the boxes' directories are not shown.
 * (Wine answers only ReturnSingleEntry=TRUE; other calls pass.) */
static NtQueryDirectoryObject_fn real_NtQueryDirectoryObject;

static NTSTATUS NTAPI box_NtQueryDirectoryObject(HANDLE dir, PVOID buffer, ULONG length, BOOLEAN single,
                                                 BOOLEAN restart, PULONG context, PULONG returned)
{
    NTSTATUS status = real_NtQueryDirectoryObject(dir, buffer, length, single, restart, context, returned);
    if (!single || runtime_bypassed())
        return status;
    for (int guard = 0; guard < 4096 && status >= 0; guard++) {
        const UNICODE_STRING *name = buffer;
        if (!name->Buffer || !ipc_is_fvm_component((const uint16_t *)name->Buffer, name->Length / 2))
            break;
        status = real_NtQueryDirectoryObject(dir, buffer, length, single, FALSE, context, returned);
    }
    return status;
}

/* NtMakeTemporaryObject removes a permanent object's name once its last
 * handle closes. Wine checks no access right for it, so a host object a box
 * program may open at all (the \??\C: link, which the default policy
 * passes to the host read-only) could be removed for every process of the
 * host: DefineDosDevice(DDD_REMOVE_DEFINITION, "C:") in a box did that,
 * and the host's GetFinalPathNameByHandle failed until the wineserver
 * restarted. Only the box's own objects (and unnamed ones) may be made
 * temporary. */
typedef NTSTATUS (NTAPI *NtMakeTemporaryObject_fn)(HANDLE);
NTSTATUS NTAPI NtMakeTemporaryObject(HANDLE);
static NtMakeTemporaryObject_fn real_NtMakeTemporaryObject;

static NTSTATUS NTAPI box_NtMakeTemporaryObject(HANDLE handle)
{
    if (runtime_bypassed())
        return real_NtMakeTemporaryObject(handle);
    ULONG size = sizeof(OBJECT_NAME_INFORMATION) + (IPC_NAME_UNITS + 64) * 2, got;
    OBJECT_NAME_INFORMATION *info = HeapAlloc(GetProcessHeap(), 0, size);
    if (!info)
        return STATUS_NO_MEMORY;
    NtQueryObject_fn query = real_NtQueryObject ? real_NtQueryObject : NtQueryObject;
    NTSTATUS status = query(handle, ObjectNameInformation, info, size, &got);
    if (status >= 0) {
        const uint16_t *name = (const uint16_t *)info->Name.Buffer;
        size_t len = info->Name.Length / 2;
        BOOL own = !len || (len > g_box_dir_len && name[g_box_dir_len] == L'\\' &&
                            starts_units(name, len, g_box_dir, g_box_dir_len));
        if (own) {
            status = real_NtMakeTemporaryObject(handle);
        } else {
            runtime_name_refused(POLICY_TYPE_OBJECT, "make-temporary", "not an object of the box", name, len);
            status = STATUS_ACCESS_DENIED;
        }
    }
    HeapFree(GetProcessHeap(), 0, info);
    return status;
}

static BOOL ipc_start(void)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t hash = fvm_hash_path(g_fvm.config.box_path);
    static const char tag[] = "FVM.";
    for (int i = 0; i < 4; i++)
        g_ipc_tag[i] = (uint16_t)tag[i];
    for (int i = 0; i < 16; i++)
        g_ipc_tag[4 + i] = (uint16_t)hex[(hash >> (60 - 4 * i)) & 15];
    static const char bno[] = "\\BaseNamedObjects\\";
    for (size_t i = 0; i < 18; i++)
        g_box_dir[i] = (uint16_t)bno[i];
    memcpy(g_box_dir + 18, g_ipc_tag, 20 * 2);
    g_box_dir_len = 38;

    return TRUE;
}

static void ipc_hooks(hook_table *table)
{
#define ADD(NAME) FVM_HOOK(table, "ntdll.dll", NAME)
    ADD(NtCreateMutant);
    ADD(NtOpenMutant);
    ADD(NtCreateEvent);
    ADD(NtOpenEvent);
    ADD(NtCreateSemaphore);
    ADD(NtOpenSemaphore);
    ADD(NtCreateSection);
    ADD(NtOpenSection);
    ADD(NtCreateTimer);
    ADD(NtOpenTimer);
    ADD(NtCreateJobObject);
    ADD(NtOpenJobObject);
    ADD(NtCreateIoCompletion);
    ADD(NtOpenIoCompletion);
    ADD(NtCreateSymbolicLinkObject);
    ADD(NtOpenSymbolicLinkObject);
    ADD(NtCreateDirectoryObject);
    ADD(NtOpenDirectoryObject);
    ADD(NtQueryDirectoryObject);
    ADD(NtMakeTemporaryObject);
#undef ADD
    pipe_hooks(table);
}

/* ---- call buffers ------------------------------------------------------------ */

/* A call holds names up to the object manager's limit (about 256 KiB):
 * each thread keeps one, so a named call costs no large allocation. */
ipc_call *ipc_call_new(void)
{
    fvm_thread *t = fvm_thread_get();
    ipc_call *spare = t ? t->ipc_call : NULL;
    if (spare) {
        t->ipc_call = NULL;
        return spare;
    }
    return HeapAlloc(GetProcessHeap(), 0, sizeof(ipc_call));
}

void ipc_call_free(ipc_call *call)
{
    if (!call)
        return;
    fvm_thread *t = fvm_thread_peek();
    if (t && !t->ipc_call)
        t->ipc_call = call;
    else
        HeapFree(GetProcessHeap(), 0, call);
}

static void ipc_thread_detach(fvm_thread *t)
{
    if (t->ipc_call) {
        HeapFree(GetProcessHeap(), 0, t->ipc_call);
        t->ipc_call = NULL;
    }
}

const fvm_virtualizer object_virtualizer = {
    .name = "objects",
    .policy = POLICY_TYPE_OBJECT,
    .start = ipc_start,
    .hooks = ipc_hooks,
    .handle_closed = ipc_handle_closed,
    .program_name = ipc_program_name,
    .thread_detach = ipc_thread_detach,
};
