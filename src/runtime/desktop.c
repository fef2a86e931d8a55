/* desktop.c - the box's reach into other programs' windows, input and clipboard.
 *
 * gui.c keeps the box from *finding* host windows by name; this file keeps it
 * from *acting* on a window it got some other way: GetForegroundWindow,
 * WindowFromPoint, a handle guessed by brute force or read from a file.
 * The idea: a window handle is a capability the box may use only for its own
 * windows (gui.c's window_in_box: a window of a box process or of a class the
 * policy opens, such as the tray). Everything that reaches another program
 * through the window manager is decided against that test:
 *
 * - messages: SendMessage*, SendNotifyMessage, SendMessageCallback (all one
 *   NtUserMessageCall of a "send" type), PostMessage and PostThreadMessage to
 *   a window or thread outside the box are refused (so no WM_CLOSE, WM_CHAR,
 *   WM_SETTEXT or WM_GETTEXT across the boundary). Broadcasts (HWND_BROADCAST)
 *   carry only registered messages (0xC000 and above: "TaskbarCreated" and
 *   the like), never system ones;
 * - window state: SetWindowPos, ShowWindow(Async), SetWindowLong(Ptr) of a
 *   foreign window are refused; its title reads as empty
 *   (NtUserInternalGetWindowText, which GetWindowText uses for other
 *   processes' windows);
 * - discovery: GetForegroundWindow and WindowFromPoint answer NULL when the
 *   window is not the box's;
 * - input: SendInput (and keybd_event / mouse_event, which call it) is
 *   refused unless the foreground window is the box's: synthesized input goes
 *   to whatever has the focus;
 * - hooks: SetWindowsHookEx for a thread outside the box, or global (thread
 *   0: every low-level and journal hook) is refused, so a box sees neither
 *   the host's keystrokes nor injects code into host GUI threads;
 * - clipboard: GetClipboardData answers NULL (an empty clipboard) when the
 *   data was put there by a program outside the box, unless [desktop]
 *   `open clipboard-in` says so (clipboard.c keeps the box's own writes
 *   off the desktop's clipboard; this is the floor under its reads).
 *
 * Every refusal is audited (type object, name "window:<class>" or
 * "desktop:<what>"), and the caller gets what Windows gives a low-integrity
 * process against a higher one (UIPI): failure with ERROR_ACCESS_DENIED.
 *
 * Where: the win32u NtUser* stubs (one syscall stub each on Wine 8), hooked
 * as a late group when win32u loads (or at start-up if it is loaded).
 *
 * Not covered here (docs/design.md): the box's own clipboard (clipboard.c),
 * screen capture (screen.c), and everything that bypasses win32u (a raw X11
 * connection to the display: the containment floor's business). */
#include "runtime/runtime.h"

/* Wine's NtUserMessageCall codes for messages sent to a window (include/ntuser.h;
 * the same values on Windows). */
#define MSGCALL_SEND_MESSAGE          0x02b1
#define MSGCALL_SEND_MESSAGE_TIMEOUT  0x02b3
#define MSGCALL_SEND_NOTIFY_MESSAGE   0x02b7
#define MSGCALL_SEND_MESSAGE_CALLBACK 0x02b8
#define FIRST_REGISTERED_MESSAGE      0xC000

typedef HWND (WINAPI *NtUserGetForegroundWindow_fn)(void);
typedef HWND (WINAPI *NtUserWindowFromPoint_fn)(LONG x, LONG y);
typedef UINT (WINAPI *NtUserSendInput_fn)(UINT count, INPUT *inputs, int size);
typedef HHOOK (WINAPI *NtUserSetWindowsHookEx_fn)(HINSTANCE inst, UNICODE_STRING *module, DWORD tid, INT id,
                                                  HOOKPROC proc, BOOL ansi);
typedef LRESULT (WINAPI *NtUserMessageCall_fn)(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam, void *result_info,
                                               DWORD type, BOOL ansi);
