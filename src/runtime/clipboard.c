/* clipboard.c - the box's own clipboard: [desktop] clipboard-in / clipboard-out.
 *
 * The clipboard is one per desktop, shared by every program: what a box
 * copies, the host pastes, and the reverse. The idea: a box writes to a
 * clipboard of its own, and reads the host's only when a rule says so.
 *
 * - Writes. EmptyClipboard and SetClipboardData from a box go to the box's
 *   store, a file in the box folder (clipboard.dat), not to the desktop's
 *   clipboard; the host's clipboard is not even emptied. Every process of
 *   the same box reads them back (and after the writer has ended, as on
 *   Windows); the host and other boxes never see them. `[desktop]`
 *   `open clipboard-out` sends the box's writes to the real clipboard instead. desktop.c refuses
 *   win32u's NtUserEmptyClipboard and NtUserSetClipboardData when it is
 *   closed: the floor under these hooks for a program that calls win32u.
 * - Reads. GetClipboardData, IsClipboardFormatAvailable, CountClipboardFormats,
 *   EnumClipboardFormats, GetPriorityClipboardFormat and GetClipboardOwner
 *   answer from one *view*: the box's store when it holds something (and,
 *   when clipboard-in is open, nothing newer was copied on the host since the
 *   box wrote); the real clipboard when `open clipboard-in` allows reading the
 *   host's, or when the data there is the box's own (written under
 *   clipboard-out); otherwise an empty clipboard, and the refused read is
 *   audited. desktop.c's NtUserGetClipboardData hook stays as the floor under
 *   this: it refuses host data unless clipboard_host_readable().
 * - Formats. The store keeps memory formats (text, CF_DIB, registered
 *   formats: format ids are shared across the desktop); CF_TEXT, CF_OEMTEXT
 *   and CF_UNICODETEXT are converted into one another on read, as Windows
 *   synthesizes them. GDI-handle formats (CF_BITMAP, CF_ENHMETAFILE,
 *   CF_PALETTE, CF_METAFILEPICT) and delayed rendering (a NULL handle) are not
 *   kept: SetClipboardData fails with ERROR_NOT_SUPPORTED for them.
 *
 * The store: a header (magic, change counter, the real clipboard's sequence
 * number when the box wrote, the owner window), a table of (format, size)
 * and the data, at most STORE_MAX bytes; read and rewritten whole under a
 * box-wide mutex (FVM_OBJ_CLIPBOARD_LOCK). The file is the box's, outside its
 * delta: FVM's own files in the box folder are opened past the file
 * virtualizer, which refuses the FVM root to boxed programs.
 *
 * Where: the user32 exports (the edit control's copy and paste call them
 * too). Below them, Wine 8's win32u calls carry marshalling structures of
 * its own; the user32 contract is the documented one. */
#include "runtime/runtime.h"
#include "runtime/file.h"

#define STORE_MAGIC 0x31504c43u   /* "CLP1" */
#define STORE_FORMATS 64
#define STORE_MAX (16u << 20)

typedef struct store_header {
    uint32_t magic;
    uint32_t changes;       /* bumped on every write */
    uint32_t host_seq;      /* the real clipboard's sequence number when the box wrote */
    uint32_t count;
    uint64_t owner;         /* the box window that emptied it */
    struct {
        uint32_t format;
        uint32_t size;
    } entry[STORE_FORMATS];
} store_header;

typedef BOOL (WINAPI *EmptyClipboard_fn)(void);
typedef HANDLE (WINAPI *SetClipboardData_fn)(UINT format, HANDLE data);
typedef HANDLE (WINAPI *GetClipboardData_fn)(UINT format);
typedef BOOL (WINAPI *IsClipboardFormatAvailable_fn)(UINT format);
typedef int (WINAPI *CountClipboardFormats_fn)(void);
typedef UINT (WINAPI *EnumClipboardFormats_fn)(UINT format);
typedef HWND (WINAPI *GetClipboardOwner_fn)(void);
typedef int (WINAPI *GetPriorityClipboardFormat_fn)(UINT *list, int count);
typedef DWORD (WINAPI *GetClipboardSequenceNumber_fn)(void);
typedef HWND (WINAPI *GetOpenClipboardWindow_fn)(void);

