/* capture.c - capture.exe: screen capture, the clipboard and window titles
 * across the box's edge (tests/e2e/test_screen.py).
 *
 *   capture paint RRGGBB STOPFILE   a window filled with the colour; prints
 *                                   "ready HWND" once painted, pumps messages
 *                                   until STOPFILE exists
 *   capture grab HWND [TAG]         every capture path against the window:
 *                                   one line "TAGmethod RRGGBB" each, the
 *                                   colour read at the window's centre
 *   capture self RRGGBB             grab against a window of its own
 *   capture clip-set TEXT           TEXT on the clipboard as CF_UNICODETEXT;
 *                                   "set 1" or "set 0 err=N"
 *   capture clip-hold TEXT STOPFILE the same from a window of its own, then
 *                                   "ready HWND"; stays until STOPFILE exists
 *   capture clip-raw TEXT STOPFILE  clip-hold past user32: win32u's
 *                                   NtUserEmptyClipboard/NtUserSetClipboardData
 *   capture clip-get                "clip TEXT" (CF_UNICODETEXT), "clipa TEXT"
 *                                   (CF_TEXT), "clip (none)"; "avail 0|1"
 *   capture titled TITLE STOPFILE   a captioned window TITLE, then renamed
 *                                   TITLE-2 by SetWindowText; prints "ready
 *                                   HWND own=<its GetWindowText> len=N"
 *   capture title HWND              "title <GetWindowText of HWND>"
 *   capture bench N                 N GetDC/BitBlt/ReleaseDC of its own
 *                                   window; "bench N us_per_blit=X"
 *
 * Before each capture the destination bitmap is filled with a sentinel
 * (0x123456), so black means "blanked", not "left alone". */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#define W 200
#define H 150
#define SENTINEL RGB(0x12, 0x34, 0x56)

static COLORREF g_colour;
static LONG g_painted;

static LRESULT CALLBACK paint_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_PAINT || msg == WM_PRINTCLIENT) {
        PAINTSTRUCT ps;
        HDC hdc = msg == WM_PAINT ? BeginPaint(hwnd, &ps) : (HDC)wp;
        RECT r;
        GetClientRect(hwnd, &r);
        HBRUSH brush = CreateSolidBrush(g_colour);
        FillRect(hdc, &r, brush);
        DeleteObject(brush);
        if (msg == WM_PAINT)
            EndPaint(hwnd, &ps);
        InterlockedExchange(&g_painted, 1);
        return 0;
    }
    if (msg == WM_ERASEBKGND)
        return 1;
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static void pump(DWORD ms)
{
    DWORD end = GetTickCount() + ms;
    MSG m;
    do {
        while (PeekMessageW(&m, NULL, 0, 0, PM_REMOVE)) {
            TranslateMessage(&m);
            DispatchMessageW(&m);
        }
        if ((LONG)(end - GetTickCount()) <= 0)
            break;
        MsgWaitForMultipleObjects(0, NULL, FALSE, 20, QS_ALLINPUT);
    } while (1);
}

static HWND painted_window(COLORREF colour, int x, int y)
{
    g_colour = colour;
    WNDCLASSW wc = {0};
    wc.lpfnWndProc = paint_proc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = L"CaptureTarget";
    RegisterClassW(&wc);
    HWND hwnd = CreateWindowExW(WS_EX_TOPMOST, L"CaptureTarget", L"capture", WS_POPUP | WS_VISIBLE, x, y, W, H, NULL,
                                NULL, wc.hInstance, NULL);
    UpdateWindow(hwnd);
    for (int i = 0; i < 100 && !g_painted; i++)
        pump(20);
    pump(200);   /* the X server shows it */
    return hwnd;
}

static COLORREF parse_colour(const wchar_t *hex)
{
    unsigned long v = wcstoul(hex, NULL, 16);
    return RGB((v >> 16) & 255, (v >> 8) & 255, v & 255);
}

static void print_colour(const char *tag, const char *method, COLORREF c)
{
    if (c == CLR_INVALID)
        printf("%s%s invalid\n", tag, method);
    else
        printf("%s%s %02x%02x%02x\n", tag, method, GetRValue(c), GetGValue(c), GetBValue(c));
}

/* A 16x16 memory bitmap filled with the sentinel. */
typedef struct canvas {
    HDC dc;
    HBITMAP bmp, old;
} canvas;

static void canvas_open(canvas *c, int w, int h)
{
    HDC screen = GetDC(NULL);
    c->dc = CreateCompatibleDC(screen);
    c->bmp = CreateCompatibleBitmap(screen, w, h);
    ReleaseDC(NULL, screen);
    c->old = SelectObject(c->dc, c->bmp);
    HBRUSH brush = CreateSolidBrush(SENTINEL);
    RECT r = {0, 0, w, h};
    FillRect(c->dc, &r, brush);
    DeleteObject(brush);
}

static COLORREF canvas_close(canvas *c, int x, int y)
{
    COLORREF got = GetPixel(c->dc, x, y);
    SelectObject(c->dc, c->old);
    DeleteObject(c->bmp);
    DeleteDC(c->dc);
    return got;
}