typedef BOOL (WINAPI *NtUserPostMessage_fn)(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam);
typedef BOOL (WINAPI *NtUserPostThreadMessage_fn)(DWORD thread, UINT msg, WPARAM wparam, LPARAM lparam);
typedef INT (WINAPI *NtUserInternalGetWindowText_fn)(HWND hwnd, WCHAR *text, INT count);
typedef BOOL (WINAPI *NtUserSetWindowPos_fn)(HWND hwnd, HWND after, INT x, INT y, INT cx, INT cy, UINT flags);
typedef BOOL (WINAPI *NtUserShowWindow_fn)(HWND hwnd, INT cmd);
typedef LONG_PTR (WINAPI *NtUserSetWindowLongPtr_fn)(HWND hwnd, INT offset, LONG_PTR value, BOOL ansi);
typedef LONG (WINAPI *NtUserSetWindowLong_fn)(HWND hwnd, INT offset, LONG value, BOOL ansi);
typedef HWND (WINAPI *NtUserGetClipboardOwner_fn)(void);
typedef HANDLE (WINAPI *NtUserGetClipboardData_fn)(UINT format, void *params);
typedef BOOL (WINAPI *NtUserEmptyClipboard_fn)(void);
typedef NTSTATUS (WINAPI *NtUserSetClipboardData_fn)(UINT format, HANDLE data, void *params);

static NtUserGetForegroundWindow_fn real_NtUserGetForegroundWindow;
static NtUserWindowFromPoint_fn real_NtUserWindowFromPoint;
static NtUserSendInput_fn real_NtUserSendInput;
static NtUserSetWindowsHookEx_fn real_NtUserSetWindowsHookEx;
static NtUserMessageCall_fn real_NtUserMessageCall;
static NtUserPostMessage_fn real_NtUserPostMessage;
static NtUserPostThreadMessage_fn real_NtUserPostThreadMessage;
static NtUserInternalGetWindowText_fn real_NtUserInternalGetWindowText;
static NtUserSetWindowPos_fn real_NtUserSetWindowPos;
static NtUserShowWindow_fn real_NtUserShowWindow, real_NtUserShowWindowAsync;
static NtUserSetWindowLongPtr_fn real_NtUserSetWindowLongPtr;
static NtUserSetWindowLong_fn real_NtUserSetWindowLong;
static NtUserGetClipboardOwner_fn p_GetClipboardOwner;
static NtUserGetClipboardData_fn real_NtUserGetClipboardData;
static NtUserEmptyClipboard_fn real_NtUserEmptyClipboard;
static NtUserSetClipboardData_fn real_NtUserSetClipboardData;

/* ---- refusals ------------------------------------------------------------- */

/* Audits a refusal (always: a box reaching out is worth a record) and sets
 * the last error the caller sees. */
static void refuse(const char *op, const wchar_t *what)
{
    policy_decision d = {.action = POLICY_ACTION_DENY, .audit = 1, .is_default = 1, .rule = POLICY_NO_RULE};
    runtime_audit(POLICY_TYPE_OBJECT, op, &d, (const uint16_t *)what, fvm_wcslen(what));
    SetLastError(ERROR_ACCESS_DENIED);
}

static void refuse_window(const char *op, HWND hwnd)
{
    wchar_t what[64];
    fvm_wcscpy(what, 64, L"window:");
    /* the handle, not the title: reading that is what is refused */
    static const char hex[] = "0123456789abcdef";
    size_t n = fvm_wcslen(what);
    ULONG_PTR h = (ULONG_PTR)hwnd;
    what[n++] = L'0';
    what[n++] = L'x';
    for (int shift = 28; shift >= 0; shift -= 4)
        what[n++] = (wchar_t)hex[(h >> shift) & 15];
    what[n] = 0;
    refuse(op, what);
}

/* The window is the box's to act on. NULL and HWND_BROADCAST are judged by
 * the callers. */
static BOOL ours(HWND hwnd)
{
    DWORD saved = GetLastError();
    BOOL in = gui_window_in_box(hwnd);
    SetLastError(saved);
    return in;
}

/* ---- hooks ----------------------------------------------------------------- */

static HWND WINAPI box_NtUserGetForegroundWindow(void)
{
    HWND hwnd = real_NtUserGetForegroundWindow();
    return hwnd && !ours(hwnd) ? NULL : hwnd;
}