static EmptyClipboard_fn real_EmptyClipboard;
static SetClipboardData_fn real_SetClipboardData;
static GetClipboardData_fn real_GetClipboardData;
static IsClipboardFormatAvailable_fn real_IsClipboardFormatAvailable;
static CountClipboardFormats_fn real_CountClipboardFormats;
static EnumClipboardFormats_fn real_EnumClipboardFormats;
static GetClipboardOwner_fn real_GetClipboardOwner;
static GetPriorityClipboardFormat_fn real_GetPriorityClipboardFormat;
static GetClipboardSequenceNumber_fn p_GetClipboardSequenceNumber;
static GetOpenClipboardWindow_fn p_GetOpenClipboardWindow;

/* ---- policy ------------------------------------------------------------------ */

static BOOL rule_open(const uint16_t *name, size_t len, const char *op_if_refused)
{
    DWORD saved = GetLastError();
    policy_decision d;
    policy_action a = runtime_policy_decide(POLICY_TYPE_DESKTOP, name, len, &d);
    if (a == POLICY_ACTION_ASK)
        a = runtime_policy_ask(POLICY_TYPE_DESKTOP, name, len, &d);
    BOOL open = a == POLICY_ACTION_OPEN || a == POLICY_ACTION_READ;
    if ((!open && op_if_refused) || (open && d.audit)) {
        d.audit = 1;
        d.action = open ? a : POLICY_ACTION_DENY;
        runtime_audit(POLICY_TYPE_DESKTOP, open ? "clipboard" : op_if_refused, &d, name, len);
    }
    SetLastError(saved);
    return open;
}

static const uint16_t IN_NAME[] = u"clipboard-in";
static const uint16_t OUT_NAME[] = u"clipboard-out";
#define IN_OPEN(op) rule_open(IN_NAME, 12, (op))
#define OUT_OPEN(op) rule_open(OUT_NAME, 13, (op))

BOOL clipboard_host_readable(void)
{
    return IN_OPEN(NULL);
}

BOOL clipboard_host_writable(void)
{
    return OUT_OPEN(NULL);
}

/* ---- the store --------------------------------------------------------------- */

static HANDLE g_lock;

static BOOL lock_store(void)
{
    if (!g_lock) {
        wchar_t name[FVM_OBJ_NAME_MAX];
        fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_CLIPBOARD_LOCK, name, FVM_OBJ_NAME_MAX);
        runtime_bypass_enter();
        HANDLE h = CreateMutexW(NULL, FALSE, name);
        runtime_bypass_leave();
        if (!h)
            return FALSE;
        if (InterlockedCompareExchangePointer(&g_lock, h, NULL))
            CloseHandle(h);
    }
    DWORD w = WaitForSingleObject(g_lock, 10000);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED;
}

static void unlock_store(void)
{
    ReleaseMutex(g_lock);
}

static HANDLE open_store(BOOL create)
{
    uint16_t nt[FVM_PATH_MAX + 32] = u"\\??\\";
    size_t len = 4;
    const wchar_t *path = g_fvm.config.box_path;
    for (size_t i = 0; path[i] && len < FVM_PATH_MAX + 4; i++)
        nt[len++] = path[i];
    static const wchar_t tail[] = L"\\clipboard.dat";
    for (size_t i = 0; tail[i]; i++)
        nt[len++] = tail[i];
    UNICODE_STRING us = {(USHORT)(len * 2), (USHORT)(len * 2), (PWSTR)nt};
    OBJECT_ATTRIBUTES oa;
    memset(&oa, 0, sizeof oa);
    oa.Length = sizeof oa;
    oa.ObjectName = &us;
    oa.Attributes = OBJ_CASE_INSENSITIVE;
    IO_STATUS_BLOCK io;
    HANDLE h = NULL;
    NtCreateFile_fn create_fn = real_NtCreateFile ? real_NtCreateFile : NtCreateFile;
    if (create_fn(&h, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                  FILE_SHARE_READ | FILE_SHARE_WRITE, create ? FILE_OPEN_IF : FILE_OPEN,
                  FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0) < 0)
        return NULL;
    return h;
}

