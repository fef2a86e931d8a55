/* screen.c - screen capture from a box: [screen] rules.
 *
 * A program reads pixels it did not draw by copying them out of a device
 * context that shows the screen or another program's window: BitBlt and its
 * relatives from GetDC(NULL), GetWindowDC(any window), CreateDC("DISPLAY"),
 * GetPixel on such a DC, or PrintWindow of a window (which has the window
 * paint itself into the caller's DC). The idea: the *source* of every read
 * is judged, not the DC's creation, since programs take a screen DC for a
 * hundred harmless reasons (GetDeviceCaps, CreateCompatibleBitmap...). A
 * source is
 *   - memory: a memory DC (OBJ_MEMDC), a metafile, a printer: what the
 *     program drew itself; always allowed;
 *   - the box's: a DC of one of the box's windows (gui.c's test); allowed,
 *     real pixels;
 *   - foreign: a DC of the desktop window (GetDC(NULL)), of a window outside
 *     the box, or of the display without a window (CreateDC("DISPLAY")).
 * A read from a foreign source is decided as `capture` of type screen:
 * denied by default ([screen] `open capture` allows it, per program as any
 * rule). Denied, the call succeeds with a blank image: the destination
 * rectangle is filled black (BitBlt, StretchBlt, MaskBlt, PlgBlt's bounding
 * box, TransparentBlt, AlphaBlend, PrintWindow), GetPixel answers black. So
 * screenshot tools keep working and see nothing; the refusal is audited
 * (op "capture", once a second per source window: a recorder asks sixty
 * times a second).
 *
 * Where: the win32u NtGdi* and NtUserPrintWindow syscall stubs (gdi32's and
 * user32's exports funnel into them on Wine 8 as on Windows 10+; measured
 * with tests/apps/capture.c). Other capture paths on Wine 8: DXGI's
 * DuplicateOutput is not implemented (E_NOTIMPL), GetDIBits reads a bitmap
 * the program owns (a screen DC has no screen bitmap selected), Direct3D
 * and OpenGL read back their own swapchains. A program speaking X11 to the
 * display itself is the floor's business (docs/design.md). */
#include "runtime/runtime.h"

typedef BOOL (WINAPI *NtGdiBitBlt_fn)(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, DWORD rop,
                                      DWORD bk_color, FLONG flags);
typedef BOOL (WINAPI *NtGdiStretchBlt_fn)(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                          INT cys, DWORD rop, COLORREF bk_color);
typedef BOOL (WINAPI *NtGdiMaskBlt_fn)(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, HBITMAP mask,
                                       INT xm, INT ym, DWORD rop, DWORD bk_color);
typedef BOOL (WINAPI *NtGdiPlgBlt_fn)(HDC dst, const POINT *points, HDC src, INT xs, INT ys, INT cx, INT cy,
                                      HBITMAP mask, INT xm, INT ym, DWORD bk_color);
typedef BOOL (WINAPI *NtGdiTransparentBlt_fn)(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                              INT cys, UINT color);
typedef BOOL (WINAPI *NtGdiAlphaBlend_fn)(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                          INT cys, DWORD blend, HANDLE xform);
typedef COLORREF (WINAPI *NtGdiGetPixel_fn)(HDC hdc, INT x, INT y);
typedef BOOL (WINAPI *NtUserPrintWindow_fn)(HWND hwnd, HDC hdc, UINT flags);

static NtGdiBitBlt_fn real_NtGdiBitBlt;
static NtGdiStretchBlt_fn real_NtGdiStretchBlt;
static NtGdiMaskBlt_fn real_NtGdiMaskBlt;
static NtGdiPlgBlt_fn real_NtGdiPlgBlt;
static NtGdiTransparentBlt_fn real_NtGdiTransparentBlt;
static NtGdiAlphaBlend_fn real_NtGdiAlphaBlend;
static NtGdiGetPixel_fn real_NtGdiGetPixel;
static NtUserPrintWindow_fn real_NtUserPrintWindow;

/* gdi32 and user32 helpers, found when first needed (both load with or
 * after win32u). */
typedef DWORD (WINAPI *GetObjectType_fn)(HGDIOBJ);
typedef int (WINAPI *GetDeviceCaps_fn)(HDC, int);
typedef BOOL (WINAPI *PatBlt_fn)(HDC, int, int, int, int, DWORD);
typedef HWND (WINAPI *WindowFromDC_fn)(HDC);
typedef BOOL (WINAPI *GetWindowRect_fn)(HWND, RECT *);
static GetObjectType_fn p_GetObjectType;
static GetDeviceCaps_fn p_GetDeviceCaps;
static PatBlt_fn p_PatBlt;
static WindowFromDC_fn p_WindowFromDC;
static GetWindowRect_fn p_GetWindowRect;

