/* registry.c - persistence of the box's registry delta.
 *
 * While the box runs, its registry delta is the live key tree
 * \REGISTRY\USER\FVM.<h> (common/regstore.h), which boxed processes change
 * directly; between runs it is <box>\registry.dat (core/regfile.h). The
 * broker is the only writer of the file:
 *  - at start, if there is no live tree it creates one and loads the file
 *    into it; if there is one, a previous broker died and the tree is newer
 *    than the file, so it is kept as it is;
 *  - while the box runs, a watcher thread waits for change notifications on
 *    the whole tree and, 200 ms after the last change, dumps the tree and
 *    replaces the file (atomically) if the text differs from what the file
 *    holds, so a killed broker loses at most the last moment of changes;
 *  - at exit (under the box lock, after the last process ended) it saves
 *    once more and deletes the live tree, unless that save failed.
 * An empty tree is never written: a box that never touched the registry has
 * no registry.dat, and one whose changes were all undone loses its file. */
#include <windows.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/regstore.h"

#define SAVE_DELAY_MS 200

static HANDLE g_tree;
static wchar_t g_file[FVM_PATH_MAX];
static regfile_buf g_saved;        /* the file's text as last read or written */
static BOOL g_file_exists;
static CRITICAL_SECTION g_save_lock;
static HANDLE g_changed, g_stop, g_watcher;

/* Writes the tree to the file if it differs from it; TRUE when the file
 * now matches the tree. */
static BOOL save_tree(void)
{
    regfile_buf text = {0};
    BOOL empty = FALSE, ok = TRUE;
    fvm_error err;
    EnterCriticalSection(&g_save_lock);
    if (regstore_dump(g_tree, &text, &empty, &err) != FVM_OK) {
        ok = FALSE;
    } else if (empty) {
        if (g_file_exists && !DeleteFileW(g_file) && GetLastError() != ERROR_FILE_NOT_FOUND)
            ok = FALSE;
        else {
            g_file_exists = FALSE;
            regfile_buf_free(&g_saved);
        }
    } else if (!g_file_exists || text.len != g_saved.len || memcmp(text.data, g_saved.data, text.len)) {
        if (regstore_write_file(g_file, text.data, text.len, &err) == FVM_OK) {
            regfile_buf_free(&g_saved);
            g_saved = text;
            text.data = NULL;
            g_file_exists = TRUE;
        } else {
            ok = FALSE;
        }
    }
    regfile_buf_free(&text);
    LeaveCriticalSection(&g_save_lock);
    return ok;
}

static BOOL arm_notification(void)
{
    return RegNotifyChangeKeyValue((HKEY)g_tree, TRUE, REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                                   g_changed, TRUE) == ERROR_SUCCESS;
}

/* Saves SAVE_DELAY_MS after the last change of a burst. */
static DWORD WINAPI watch_tree(void *arg)
{
    HANDLE waits[2] = {g_stop, g_changed};
    for (;;) {
        if (WaitForMultipleObjects(2, waits, FALSE, INFINITE) != WAIT_OBJECT_0 + 1)
            return 0;
        /* Re-armed before the dump: a change made after it is noticed. */
        for (;;) {
            arm_notification();
            DWORD w = WaitForMultipleObjects(2, waits, FALSE, SAVE_DELAY_MS);
            if (w == WAIT_OBJECT_0)
                return 0;
            if (w != WAIT_OBJECT_0 + 1)
                break;
        }
        if (!save_tree())
            SetEvent(g_changed);   /* try again after the next delay */
    }
}

int broker_registry_start(const wchar_t *box_path)
{
    InitializeCriticalSection(&g_save_lock);
    regstore_file_path(box_path, g_file, FVM_PATH_MAX);
    BOOL kept = FALSE;
    NTSTATUS st = regstore_open_tree(box_path, KEY_ALL_ACCESS, &g_tree);
    if (st == STATUS_OBJECT_NAME_NOT_FOUND) {
        char *text;
        size_t len;
        fvm_error err;
        fvm_status fs = regstore_read_file(g_file, &text, &len, &err);
        if (fs != FVM_OK && fs != FVM_E_NOTFOUND)
            return BROKER_EXIT_REGISTRY_FILE;
        BOOL created;
        if (regstore_create_tree(box_path, &g_tree, &created) < 0) {
            free(text);
            return BROKER_EXIT_REGISTRY_TREE;
        }
        if (fs == FVM_OK) {
            /* A file that cannot be loaded is refused, not overwritten:
             * `fvm diff` names the line and column of the problem. */
            if (regstore_load(g_tree, text, len, &err) != FVM_OK) {
                free(text);
                regstore_delete_tree(g_tree);
                CloseHandle(g_tree);
                return BROKER_EXIT_REGISTRY_FILE;
            }
            g_file_exists = TRUE;
            g_saved.data = text;
            g_saved.len = g_saved.cap = len;
        }
    } else if (st < 0) {
        return BROKER_EXIT_REGISTRY_TREE;
    } else {
        kept = TRUE;
        g_file_exists = GetFileAttributesW(g_file) != INVALID_FILE_ATTRIBUTES;
    }
    g_changed = CreateEventW(NULL, FALSE, FALSE, NULL);
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!g_changed || !g_stop || !arm_notification())
        return BROKER_EXIT_REGISTRY_WATCH;
    /* A tree kept from a broker that died may hold changes the file lacks. */
    if (kept)
        SetEvent(g_changed);
    g_watcher = CreateThread(NULL, 0, watch_tree, NULL, 0, NULL);
    return g_watcher ? 0 : BROKER_EXIT_REGISTRY_WATCH;
}

void broker_registry_stop(void)
{
    if (!g_watcher)
        return;
    SetEvent(g_stop);
    WaitForSingleObject(g_watcher, 5000);
    if (save_tree())
        regstore_delete_tree(g_tree);
    CloseHandle(g_tree);
    g_tree = NULL;
}