static BOOL read_at(HANDLE h, DWORD offset, void *buf, DWORD size)
{
    OVERLAPPED ov = {0};
    ov.Offset = offset;
    DWORD got = 0;
    return ReadFile(h, buf, size, &got, &ov) && got == size;
}

static BOOL write_at(HANDLE h, DWORD offset, const void *buf, DWORD size)
{
    OVERLAPPED ov = {0};
    ov.Offset = offset;
    DWORD put = 0;
    return WriteFile(h, buf, size, &put, &ov) && put == size;
}

/* The header; an absent or damaged store reads as empty. Caller holds the lock. */
static void read_header(HANDLE h, store_header *hdr)
{
    if (!h || !read_at(h, 0, hdr, sizeof *hdr) || hdr->magic != STORE_MAGIC || hdr->count > STORE_FORMATS) {
        uint32_t changes = h && hdr->magic == STORE_MAGIC ? hdr->changes : 0;
        memset(hdr, 0, sizeof *hdr);
        hdr->magic = STORE_MAGIC;
        hdr->changes = changes;
    }
}

/* Where entry i's data starts. */
static DWORD data_offset(const store_header *hdr, uint32_t i)
{
    DWORD off = sizeof *hdr;
    for (uint32_t k = 0; k < i; k++)
        off += hdr->entry[k].size;
    return off;
}

/* A consistent snapshot of the header, for the read calls. */
static BOOL snapshot(store_header *hdr)
{
    memset(hdr, 0, sizeof *hdr);
    if (!lock_store())
        return FALSE;
    HANDLE h = open_store(FALSE);
    read_header(h, hdr);
    if (h)
        NtClose(h);
    unlock_store();
    return TRUE;
}

static DWORD host_sequence(void)
{
    if (!p_GetClipboardSequenceNumber) {
        HMODULE user32 = runtime_loaded_module("user32.dll");
        if (user32)
            p_GetClipboardSequenceNumber =
                (GetClipboardSequenceNumber_fn)(void *)GetProcAddress(user32, "GetClipboardSequenceNumber");
    }
    return p_GetClipboardSequenceNumber ? p_GetClipboardSequenceNumber() : 0;
}

static void store_clear(HWND owner)
{
    if (!lock_store())
        return;
    HANDLE h = open_store(TRUE);
    if (h) {
        store_header hdr;
        read_header(h, &hdr);
        uint32_t changes = hdr.changes + 1;
        memset(&hdr, 0, sizeof hdr);
        hdr.magic = STORE_MAGIC;
        hdr.changes = changes;
        hdr.host_seq = host_sequence();
        hdr.owner = (uint64_t)(ULONG_PTR)owner;
        write_at(h, 0, &hdr, sizeof hdr);
        SetFilePointer(h, sizeof hdr, NULL, FILE_BEGIN);
        SetEndOfFile(h);
        NtClose(h);
    }
    unlock_store();
}

/* Adds or replaces one format's data. */
static BOOL store_put(UINT format, const void *data, DWORD size)
{
    if (!lock_store())
        return FALSE;
    BOOL ok = FALSE;
    HANDLE h = open_store(TRUE);
    store_header hdr;
    read_header(h, &hdr);
    DWORD total = data_offset(&hdr, hdr.count);
    uint32_t found = hdr.count;
    for (uint32_t i = 0; i < hdr.count; i++)
        if (hdr.entry[i].format == format)
            found = i;
    DWORD old_size = found < hdr.count ? hdr.entry[found].size : 0;
    if (h && (found < hdr.count || hdr.count < STORE_FORMATS) && total - old_size + size <= STORE_MAX) {
        /* The data after the replaced entry moves; simplest: read it, write it back. */
        DWORD after_off = found < hdr.count ? data_offset(&hdr, found + 1) : total;
        DWORD after_len = total - after_off;
        BYTE *after = after_len ? HeapAlloc(GetProcessHeap(), 0, after_len) : NULL;
        if (!after_len || (after && read_at(h, after_off, after, after_len))) {
            DWORD at = found < hdr.count ? data_offset(&hdr, found) : total;
            if (found < hdr.count) {
                /* drop the old entry, append the new one at the end */
                memmove(&hdr.entry[found], &hdr.entry[found + 1], (hdr.count - found - 1) * sizeof hdr.entry[0]);
                hdr.count--;
                ok = (!after_len || write_at(h, at, after, after_len));
                at += after_len;
            } else {
                ok = TRUE;
            }
            if (ok && size)
                ok = write_at(h, at, data, size);
            if (ok) {
                hdr.entry[hdr.count].format = format;
                hdr.entry[hdr.count].size = size;
                hdr.count++;
                hdr.changes++;
                hdr.host_seq = host_sequence();
                ok = write_at(h, 0, &hdr, sizeof hdr);
                SetFilePointer(h, at + size, NULL, FILE_BEGIN);
                SetEndOfFile(h);
            }
        }
        if (after)
            HeapFree(GetProcessHeap(), 0, after);
    }
    if (h)
        NtClose(h);
    unlock_store();
    return ok;
}