static int grab(HWND hwnd, const char *tag)
{
    RECT r;
    if (!GetWindowRect(hwnd, &r)) {
        printf("%sno-window\n", tag);
        return 1;
    }
    int cx = (r.left + r.right) / 2, cy = (r.top + r.bottom) / 2;
    int ww = r.right - r.left, wh = r.bottom - r.top;
    canvas c;
    HDC src;

    src = GetDC(NULL);
    canvas_open(&c, 16, 16);
    BitBlt(c.dc, 0, 0, 16, 16, src, cx - 8, cy - 8, SRCCOPY);
    print_colour(tag, "screen-bitblt", canvas_close(&c, 8, 8));
    canvas_open(&c, 16, 16);
    StretchBlt(c.dc, 0, 0, 16, 16, src, cx - 16, cy - 16, 32, 32, SRCCOPY);
    print_colour(tag, "screen-stretchblt", canvas_close(&c, 8, 8));
    print_colour(tag, "screen-getpixel", GetPixel(src, cx, cy));
    ReleaseDC(NULL, src);

    src = CreateDCW(L"DISPLAY", NULL, NULL, NULL);
    canvas_open(&c, 16, 16);
    BitBlt(c.dc, 0, 0, 16, 16, src, cx - 8, cy - 8, SRCCOPY);
    print_colour(tag, "display-bitblt", canvas_close(&c, 8, 8));
    DeleteDC(src);

    src = GetWindowDC(hwnd);
    canvas_open(&c, 16, 16);
    BitBlt(c.dc, 0, 0, 16, 16, src, ww / 2 - 8, wh / 2 - 8, SRCCOPY);
    print_colour(tag, "windowdc-bitblt", canvas_close(&c, 8, 8));
    ReleaseDC(hwnd, src);

    src = GetDC(hwnd);
    canvas_open(&c, 16, 16);
    BitBlt(c.dc, 0, 0, 16, 16, src, ww / 2 - 8, wh / 2 - 8, SRCCOPY);
    print_colour(tag, "clientdc-bitblt", canvas_close(&c, 8, 8));
    ReleaseDC(hwnd, src);

    canvas_open(&c, ww, wh);
    PrintWindow(hwnd, c.dc, 0);
    print_colour(tag, "printwindow", canvas_close(&c, ww / 2, wh / 2));
    fflush(stdout);
    return 0;
}

static int clip_set(const wchar_t *text, HWND owner)
{
    if (!OpenClipboard(owner)) {
        printf("set 0 err=%lu\n", GetLastError());
        return 1;
    }
    EmptyClipboard();
    size_t bytes = (wcslen(text) + 1) * sizeof(wchar_t);
    HGLOBAL mem = GlobalAlloc(GMEM_MOVEABLE, bytes);
    memcpy(GlobalLock(mem), text, bytes);
    GlobalUnlock(mem);
    HANDLE ok = SetClipboardData(CF_UNICODETEXT, mem);
    DWORD err = GetLastError();
    CloseClipboard();
    if (ok)
        printf("set 1\n");
    else
        printf("set 0 err=%lu\n", err);
    return 0;
}

static int clip_get(void)
{
    int avail = IsClipboardFormatAvailable(CF_UNICODETEXT) ? 1 : 0;
    if (!OpenClipboard(NULL)) {
        printf("clip (cannot open)\n");
        return 1;
    }
    HANDLE data = GetClipboardData(CF_UNICODETEXT);
    const wchar_t *text = data ? GlobalLock(data) : NULL;
    printf("clip %ls\n", text ? text : L"(none)");
    if (text)
        GlobalUnlock(data);
    data = GetClipboardData(CF_TEXT);
    const char *texta = data ? GlobalLock(data) : NULL;
    printf("clipa %s\n", texta ? texta : "(none)");
    if (texta)
        GlobalUnlock(data);
    CloseClipboard();
    printf("avail %d\n", avail);
    printf("seq %lu owner %p formats %d\n", GetClipboardSequenceNumber(), (void *)GetClipboardOwner(),
           CountClipboardFormats());
    return 0;
}

static int titled(const wchar_t *title, const wchar_t *stop)
{
    HWND hwnd = CreateWindowExW(0, L"Static", title, WS_OVERLAPPEDWINDOW | WS_VISIBLE, 300, 300, 300, 100, NULL, NULL,
                                GetModuleHandleW(NULL), NULL);
    wchar_t renamed[256], own[256];
    _snwprintf(renamed, 256, L"%ls-2", title);
    SetWindowTextW(hwnd, renamed);
    pump(100);
    GetWindowTextW(hwnd, own, 256);
    char owna[256];
    GetWindowTextA(hwnd, owna, 256);
    printf("ready %p own=%ls owna=%s len=%d lena=%d\n", (void *)hwnd, own, owna, GetWindowTextLengthW(hwnd),
           GetWindowTextLengthA(hwnd));
    fflush(stdout);
    while (GetFileAttributesW(stop) == INVALID_FILE_ATTRIBUTES)
        pump(100);
    return 0;
}

