/* commitcopy.c - copies ahead for a commit that lands files by copying.
 *
 * Where box and host are on different volumes (or FVM_COMMIT_COPY=1), each
 * file a commit lands is copied next to its host file (X.fvm-commit) and
 * that copy renamed over X, one journal step after another (commit.c,
 * land_file). Copying is most of the time, and one CopyFileExW keeps one
 * core busy; so a second thread copies the files of later steps while the
 * commit's own thread copies and lands the current one. Only the copying
 * runs ahead: every rename, security change, index change and journal line
 * still happens on the commit's thread, in journal order.
 *
 * Crash safety is the journal's, unchanged: a copy made ahead is only a
 * X.fvm-commit file, which the step that lands X deletes and makes again
 * when it was not made in this run (a kill leaves it behind, a resumed
 * commit redoes it). Copies made ahead that no step took (the commit
 * stopped on an error) are deleted at the end.
 *
 * Both threads take items from one list in order: each item is claimed
 * once (an interlocked exchange), by the helper or by the commit's thread.
 * When the commit's thread needs an item the helper is still copying, it
 * copies the next unclaimed one meanwhile instead of waiting, so the two
 * stay side by side rather than one behind the other. */
#include "cli/cli.h"

#include <stdlib.h>

enum { UNCLAIMED, COPYING, MADE, NOT_MADE, TAKEN };

typedef struct copy_item {
    wchar_t *from, *to;
    volatile LONG state;
} copy_item;

struct copy_ahead {
    copy_item *items;
    size_t count, cap;
    volatile LONG stop;
    SRWLOCK lock;
    CONDITION_VARIABLE settled;   /* an item became MADE or NOT_MADE */
    HANDLE helper;
};

copy_ahead *copy_ahead_new(void)
{
    copy_ahead *ca = calloc(1, sizeof *ca);
    if (ca) {
        InitializeSRWLock(&ca->lock);
        InitializeConditionVariable(&ca->settled);
    }
    return ca;
}

BOOL copy_ahead_add(copy_ahead *ca, const wchar_t *from, const wchar_t *to)
{
    if (ca->count == ca->cap) {
        size_t cap = ca->cap ? ca->cap * 2 : 16;
        copy_item *grown = realloc(ca->items, cap * sizeof *grown);
        if (!grown)
            return FALSE;
        ca->items = grown;
        ca->cap = cap;
    }
    copy_item *it = &ca->items[ca->count];
    it->from = _wcsdup(from);
    it->to = _wcsdup(to);
    it->state = UNCLAIMED;
    if (!it->from || !it->to) {
        free(it->from);
        free(it->to);
        return FALSE;
    }
    ca->count++;
    return TRUE;
}

/* Copies an item this thread claimed. A copy left by a killed run is
 * replaced; a folder that does not exist yet is left to the step (it makes
 * the folders, in its turn). */
static void copy_item_now(copy_ahead *ca, copy_item *it)
{
    LONG result = NOT_MADE;
    wchar_t dir[FVM_PATH_MAX];
    wcsncpy(dir, it->to, FVM_PATH_MAX - 1);
    dir[FVM_PATH_MAX - 1] = 0;
    wchar_t *slash = wcsrchr(dir, L'\\');
    if (slash)
        *slash = 0;
    DWORD dir_attributes = GetFileAttributesW(dir);
    if (slash && dir_attributes != INVALID_FILE_ATTRIBUTES && (dir_attributes & FILE_ATTRIBUTE_DIRECTORY)) {
        if (GetFileAttributesW(it->to) != INVALID_FILE_ATTRIBUTES) {
            SetFileAttributesW(it->to, FILE_ATTRIBUTE_NORMAL);
            DeleteFileW(it->to);
        }
        BOOL cancel = FALSE;
        if (CopyFileExW(it->from, it->to, NULL, NULL, &cancel, 0))
            result = MADE;
        else
            DeleteFileW(it->to);   /* the step copies again and reports the error */
    }
    AcquireSRWLockExclusive(&ca->lock);
    it->state = result;
    ReleaseSRWLockExclusive(&ca->lock);
    WakeAllConditionVariable(&ca->settled);
}

/* Claims and copies the first unclaimed item at or after from; FALSE when none is left. */
static BOOL copy_next(copy_ahead *ca, size_t from)
{
    for (size_t i = from; i < ca->count && !ca->stop; i++) {
        if (InterlockedCompareExchange(&ca->items[i].state, COPYING, UNCLAIMED) == UNCLAIMED) {
            copy_item_now(ca, &ca->items[i]);
            return TRUE;
        }
    }
    return FALSE;
}

static DWORD WINAPI helper_main(void *arg)
{
    copy_ahead *ca = arg;
    while (copy_next(ca, 0))
        ;
    return 0;
}

void copy_ahead_begin(copy_ahead *ca)
{
    if (ca->count > 1)
        ca->helper = CreateThread(NULL, 0, helper_main, ca, 0, NULL);   /* none: every step copies for itself */
}

static copy_item *find(copy_ahead *ca, const wchar_t *to, size_t *index)
{
    for (size_t i = 0; i < ca->count; i++)
        if (!_wcsicmp(ca->items[i].to, to)) {
            *index = i;
            return &ca->items[i];
        }
    return NULL;
}

BOOL copy_ahead_take(copy_ahead *ca, const wchar_t *to)
{
    size_t index;
    copy_item *it = ca ? find(ca, to, &index) : NULL;
    if (!it)
        return FALSE;
    if (InterlockedCompareExchange(&it->state, TAKEN, UNCLAIMED) == UNCLAIMED)
        return FALSE;   /* not started: the step copies it, while the helper copies a later one */
    /* The helper is copying it: copy a later one meanwhile, then wait. */
    while (it->state == COPYING && copy_next(ca, index + 1))
        ;
    AcquireSRWLockExclusive(&ca->lock);
    while (it->state == COPYING)
        SleepConditionVariableSRW(&ca->settled, &ca->lock, INFINITE, 0);
    BOOL made = it->state == MADE;
    it->state = TAKEN;
    ReleaseSRWLockExclusive(&ca->lock);
    return made;
}

void copy_ahead_end(copy_ahead *ca)
{
    if (!ca)
        return;
    ca->stop = 1;
    if (ca->helper) {
        WaitForSingleObject(ca->helper, INFINITE);
        CloseHandle(ca->helper);
    }
    for (size_t i = 0; i < ca->count; i++) {
        if (ca->items[i].state == MADE) {   /* made for a step that did not run */
            SetFileAttributesW(ca->items[i].to, FILE_ATTRIBUTE_NORMAL);
            DeleteFileW(ca->items[i].to);
        }
        free(ca->items[i].from);
        free(ca->items[i].to);
    }
    free(ca->items);
    free(ca);
}