static int find_format(const store_header *hdr, UINT format)
{
    for (uint32_t i = 0; i < hdr->count; i++)
        if (hdr->entry[i].format == format)
            return (int)i;
    return -1;
}

static BOOL is_text(UINT format)
{
    return format == CF_TEXT || format == CF_OEMTEXT || format == CF_UNICODETEXT;
}

/* The entry that answers a read of format: itself, or a text format it is
 * converted from. */
static int source_format(const store_header *hdr, UINT format)
{
    int i = find_format(hdr, format);
    if (i >= 0 || !is_text(format))
        return i;
    static const UINT texts[] = {CF_UNICODETEXT, CF_TEXT, CF_OEMTEXT};
    for (unsigned k = 0; k < 3; k++)
        if ((i = find_format(hdr, texts[k])) >= 0)
            return i;
    return -1;
}

/* GetClipboardData's handles stay the clipboard's: kept here until the
 * store changes (as Windows frees them on the next EmptyClipboard). */
#define HANDLE_CACHE 32
static struct {
    UINT format;
    HGLOBAL mem;
} g_given[HANDLE_CACHE];
static uint32_t g_given_changes;
static SRWLOCK g_given_lock = SRWLOCK_INIT;

static HGLOBAL store_get(UINT format)
{
    HGLOBAL mem = NULL;
    store_header hdr;
    AcquireSRWLockExclusive(&g_given_lock);
    if (!lock_store()) {
        ReleaseSRWLockExclusive(&g_given_lock);
        return NULL;
    }
    HANDLE h = open_store(FALSE);
    read_header(h, &hdr);
    if (hdr.changes != g_given_changes) {
        for (unsigned i = 0; i < HANDLE_CACHE; i++)
            if (g_given[i].mem) {
                GlobalFree(g_given[i].mem);
                g_given[i].mem = NULL;
            }
        g_given_changes = hdr.changes;
    }
    for (unsigned i = 0; i < HANDLE_CACHE && !mem; i++)
        if (g_given[i].mem && g_given[i].format == format)
            mem = g_given[i].mem;
    int at = mem ? -1 : source_format(&hdr, format);
    if (h && at >= 0) {
        DWORD size = hdr.entry[at].size;
        UINT from = hdr.entry[at].format;
        BYTE *raw = HeapAlloc(GetProcessHeap(), 0, size ? size : 1);
        if (raw && read_at(h, data_offset(&hdr, (uint32_t)at), raw, size)) {
            if (from == format || !is_text(format)) {
                mem = GlobalAlloc(GMEM_MOVEABLE, size ? size : 1);
                if (mem)
                    memcpy(GlobalLock(mem), raw, size), GlobalUnlock(mem);
            } else {
                /* text conversion, through UTF-16 */
                UINT cp_from = from == CF_OEMTEXT ? CP_OEMCP : CP_ACP, cp_to = format == CF_OEMTEXT ? CP_OEMCP : CP_ACP;
                int wide_len = from == CF_UNICODETEXT ? (int)(size / 2)
                                                      : MultiByteToWideChar(cp_from, 0, (char *)raw, (int)size, NULL, 0);
                WCHAR *wide = from == CF_UNICODETEXT ? (WCHAR *)raw
                                                     : HeapAlloc(GetProcessHeap(), 0, (wide_len + 1) * sizeof(WCHAR));
                if (wide && from != CF_UNICODETEXT)
                    MultiByteToWideChar(cp_from, 0, (char *)raw, (int)size, wide, wide_len);
                if (wide && format == CF_UNICODETEXT) {
                    mem = GlobalAlloc(GMEM_MOVEABLE, (wide_len + 1) * sizeof(WCHAR));
                    if (mem) {
                        WCHAR *out = GlobalLock(mem);
                        memcpy(out, wide, wide_len * sizeof(WCHAR));
                        out[wide_len] = 0;
                        GlobalUnlock(mem);
                    }
                } else if (wide) {
                    int n = WideCharToMultiByte(cp_to, 0, wide, wide_len, NULL, 0, NULL, NULL);
                    mem = GlobalAlloc(GMEM_MOVEABLE, n + 1);
                    if (mem) {
                        char *out = GlobalLock(mem);
                        WideCharToMultiByte(cp_to, 0, wide, wide_len, out, n, NULL, NULL);
                        out[n] = 0;
                        GlobalUnlock(mem);
                    }
                }
                if (wide && wide != (WCHAR *)raw)
                    HeapFree(GetProcessHeap(), 0, wide);
            }
        }
        if (raw)
            HeapFree(GetProcessHeap(), 0, raw);
        for (unsigned i = 0; i < HANDLE_CACHE && mem; i++)
            if (!g_given[i].mem) {
                g_given[i].format = format;
                g_given[i].mem = mem;
                break;
            }
    }
    if (h)
        NtClose(h);
    unlock_store();
    ReleaseSRWLockExclusive(&g_given_lock);
    return mem;
}

