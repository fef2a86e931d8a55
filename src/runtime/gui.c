/* gui.c - window classes, windows and global atoms under the box's identity.
 *
 * Single-instance programs find their running copy by a window of their own
 * class (FindWindow), by walking the top-level windows (EnumWindows) or by a
 * global atom. Inside a box they must find only the box's copy; outside, the
 * host must not find the box's. The idea is the FVM paper's renaming at the
 * system call interface, applied to the names the window manager keeps:
 *
 * - Classes. A class a boxed program registers is registered under the name
 *   "FVM.<16 hex digits>:Name", the hex being fvm_hash_path of the box
 *   folder (the same hash the box's kernel objects are named with). A
 *   FindWindow(class) on the host or in another box asks for "Name" and so
 *   never matches it. CreateWindowEx, GetClassInfo and UnregisterClass by
 *   "Name" in the box go to the box's class. The program never sees the
 *   prefix: GetClassName, RealGetWindowClass, GetClassInfo and the class
 *   atom's name give "Name". (Passing the prefix as Wine's "version" part
 *   of the name, the "6.0.0.0!" of activation contexts, would hide it from
 *   GetClassName for free, but Wine's server matches FindWindow on the name
 *   without the version part, so the host would find the box's class: the
 *   prefix goes after any version part instead.) System classes (Button,
 *   Edit, #32770...) are not registered by the program and stay as they are.
 * - Windows. A window belongs to the box if its class carries the box's
 *   prefix or its owning process is in the box's job object (for windows of
 *   system classes: a boxed dialog is a "#32770"). FindWindow(Ex) and the
 *   window lists behind EnumWindows, EnumChildWindows, EnumThreadWindows and
 *   EnumDesktopWindows return, from a box, only the box's windows and those
 *   of a class the policy opens (`open class:Shell_TrayWnd` in default.ini:
 *   the tray). A title-only FindWindow(NULL, title) is filtered the same way.
 *   GetWindow and GetTopWindow walks step over the windows it may not see.
 *   The process check costs three server calls per foreign window of a
 *   system class; lists are short and programs walk them rarely.
 * - Atoms. In Wine, class names and global atoms share one table, and
 *   programs use GlobalAddAtom/GlobalFindAtom as an "I am running" marker.
 *   NtAddAtom and NtFindAtom from a box take the box prefix too, and
 *   NtQueryInformationAtom (GlobalGetAtomName) gives the name back without
 *   it; another box's atom reads as an invalid atom. Integer atoms ("#123")
 *   have no name and are left alone. Window messages (RegisterWindowMessage)
 *   and clipboard formats are registered by win32u itself, not through the
 *   ntdll stubs, and stay shared, as they must (TaskbarCreated).
 *
 * Policy: every class name (and atom name) is decided as "class:NAME" of
 * type object. cow (the default): per box as above. open: the host's class:
 * registered and found under the plain name, host windows of the class are
 * visible. read: found on the host like open, but a registration stays in
 * the box. hide and deny: FindWindow finds nothing, registration is refused.
 *
 * Where: the win32u NtUser* syscall stubs, not the user32 exports. Every
 * user32 entry (the A and W forms, RegisterClass, RegisterClassEx,
 * CreateWindow, dialogs, FindWindow, GetClassName...) funnels into one of
 * seven of them, on Wine 8 as on Windows 10 and later, and on Wine 8 each
 * is the same plain 24-byte syscall stub (measured: `4c 8b d1 b8 <nr> f6 04
 * 25 ... 0f 05 c3`), with nothing to relocate. Measured exceptions: Wine 8's user32
 * lists windows for EnumWindows and its relatives with its own server
 * request, not NtUserBuildHwndList, and GetWindow/GetTopWindow go through
 * the generic NtUserCallHwndParam; those six user32 functions are hooked
 * themselves (their first bytes are pushes and register moves). win32u is
 * loaded only by programs that use user32 or gdi32, so its hooks and
 * user32's are late groups (runtime.h, late_hooks): in the start-up batch
 * when the DLL is already loaded, otherwise installed from the loader's DLL
 * notification the moment it loads; a console program pays nothing but the
 * notification. If the hooks cannot be installed then, the process is ended
 * rather than left unboxed for windows. Detours are box_<function>, the
 * win32u ones named after the syscall (box_NtUserFindWindowEx). All of them
 * leave the program's LastError as the real call set it.
 *
 * Limits: the host is not hooked, so a host program's title-only
 * FindWindow, or a FindWindow of a system class ("#32770", title), can
 * still find a box's window; only class names are renamed. Broadcast
 * messages (HWND_BROADCAST) and handles obtained otherwise
 * (GetForegroundWindow, WindowFromPoint) are not filtered;
 * CREATESTRUCT.lpszClass in WM_NCCREATE/WM_CREATE shows the prefixed name
 * (Wine passes on the name CreateWindowEx was given; wintool classinfo
 * prints it). A class
 * or atom name longer than 234 characters cannot take the prefix and is
 * refused. */