static void find_helpers(void)
{
    if (!p_GetObjectType) {
        HMODULE gdi32 = runtime_loaded_module("gdi32.dll");
        if (gdi32) {
            p_GetDeviceCaps = (GetDeviceCaps_fn)(void *)GetProcAddress(gdi32, "GetDeviceCaps");
            p_PatBlt = (PatBlt_fn)(void *)GetProcAddress(gdi32, "PatBlt");
            p_GetObjectType = (GetObjectType_fn)(void *)GetProcAddress(gdi32, "GetObjectType");
        }
    }
    if (!p_WindowFromDC) {
        HMODULE user32 = runtime_loaded_module("user32.dll");
        if (user32) {
            p_GetWindowRect = (GetWindowRect_fn)(void *)GetProcAddress(user32, "GetWindowRect");
            p_WindowFromDC = (WindowFromDC_fn)(void *)GetProcAddress(user32, "WindowFromDC");
        }
    }
}

/* ---- the source of a read --------------------------------------------------- */

enum { SOURCE_OWN, SOURCE_FOREIGN };

/* Whether reading pixels from src reads something outside the box; *window
 * is the window the DC shows (NULL for a display DC of no window). Fails
 * closed: a DC it cannot classify counts as foreign. */
static int source_of(HDC src, HWND *window)
{
    *window = NULL;
    if (!src)
        return SOURCE_OWN;   /* the call fails by itself */
    find_helpers();
    if (!p_GetObjectType)
        return SOURCE_FOREIGN;
    DWORD type = p_GetObjectType(src);
    if (type != OBJ_DC)
        return SOURCE_OWN;   /* memory DC, metafile, or not a DC (the call fails) */
    HWND hwnd = p_WindowFromDC ? p_WindowFromDC(src) : NULL;
    if (hwnd) {
        *window = hwnd;
        /* GetDC(NULL) is a DC of the desktop window, which belongs to
         * Wine's desktop process (explorer.exe), never to the box. */
        return gui_window_in_box(hwnd) ? SOURCE_OWN : SOURCE_FOREIGN;
    }
    /* A DC of no window: the display (CreateDC("DISPLAY")), or a printer. */
    return p_GetDeviceCaps && p_GetDeviceCaps(src, TECHNOLOGY) != DT_RASDISPLAY ? SOURCE_OWN : SOURCE_FOREIGN;
}

/* The audit throttle: the last source refused and when. */
static volatile HWND g_last_window;
static volatile DWORD g_last_tick;
static volatile LONG g_audited;

/* The policy's word on capturing foreign content; audited when refused. */
static BOOL capture_allowed(HWND window)
{
    static const uint16_t name[] = u"capture";
    DWORD saved = GetLastError();
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_SCREEN, name, 7, &d);
    if (action == POLICY_ACTION_ASK)
        action = runtime_policy_ask(POLICY_TYPE_SCREEN, name, 7, &d);
    BOOL allowed = action == POLICY_ACTION_OPEN || action == POLICY_ACTION_READ;
    DWORD now = GetTickCount();
    if (!allowed || d.audit) {
        if (!g_audited || window != g_last_window || now - g_last_tick >= 1000) {
            g_audited = 1;
            g_last_window = window;
            g_last_tick = now;
            d.audit = 1;
            d.action = allowed ? action : POLICY_ACTION_DENY;
            runtime_audit(POLICY_TYPE_SCREEN, "capture", &d, name, 7);
        }
    }
    SetLastError(saved);
    return allowed;
}

/* ROP3 codes that read the source (the source bits of the code differ from
 * their complement). */
static BOOL rop_uses_source(DWORD rop)
{
    return (((rop >> 2) ^ rop) & 0x330000) != 0;
}

/* Whether a read of src may go ahead; FALSE: the caller blanks instead. */
static BOOL may_read(HDC src)
{
    HWND window;
    if (source_of(src, &window) == SOURCE_OWN)
        return TRUE;
    return capture_allowed(window);
}

static BOOL blank(HDC dst, INT x, INT y, INT cx, INT cy)
{
    find_helpers();
    return p_PatBlt ? p_PatBlt(dst, x, y, cx, cy, BLACKNESS) : TRUE;
}

/* ---- hooks ------------------------------------------------------------------- */

static BOOL WINAPI box_NtGdiBitBlt(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, DWORD rop,
                                   DWORD bk_color, FLONG flags)
{
    if (rop_uses_source(rop) && !may_read(src))
        return blank(dst, x, y, cx, cy);
    return real_NtGdiBitBlt(dst, x, y, cx, cy, src, xs, ys, rop, bk_color, flags);
}

