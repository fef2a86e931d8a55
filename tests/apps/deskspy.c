/* deskspy.c - deskspy.exe: a hostile program against other programs' windows,
 * input and clipboard (tests/e2e/test_desktop.py), and its target.
 *
 *   deskspy target TITLE STOPFILE   a window TITLE with an edit control holding
 *                                   "untouched"; puts "host secret" on the
 *                                   clipboard; prints "ready HWND EDIT" (hex),
 *                                   pumps messages until STOPFILE exists, then
 *                                   prints "final title=... text=... closes=N
 *                                   keys=N visible=V style=0x..." and exits 0
 *   deskspy attack HWND EDIT TITLE  every way of reaching the target from here
 *                                   (the handles come from the target, as a
 *                                   brute force would find them); one line
 *                                   per attempt: "<what> <result>"
 *   deskspy self                    the same operations against a window of its
 *                                   own: they must all work ("self <what> ok")
 *
 * The attack's own lines say what each call returned; the target's final
 * line says what arrived. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static LONG g_closes, g_keys;

static LRESULT CALLBACK target_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_CLOSE) {
        InterlockedIncrement(&g_closes);
        return 0;   /* counted, not obeyed: the report must still be made */
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static WNDPROC g_edit_proc;
static LRESULT CALLBACK edit_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_CHAR || msg == WM_KEYDOWN)
        InterlockedIncrement(&g_keys);
    return CallWindowProcW(g_edit_proc, hwnd, msg, wp, lp);
}

static void put_clipboard(HWND owner, const wchar_t *text)
{
    if (!OpenClipboard(owner))
        return;
    EmptyClipboard();
    size_t bytes = (wcslen(text) + 1) * sizeof(wchar_t);
    HGLOBAL mem = GlobalAlloc(GMEM_MOVEABLE, bytes);
    memcpy(GlobalLock(mem), text, bytes);
    GlobalUnlock(mem);
    SetClipboardData(CF_UNICODETEXT, mem);
    CloseClipboard();
}

/* The clipboard's text, or "(none)". */
static const char *read_clipboard(HWND owner)
{
    static char out[256];
    strcpy(out, "(none)");
    if (!OpenClipboard(owner))
        return "(cannot open)";
    HANDLE data = GetClipboardData(CF_UNICODETEXT);
    if (data) {
        const wchar_t *text = GlobalLock(data);
        if (text)
            WideCharToMultiByte(CP_UTF8, 0, text, -1, out, sizeof out, NULL, NULL);
        GlobalUnlock(data);
    }
    CloseClipboard();
    return out;
}

static HWND make_window(const wchar_t *title, HWND *edit)
{
    WNDCLASSW wc = {0};
    wc.lpfnWndProc = target_proc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = L"DeskSpyTarget";
    RegisterClassW(&wc);
    HWND hwnd = CreateWindowExW(0, L"DeskSpyTarget", title, WS_OVERLAPPEDWINDOW | WS_VISIBLE, 50, 50, 400, 200, NULL,
                                NULL, wc.hInstance, NULL);
    *edit = CreateWindowExW(0, L"Edit", L"untouched", WS_CHILD | WS_VISIBLE, 10, 10, 300, 30, hwnd, NULL,
                            wc.hInstance, NULL);
    g_edit_proc = (WNDPROC)SetWindowLongPtrW(*edit, GWLP_WNDPROC, (LONG_PTR)edit_proc);
    SetForegroundWindow(hwnd);
    SetFocus(*edit);
    return hwnd;
}

static void pump(DWORD ms)
{
    DWORD end = GetTickCount() + ms;
    MSG m;
    while ((LONG)(end - GetTickCount()) > 0) {
        while (PeekMessageW(&m, NULL, 0, 0, PM_REMOVE)) {
            TranslateMessage(&m);
            DispatchMessageW(&m);
        }
        MsgWaitForMultipleObjects(0, NULL, FALSE, 20, QS_ALLINPUT);
    }
}

static int target(const wchar_t *title, const wchar_t *stop)
{
    HWND edit;
    HWND hwnd = make_window(title, &edit);
    put_clipboard(hwnd, L"host secret");
    printf("ready %p %p\n", (void *)hwnd, (void *)edit);
    fflush(stdout);
    while (GetFileAttributesW(stop) == INVALID_FILE_ATTRIBUTES)
        pump(100);
    wchar_t t[256], e[256];
    GetWindowTextW(hwnd, t, 256);
    GetWindowTextW(edit, e, 256);
    printf("final title=%ls text=%ls closes=%ld keys=%ld visible=%d style=0x%lx clipboard=%s\n", t, e, g_closes,
           g_keys, IsWindowVisible(hwnd) ? 1 : 0, (unsigned long)GetWindowLongW(hwnd, GWL_STYLE),
           read_clipboard(hwnd));
    return 0;
}

static LRESULT CALLBACK ll_proc(int code, WPARAM wp, LPARAM lp)
{
    return CallNextHookEx(NULL, code, wp, lp);
}

static void send_key(WORD vk)
{
    INPUT in[2] = {0};
    in[0].type = in[1].type = INPUT_KEYBOARD;
    in[0].ki.wVk = in[1].ki.wVk = vk;
    in[1].ki.dwFlags = KEYEVENTF_KEYUP;
    UINT n = SendInput(2, in, sizeof in[0]);
    printf("sendinput %u err=%lu\n", n, n ? 0 : GetLastError());
}

