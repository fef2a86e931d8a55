/* ownserver_registry.c - the host registry a box's own Wine server loads
 * (cli/ownserver.c).
 *
 * The host registry, saved by the host's server (RegSaveKey), for the box's
 * server to load in place of the prefix's system.reg, user.reg and
 * userdef.reg: the host's server writes those only every 30 s or so (and
 * NtFlushKey does nothing in Wine), so the files can lag behind what host
 * programs see (measured: keys a host program had just added were missing
 * in the box). A hive that cannot be saved keeps the prefix's file.
 *
 * Each run of a box that is not running saves them afresh as
 * <dir>.next.<file>; an init is started from them (they become
 * <dir>.<file>, with <dir>.stamp saying how the init was asked for), and an
 * idle server lingering from the box's last run is kept only while what it
 * was started from is the same, byte for byte (ownserver.c). The saves are
 * edited here for the box's server alone: Wine's optional services
 * delayed, and a nested display's virtual desktop. */
#include "cli/ownserver.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    HKEY root;
    const wchar_t *sub;
    const char *file;
} g_hives[] = {{HKEY_LOCAL_MACHINE, NULL, "system.reg"},
               {HKEY_CURRENT_USER, NULL, "user.reg"},
               {HKEY_USERS, L".Default", "userdef.reg"}};

BOOL own_hive_copy_path(const box *b, const char *stage, int i, wchar_t *out)
{
    wchar_t dir[FVM_PATH_MAX];
    if (!fvm_box_server_dir(b->path, dir, FVM_PATH_MAX))
        return FALSE;
    _snwprintf(out, FVM_PATH_MAX, L"%ls.%hs%hs", dir, stage, i < OWN_HIVES ? g_hives[i].file : "stamp");
    out[FVM_PATH_MAX - 1] = 0;
    return TRUE;
}

/* The first line of text at or after `from` that starts, case aside, with
 * `line`; NULL if none. */
static char *find_line(char *text, char *from, const char *line)
{
    size_t n = strlen(line);
    for (char *at = from; at && *at; at = strchr(at, '\n') ? strchr(at, '\n') + 1 : NULL)
        if ((at == text || at[-1] == '\n') && !_strnicmp(at, line, n))
            return at;
    return NULL;
}

/* Every process of a new Wine server waits for wineboot, and wineboot for
 * services.exe, which signals only when it has started every auto-start
 * service. In the box's server PlugPlay (device notifications) and the
 * event log (svchost) are made delayed auto-start services, started 1 ms
 * after that signal (AutoStartDelay, which services.exe reads), while the
 * box's first program starts; the drivers (mountmgr, nsiproxy, ndis) are
 * still waited for, since programs need them from their first instruction.
 * This edits the copy of the host's HKLM the box's server loads (the host's
 * registry is not touched); the same edit of the same save gives the same
 * text, so an unchanged host registry still compares equal (same_file).
 * Measured: docs/design.md, "The default". */
static void delay_optional_services(const wchar_t *path)
{
    static const char *const keys[] = {"[System\\\\CurrentControlSet\\\\Services\\\\PlugPlay]",
                                       "[System\\\\CurrentControlSet\\\\Services\\\\Eventlog]"};
    static const char delayed[] = "\"DelayedAutostart\"=dword:00000001\n";
    static const char control[] = "\n[System\\\\CurrentControlSet\\\\Control]\n\"AutoStartDelay\"=dword:00000001\n";
    DWORD len = 0;
    char *text = own_read_whole(path, &len);
    if (!text)
        return;
    text[len] = 0;
    char *insert[2];
    int inserts = 0;
    for (int i = 0; i < 2; i++) {
        char *key = find_line(text, text, keys[i]);
        if (!key)
            continue;
        char *at = strchr(key, '\n');
        at = at ? at + 1 : text + len;
        while (*at == '#' && strchr(at, '\n'))   /* #time= and the like stay first */
            at = strchr(at, '\n') + 1;
        char *end = strstr(at, "\n\n");
        BOOL has = FALSE;
        for (char *v = at; v && *v && (!end || v < end); v = strchr(v, '\n') ? strchr(v, '\n') + 1 : NULL)
            has |= !_strnicmp(v, "\"DelayedAutostart\"=", 19);
        if (!has)
            insert[inserts++] = at;
    }
    if (inserts == 2 && insert[1] < insert[0]) {
        char *t = insert[0];
        insert[0] = insert[1];
        insert[1] = t;
    }
    BOOL add_control = !strstr(text, "\"AutoStartDelay\"=");
    if (!inserts && !add_control) {
        HeapFree(GetProcessHeap(), 0, text);
        return;
    }
    HANDLE f = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (f != INVALID_HANDLE_VALUE) {
        DWORD put;
        char *from = text;
        BOOL ok = TRUE;
        for (int i = 0; i < inserts; i++) {
            ok &= WriteFile(f, from, (DWORD)(insert[i] - from), &put, NULL) &&
                  WriteFile(f, delayed, (DWORD)strlen(delayed), &put, NULL);
            from = insert[i];
        }
        ok &= WriteFile(f, from, (DWORD)(text + len - from), &put, NULL);
        if (add_control)
            ok &= WriteFile(f, control, (DWORD)strlen(control), &put, NULL);
        CloseHandle(f);
        if (!ok)
            DeleteFileW(path);   /* the box's server then loads the prefix's file, as when the save fails */
    }
    HeapFree(GetProcessHeap(), 0, text);
}

