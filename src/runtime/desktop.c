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
 *   data was put there by a program outside the box.
 *
 * Every refusal is audited (type object, name "window:<class>" or
 * "desktop:<what>"), and the caller gets what Windows gives a low-integrity
 * process against a higher one (UIPI): failure with ERROR_ACCESS_DENIED.
 *
 * Where: the win32u NtUser* stubs (one syscall stub each on Wine 8), hooked
 * with gui.c's win32u group, when win32u loads.
 *
 * Not covered here (docs/design.md): the host reading what a box puts on the
 * clipboard, screen capture, and everything that bypasses win32u (a raw X11
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

static NtUserGetForegroundWindow_fn real_GetForegroundWindow;
static NtUserWindowFromPoint_fn real_WindowFromPoint;
static NtUserSendInput_fn real_SendInput;
static NtUserSetWindowsHookEx_fn real_SetWindowsHookEx;
static NtUserMessageCall_fn real_MessageCall;
static NtUserPostMessage_fn real_PostMessage;
static NtUserPostThreadMessage_fn real_PostThreadMessage;
static NtUserInternalGetWindowText_fn real_InternalGetWindowText;
static NtUserSetWindowPos_fn real_SetWindowPos;
static NtUserShowWindow_fn real_ShowWindow, real_ShowWindowAsync;
static NtUserSetWindowLongPtr_fn real_SetWindowLongPtr;
static NtUserSetWindowLong_fn real_SetWindowLong;
static NtUserGetClipboardOwner_fn p_GetClipboardOwner;
static NtUserGetClipboardData_fn real_GetClipboardData;

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

static HWND WINAPI hook_GetForegroundWindow(void)
{
    HWND hwnd = real_GetForegroundWindow();
    return hwnd && !ours(hwnd) ? NULL : hwnd;
}

static HWND WINAPI hook_WindowFromPoint(LONG x, LONG y)
{
    HWND hwnd = real_WindowFromPoint(x, y);
    return hwnd && !ours(hwnd) ? NULL : hwnd;
}

static UINT WINAPI hook_SendInput(UINT count, INPUT *inputs, int size)
{
    HWND target = real_GetForegroundWindow ? real_GetForegroundWindow() : NULL;
    if (!target || !ours(target)) {
        refuse("send-input", L"desktop:input");
        return 0;
    }
    return real_SendInput(count, inputs, size);
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

static HHOOK WINAPI hook_SetWindowsHookEx(HINSTANCE inst, UNICODE_STRING *module, DWORD tid, INT id, HOOKPROC proc,
                                          BOOL ansi)
{
    if (!thread_in_box(tid)) {
        refuse("set-hook", tid ? L"desktop:hook-thread" : L"desktop:hook-global");
        return NULL;
    }
    return real_SetWindowsHookEx(inst, module, tid, id, proc, ansi);
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

static LRESULT WINAPI hook_MessageCall(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam, void *result_info,
                                       DWORD type, BOOL ansi)
{
    if (sends_to_window(type) && hwnd && !message_allowed(hwnd, msg)) {
        refuse_window("send-message", hwnd);
        return 0;
    }
    return real_MessageCall(hwnd, msg, wparam, lparam, result_info, type, ansi);
}

static BOOL WINAPI hook_PostMessage(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    /* A NULL window posts to the calling thread's own queue. */
    if (hwnd && !message_allowed(hwnd, msg)) {
        refuse_window("post-message", hwnd);
        return FALSE;
    }
    return real_PostMessage(hwnd, msg, wparam, lparam);
}

static BOOL WINAPI hook_PostThreadMessage(DWORD thread, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (!thread_in_box(thread)) {
        refuse("post-message", L"desktop:thread");
        return FALSE;
    }
    return real_PostThreadMessage(thread, msg, wparam, lparam);
}

static INT WINAPI hook_InternalGetWindowText(HWND hwnd, WCHAR *text, INT count)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("read-title", hwnd);
        if (text && count > 0)
            text[0] = 0;
        return 0;
    }
    return real_InternalGetWindowText(hwnd, text, count);
}

static BOOL WINAPI hook_SetWindowPos(HWND hwnd, HWND after, INT x, INT y, INT cx, INT cy, UINT flags)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("move-window", hwnd);
        return FALSE;
    }
    return real_SetWindowPos(hwnd, after, x, y, cx, cy, flags);
}

static BOOL WINAPI hook_ShowWindow(HWND hwnd, INT cmd)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("show-window", hwnd);
        return FALSE;
    }
    return real_ShowWindow(hwnd, cmd);
}

static BOOL WINAPI hook_ShowWindowAsync(HWND hwnd, INT cmd)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("show-window", hwnd);
        return FALSE;
    }
    return real_ShowWindowAsync(hwnd, cmd);
}

static LONG_PTR WINAPI hook_SetWindowLongPtr(HWND hwnd, INT offset, LONG_PTR value, BOOL ansi)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("set-window-long", hwnd);
        return 0;
    }
    return real_SetWindowLongPtr(hwnd, offset, value, ansi);
}

static LONG WINAPI hook_SetWindowLong(HWND hwnd, INT offset, LONG value, BOOL ansi)
{
    if (hwnd && !ours(hwnd)) {
        refuse_window("set-window-long", hwnd);
        return 0;
    }
    return real_SetWindowLong(hwnd, offset, value, ansi);
}

static HANDLE WINAPI hook_GetClipboardData(UINT format, void *params)
{
    HWND owner = p_GetClipboardOwner ? p_GetClipboardOwner() : NULL;
    if (!owner || !ours(owner)) {
        refuse("read-clipboard", L"desktop:clipboard");
        return NULL;
    }
    return real_GetClipboardData(format, params);
}

/* Called with gui.c's win32u group: at start-up when win32u is already
 * loaded, otherwise from the DLL notification. */
void desktop_win32u_hooks(hook_table *table)
{
    HMODULE win32u = runtime_loaded_module("win32u.dll");
    p_GetClipboardOwner = win32u ? (NtUserGetClipboardOwner_fn)(void *)GetProcAddress(win32u,
                                                                                       "NtUserGetClipboardOwner")
                                 : NULL;
#define ADD(name) hook_table_add(table, "win32u.dll", "NtUser" #name, (void *)hook_##name, (void **)&real_##name)
    ADD(GetForegroundWindow);
    ADD(WindowFromPoint);
    ADD(SendInput);
    ADD(SetWindowsHookEx);
    ADD(MessageCall);
    ADD(PostMessage);
    ADD(PostThreadMessage);
    ADD(InternalGetWindowText);
    ADD(SetWindowPos);
    ADD(ShowWindow);
    ADD(ShowWindowAsync);
    ADD(SetWindowLongPtr);
    ADD(SetWindowLong);
    ADD(GetClipboardData);
#undef ADD
}
