/* title.c - the box's name in its windows' title bars (show_box_in_title).
 *
 * With `show_box_in_title = yes` in the box's box.ini ([box] section), every
 * top-level window of the box that has a caption is titled "[#NAME] Title"
 * where the window manager, the host and other programs read it (the X11
 * window name on Wine, GetWindowText from another process), so a user can
 * tell a boxed window from a host window of the same program. The program
 * itself reads its own title back without the marker.
 *
 * The idea: the marked text is the window's real text (stored by the window
 * manager, which hands it to the display driver); reads from the box strip
 * the marker. Marking happens after CreateWindowEx (gui.c calls
 * title_window_created) and after SetWindowText, by calling DefWindowProc's
 * WM_SETTEXT directly: the text is stored and handed to the display driver
 * as for any title, and the program's window procedure sees no message.
 * (win32u's NtUserDefSetText would be the direct call; Wine 8 has it as an
 * unimplemented stub, measured.) GetWindowText(A/W) and
 * GetWindowTextLength(A/W) give the text without the marker.
 *
 * Limits: a WM_SETTEXT a program sends itself (not through SetWindowText)
 * leaves its title unmarked until the next SetWindowText; a WM_GETTEXT it
 * sends itself, and InternalGetWindowText, read the marked text. */
#include "runtime/runtime.h"

typedef LRESULT (WINAPI *DefWindowProcW_fn)(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp);
typedef INT (WINAPI *NtUserInternalGetWindowText_fn)(HWND hwnd, WCHAR *text, INT count);
typedef int (WINAPI *GetWindowTextW_fn)(HWND hwnd, WCHAR *text, int count);
typedef int (WINAPI *GetWindowTextA_fn)(HWND hwnd, char *text, int count);
typedef int (WINAPI *GetWindowTextLengthW_fn)(HWND hwnd);
typedef BOOL (WINAPI *SetWindowTextW_fn)(HWND hwnd, const WCHAR *text);
typedef BOOL (WINAPI *SetWindowTextA_fn)(HWND hwnd, const char *text);
typedef LONG (WINAPI *GetWindowLongW_fn)(HWND hwnd, int index);
typedef DWORD (WINAPI *GetWindowThreadProcessId_fn)(HWND, DWORD *);

static GetWindowTextW_fn real_GetWindowTextW;
static GetWindowTextA_fn real_GetWindowTextA;
static GetWindowTextLengthW_fn real_GetWindowTextLengthW, real_GetWindowTextLengthA;
static SetWindowTextW_fn real_SetWindowTextW;
static SetWindowTextA_fn real_SetWindowTextA;
static DefWindowProcW_fn p_DefWindowProcW;
static NtUserInternalGetWindowText_fn p_InternalGetWindowText;
static GetWindowLongW_fn p_GetWindowLongW;
static GetWindowThreadProcessId_fn p_GetWindowThreadProcessId;

#define MARK_MAX (FVM_BOX_NAME_MAX + 4)
#define TITLE_MAX 1024
static WCHAR g_mark[MARK_MAX];   /* "[#NAME] " */
static char g_mark_a[MARK_MAX * 3];
static size_t g_mark_len, g_mark_a_len;
static BOOL g_on;

static BOOL title_start(void)
{
    g_on = (g_fvm.config.flags & FVM_BOX_FLAG_SHOW_TITLE) != 0;
    if (!g_on)
        return TRUE;
    fvm_wcscpy(g_mark, MARK_MAX, L"[#");
    fvm_wcscat(g_mark, MARK_MAX, g_fvm.config.box_name);
    fvm_wcscat(g_mark, MARK_MAX, L"] ");
    g_mark_len = fvm_wcslen(g_mark);
    int n = WideCharToMultiByte(CP_ACP, 0, g_mark, (int)g_mark_len, g_mark_a, sizeof g_mark_a - 1, NULL, NULL);
    g_mark_a_len = n > 0 ? (size_t)n : 0;
    g_mark_a[g_mark_a_len] = 0;
    return TRUE;
}

static BOOL find_helpers(void)
{
    if (p_DefWindowProcW && p_GetWindowLongW)
        return TRUE;
    HMODULE win32u = runtime_loaded_module("win32u.dll"), user32 = runtime_loaded_module("user32.dll");
    if (!win32u || !user32)
        return FALSE;
    p_InternalGetWindowText =
        (NtUserInternalGetWindowText_fn)(void *)GetProcAddress(win32u, "NtUserInternalGetWindowText");
    p_GetWindowThreadProcessId =
        (GetWindowThreadProcessId_fn)(void *)GetProcAddress(user32, "GetWindowThreadProcessId");
    p_GetWindowLongW = (GetWindowLongW_fn)(void *)GetProcAddress(user32, "GetWindowLongW");
    p_DefWindowProcW = (DefWindowProcW_fn)(void *)GetProcAddress(user32, "DefWindowProcW");
    return p_DefWindowProcW && p_GetWindowLongW && p_InternalGetWindowText && p_GetWindowThreadProcessId;
}

/* A window of this process whose title the window manager shows. */
static BOOL markable(HWND hwnd)
{
    if (!g_on || !hwnd || !find_helpers())
        return FALSE;
    DWORD pid = 0;
    p_GetWindowThreadProcessId(hwnd, &pid);
    if (pid != GetCurrentProcessId())
        return FALSE;
    LONG style = p_GetWindowLongW(hwnd, GWL_STYLE);
    return !(style & WS_CHILD) && (style & WS_CAPTION) == WS_CAPTION;
}