#include "runtime/runtime.h"

/* ---- the box prefix -------------------------------------------------------- */

#define PREFIX_CHARS 21          /* "FVM." + 16 hex + ":" */
#define ATOM_MAX_CHARS 255       /* MAX_ATOM_LEN */
#define WINE_HWND_BOTTOM ((HWND)1)

static WCHAR g_prefix[PREFIX_CHARS + 1];

static void make_prefix(void)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t h = fvm_hash_path(g_fvm.config.box_path);
    g_prefix[0] = L'F';
    g_prefix[1] = L'V';
    g_prefix[2] = L'M';
    g_prefix[3] = L'.';
    for (int i = 0; i < 16; i++)
        g_prefix[4 + i] = (WCHAR)hex[(h >> (60 - 4 * i)) & 15];
    g_prefix[20] = L':';
    g_prefix[21] = 0;
}

enum { NAME_PLAIN, NAME_OURS, NAME_OTHER_BOX };

static BOOL is_hex(WCHAR c)
{
    return (c >= L'0' && c <= L'9') || (c >= L'a' && c <= L'f') || (c >= L'A' && c <= L'F');
}

/* Whether a class or atom name carries a box prefix, and whose. */
static int name_kind(const WCHAR *s, size_t n)
{
    if (n < PREFIX_CHARS || fvm_wcsicmp_n(s, L"FVM.", 4) != 0 || s[20] != L':')
        return NAME_PLAIN;
    for (int i = 4; i < 20; i++)
        if (!is_hex(s[i]))
            return NAME_PLAIN;
    return fvm_wcsicmp_n(s, g_prefix, PREFIX_CHARS) == 0 ? NAME_OURS : NAME_OTHER_BOX;
}

/* "#123": an integer atom written as a string; it has no name to rename. */
static BOOL is_integral_name(const WCHAR *s, size_t n)
{
    if (n < 2 || s[0] != L'#')
        return FALSE;
    for (size_t i = 1; i < n; i++)
        if (s[i] < L'0' || s[i] > L'9')
            return FALSE;
    return TRUE;
}

/* A class name given by string (not MAKEINTATOM, not "#123"). */
static BOOL is_string_name(const UNICODE_STRING *us)
{
    return us && us->Buffer && !IS_INTRESOURCE(us->Buffer) && us->Length >= 2 &&
           !is_integral_name(us->Buffer, us->Length / 2);
}

/* "6.0.2600.2982!Button": the activation-context version part of a class
 * name, which the box prefix goes after (so Wine's GetClassName, which
 * leaves the version out, starts with the prefix). */
static size_t version_chars(const WCHAR *s, size_t n)
{
    size_t i = 0;
    while (i < n && ((s[i] >= L'0' && s[i] <= L'9') || s[i] == L'.'))
        i++;
    return i > 0 && i < n && s[i] == L'!' ? i + 1 : 0;
}

typedef struct boxed_name {
    UNICODE_STRING us;
    WCHAR buf[ATOM_MAX_CHARS + 1];
} boxed_name;

/* prefix + name; FALSE if the result would be longer than an atom may be. */
static BOOL make_boxed(const WCHAR *name, size_t n, boxed_name *out)
{
    if (PREFIX_CHARS + n > ATOM_MAX_CHARS)
        return FALSE;
    memcpy(out->buf, g_prefix, PREFIX_CHARS * sizeof(WCHAR));
    if (n)
        memcpy(out->buf + PREFIX_CHARS, name, n * sizeof(WCHAR));
    out->buf[PREFIX_CHARS + n] = 0;
    out->us.Buffer = out->buf;
    out->us.Length = (USHORT)((PREFIX_CHARS + n) * sizeof(WCHAR));
    out->us.MaximumLength = (USHORT)sizeof out->buf;
    return TRUE;
}

/* The box's name of a class: the prefix after any version part. */
static BOOL box_class_name(const WCHAR *name, size_t n, boxed_name *out)
{
    size_t v = version_chars(name, n);
    if (!make_boxed(name + v, n - v, out))
        return FALSE;
    if (v) {
        if (PREFIX_CHARS + n > ATOM_MAX_CHARS)
            return FALSE;
        memmove(out->buf + v, out->buf, (PREFIX_CHARS + n - v + 1) * sizeof(WCHAR));
        memcpy(out->buf, name, v * sizeof(WCHAR));
        out->us.Length = (USHORT)((PREFIX_CHARS + n) * sizeof(WCHAR));
    }
    return TRUE;
}

/* name_kind of a class name, after its version part. */
static int class_name_kind(const WCHAR *s, size_t n)
{
    size_t v = version_chars(s, n);
    return name_kind(s + v, n - v);
}

/* ---- policy ---------------------------------------------------------------- */

