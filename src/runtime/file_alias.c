/* file_alias.c - one name for one file across the platform's drives
 * (issue 17 item 5).
 *
 * Under Wine a drive letter is a Unix folder (the prefix's dosdevices), and
 * Z: is the Unix root: every file of C: has a second name under Z:
 * ("Z:\<prefix>\drive_c\secret\x" is "C:\secret\x"), and so has every box's
 * storage. Policy rules and the FVM-root check are made on canonical names,
 * so a path on any drive but C: is first given the name Wine itself would
 * give that file: the drive's Unix path (wine_get_unix_file_name: letter
 * case and dosdevices links resolved as Wine opens it) turned back into a DOS
 * path (wine_get_dos_file_name, which picks the deepest drive whose root
 * contains the file, comparing folders by device and inode). For a path
 * whose last folders do not exist yet, the deepest existing folder is
 * translated and the rest appended. A name Wine can only express as a Unix
 * path ("\\?\unix\...") is refused by the caller.
 *
 * Limits: C: is taken as canonical without a round trip (a drive mapped
 * inside C: is not folded into C:); a Unix symbolic link elsewhere that
 * points into drive_c is not followed (only Wine's drive roots are compared).
 * On Windows the functions are absent and nothing changes. */
#include "runtime/file.h"

typedef char *(CDECL *unix_name_fn)(LPCWSTR);
typedef WCHAR *(CDECL *dos_name_fn)(LPCSTR);

static unix_name_fn g_unix_name;
static dos_name_fn g_dos_name;
static volatile LONG g_alias_state;   /* 0 not looked up, 1 looking, 2 ready */

static BOOL alias_functions(void)
{
    if (g_alias_state == 2)
        return g_unix_name && g_dos_name;
    if (InterlockedCompareExchange(&g_alias_state, 1, 0) == 0) {
        HMODULE kernel32 = runtime_loaded_module("kernel32.dll");
        if (kernel32) {
            g_unix_name = (unix_name_fn)(void *)GetProcAddress(kernel32, "wine_get_unix_file_name");
            g_dos_name = (dos_name_fn)(void *)GetProcAddress(kernel32, "wine_get_dos_file_name");
        }
        InterlockedExchange(&g_alias_state, 2);
    }
    while (g_alias_state != 2)
        SwitchToThread();
    return g_unix_name && g_dos_name;
}

/* The DOS name Wine gives the file at the Win32 path w (NUL-terminated,
 * modified in place while looking for an existing folder). Writes the
 * result, the missing tail appended, into out (cap units); 0 on failure. */
static size_t dos_name_of(uint16_t *w, size_t len, uint16_t *out, size_t cap)
{
    size_t cut = len;
    char *unix_name = NULL;
    for (int tries = 0; tries < 64; tries++) {
        uint16_t saved = w[cut];
        w[cut] = 0;
        unix_name = g_unix_name((LPCWSTR)w);
        w[cut] = saved;
        if (unix_name)
            break;
        while (cut > 3 && w[cut - 1] != L'\\')   /* up one folder, never above "X:\" */
            cut--;
        if (cut <= 3)
            return 0;
        cut--;
    }
    if (!unix_name)
        return 0;
    WCHAR *dos = g_dos_name(unix_name);
    HeapFree(GetProcessHeap(), 0, unix_name);
    if (!dos)
        return 0;
    size_t n = 0;
    while (dos[n])
        n++;
    size_t tail = len - cut;
    if (n + tail + 1 > cap) {
        HeapFree(GetProcessHeap(), 0, dos);
        return 0;
    }
    memcpy(out, dos, n * 2);
    HeapFree(GetProcessHeap(), 0, dos);
    if (n && out[n - 1] == L'\\' && tail && w[cut] == L'\\')
        n--;   /* "C:\" + "\x" */
    memcpy(out + n, w + cut, tail * 2);
    out[n + tail] = 0;
    return n + tail;
}

/* The last answers of dos_name_of, by the name asked (case-insensitive).
 * Each answer costs Wine a folder walk with several server requests per
 * component (about 36 for a program six folders down on Z:), and a process
 * asks again and again for the same few names: its own image, its folder,
 * the programs it starts. The answer depends on which folders of the name
 * are the roots of drives, which changes only when a drive is added or
 * moved, not while a program runs; a boxed program cannot move a drive's
 * root (the floor lets it write only its box folder). */
#define ALIAS_CACHE_SLOTS 32
#define ALIAS_CACHE_UNITS 260

typedef struct alias_cached {
    uint16_t asked[ALIAS_CACHE_UNITS];
    uint16_t answer[ALIAS_CACHE_UNITS];
} alias_cached;

/* The lengths apart from the names: a lookup reads one cache line of them
 * and touches only a slot whose length matches. With the lengths in the
 * slots, every lookup read a word of each of the 33 KiB's nine pages, and
 * a process's first touch of a page is a fault, ~10 us on this machine
 * (a PVM guest): 9 faults per process that names a file off C:. */