/* ---- the view a box reads ---------------------------------------------------- */

enum { VIEW_EMPTY, VIEW_STORE, VIEW_REAL };

static BOOL owner_is_ours(void)
{
    HWND owner = real_GetClipboardOwner ? real_GetClipboardOwner() : NULL;
    return owner && gui_window_in_box(owner);
}

/* Which clipboard a read sees; op names the refusal to audit when the
 * host's data is hidden (NULL: not audited). */
static int view(store_header *hdr, const char *op)
{
    if (!snapshot(hdr))
        hdr->count = 0;
    BOOL in = IN_OPEN(NULL);
    if (hdr->count && (!in || hdr->host_seq == host_sequence()))
        return VIEW_STORE;
    if (in || owner_is_ours())
        return VIEW_REAL;
    if (op && real_CountClipboardFormats && real_CountClipboardFormats() > 0)
        IN_OPEN(op);   /* audits the refusal */
    return VIEW_EMPTY;
}

/* ---- hooks ------------------------------------------------------------------- */

static BOOL WINAPI box_EmptyClipboard(void)
{
    if (OUT_OPEN("write-clipboard")) {
        BOOL ok = real_EmptyClipboard();
        if (ok)
            store_clear(NULL);
        return ok;
    }
    if (!p_GetOpenClipboardWindow) {
        HMODULE user32 = runtime_loaded_module("user32.dll");
        if (user32)
            p_GetOpenClipboardWindow = (GetOpenClipboardWindow_fn)(void *)GetProcAddress(user32, "GetOpenClipboardWindow");
    }
    store_clear(p_GetOpenClipboardWindow ? p_GetOpenClipboardWindow() : NULL);
    return TRUE;
}