/* The policy's action for "class:NAME"; audited when op is given and the
 * rule asks for it. */
static policy_action class_decision(const WCHAR *name, size_t n, const char *op)
{
    uint16_t buf[6 + ATOM_MAX_CHARS + 1];
    static const WCHAR head[] = L"class:";
    if (n > ATOM_MAX_CHARS)
        n = ATOM_MAX_CHARS;
    memcpy(buf, head, 6 * sizeof(WCHAR));
    memcpy(buf + 6, name, n * sizeof(WCHAR));
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_OBJECT, buf, 6 + n, &d);
    if (op)
        runtime_audit(POLICY_TYPE_OBJECT, op, &d, buf, 6 + n);
    return action;
}

static BOOL host_visible(policy_action a)
{
    return a == POLICY_ACTION_OPEN || a == POLICY_ACTION_READ;
}

static BOOL refused(policy_action a)
{
    return a == POLICY_ACTION_HIDE || a == POLICY_ACTION_DENY;
}

/* ---- the classes this process registered under the prefix ----------------- */

/* CreateWindowEx("Name") must use the box's class when the process
 * registered one and the system class otherwise. Classes are per process,
 * so a per-process set of name hashes answers that; a hash collision only
 * costs one failed create that is then retried with the plain name. */
#define CLASS_SET_SIZE 1024
static uint64_t g_class_hash[CLASS_SET_SIZE];
static LONG g_class_refs[CLASS_SET_SIZE];
static SRWLOCK g_class_lock = SRWLOCK_INIT;

static uint64_t name_hash(const WCHAR *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint16_t)fvm_wupcase(s[i]);
        h *= 0x100000001b3ull;
    }
    return h | 1;   /* 0 marks an empty slot */
}

static void class_set_change(const WCHAR *s, size_t n, LONG delta)
{
    uint64_t h = name_hash(s, n);
    AcquireSRWLockExclusive(&g_class_lock);
    size_t free_slot = CLASS_SET_SIZE;
    for (size_t i = 0, at = h % CLASS_SET_SIZE; i < CLASS_SET_SIZE; i++, at = (at + 1) % CLASS_SET_SIZE) {
        if (g_class_hash[at] == h) {
            g_class_refs[at] += delta;
            if (g_class_refs[at] < 0)
                g_class_refs[at] = 0;
            free_slot = CLASS_SET_SIZE;
            goto done;
        }
        if (!g_class_hash[at]) {
            if (free_slot == CLASS_SET_SIZE)
                free_slot = at;
            break;
        }
    }
    if (delta > 0 && free_slot < CLASS_SET_SIZE) {
        g_class_hash[free_slot] = h;
        g_class_refs[free_slot] = delta;
    }
done:
    ReleaseSRWLockExclusive(&g_class_lock);
}

static BOOL class_set_has(const WCHAR *s, size_t n)
{
    uint64_t h = name_hash(s, n);
    BOOL found = FALSE;
    AcquireSRWLockShared(&g_class_lock);
    for (size_t i = 0, at = h % CLASS_SET_SIZE; i < CLASS_SET_SIZE && g_class_hash[at];
         i++, at = (at + 1) % CLASS_SET_SIZE) {
        if (g_class_hash[at] == h) {
            found = g_class_refs[at] > 0;
            break;
        }
    }
    ReleaseSRWLockShared(&g_class_lock);
    return found;
}

/* ---- which windows a boxed program may see --------------------------------- */

typedef NTSTATUS (NTAPI *NtQueryInformationAtom_fn)(USHORT atom, ULONG cls, void *buf, ULONG len, ULONG *ret);
static NtQueryInformationAtom_fn real_NtQueryInformationAtom;

typedef struct atom_basic_info {
    USHORT ReferenceCount;
    USHORT Pinned;
    USHORT NameLength;   /* bytes */
    WCHAR Name[ATOM_MAX_CHARS + 1];
} atom_basic_info;
#define ATOM_INFO_HEADER 6   /* offset of Name */

typedef DWORD (WINAPI *GetWindowThreadProcessId_fn)(HWND, DWORD *);
typedef DWORD (WINAPI *GetClassLongW_fn)(HWND, int);
static GetWindowThreadProcessId_fn p_GetWindowThreadProcessId;
static GetClassLongW_fn p_GetClassLongW;

static BOOL user32_ready(void)
{
    if (p_GetWindowThreadProcessId && p_GetClassLongW)
        return TRUE;
    HMODULE user32 = runtime_loaded_module("user32.dll");
    if (!user32)
        return FALSE;
    p_GetClassLongW = (GetClassLongW_fn)(void *)GetProcAddress(user32, "GetClassLongW");
    p_GetWindowThreadProcessId =
        (GetWindowThreadProcessId_fn)(void *)GetProcAddress(user32, "GetWindowThreadProcessId");
    return p_GetWindowThreadProcessId && p_GetClassLongW;
}

