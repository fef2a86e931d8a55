/* wintool.c - wintool.exe: the window and atom calls the e2e tests make from
 * inside and outside boxes (tests/e2e/test_windows.py).
 *
 *   wintool find CLASS|- [TITLE]     FindWindow; prints "found CLASSNAME" (exit 0) or "none" (1)
 *   wintool enum TEXT                EnumWindows (and EnumChildWindows of each); prints
 *                                    "match CLASS|TITLE" for windows whose class or title
 *                                    contains TEXT, then "count N total T"; exit 0 if N > 0, else 1
 *   wintool close CLASS              posts WM_CLOSE to every window FindWindow(CLASS) finds
 *   wintool walk TEXT                the same over GetTopWindow(NULL) and GetWindow(GW_HWNDNEXT)
 *   wintool window CLASS TITLE [--until FILE] [--timeout S]
 *                                    registers CLASS, creates a window, prints "ready" and
 *                                    pumps messages until FILE exists (exit 0; 3 if no window)
 *   wintool syswindow CLASS TITLE [--until FILE] [--timeout S]
 *                                    the same with a system class (Static, Button...),
 *                                    not registered: the window is the box's only by its
 *                                    process, which must be in the box's job
 *   wintool classinfo CLASS          registers CLASS, creates a window and prints what the
 *                                    program can read back: GetClassName, RealGetWindowClass,
 *                                    GetClassInfoEx, the class atom's name, UnregisterClass
 *   wintool atom add NAME            GlobalAddAtom; prints "atom 0xNNNN name NAME-READ-BACK"
 *   wintool atom find NAME           GlobalFindAtom; prints "found 0xNNNN" (exit 0) or "none" (1)
 *   wintool atom delete NAME         GlobalFindAtom + GlobalDeleteAtom until gone
 * "-" for CLASS means NULL.
 *
 * wintool.exe does not import user32: it loads it with LoadLibrary once the
 * program runs, so in a box the window hooks are installed from the
 * loader's DLL notification (single.exe, which imports user32, covers the
 * start-up path). classinfo prints "user32-at-start 0" to show it. */
#include <windows.h>

#include <stdio.h>
#include <string.h>
#include <wchar.h>

/* The user32 functions wintool calls, resolved at run time. */
#define USER32_FUNCTIONS(X)                                                                        \
    X(FindWindowW) X(GetClassNameW) X(GetWindowTextW) X(EnumWindows) X(EnumChildWindows)           \
    X(GetTopWindow) X(GetWindow) X(RegisterClassExW) X(CreateWindowExW) X(DefWindowProcW)          \
    X(MsgWaitForMultipleObjects) X(PeekMessageW) X(TranslateMessage) X(DispatchMessageW)           \
    X(RealGetWindowClassW) X(GetClassInfoExW) X(DestroyWindow) X(UnregisterClassW) X(PostMessageW)
#define DECLARE(name) static __typeof__(name) *p_##name;
USER32_FUNCTIONS(DECLARE)
#define FindWindowW (*p_FindWindowW)
#define GetClassNameW (*p_GetClassNameW)
#define GetWindowTextW (*p_GetWindowTextW)
#define EnumWindows (*p_EnumWindows)
#define EnumChildWindows (*p_EnumChildWindows)
#define GetTopWindow (*p_GetTopWindow)
#define GetWindow (*p_GetWindow)
#define RegisterClassExW (*p_RegisterClassExW)
#define CreateWindowExW (*p_CreateWindowExW)
#define DefWindowProcW (*p_DefWindowProcW)
#define MsgWaitForMultipleObjects (*p_MsgWaitForMultipleObjects)
#define PeekMessageW (*p_PeekMessageW)
#define TranslateMessage (*p_TranslateMessage)
#define DispatchMessageW (*p_DispatchMessageW)
#define RealGetWindowClassW (*p_RealGetWindowClassW)
#define GetClassInfoExW (*p_GetClassInfoExW)
#define DestroyWindow (*p_DestroyWindow)
#define UnregisterClassW (*p_UnregisterClassW)
#define PostMessageW (*p_PostMessageW)

static BOOL g_user32_at_start;