static int bench(int n)
{
    HWND hwnd = painted_window(RGB(0, 128, 255), 500, 400);
    canvas c;
    canvas_open(&c, W, H);
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    for (int i = 0; i < 50; i++) {   /* warm-up */
        HDC src = GetDC(hwnd);
        BitBlt(c.dc, 0, 0, W, H, src, 0, 0, SRCCOPY);
        ReleaseDC(hwnd, src);
    }
    QueryPerformanceCounter(&t0);
    for (int i = 0; i < n; i++) {
        HDC src = GetDC(hwnd);
        BitBlt(c.dc, 0, 0, W, H, src, 0, 0, SRCCOPY);
        ReleaseDC(hwnd, src);
    }
    QueryPerformanceCounter(&t1);
    COLORREF px = canvas_close(&c, W / 2, H / 2);
    printf("bench %d us_per_blit=%.3f pixel=%06lx\n", n, (double)(t1.QuadPart - t0.QuadPart) * 1e6 / f.QuadPart / n,
           (unsigned long)px);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc == 4 && !wcscmp(argv[1], L"paint")) {
        HWND hwnd = painted_window(parse_colour(argv[2]), 100, 100);
        printf("ready %p\n", (void *)hwnd);
        fflush(stdout);
        while (GetFileAttributesW(argv[3]) == INVALID_FILE_ATTRIBUTES)
            pump(100);
        return 0;
    }
    if ((argc == 3 || argc == 4) && !wcscmp(argv[1], L"grab")) {
        char tag[64] = "";
        if (argc == 4)
            WideCharToMultiByte(CP_UTF8, 0, argv[3], -1, tag, sizeof tag, NULL, NULL);
        return grab((HWND)(ULONG_PTR)wcstoull(argv[2], NULL, 16), tag);
    }
    if (argc == 3 && !wcscmp(argv[1], L"self")) {
        HWND hwnd = painted_window(parse_colour(argv[2]), 400, 300);
        return grab(hwnd, "self ");
    }
    if (argc == 4 && !wcscmp(argv[1], L"clip-raw")) {
        /* Hostile: past user32, straight to win32u (Wine 8's calls and
         * parameter block, include/ntuser.h). Stays alive as clip-hold. */
        struct {
            void *data;
            size_t size;
            BOOL cache;
            UINT seqno;
        } params = {0};
        HMODULE win32u = GetModuleHandleW(L"win32u.dll");
        BOOL (WINAPI *empty)(void) = (void *)GetProcAddress(win32u, "NtUserEmptyClipboard");
        LONG (WINAPI *set)(UINT, HANDLE, void *) = (void *)GetProcAddress(win32u, "NtUserSetClipboardData");
        HWND owner = CreateWindowExW(0, L"Static", L"clip-owner", WS_POPUP, 0, 0, 1, 1, NULL, NULL,
                                     GetModuleHandleW(NULL), NULL);
        size_t bytes = (wcslen(argv[2]) + 1) * sizeof(wchar_t);
        HGLOBAL mem = GlobalAlloc(GMEM_MOVEABLE, bytes);
        params.data = GlobalLock(mem);
        params.size = bytes;
        memcpy(params.data, argv[2], bytes);
        BOOL opened = OpenClipboard(owner);
        BOOL emptied = empty && empty();
        LONG status = set ? set(CF_UNICODETEXT, mem, &params) : -1;
        CloseClipboard();
        printf("raw opened=%d emptied=%d status=0x%lx\n", opened, emptied, (unsigned long)status);
        printf("ready %p\n", (void *)owner);
        fflush(stdout);
        while (GetFileAttributesW(argv[3]) == INVALID_FILE_ATTRIBUTES)
            pump(100);
        return 0;
    }
    if (argc == 3 && !wcscmp(argv[1], L"clip-set"))
        return clip_set(argv[2], NULL);
    if (argc == 4 && !wcscmp(argv[1], L"clip-hold")) {
        /* Wine may drop clipboard data when the process that set it ends:
         * the owner stays alive (and answers render requests) until STOPFILE. */
        HWND owner = CreateWindowExW(0, L"Static", L"clip-owner", WS_POPUP, 0, 0, 1, 1, NULL, NULL,
                                     GetModuleHandleW(NULL), NULL);
        clip_set(argv[2], owner);
        printf("ready %p\n", (void *)owner);
        fflush(stdout);
        while (GetFileAttributesW(argv[3]) == INVALID_FILE_ATTRIBUTES)
            pump(100);
        return 0;
    }
    if (argc == 2 && !wcscmp(argv[1], L"clip-get"))
        return clip_get();
    if (argc == 4 && !wcscmp(argv[1], L"titled"))
        return titled(argv[2], argv[3]);
    if (argc == 3 && !wcscmp(argv[1], L"title")) {
        wchar_t t[256] = L"";
        GetWindowTextW((HWND)(ULONG_PTR)wcstoull(argv[2], NULL, 16), t, 256);
        printf("title %ls\n", t);
        return 0;
    }
    if (argc == 3 && !wcscmp(argv[1], L"bench"))
        return bench(_wtoi(argv[2]));
    fprintf(stderr, "usage: capture paint|grab|self|clip-set|clip-get|titled|title|bench ...\n");
    return 2;
}