/* The class's registered name (prefix included): its atom's name. */
static size_t window_class_name(HWND hwnd, atom_basic_info *info)
{
    USHORT atom = (USHORT)p_GetClassLongW(hwnd, GCW_ATOM);
    if (!atom || !real_NtQueryInformationAtom)
        return 0;
    if (real_NtQueryInformationAtom(atom, 0, info, sizeof *info - sizeof(WCHAR), NULL) < 0)
        return 0;
    size_t n = info->NameLength / sizeof(WCHAR);
    return n > ATOM_MAX_CHARS ? ATOM_MAX_CHARS : n;
}

/* Box membership of processes, remembered for one call (one enumeration or
 * one FindWindow): pids are reused, so nothing is kept longer. */
typedef struct pid_cache {
    DWORD pid[32];
    BOOL in_box[32];
    unsigned count;
} pid_cache;

static BOOL process_in_box(DWORD pid, pid_cache *cache)
{
    if (pid == GetCurrentProcessId())
        return TRUE;
    for (unsigned i = 0; i < cache->count; i++)
        if (cache->pid[i] == pid)
            return cache->in_box[i];
    BOOL in = FALSE;
    HANDLE job = runtime_box_job();
    /* Wine's server asks for PROCESS_QUERY_INFORMATION in IsProcessInJob
     * (NtIsProcessInJob); the limited right is refused there. */
    HANDLE process = job ? OpenProcess(PROCESS_QUERY_INFORMATION, FALSE, pid) : NULL;
    if (process) {
        if (!IsProcessInJob(process, job, &in))
            in = FALSE;
        CloseHandle(process);
    }
    if (cache->count < 32) {
        cache->pid[cache->count] = pid;
        cache->in_box[cache->count++] = in;
    }
    return in;
}

static BOOL window_visible_to_box(HWND hwnd, pid_cache *cache)
{
    if (!user32_ready())
        return FALSE;
    DWORD pid = 0;
    p_GetWindowThreadProcessId(hwnd, &pid);
    if (!pid)
        return FALSE;
    if (pid == GetCurrentProcessId())
        return TRUE;
    atom_basic_info info;
    size_t n = window_class_name(hwnd, &info);
    int kind = n ? class_name_kind(info.Name, n) : NAME_PLAIN;
    if (kind != NAME_PLAIN)
        return kind == NAME_OURS;
    if (process_in_box(pid, cache))
        return TRUE;
    return n && host_visible(class_decision(info.Name, n, NULL));
}

/* The question costs server calls that set LastError (OpenProcess of a
 * process that has gone...); the program's hooked call must not see that. */
static BOOL window_visible(HWND hwnd, pid_cache *cache)
{
    DWORD error = GetLastError();
    BOOL visible = window_visible_to_box(hwnd, cache);
    SetLastError(error);
    return visible;
}

/* For desktop.c: whether the box may act on a window (send it messages,
 * move it, read its title), and whether a process is one of the box's. */
BOOL gui_window_in_box(HWND hwnd)
{
    pid_cache cache = {.count = 0};
    return window_visible(hwnd, &cache);
}

BOOL gui_process_in_box(DWORD pid)
{
    pid_cache cache = {.count = 0};
    return pid && process_in_box(pid, &cache);
}

/* ---- the win32u hooks ------------------------------------------------------ */

typedef ATOM (WINAPI *NtUserRegisterClassExWOW_fn)(const WNDCLASSEXW *wc, UNICODE_STRING *name,
                                                  UNICODE_STRING *version, void *menu_name, DWORD fnid,
                                                  DWORD flags, DWORD *wow);
typedef HWND (WINAPI *NtUserCreateWindowEx_fn)(DWORD ex_style, UNICODE_STRING *class_name, UNICODE_STRING *version,
                                              UNICODE_STRING *window_name, DWORD style, INT x, INT y, INT cx,
                                              INT cy, HWND parent, HMENU menu, HINSTANCE instance, void *params,
                                              DWORD flags, HINSTANCE client_instance, DWORD unk, BOOL ansi);
typedef HWND (WINAPI *NtUserFindWindowEx_fn)(HWND parent, HWND after, UNICODE_STRING *class_name,
                                            UNICODE_STRING *title, DWORD unk);
typedef NTSTATUS (WINAPI *NtUserBuildHwndList_fn)(HDESK desktop, ULONG_PTR a2, ULONG_PTR a3, ULONG_PTR a4,
                                                 ULONG thread_id, ULONG count, HWND *buffer, ULONG *size);
typedef ATOM (WINAPI *NtUserGetClassInfoEx_fn)(HINSTANCE instance, UNICODE_STRING *name, WNDCLASSEXW *wc,
                                              void *menu_name, BOOL ansi);
typedef BOOL (WINAPI *NtUserUnregisterClass_fn)(UNICODE_STRING *name, HINSTANCE instance, void *menu_name);