static BOOL load_user32(void)
{
    g_user32_at_start = GetModuleHandleW(L"user32.dll") != NULL;
    HMODULE user32 = LoadLibraryW(L"user32.dll");
    if (!user32)
        return FALSE;
#define RESOLVE(name) if (!(p_##name = (__typeof__(p_##name))(void *)GetProcAddress(user32, #name))) return FALSE;
    USER32_FUNCTIONS(RESOLVE)
    return TRUE;
}

static wchar_t g_create_class[256];   /* CREATESTRUCT.lpszClass seen in WM_NCCREATE */

static LRESULT CALLBACK window_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_NCCREATE) {
        const CREATESTRUCTW *cs = (const CREATESTRUCTW *)lp;
        if (cs->lpszClass && !IS_INTRESOURCE(cs->lpszClass))
            wcsncpy(g_create_class, cs->lpszClass, 255);
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static const wchar_t *arg_or_null(const wchar_t *s)
{
    return wcscmp(s, L"-") ? s : NULL;
}

struct enum_state {
    const wchar_t *text;
    int count, total;
};

static void visit(HWND hwnd, struct enum_state *st)
{
    wchar_t cls[256] = L"", title[256] = L"";
    GetClassNameW(hwnd, cls, 256);
    GetWindowTextW(hwnd, title, 256);
    st->total++;
    if (wcsstr(cls, st->text) || wcsstr(title, st->text)) {
        st->count++;
        printf("match %ls|%ls\n", cls, title);
    }
}

static BOOL CALLBACK enum_child(HWND hwnd, LPARAM lp)
{
    visit(hwnd, (struct enum_state *)lp);
    return TRUE;
}

static BOOL CALLBACK enum_top(HWND hwnd, LPARAM lp)
{
    visit(hwnd, (struct enum_state *)lp);
    EnumChildWindows(hwnd, enum_child, lp);
    return TRUE;
}

static HWND make_window(const wchar_t *cls, const wchar_t *title, ATOM *atom_out)
{
    WNDCLASSEXW wc;
    memset(&wc, 0, sizeof wc);
    wc.cbSize = sizeof wc;
    wc.lpfnWndProc = window_proc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = cls;
    ATOM atom = RegisterClassExW(&wc);
    if (atom_out)
        *atom_out = atom;
    if (!atom) {
        printf("cannot register the class (error %lu)\n", GetLastError());
        return NULL;
    }
    HWND hwnd = CreateWindowExW(0, cls, title, WS_OVERLAPPEDWINDOW, 0, 0, 200, 100, NULL, NULL, wc.hInstance, NULL);
    if (!hwnd)
        printf("cannot create the window (error %lu)\n", GetLastError());
    return hwnd;
}

static void pump_until(const wchar_t *until, DWORD timeout_s)
{
    ULONGLONG end = GetTickCount64() + (ULONGLONG)timeout_s * 1000;
    while (GetTickCount64() < end) {
        if (until && GetFileAttributesW(until) != INVALID_FILE_ATTRIBUTES)
            break;
        MsgWaitForMultipleObjects(0, NULL, FALSE, 100, QS_ALLINPUT);
        MSG msg;
        while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE)) {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: wintool find|enum|window|classinfo|atom ... (see wintool.c)\n");
    return 2;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return usage();
    if (!load_user32()) {
        fprintf(stderr, "wintool: cannot load user32 (error %lu)\n", GetLastError());
        return 4;
    }
    const wchar_t *cmd = argv[1];
    if (!wcscmp(cmd, L"find")) {
        HWND hwnd = FindWindowW(arg_or_null(argv[2]), argc > 3 ? arg_or_null(argv[3]) : NULL);
        if (!hwnd) {
            printf("none\n");
            return 1;
        }
        wchar_t cls[256] = L"";
        GetClassNameW(hwnd, cls, 256);
        printf("found %ls\n", cls);
        return 0;
    }
    if (!wcscmp(cmd, L"enum")) {
        struct enum_state st = {argv[2], 0, 0};
        EnumWindows(enum_top, (LPARAM)&st);
        printf("count %d total %d\n", st.count, st.total);
        return st.count ? 0 : 1;
    }
    if (!wcscmp(cmd, L"close")) {
        int n = 0;
        for (HWND hwnd = FindWindowW(argv[2], NULL); hwnd && n < 100; hwnd = FindWindowW(argv[2], NULL), n++) {
            PostMessageW(hwnd, WM_CLOSE, 0, 0);
            Sleep(200);
        }
        printf("closed %d\n", n);
        return 0;
    }
    if (!wcscmp(cmd, L"walk")) {
        struct enum_state st = {argv[2], 0, 0};
        for (HWND hwnd = GetTopWindow(NULL); hwnd && st.total < 100000; hwnd = GetWindow(hwnd, GW_HWNDNEXT))
            visit(hwnd, &st);
        printf("count %d total %d\n", st.count, st.total);
        return st.count ? 0 : 1;
    }
    if ((!wcscmp(cmd, L"window") || !wcscmp(cmd, L"syswindow")) && argc >= 4) {
        const wchar_t *until = NULL;
        DWORD timeout_s = 120;
        for (int i = 4; i + 1 < argc; i += 2) {
            if (!wcscmp(argv[i], L"--until"))
                until = argv[i + 1];
            else if (!wcscmp(argv[i], L"--timeout"))
                timeout_s = (DWORD)_wtoi(argv[i + 1]);
        }
        if (!wcscmp(cmd, L"syswindow")) {
            HWND hwnd = CreateWindowExW(0, argv[2], argv[3], WS_OVERLAPPEDWINDOW, 0, 0, 200, 100, NULL, NULL,
                                        GetModuleHandleW(NULL), NULL);
            if (!hwnd) {
                printf("cannot create the window (error %lu)\n", GetLastError());
                return 3;
            }
        } else if (!make_window(argv[2], argv[3], NULL)) {
            return 3;
        }
        printf("ready\n");
        fflush(stdout);
        pump_until(until, timeout_s);
        return 0;
    }
    if (!wcscmp(cmd, L"classinfo")) {
        ATOM atom = 0;
        HWND hwnd = make_window(argv[2], L"FvmClassInfo", &atom);
        if (!hwnd)
            return 3;
        wchar_t name[256] = L"", real[256] = L"", atom_name[256] = L"";
        GetClassNameW(hwnd, name, 256);
        RealGetWindowClassW(hwnd, real, 256);
        GlobalGetAtomNameW(atom, atom_name, 256);
        WNDCLASSEXW wc;
        memset(&wc, 0, sizeof wc);
        wc.cbSize = sizeof wc;
        BOOL info = GetClassInfoExW(GetModuleHandleW(NULL), argv[2], &wc);
        printf("user32-at-start %d\n", g_user32_at_start);
        printf("getclassname %ls\n", name);
        printf("createstruct %ls\n", g_create_class);
        printf("realgetwindowclass %ls\n", real);
        printf("atomname %ls\n", atom_name);
        printf("getclassinfo %d %ls\n", info, info && wc.lpszClassName ? wc.lpszClassName : L"");
        printf("findwindow %d\n", FindWindowW(argv[2], NULL) == hwnd);
        DestroyWindow(hwnd);
        printf("unregister %d\n", UnregisterClassW(argv[2], GetModuleHandleW(NULL)));
        printf("getclassinfo-after %d\n", GetClassInfoExW(GetModuleHandleW(NULL), argv[2], &wc));
        return 0;
    }
    if (!wcscmp(cmd, L"atom") && argc >= 4) {
        const wchar_t *name = argv[3];
        if (!wcscmp(argv[2], L"add")) {
            ATOM atom = GlobalAddAtomW(name);
            if (!atom) {
                printf("cannot add (error %lu)\n", GetLastError());
                return 1;
            }
            wchar_t back[256] = L"";
            GlobalGetAtomNameW(atom, back, 256);
            printf("atom 0x%04x name %ls\n", atom, back);
            return 0;
        }
        if (!wcscmp(argv[2], L"find")) {
            ATOM atom = GlobalFindAtomW(name);
            if (!atom) {
                printf("none\n");
                return 1;
            }
            printf("found 0x%04x\n", atom);
            return 0;
        }
        if (!wcscmp(argv[2], L"delete")) {
            ATOM atom;
            int n = 0;
            while ((atom = GlobalFindAtomW(name)) && n < 100) {
                GlobalDeleteAtom(atom);
                n++;
            }
            printf("deleted %d\n", n);
            return 0;
        }
    }
    return usage();
}
