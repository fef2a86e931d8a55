/* file_box.c - what the file virtualizer resolves once per process (where
 * the box and the FVM root are) and keeps once per thread (the scratch its
 * calls work in: ntpath structures are 64 KiB each, too large for the stack
 * of an arbitrary thread). */
#include "runtime/file.h"

ntpath g_box_root;             /* \??\C:\FVM\boxes\NAME */
ntpath g_fvm_root;      /* \??\C:\FVM: the storage of every box */
BOOL g_paths_ready;

/* Each thread keeps one scratch in its block; a call that re-enters on the
 * same thread (a hook calling a hooked function) gets a private one. */
file_scratch *scratch_acquire(void)
{
    fvm_thread *t = fvm_thread_get();
    if (!t)
        return NULL;
    file_scratch *s = t->file_scratch;
    if (!s) {
        s = HeapAlloc(GetProcessHeap(), 0, sizeof *s);
        if (!s)
            return NULL;
        s->in_use = FALSE;
        memset(s->resolved, 0, sizeof s->resolved);
        s->resolved_next = 0;
        t->file_scratch = s;
    }
    if (s->in_use) {   /* re-entered on this thread: use a private one */
        file_scratch *mine = HeapAlloc(GetProcessHeap(), 0, sizeof *s);
        if (mine) {
            memset(mine->resolved, 0, sizeof mine->resolved);
            mine->resolved_next = 0;
            mine->open_access = 0;
            mine->open_share = 0;
        }
        return mine;
    }
    s->in_use = TRUE;
    s->open_access = 0;   /* set by the opens that decide with them */
    s->open_share = 0;
    return s;
}

void scratch_release(file_scratch *s)
{
    fvm_thread *t = fvm_thread_peek();
    if (t && s == t->file_scratch)
        s->in_use = FALSE;
    else
        HeapFree(GetProcessHeap(), 0, s);
}

void file_thread_detach(fvm_thread *t)
{
    if (t->file_scratch) {
        HeapFree(GetProcessHeap(), 0, t->file_scratch);
        t->file_scratch = NULL;
    }
}

BOOL file_paths_start(void)
{
    static const ntpath_context win32 = {.input = NTPATH_INPUT_WIN32};
    fvm_error err;
    const wchar_t *box = g_fvm.config.box_path;
    size_t len = fvm_wcslen(box);
    if (ntpath_normalize((const uint16_t *)box, len, &win32, &g_box_root, &err) != FVM_OK ||
        g_box_root.kind != NTPATH_KIND_DRIVE) {
        fvm_report("file: the box folder is not a drive path: %s", err.message);
        return FALSE;
    }
    /* The FVM root is two levels up: <root>\boxes\<name>. */
    size_t cut = len;
    for (int level = 0; level < 2 && cut; level++) {
        while (cut && box[cut - 1] != L'\\')
            cut--;
        if (cut)
            cut--;
    }
    if (ntpath_normalize((const uint16_t *)box, cut, &win32, &g_fvm_root, &err) != FVM_OK) {
        fvm_report("file: cannot derive the FVM root: %s", err.message);
        return FALSE;
    }
    g_paths_ready = TRUE;
    return TRUE;
}