/* A box with a nested display (ownserver_display.c) shows its windows in
 * one window of the user's display, where no window manager draws their
 * frames: its server's desktop is made a Wine virtual desktop the size of
 * the nested screen instead (Explorer\Desktop and Desktops, what winecfg's
 * "Emulate a virtual desktop" writes), which draws them as Windows does, so
 * they can be moved, sized and closed. Appended to the copy of the host's
 * HKCU the box's server loads (a later section's values win): the host's
 * registry is not touched, and the same save gives the same text. */
static void nest_desktop(const wchar_t *path)
{
    static const char sections[] = OWN_NESTED_DESKTOP_SECTIONS;
    HANDLE f = CreateFileW(path, FILE_APPEND_DATA, 0, NULL, OPEN_EXISTING, 0, NULL);
    DWORD put = 0;
    BOOL ok = f != INVALID_HANDLE_VALUE && WriteFile(f, sections, (DWORD)strlen(sections), &put, NULL) &&
              put == strlen(sections);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    if (!ok)
        DeleteFileW(path);   /* the box's server then loads the prefix's file, as when the save fails */
}

void own_save_host_registry(const box *b)
{
    /* SeBackupPrivilege, which RegSaveKey wants on Windows (Wine does not ask). */
    HANDLE token;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES, &token)) {
        TOKEN_PRIVILEGES tp = {1, {{{0, 0}, SE_PRIVILEGE_ENABLED}}};
        if (LookupPrivilegeValueW(NULL, L"SeBackupPrivilege", &tp.Privileges[0].Luid))
            AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL);
        CloseHandle(token);
    }
    wchar_t copy[FVM_PATH_MAX];
    for (int i = 0; i < OWN_HIVES; i++) {
        if (!own_hive_copy_path(b, "next.", i, copy))
            return;
        DeleteFileW(copy);
        HKEY key = g_hives[i].root;
        LONG r = ERROR_SUCCESS;
        if (g_hives[i].sub)
            r = RegOpenKeyExW(g_hives[i].root, g_hives[i].sub, 0, KEY_READ, &key);
        if (r == ERROR_SUCCESS)
            r = RegSaveKeyW(key, copy, NULL);
        if (r == ERROR_SUCCESS && g_hives[i].root == HKEY_LOCAL_MACHINE)
            delay_optional_services(copy);
        if (r == ERROR_SUCCESS && g_hives[i].root == HKEY_CURRENT_USER && fvm_box_display_nested(b->path))
            nest_desktop(copy);
        if (r != ERROR_SUCCESS) {
            /* Not fatal: the box's server then loads the prefix's file, as
             * the host's server last wrote it (up to ~30 s old). Said,
             * since the box may miss a recent host change. */
            DeleteFileW(copy);
            fprintf(stderr, "fvm: box '%s': cannot save the host registry's %s for the box's Wine server "
                            "(error %ld); it sees that hive as last written to disk\n", b->name, g_hives[i].file,
                    (long)r);
        }
        if (key != g_hives[i].root)
            RegCloseKey(key);
    }
}

/* The whole of a small file (up to 64 MiB) on the heap; NULL if absent. */
char *own_read_whole(const wchar_t *path, DWORD *len)
{
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return NULL;
    DWORD size = GetFileSize(f, NULL), got = 0;
    char *data = size <= (64u << 20) ? HeapAlloc(GetProcessHeap(), 0, size + 1) : NULL;
    BOOL ok = data && (size == 0 || ReadFile(f, data, size, &got, NULL)) && got == size;
    CloseHandle(f);
    if (!ok) {
        if (data)
            HeapFree(GetProcessHeap(), 0, data);
        return NULL;
    }
    *len = size;
    return data;
}

/* Whether two files hold the same bytes, or both are absent. */
BOOL own_same_file(const wchar_t *a, const wchar_t *b)
{
    DWORD la = 0, lb = 0;
    char *da = own_read_whole(a, &la), *db = own_read_whole(b, &lb);
    BOOL same = (!da && !db) || (da && db && la == lb && !memcmp(da, db, la));
    if (da)
        HeapFree(GetProcessHeap(), 0, da);
    if (db)
        HeapFree(GetProcessHeap(), 0, db);
    return same;
}

const char *own_hive_file(int i)
{
    return i >= 0 && i < OWN_HIVES ? g_hives[i].file : "stamp";
}