static BOOL WINAPI box_NtGdiStretchBlt(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                       INT cys, DWORD rop, COLORREF bk_color)
{
    if (rop_uses_source(rop) && !may_read(src))
        return blank(dst, x, y, cx, cy);
    return real_NtGdiStretchBlt(dst, x, y, cx, cy, src, xs, ys, cxs, cys, rop, bk_color);
}

static BOOL WINAPI box_NtGdiMaskBlt(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, HBITMAP mask,
                                    INT xm, INT ym, DWORD rop, DWORD bk_color)
{
    /* MaskBlt's rop is two ROP3s (foreground and background) in one. */
    if ((rop_uses_source(rop) || rop_uses_source((rop >> 8) & 0xff0000)) && !may_read(src))
        return blank(dst, x, y, cx, cy);
    return real_NtGdiMaskBlt(dst, x, y, cx, cy, src, xs, ys, mask, xm, ym, rop, bk_color);
}

static BOOL WINAPI box_NtGdiPlgBlt(HDC dst, const POINT *points, HDC src, INT xs, INT ys, INT cx, INT cy, HBITMAP mask,
                                   INT xm, INT ym, DWORD bk_color)
{
    if (points && !may_read(src)) {
        /* The parallelogram's bounding box; its fourth corner is p1 + p2 - p0. */
        LONG px[4] = {points[0].x, points[1].x, points[2].x, points[1].x + points[2].x - points[0].x};
        LONG py[4] = {points[0].y, points[1].y, points[2].y, points[1].y + points[2].y - points[0].y};
        LONG x0 = px[0], x1 = px[0], y0 = py[0], y1 = py[0];
        for (int i = 1; i < 4; i++) {
            x0 = px[i] < x0 ? px[i] : x0;
            x1 = px[i] > x1 ? px[i] : x1;
            y0 = py[i] < y0 ? py[i] : y0;
            y1 = py[i] > y1 ? py[i] : y1;
        }
        return blank(dst, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    }
    return real_NtGdiPlgBlt(dst, points, src, xs, ys, cx, cy, mask, xm, ym, bk_color);
}

static BOOL WINAPI box_NtGdiTransparentBlt(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                           INT cys, UINT color)
{
    if (!may_read(src))
        return blank(dst, x, y, cx, cy);
    return real_NtGdiTransparentBlt(dst, x, y, cx, cy, src, xs, ys, cxs, cys, color);
}

static BOOL WINAPI box_NtGdiAlphaBlend(HDC dst, INT x, INT y, INT cx, INT cy, HDC src, INT xs, INT ys, INT cxs,
                                       INT cys, DWORD blend, HANDLE xform)
{
    if (!may_read(src))
        return blank(dst, x, y, cx, cy);
    return real_NtGdiAlphaBlend(dst, x, y, cx, cy, src, xs, ys, cxs, cys, blend, xform);
}

static COLORREF WINAPI box_NtGdiGetPixel(HDC hdc, INT x, INT y)
{
    if (!may_read(hdc))
        return RGB(0, 0, 0);
    return real_NtGdiGetPixel(hdc, x, y);
}

/* PrintWindow has the window paint itself into the caller's DC (Wine 8 does
 * it on the unix side, past the message hooks of desktop.c): a window
 * outside the box is not asked; the DC gets a black window-sized area. */
static BOOL WINAPI box_NtUserPrintWindow(HWND hwnd, HDC hdc, UINT flags)
{
    if (hwnd && !gui_window_in_box(hwnd) && !capture_allowed(hwnd)) {
        RECT r = {0, 0, 0, 0};
        find_helpers();
        if (p_GetWindowRect)
            p_GetWindowRect(hwnd, &r);
        return blank(hdc, 0, 0, r.right - r.left, r.bottom - r.top);
    }
    return real_NtUserPrintWindow(hwnd, hdc, flags);
}

static void screen_win32u_hooks(hook_table *table)
{
    FVM_HOOK(table, "win32u.dll", NtGdiBitBlt);
    FVM_HOOK(table, "win32u.dll", NtGdiStretchBlt);
    FVM_HOOK(table, "win32u.dll", NtGdiMaskBlt);
    FVM_HOOK(table, "win32u.dll", NtGdiPlgBlt);
    FVM_HOOK(table, "win32u.dll", NtGdiTransparentBlt);
    FVM_HOOK(table, "win32u.dll", NtGdiAlphaBlend);
    FVM_HOOK(table, "win32u.dll", NtGdiGetPixel);
    FVM_HOOK(table, "win32u.dll", NtUserPrintWindow);
}

/* win32u.dll is loaded only by programs that use windows or GDI. */
static late_hooks g_late[] = {
    {"win32u.dll", screen_win32u_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer screen_virtualizer = {
    .name = "screen",
    .policy = POLICY_TYPE_SCREEN,
    .late = g_late,
};