static HWND WINAPI box_NtUserWindowFromPoint(LONG x, LONG y)
{
    HWND hwnd = real_NtUserWindowFromPoint(x, y);
    return hwnd && !ours(hwnd) ? NULL : hwnd;
}

static UINT WINAPI box_NtUserSendInput(UINT count, INPUT *inputs, int size)
{
    HWND target = real_NtUserGetForegroundWindow ? real_NtUserGetForegroundWindow() : NULL;
    if (!target || !ours(target)) {
        refuse("send-input", L"desktop:input");
        return 0;
    }
    return real_NtUserSendInput(count, inputs, size);
}

static BOOL thread_in_box(DWORD tid)
{
    if (!tid || tid == GetCurrentThreadId())
        return tid != 0;
    DWORD saved = GetLastError();
    BOOL in = FALSE;
    HANDLE thread = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, tid);
    if (thread) {
        in = gui_process_in_box(GetProcessIdOfThread(thread));
        CloseHandle(thread);
    }
    SetLastError(saved);
    return in;
}

static HHOOK WINAPI box_NtUserSetWindowsHookEx(HINSTANCE inst, UNICODE_STRING *module, DWORD tid, INT id, HOOKPROC proc,
                                          BOOL ansi)
{
    if (!thread_in_box(tid)) {
        refuse("set-hook", tid ? L"desktop:hook-thread" : L"desktop:hook-global");
        return NULL;
    }
    return real_NtUserSetWindowsHookEx(inst, module, tid, id, proc, ansi);
}

static BOOL sends_to_window(DWORD type)
{
    return type == MSGCALL_SEND_MESSAGE || type == MSGCALL_SEND_MESSAGE_TIMEOUT ||
           type == MSGCALL_SEND_NOTIFY_MESSAGE || type == MSGCALL_SEND_MESSAGE_CALLBACK;
}

/* Whether a message may go to hwnd: the box's windows take anything; a
 * broadcast only registered messages. */
static BOOL message_allowed(HWND hwnd, UINT msg)
{
    if (hwnd == HWND_BROADCAST || hwnd == (HWND)(ULONG_PTR)0xffffffff)
        return msg >= FIRST_REGISTERED_MESSAGE;
    return ours(hwnd);
}

static LRESULT WINAPI box_NtUserMessageCall(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam, void *result_info,
                                       DWORD type, BOOL ansi)
{
    if (sends_to_window(type) && hwnd && !message_allowed(hwnd, msg)) {
        refuse_window("send-message", hwnd);
        return 0;
    }
    return real_NtUserMessageCall(hwnd, msg, wparam, lparam, result_info, type, ansi);
}

static BOOL WINAPI box_NtUserPostMessage(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    /* A NULL window posts to the calling thread's own queue. */
    if (hwnd && !message_allowed(hwnd, msg)) {
        refuse_window("post-message", hwnd);
        return FALSE;
    }
    return real_NtUserPostMessage(hwnd, msg, wparam, lparam);
}

static BOOL WINAPI box_NtUserPostThreadMessage(DWORD thread, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (!thread_in_box(thread)) {
        refuse("post-message", L"desktop:thread");
        return FALSE;
    }
    return real_NtUserPostThreadMessage(thread, msg, wparam, lparam);
}

static INT WINAPI box_NtUserInternalGetWindowText(HWND hwnd, WCHAR *text, INT count)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("read-title", hwnd);
        if (text && count > 0)
            text[0] = 0;
        return 0;
    }
    return real_NtUserInternalGetWindowText(hwnd, text, count);
}

static BOOL WINAPI box_NtUserSetWindowPos(HWND hwnd, HWND after, INT x, INT y, INT cx, INT cy, UINT flags)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("move-window", hwnd);
        return FALSE;
    }
    return real_NtUserSetWindowPos(hwnd, after, x, y, cx, cy, flags);
}

static BOOL WINAPI box_NtUserShowWindow(HWND hwnd, INT cmd)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("show-window", hwnd);
        return FALSE;
    }
    return real_NtUserShowWindow(hwnd, cmd);
}

static BOOL WINAPI box_NtUserShowWindowAsync(HWND hwnd, INT cmd)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("show-window", hwnd);
        return FALSE;
    }
    return real_NtUserShowWindowAsync(hwnd, cmd);
}