static NtUserRegisterClassExWOW_fn real_NtUserRegisterClassExWOW;
static NtUserCreateWindowEx_fn real_NtUserCreateWindowEx;
static NtUserFindWindowEx_fn real_NtUserFindWindowEx;
static NtUserBuildHwndList_fn real_NtUserBuildHwndList;
static NtUserGetClassInfoEx_fn real_NtUserGetClassInfoEx;
static NtUserUnregisterClass_fn real_NtUserUnregisterClass;

static ATOM WINAPI box_NtUserRegisterClassExWOW(const WNDCLASSEXW *wc, UNICODE_STRING *name, UNICODE_STRING *version,
                                      void *menu_name, DWORD fnid, DWORD flags, DWORD *wow)
{
    if (fnid || !is_string_name(name))
        return real_NtUserRegisterClassExWOW(wc, name, version, menu_name, fnid, flags, wow);
    /* The policy decides on the name without its activation-context part. */
    size_t n = name->Length / 2;
    size_t v = version_chars(name->Buffer, n);
    policy_action action = class_decision(name->Buffer + v, n - v, "create");
    if (refused(action)) {
        SetLastError(ERROR_ACCESS_DENIED);
        return 0;
    }
    if (action == POLICY_ACTION_OPEN)
        return real_NtUserRegisterClassExWOW(wc, name, version, menu_name, fnid, flags, wow);
    boxed_name boxed;
    if (!box_class_name(name->Buffer, n, &boxed)) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return 0;
    }
    /* The version part keeps its length, so the class's base name (what
     * FindWindow matches and GetClassName reports) is the prefixed name: a
     * FindWindow("Name") outside the box does not match it. */
    ATOM atom = real_NtUserRegisterClassExWOW(wc, &boxed.us, version, menu_name, fnid, flags, wow);
    if (atom)
        class_set_change(name->Buffer, n, +1);
    return atom;
}

static HWND WINAPI box_NtUserCreateWindowEx(DWORD ex_style, UNICODE_STRING *class_name, UNICODE_STRING *version,
                                       UNICODE_STRING *window_name, DWORD style, INT x, INT y, INT cx, INT cy,
                                       HWND parent, HMENU menu, HINSTANCE instance, void *params, DWORD flags,
                                       HINSTANCE client_instance, DWORD unk, BOOL ansi)
{
    boxed_name boxed;
    if (is_string_name(class_name) && class_set_has(class_name->Buffer, class_name->Length / 2) &&
        box_class_name(class_name->Buffer, class_name->Length / 2, &boxed)) {
        HWND hwnd = real_NtUserCreateWindowEx(ex_style, &boxed.us, version, window_name, style, x, y, cx, cy, parent,
                                        menu, instance, params, flags, client_instance, unk, ansi);
        if (hwnd || GetLastError() != ERROR_CANNOT_FIND_WND_CLASS) {
            if (hwnd)
                title_window_created(hwnd);
            return hwnd;
        }
    }
    HWND hwnd = real_NtUserCreateWindowEx(ex_style, class_name, version, window_name, style, x, y, cx, cy, parent, menu,
                                    instance, params, flags, client_instance, unk, ansi);
    if (hwnd)
        title_window_created(hwnd);
    return hwnd;
}

static HWND WINAPI box_NtUserFindWindowEx(HWND parent, HWND after, UNICODE_STRING *class_name, UNICODE_STRING *title,
                                     DWORD unk)
{
    pid_cache cache;
    cache.count = 0;
    if (is_string_name(class_name)) {
        size_t n = class_name->Length / 2;
        policy_action action = class_decision(class_name->Buffer, n, "open");
        if (refused(action))
            return NULL;
        if (host_visible(action))
            return real_NtUserFindWindowEx(parent, after, class_name, title, unk);
        /* The box's own class first (windows of every process of the box),
         * then windows of the plain class that belong to the box. */
        boxed_name boxed;
        if (box_class_name(class_name->Buffer, n, &boxed)) {
            atom_basic_info info;
            size_t an = after && user32_ready() ? window_class_name(after, &info) : 0;
            if (!after || (an && class_name_kind(info.Name, an) == NAME_OURS)) {
                HWND hwnd = real_NtUserFindWindowEx(parent, after, &boxed.us, title, unk);
                if (hwnd)
                    return hwnd;
                after = NULL;
            }
        }
    }
    for (;;) {
        HWND hwnd = real_NtUserFindWindowEx(parent, after, class_name, title, unk);
        if (!hwnd || window_visible(hwnd, &cache))
            return hwnd;
        after = hwnd;
    }
}