static HANDLE WINAPI box_SetClipboardData(UINT format, HANDLE data)
{
    if (OUT_OPEN(NULL))
        return real_SetClipboardData(format, data);
    if (!data || format == CF_BITMAP || format == CF_ENHMETAFILE || format == CF_PALETTE ||
        format == CF_METAFILEPICT || format == CF_DSPBITMAP || format == CF_DSPENHMETAFILE ||
        format == CF_DSPMETAFILEPICT) {
        SetLastError(ERROR_NOT_SUPPORTED);
        return NULL;
    }
    SIZE_T size = GlobalSize(data);
    const void *bytes = size ? GlobalLock(data) : NULL;
    if (size && !bytes) {
        SetLastError(ERROR_INVALID_HANDLE);
        return NULL;
    }
    BOOL ok = size <= STORE_MAX && store_put(format, bytes, (DWORD)size);
    if (bytes)
        GlobalUnlock(data);
    if (!ok) {
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    /* The clipboard owns the handle now: the data is kept in the store. */
    GlobalFree(data);
    return data;
}

static HANDLE WINAPI box_GetClipboardData(UINT format)
{
    store_header hdr;
    switch (view(&hdr, "read-clipboard")) {
    case VIEW_STORE: {
        HANDLE mem = store_get(format);
        if (!mem)
            SetLastError(ERROR_CLIPBOARD_NOT_OPEN);
        return mem;
    }
    case VIEW_REAL:
        return real_GetClipboardData(format);
    default:
        SetLastError(ERROR_ACCESS_DENIED);
        return NULL;
    }
}

static BOOL WINAPI box_IsClipboardFormatAvailable(UINT format)
{
    store_header hdr;
    switch (view(&hdr, NULL)) {
    case VIEW_STORE:
        return source_format(&hdr, format) >= 0;
    case VIEW_REAL:
        return real_IsClipboardFormatAvailable(format);
    default:
        return FALSE;
    }
}

static int WINAPI box_CountClipboardFormats(void)
{
    store_header hdr;
    switch (view(&hdr, NULL)) {
    case VIEW_STORE:
        return (int)hdr.count;
    case VIEW_REAL:
        return real_CountClipboardFormats();
    default:
        return 0;
    }
}

static UINT WINAPI box_EnumClipboardFormats(UINT format)
{
    store_header hdr;
    switch (view(&hdr, NULL)) {
    case VIEW_STORE: {
        SetLastError(ERROR_SUCCESS);
        if (!format)
            return hdr.count ? hdr.entry[0].format : 0;
        int i = find_format(&hdr, format);
        return i >= 0 && (uint32_t)i + 1 < hdr.count ? hdr.entry[i + 1].format : 0;
    }
    case VIEW_REAL:
        return real_EnumClipboardFormats(format);
    default:
        SetLastError(ERROR_SUCCESS);
        return 0;
    }
}

static HWND WINAPI box_GetClipboardOwner(void)
{
    store_header hdr;
    switch (view(&hdr, NULL)) {
    case VIEW_STORE:
        return (HWND)(ULONG_PTR)hdr.owner;
    case VIEW_REAL:
        return real_GetClipboardOwner();
    default:
        return NULL;
    }
}

static int WINAPI box_GetPriorityClipboardFormat(UINT *list, int count)
{
    store_header hdr;
    switch (view(&hdr, NULL)) {
    case VIEW_STORE:
        if (!hdr.count)
            return 0;
        for (int i = 0; list && i < count; i++)
            if (source_format(&hdr, list[i]) >= 0)
                return (int)list[i];
        return -1;
    case VIEW_REAL:
        return real_GetPriorityClipboardFormat(list, count);
    default:
        return 0;
    }
}

static void clipboard_user32_hooks(hook_table *table)
{
    FVM_HOOK(table, "user32.dll", EmptyClipboard);
    FVM_HOOK(table, "user32.dll", SetClipboardData);
    FVM_HOOK(table, "user32.dll", GetClipboardData);
    FVM_HOOK(table, "user32.dll", IsClipboardFormatAvailable);
    FVM_HOOK(table, "user32.dll", CountClipboardFormats);
    FVM_HOOK(table, "user32.dll", EnumClipboardFormats);
    FVM_HOOK(table, "user32.dll", GetClipboardOwner);
    FVM_HOOK(table, "user32.dll", GetPriorityClipboardFormat);
}

static late_hooks g_late[] = {
    {"user32.dll", clipboard_user32_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer clipboard_virtualizer = {
    .name = "clipboard",
    .policy = POLICY_TYPE_DESKTOP,
    .late = g_late,
};