/* Every reach for the window; "self" runs the same against its own. */
static int attack(HWND hwnd, HWND edit, const wchar_t *title, const char *tag)
{
    wchar_t buf[256];
    printf("%sfind-title %s\n", tag, FindWindowW(NULL, title) == hwnd ? "found" : "none");
    HWND fg = GetForegroundWindow();
    printf("%sforeground %s\n", tag, fg == hwnd ? "target" : fg ? "other" : "null");
    RECT r;
    GetWindowRect(hwnd, &r);
    POINT p = {(r.left + r.right) / 2, (r.top + r.bottom) / 2};
    HWND at = WindowFromPoint(p);
    printf("%sfrompoint %s\n", tag, at == hwnd || at == edit ? "target" : at ? "other" : "null");
    buf[0] = 0;
    int n = GetWindowTextW(hwnd, buf, 256);
    printf("%sgettitle %s\n", tag, n > 0 && wcscmp(buf, title) == 0 ? "read" : "empty");
    /* Brute force: every window handle whose title reads as the target's. */
    int hits = 0;
    for (ULONG_PTR generation = 0; generation < 4; generation++)
        for (ULONG_PTR index = 0x20; index < 0x400; index += 2) {
            HWND h = (HWND)(generation << 16 | index);
            if (IsWindow(h) && GetWindowTextW(h, buf, 256) > 0 && wcscmp(buf, title) == 0)
                hits++;
        }
    printf("%sbruteforce-title %d\n", tag, hits);
    printf("%ssettitle %d\n", tag, SetWindowTextW(hwnd, L"pwned") ? 1 : 0);
    LRESULT res = SendMessageW(edit, WM_SETTEXT, 0, (LPARAM)L"pwned");
    printf("%ssettext %d\n", tag, res ? 1 : 0);
    buf[0] = 0;
    SendMessageW(edit, WM_GETTEXT, 256, (LPARAM)buf);
    printf("%sgettext %s\n", tag, buf[0] ? "read" : "empty");
    printf("%spost-char %d\n", tag, PostMessageW(edit, WM_CHAR, 'X', 0) ? 1 : 0);
    printf("%spost-close %d\n", tag, PostMessageW(hwnd, WM_CLOSE, 0, 0) ? 1 : 0);
    SendMessageW(hwnd, WM_CLOSE, 0, 0);
    DWORD_PTR out = 0;
    printf("%ssend-close-timeout %d\n", tag,
           SendMessageTimeoutW(hwnd, WM_CLOSE, 0, 0, SMTO_ABORTIFHUNG, 500, &out) ? 1 : 0);
    printf("%snotify-close %d\n", tag, SendNotifyMessageW(hwnd, WM_CLOSE, 0, 0) ? 1 : 0);
    DWORD tid = GetWindowThreadProcessId(hwnd, NULL);
    printf("%spost-thread %d\n", tag, PostThreadMessageW(tid, WM_CLOSE, 0, 0) ? 1 : 0);
    printf("%sbroadcast-close %d\n", tag, PostMessageW(HWND_BROADCAST, WM_CLOSE, 0, 0) ? 1 : 0);
    printf("%sshow %d\n", tag, ShowWindow(hwnd, SW_HIDE) ? 1 : 0);
    printf("%smove %d\n", tag, SetWindowPos(hwnd, NULL, 300, 300, 10, 10, SWP_NOZORDER) ? 1 : 0);
    SetLastError(0);
    LONG_PTR prev = SetWindowLongPtrW(hwnd, GWL_STYLE, WS_POPUP);
    printf("%sstyle %d\n", tag, prev || !GetLastError() ? 1 : 0);
    HHOOK ll = SetWindowsHookExW(WH_KEYBOARD_LL, ll_proc, GetModuleHandleW(NULL), 0);
    printf("%shook-ll %d\n", tag, ll ? 1 : 0);
    if (ll)
        UnhookWindowsHookEx(ll);
    HHOOK th = SetWindowsHookExW(WH_GETMESSAGE, ll_proc, GetModuleHandleW(NULL), tid);
    printf("%shook-thread %d\n", tag, th ? 1 : 0);
    if (th)
        UnhookWindowsHookEx(th);
    SetForegroundWindow(hwnd);
    send_key('Q');
    keybd_event('W', 0, 0, 0);
    keybd_event('W', 0, KEYEVENTF_KEYUP, 0);
    printf("%sclipboard %s\n", tag, read_clipboard(NULL));
    fflush(stdout);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc == 4 && !wcscmp(argv[1], L"target"))
        return target(argv[2], argv[3]);
    if (argc == 5 && !wcscmp(argv[1], L"attack"))
        return attack((HWND)(ULONG_PTR)wcstoull(argv[2], NULL, 16), (HWND)(ULONG_PTR)wcstoull(argv[3], NULL, 16),
                      argv[4], "");
    if (argc == 2 && !wcscmp(argv[1], L"self")) {
        HWND edit;
        HWND hwnd = make_window(L"DeskSpySelf", &edit);
        put_clipboard(hwnd, L"box data");
        pump(200);
        return attack(hwnd, edit, L"DeskSpySelf", "self ");
    }
    fprintf(stderr, "usage: deskspy target TITLE STOPFILE | attack HWND EDIT TITLE | self\n");
    return 2;
}