static NTSTATUS WINAPI box_NtUserBuildHwndList(HDESK desktop, ULONG_PTR a2, ULONG_PTR a3, ULONG_PTR a4, ULONG thread_id,
                                          ULONG count, HWND *buffer, ULONG *size)
{
    NTSTATUS status = real_NtUserBuildHwndList(desktop, a2, a3, a4, thread_id, count, buffer, size);
    if (status != STATUS_SUCCESS || !buffer || !size || *size > count)
        return status;
    pid_cache cache;
    cache.count = 0;
    ULONG kept = 0;
    for (ULONG i = 0; i < *size; i++) {
        HWND hwnd = buffer[i];
        /* Wine ends the list with HWND_BOTTOM; Windows does not. */
        if ((hwnd == WINE_HWND_BOTTOM && i + 1 == *size) || window_visible(hwnd, &cache))
            buffer[kept++] = hwnd;
    }
    *size = kept;
    return status;
}

static ATOM WINAPI box_NtUserGetClassInfoEx(HINSTANCE instance, UNICODE_STRING *name, WNDCLASSEXW *wc, void *menu_name,
                                       BOOL ansi)
{
    boxed_name boxed;
    if (is_string_name(name) && class_set_has(name->Buffer, name->Length / 2) &&
        box_class_name(name->Buffer, name->Length / 2, &boxed)) {
        ATOM atom = real_NtUserGetClassInfoEx(instance, &boxed.us, wc, menu_name, ansi);
        if (atom) {
            if (wc)
                wc->lpszClassName = name->Buffer;   /* not our temporary buffer */
            return atom;
        }
    }
    return real_NtUserGetClassInfoEx(instance, name, wc, menu_name, ansi);
}

static BOOL WINAPI box_NtUserUnregisterClass(UNICODE_STRING *name, HINSTANCE instance, void *menu_name)
{
    boxed_name boxed;
    if (is_string_name(name) && class_set_has(name->Buffer, name->Length / 2) &&
        box_class_name(name->Buffer, name->Length / 2, &boxed) && real_NtUserUnregisterClass(&boxed.us, instance, menu_name)) {
        class_set_change(name->Buffer, name->Length / 2, -1);
        return TRUE;
    }
    return real_NtUserUnregisterClass(name, instance, menu_name);
}

typedef INT (WINAPI *NtUserGetClassName_fn)(HWND hwnd, BOOL real, UNICODE_STRING *name);
static NtUserGetClassName_fn real_NtUserGetClassName;

/* GetClassName and RealGetWindowClass: the name the program registered. */
static INT WINAPI box_NtUserGetClassName(HWND hwnd, BOOL real, UNICODE_STRING *name)
{
    WCHAR buf[ATOM_MAX_CHARS + 1];
    UNICODE_STRING mine = {0, sizeof buf, buf};
    INT n = real_NtUserGetClassName(hwnd, real, &mine);
    if (n <= 0 || n > ATOM_MAX_CHARS || !name || !name->Buffer)
        return real_NtUserGetClassName(hwnd, real, name);
    size_t v = version_chars(buf, (size_t)n);
    if (name_kind(buf + v, (size_t)n - v) != NAME_OURS)
        return real_NtUserGetClassName(hwnd, real, name);
    if (name->MaximumLength <= sizeof(WCHAR)) {
        SetLastError(ERROR_INSUFFICIENT_BUFFER);
        return 0;
    }
    memmove(buf + v, buf + v + PREFIX_CHARS, ((size_t)n - v - PREFIX_CHARS) * sizeof(WCHAR));
    size_t len = (size_t)n - PREFIX_CHARS, room = name->MaximumLength / sizeof(WCHAR) - 1;
    if (len > room)
        len = room;
    memcpy(name->Buffer, buf, len * sizeof(WCHAR));
    name->Buffer[len] = 0;
    return (INT)len;
}

/* EnumWindows and its relatives. On Windows they build their list with
 * NtUserBuildHwndList (filtered above); Wine 8's user32 asks the server
 * directly, so the user32 functions are hooked too: the program's callback
 * is called only for windows the box may see. */
typedef struct enum_filter {
    WNDENUMPROC callback;
    LPARAM param;
    pid_cache cache;
} enum_filter;

static BOOL CALLBACK filtered_callback(HWND hwnd, LPARAM param)
{
    enum_filter *f = (enum_filter *)param;
    if (!window_visible(hwnd, &f->cache))
        return TRUE;
    return f->callback(hwnd, f->param);
}

typedef BOOL (WINAPI *EnumWindows_fn)(WNDENUMPROC callback, LPARAM param);
typedef BOOL (WINAPI *EnumChildWindows_fn)(HWND parent, WNDENUMPROC callback, LPARAM param);
typedef BOOL (WINAPI *EnumThreadWindows_fn)(DWORD thread, WNDENUMPROC callback, LPARAM param);
typedef BOOL (WINAPI *EnumDesktopWindows_fn)(HDESK desktop, WNDENUMPROC callback, LPARAM param);
static EnumWindows_fn real_EnumWindows;
static EnumChildWindows_fn real_EnumChildWindows;
static EnumThreadWindows_fn real_EnumThreadWindows;
static EnumDesktopWindows_fn real_EnumDesktopWindows;