static LONG_PTR WINAPI box_NtUserSetWindowLongPtr(HWND hwnd, INT offset, LONG_PTR value, BOOL ansi)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("set-window-long", hwnd);
        return 0;
    }
    return real_NtUserSetWindowLongPtr(hwnd, offset, value, ansi);
}

static LONG WINAPI box_NtUserSetWindowLong(HWND hwnd, INT offset, LONG value, BOOL ansi)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("set-window-long", hwnd);
        return 0;
    }
    return real_NtUserSetWindowLong(hwnd, offset, value, ansi);
}

static HANDLE WINAPI box_NtUserGetClipboardData(UINT format, void *params)
{
    HWND owner = p_GetClipboardOwner ? p_GetClipboardOwner() : NULL;
    if ((!owner || !ours(owner)) && !clipboard_host_readable()) {
        refuse("read-clipboard", L"desktop:clipboard");
        return NULL;
    }
    return real_NtUserGetClipboardData(format, params);
}

/* Writes that reach the desktop's clipboard. clipboard.c's user32 hooks never
 * call these when [desktop] clipboard-out is closed (the box's writes go to
 * its own store); a program calling win32u itself is refused here. Wine's
 * user32 also calls NtUserSetClipboardData to cache data it rendered for a
 * read (the `cache` member of its parameters, Wine's include/ntuser.h):
 * that is let through, since it replaces nothing newer than what is there. */
typedef struct wine_set_clipboard_params {
    void *data;
    size_t size;
    BOOL cache;
    UINT seqno;
} wine_set_clipboard_params;

static BOOL WINAPI box_NtUserEmptyClipboard(void)
{
    if (!clipboard_host_writable()) {
        refuse("write-clipboard", L"desktop:clipboard");
        return FALSE;
    }
    return real_NtUserEmptyClipboard();
}

static NTSTATUS WINAPI box_NtUserSetClipboardData(UINT format, HANDLE data, void *params)
{
    const wine_set_clipboard_params *p = params;
    if (!(p && p->cache) && !clipboard_host_writable()) {
        refuse("write-clipboard", L"desktop:clipboard");
        return STATUS_ACCESS_DENIED;
    }
    return real_NtUserSetClipboardData(format, data, params);
}

static void desktop_win32u_hooks(hook_table *table)
{
    HMODULE win32u = runtime_loaded_module("win32u.dll");
    p_GetClipboardOwner =
        win32u ? (NtUserGetClipboardOwner_fn)(void *)GetProcAddress(win32u, "NtUserGetClipboardOwner") : NULL;
    FVM_HOOK(table, "win32u.dll", NtUserGetForegroundWindow);
    FVM_HOOK(table, "win32u.dll", NtUserWindowFromPoint);
    FVM_HOOK(table, "win32u.dll", NtUserSendInput);
    FVM_HOOK(table, "win32u.dll", NtUserSetWindowsHookEx);
    FVM_HOOK(table, "win32u.dll", NtUserMessageCall);
    FVM_HOOK(table, "win32u.dll", NtUserPostMessage);
    FVM_HOOK(table, "win32u.dll", NtUserPostThreadMessage);
    FVM_HOOK(table, "win32u.dll", NtUserInternalGetWindowText);
    FVM_HOOK(table, "win32u.dll", NtUserSetWindowPos);
    FVM_HOOK(table, "win32u.dll", NtUserShowWindow);
    FVM_HOOK(table, "win32u.dll", NtUserShowWindowAsync);
    FVM_HOOK(table, "win32u.dll", NtUserSetWindowLongPtr);
    FVM_HOOK(table, "win32u.dll", NtUserSetWindowLong);
    FVM_HOOK(table, "win32u.dll", NtUserGetClipboardData);
    FVM_HOOK(table, "win32u.dll", NtUserEmptyClipboard);
    FVM_HOOK(table, "win32u.dll", NtUserSetClipboardData);
}

/* win32u.dll is loaded only by programs that use windows. */
static late_hooks g_late[] = {
    {"win32u.dll", desktop_win32u_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer desktop_virtualizer = {
    .name = "desktop",
    .policy = POLICY_TYPE_OBJECT,
    .late = g_late,
};