static uint16_t g_alias_asked_len[ALIAS_CACHE_SLOTS], g_alias_answer_len[ALIAS_CACHE_SLOTS];
static alias_cached g_alias_cache[ALIAS_CACHE_SLOTS];
static unsigned g_alias_next;   /* the slot the next answer replaces */
static SRWLOCK g_alias_lock = SRWLOCK_INIT;

static BOOL same_name(const uint16_t *a, const uint16_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (fvm_wupcase(a[i]) != fvm_wupcase(b[i]))
            return FALSE;
    return TRUE;
}

static size_t alias_cache_find(const uint16_t *asked, size_t len, uint16_t *out, size_t cap)
{
    size_t found = 0;
    if (len >= ALIAS_CACHE_UNITS)
        return 0;
    AcquireSRWLockShared(&g_alias_lock);
    for (unsigned i = 0; i < ALIAS_CACHE_SLOTS && !found; i++) {
        if (g_alias_asked_len[i] != len || g_alias_answer_len[i] >= cap)
            continue;
        const alias_cached *c = &g_alias_cache[i];
        if (same_name(c->asked, asked, len)) {
            memcpy(out, c->answer, g_alias_answer_len[i] * 2);
            out[g_alias_answer_len[i]] = 0;
            found = g_alias_answer_len[i];
        }
    }
    ReleaseSRWLockShared(&g_alias_lock);
    return found;
}

static void alias_cache_keep(const uint16_t *asked, size_t len, const uint16_t *answer, size_t answer_len)
{
    if (!len || len >= ALIAS_CACHE_UNITS || !answer_len || answer_len >= ALIAS_CACHE_UNITS)
        return;
    AcquireSRWLockExclusive(&g_alias_lock);
    unsigned slot = g_alias_next++ % ALIAS_CACHE_SLOTS;
    alias_cached *c = &g_alias_cache[slot];
    g_alias_asked_len[slot] = (uint16_t)len;
    g_alias_answer_len[slot] = (uint16_t)answer_len;
    memcpy(c->asked, asked, len * 2);
    memcpy(c->answer, answer, answer_len * 2);
    ReleaseSRWLockExclusive(&g_alias_lock);
}

BOOL file_alias_canonical(file_scratch *s)
{
    if (s->path.kind != NTPATH_KIND_DRIVE || s->path.drive == 'C' || !alias_functions())
        return TRUE;
    /* "\??\Z:\a\b" -> "Z:\a\b" (the box copy buffer is scratch until the
     * caller maps the path). */
    uint16_t *win32 = s->box;
    size_t len = s->path.len - 4;
    if (len + 1 > NTPATH_MAX_UNITS)
        return FALSE;
    memcpy(win32, s->path.path + 4, len * 2);
    win32[len] = 0;
    if (len == 2) {   /* "Z:" alone is the root folder */
        win32[len++] = L'\\';
        win32[len] = 0;
    }
    uint16_t *dos = HeapAlloc(GetProcessHeap(), 0, (NTPATH_MAX_UNITS + 1) * 2);
    if (!dos)
        return FALSE;
    size_t n = alias_cache_find(win32, len, dos, NTPATH_MAX_UNITS + 1);
    if (!n) {
        uint16_t *asked = HeapAlloc(GetProcessHeap(), 0, (len + 1) * 2);
        if (asked)
            memcpy(asked, win32, (len + 1) * 2);   /* dos_name_of writes into win32 */
        n = dos_name_of(win32, len, dos, NTPATH_MAX_UNITS + 1);
        if (asked && n)
            alias_cache_keep(asked, len, dos, n);
        HeapFree(GetProcessHeap(), 0, asked);
    }
    BOOL ok = FALSE;
    fvm_error err;
    static const ntpath_context any = {.input = NTPATH_INPUT_ANY};
    if (n && ntpath_normalize(dos, n, &any, &s->dir, &err) == FVM_OK) {
        ok = TRUE;
        if (s->dir.kind != NTPATH_KIND_DRIVE || s->dir.drive != s->path.drive) {
            /* Another name for the file: the canonical one, with the stream
             * of the original. */
            size_t stream_len = s->path.stream_len;
            uint16_t stream[NTPATH_STREAM_MAX_UNITS + 1];
            memcpy(stream, s->path.stream, (stream_len + 1) * 2);
            memcpy(&s->path, &s->dir, sizeof s->dir);
            s->path.stream_len = stream_len;
            memcpy(s->path.stream, stream, (stream_len + 1) * 2);
            if (stream_len)
                s->path.flags |= NTPATH_FLAG_STREAM;
        }
    }
    HeapFree(GetProcessHeap(), 0, dos);
    return ok;
}