static BOOL WINAPI box_EnumWindows(WNDENUMPROC callback, LPARAM param)
{
    enum_filter f = {callback, param, {{0}, {0}, 0}};
    return callback ? real_EnumWindows(filtered_callback, (LPARAM)&f) : real_EnumWindows(callback, param);
}

static BOOL WINAPI box_EnumChildWindows(HWND parent, WNDENUMPROC callback, LPARAM param)
{
    enum_filter f = {callback, param, {{0}, {0}, 0}};
    return callback ? real_EnumChildWindows(parent, filtered_callback, (LPARAM)&f)
                    : real_EnumChildWindows(parent, callback, param);
}

static BOOL WINAPI box_EnumThreadWindows(DWORD thread, WNDENUMPROC callback, LPARAM param)
{
    enum_filter f = {callback, param, {{0}, {0}, 0}};
    return callback ? real_EnumThreadWindows(thread, filtered_callback, (LPARAM)&f)
                    : real_EnumThreadWindows(thread, callback, param);
}

static BOOL WINAPI box_EnumDesktopWindows(HDESK desktop, WNDENUMPROC callback, LPARAM param)
{
    enum_filter f = {callback, param, {{0}, {0}, 0}};
    return callback ? real_EnumDesktopWindows(desktop, filtered_callback, (LPARAM)&f)
                    : real_EnumDesktopWindows(desktop, callback, param);
}

/* GetWindow and GetTopWindow: a walk over the z-order steps over windows
 * the box may not see. Wine routes both through NtUserCallHwndParam, a
 * call shared by many unrelated functions, so the user32 functions are
 * hooked. */
typedef HWND (WINAPI *GetWindow_fn)(HWND hwnd, UINT cmd);
typedef HWND (WINAPI *GetTopWindow_fn)(HWND hwnd);
static GetWindow_fn real_GetWindow;
static GetTopWindow_fn real_GetTopWindow;

static HWND skip_invisible(HWND hwnd, UINT step)
{
    pid_cache cache;
    cache.count = 0;
    for (unsigned i = 0; hwnd && i < 65536 && !window_visible(hwnd, &cache); i++)
        hwnd = real_GetWindow(hwnd, step);
    return hwnd;
}

static HWND WINAPI box_GetWindow(HWND hwnd, UINT cmd)
{
    HWND found = real_GetWindow(hwnd, cmd);
    switch (cmd) {
    case GW_HWNDFIRST:
    case GW_HWNDNEXT:
    case GW_CHILD:
        return skip_invisible(found, GW_HWNDNEXT);
    case GW_HWNDLAST:
    case GW_HWNDPREV:
        return skip_invisible(found, GW_HWNDPREV);
    default:
        return found;
    }
}

static HWND WINAPI box_GetTopWindow(HWND hwnd)
{
    return skip_invisible(real_GetTopWindow(hwnd), GW_HWNDNEXT);
}

/* ---- the ntdll atom hooks -------------------------------------------------- */

typedef NTSTATUS (NTAPI *NtAddAtom_fn)(const WCHAR *name, ULONG length, USHORT *atom);
typedef NTSTATUS (NTAPI *NtAddAtomEx_fn)(const WCHAR *name, ULONG length, USHORT *atom, ULONG flags);
static NtAddAtom_fn real_NtAddAtom, real_NtFindAtom;
static NtAddAtomEx_fn real_NtAddAtomEx;

/* Decides on an atom name and gives the name to use: the prefixed one
 * (cow), the plain one (open, STATUS_SUCCESS with *use = NULL) or a status
 * that refuses the call. */