static BOOL starts_marked(const WCHAR *text, size_t n)
{
    return n >= g_mark_len && memcmp(text, g_mark, g_mark_len * sizeof(WCHAR)) == 0;
}

/* Puts the marker in front of the window's text, once. */
static void mark(HWND hwnd)
{
    DWORD saved = GetLastError();
    WCHAR text[MARK_MAX + TITLE_MAX];
    memcpy(text, g_mark, g_mark_len * sizeof(WCHAR));
    int n = p_InternalGetWindowText(hwnd, text + g_mark_len, TITLE_MAX);
    if (n < 0)
        n = 0;
    if (!starts_marked(text + g_mark_len, (size_t)n)) {
        text[g_mark_len + (size_t)n] = 0;
        p_DefWindowProcW(hwnd, WM_SETTEXT, 0, (LPARAM)text);
    }
    SetLastError(saved);
}

void title_window_created(HWND hwnd)
{
    if (markable(hwnd))
        mark(hwnd);
}

/* ---- reads: the text without the marker -------------------------------------- */

static int WINAPI box_GetWindowTextW(HWND hwnd, WCHAR *out, int count)
{
    if (!g_on || !out || count <= 0)
        return real_GetWindowTextW(hwnd, out, count);
    WCHAR text[MARK_MAX + TITLE_MAX];
    int n = real_GetWindowTextW(hwnd, text, MARK_MAX + TITLE_MAX);
    if (n < 0)
        n = 0;
    size_t skip = starts_marked(text, (size_t)n) ? g_mark_len : 0;
    if (!skip && (size_t)n >= TITLE_MAX)
        return real_GetWindowTextW(hwnd, out, count);   /* a long title the buffer above cut */
    size_t len = (size_t)n - skip;
    if (len > (size_t)count - 1)
        len = (size_t)count - 1;
    memcpy(out, text + skip, len * sizeof(WCHAR));
    out[len] = 0;
    return (int)len;
}

static int WINAPI box_GetWindowTextA(HWND hwnd, char *out, int count)
{
    if (!g_on || !out || count <= 0)
        return real_GetWindowTextA(hwnd, out, count);
    char text[MARK_MAX * 3 + TITLE_MAX];
    int n = real_GetWindowTextA(hwnd, text, sizeof text);
    if (n < 0)
        n = 0;
    size_t skip = (size_t)n >= g_mark_a_len && g_mark_a_len && memcmp(text, g_mark_a, g_mark_a_len) == 0 ? g_mark_a_len : 0;
    if (!skip && (size_t)n >= TITLE_MAX)
        return real_GetWindowTextA(hwnd, out, count);
    size_t len = (size_t)n - skip;
    if (len > (size_t)count - 1)
        len = (size_t)count - 1;
    memcpy(out, text + skip, len);
    out[len] = 0;
    return (int)len;
}

static int WINAPI box_GetWindowTextLengthW(HWND hwnd)
{
    int n = real_GetWindowTextLengthW(hwnd);
    if (!g_on || n < (int)g_mark_len)
        return n;
    WCHAR text[MARK_MAX];
    int got = real_GetWindowTextW(hwnd, text, MARK_MAX);
    return got > 0 && starts_marked(text, (size_t)got) ? n - (int)g_mark_len : n;
}

static int WINAPI box_GetWindowTextLengthA(HWND hwnd)
{
    int n = real_GetWindowTextLengthA(hwnd);
    if (!g_on || n < (int)g_mark_a_len)
        return n;
    char text[MARK_MAX * 3];
    int got = real_GetWindowTextA(hwnd, text, sizeof text);
    return got >= (int)g_mark_a_len && memcmp(text, g_mark_a, g_mark_a_len) == 0 ? n - (int)g_mark_a_len : n;
}

/* ---- writes: marked again ------------------------------------------------------ */

static BOOL WINAPI box_SetWindowTextW(HWND hwnd, const WCHAR *text)
{
    BOOL ok = real_SetWindowTextW(hwnd, text);
    if (ok && markable(hwnd))
        mark(hwnd);
    return ok;
}

static BOOL WINAPI box_SetWindowTextA(HWND hwnd, const char *text)
{
    BOOL ok = real_SetWindowTextA(hwnd, text);
    if (ok && markable(hwnd))
        mark(hwnd);
    return ok;
}

static void title_user32_hooks(hook_table *table)
{
    if (!g_on)
        return;   /* nothing to strip: the box pays nothing */
    FVM_HOOK(table, "user32.dll", GetWindowTextW);
    FVM_HOOK(table, "user32.dll", GetWindowTextA);
    FVM_HOOK(table, "user32.dll", GetWindowTextLengthW);
    FVM_HOOK(table, "user32.dll", GetWindowTextLengthA);
    FVM_HOOK(table, "user32.dll", SetWindowTextW);
    FVM_HOOK(table, "user32.dll", SetWindowTextA);
}

static late_hooks g_late[] = {
    {"user32.dll", title_user32_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer title_virtualizer = {
    .name = "title",
    .policy = POLICY_TYPE_OBJECT,
    .start = title_start,
    .late = g_late,
};