static NTSTATUS atom_name(const WCHAR *name, ULONG length, const char *op, boxed_name *boxed, BOOL *use_boxed)
{
    *use_boxed = FALSE;
    size_t n = length / sizeof(WCHAR);
    if (!name || !n || length % sizeof(WCHAR) || n > ATOM_MAX_CHARS || is_integral_name(name, n))
        return STATUS_SUCCESS;
    policy_action action = class_decision(name, n, op);
    if (refused(action))
        return op[0] == 'c' || action == POLICY_ACTION_DENY ? STATUS_ACCESS_DENIED : STATUS_OBJECT_NAME_NOT_FOUND;
    if (action == POLICY_ACTION_OPEN)
        return STATUS_SUCCESS;
    if (!make_boxed(name, n, boxed))
        return STATUS_INVALID_PARAMETER;
    *use_boxed = TRUE;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI box_NtAddAtom(const WCHAR *name, ULONG length, USHORT *atom)
{
    boxed_name boxed;
    BOOL use;
    NTSTATUS status = atom_name(name, length, "create", &boxed, &use);
    if (status < 0)
        return status;
    return use ? real_NtAddAtom(boxed.buf, boxed.us.Length, atom) : real_NtAddAtom(name, length, atom);
}

static NTSTATUS NTAPI box_NtAddAtomEx(const WCHAR *name, ULONG length, USHORT *atom, ULONG flags)
{
    boxed_name boxed;
    BOOL use;
    NTSTATUS status = atom_name(name, length, "create", &boxed, &use);
    if (status < 0)
        return status;
    return use ? real_NtAddAtomEx(boxed.buf, boxed.us.Length, atom, flags) : real_NtAddAtomEx(name, length, atom, flags);
}

static NTSTATUS NTAPI box_NtFindAtom(const WCHAR *name, ULONG length, USHORT *atom)
{
    boxed_name boxed;
    BOOL use;
    NTSTATUS status = atom_name(name, length, "open", &boxed, &use);
    if (status < 0)
        return status;
    return use ? real_NtFindAtom(boxed.buf, boxed.us.Length, atom) : real_NtFindAtom(name, length, atom);
}

/* AtomBasicInformation of a prefixed atom: the name without the prefix. */
static NTSTATUS NTAPI box_NtQueryInformationAtom(USHORT atom, ULONG cls, void *buf, ULONG len, ULONG *ret)
{
    if (cls != 0 || atom < MAXINTATOM)
        return real_NtQueryInformationAtom(atom, cls, buf, len, ret);
    atom_basic_info mine;
    if (real_NtQueryInformationAtom(atom, 0, &mine, sizeof mine - sizeof(WCHAR), NULL) < 0)
        return real_NtQueryInformationAtom(atom, cls, buf, len, ret);
    size_t n = mine.NameLength / sizeof(WCHAR);
    int kind = name_kind(mine.Name, n > ATOM_MAX_CHARS ? ATOM_MAX_CHARS : n);
    if (kind == NAME_PLAIN)
        return real_NtQueryInformationAtom(atom, cls, buf, len, ret);
    if (kind == NAME_OTHER_BOX)
        return STATUS_INVALID_HANDLE;
    if (!buf || len < ATOM_INFO_HEADER)
        return STATUS_INVALID_PARAMETER;
    atom_basic_info *out = buf;
    ULONG name_bytes = (ULONG)((n - PREFIX_CHARS) * sizeof(WCHAR));
    ULONG room = len - ATOM_INFO_HEADER;
    out->ReferenceCount = mine.ReferenceCount;
    out->Pinned = mine.Pinned;
    out->NameLength = (USHORT)name_bytes;
    memmove(out->Name, mine.Name + PREFIX_CHARS, name_bytes < room ? name_bytes : room);
    if (ret)
        *ret = ATOM_INFO_HEADER + name_bytes + sizeof(WCHAR);
    if (room < name_bytes + sizeof(WCHAR))
        return STATUS_BUFFER_TOO_SMALL;
    out->Name[name_bytes / sizeof(WCHAR)] = 0;
    return STATUS_SUCCESS;
}

/* ---- installation ---------------------------------------------------------- */

static void add_win32u_hooks(hook_table *table)
{
    FVM_HOOK(table, "win32u.dll", NtUserRegisterClassExWOW);
    FVM_HOOK(table, "win32u.dll", NtUserCreateWindowEx);
    FVM_HOOK(table, "win32u.dll", NtUserFindWindowEx);
    FVM_HOOK(table, "win32u.dll", NtUserBuildHwndList);
    FVM_HOOK(table, "win32u.dll", NtUserGetClassInfoEx);
    FVM_HOOK(table, "win32u.dll", NtUserUnregisterClass);
    FVM_HOOK(table, "win32u.dll", NtUserGetClassName);
}

static void add_user32_hooks(hook_table *table)
{
    FVM_HOOK(table, "user32.dll", EnumWindows);
    FVM_HOOK(table, "user32.dll", EnumChildWindows);
    FVM_HOOK(table, "user32.dll", EnumThreadWindows);
    FVM_HOOK(table, "user32.dll", EnumDesktopWindows);
    FVM_HOOK(table, "user32.dll", GetWindow);
    FVM_HOOK(table, "user32.dll", GetTopWindow);
}

static void gui_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtAddAtom);
    FVM_HOOK(table, "ntdll.dll", NtFindAtom);
    FVM_HOOK(table, "ntdll.dll", NtQueryInformationAtom);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtAddAtomEx);
}

static BOOL gui_start(void)
{
    make_prefix();
    return TRUE;
}

/* win32u.dll and user32.dll are loaded only by programs that use windows. */
static late_hooks g_late[] = {
    {"win32u.dll", add_win32u_hooks, 0},
    {"user32.dll", add_user32_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer window_virtualizer = {
    .name = "windows",
    .policy = POLICY_TYPE_OBJECT,
    .start = gui_start,
    .hooks = gui_hooks,
    .late = g_late,
};
