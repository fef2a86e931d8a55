/* file_notify.c - folder change notifications in the box's view.
 *
 * A program watches a folder (NtNotifyChangeDirectoryFile, behind
 * ReadDirectoryChangesW and FindFirstChangeNotification) through the handle
 * it opened. A host folder the box has not touched is opened as the host's,
 * but every change the box makes inside it lands in the folder's box copy,
 * so a watch on the host handle would never fire for the box's own changes
 * (issue 18, F128). The watch is therefore made on the box copy: on the
 * first notify call through a handle to a host folder that the policy
 * copies on write, the folder is copied up (an empty box folder merged over
 * the host's: the program's view is unchanged), a handle of FVM's own to
 * the box copy is opened in the same synchronous mode, kept with the
 * program's handle (closed with it), and every notify call through the
 * program's handle is made on it, with the program's event, APC, status
 * block and buffer: the box's changes are reported as the host reports its
 * own, with the same names. Not seen, so: changes host programs make in the
 * host folder while the box watches; a completion port associated with the
 * program's handle, and a wait on the handle itself, are not signalled
 * (the I/O runs on FVM's handle); cancelling through the program's handle
 * does not reach it. */
#include "runtime/file.h"

typedef NTSTATUS (NTAPI *NtNotifyChangeDirectoryFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK,
                                                         PVOID, ULONG, ULONG, BOOLEAN);
typedef NTSTATUS (NTAPI *NtNotifyChangeDirectoryFileEx_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID,
                                                           PIO_STATUS_BLOCK, PVOID, ULONG, ULONG, BOOLEAN, ULONG);
static NtNotifyChangeDirectoryFile_fn real_NtNotifyChangeDirectoryFile;
static NtNotifyChangeDirectoryFileEx_fn real_NtNotifyChangeDirectoryFileEx;

#define FILE_MODE_INFORMATION_CLASS 16
#define MODE_SYNC_MASK (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)

static void copy_watch(void *data, void *ctx)
{
    *(HANDLE *)ctx = (HANDLE)data;
}

/* The box copy's handle a watch through handle goes to, or NULL: the
 * program's handle itself is watched (a box folder already, a folder the
 * policy opens or only reads, no folder, or no box copy could be made). */
static HANDLE watch_handle(HANDLE handle)
{
    HANDLE watch = NULL;
    if (handle_find(handle, &file_virtualizer, FILE_TAG_WATCH, copy_watch, &watch))
        return watch;
    file_scratch *s = scratch_acquire();
    if (!s)
        return NULL;
    BOOL in_box = FALSE;
    fvm_error err;
    policy_decision d;
    if (handle_path(handle, s, &in_box) && !in_box &&
        (s->dir.kind == NTPATH_KIND_DRIVE || s->dir.kind == NTPATH_KIND_UNC) &&
        runtime_policy_decide(POLICY_TYPE_FILE, s->dir.path, s->dir.len, &d) == POLICY_ACTION_COW) {
        memcpy(&s->path, &s->dir, sizeof s->path);
        DWORD host = path_attributes(s->path.path, s->path.len);
        if (host != INVALID_FILE_ATTRIBUTES && (host & FILE_ATTRIBUTE_DIRECTORY) &&
            ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                          &err) == FVM_OK &&
            file_box_folder(s) >= 0) {
            /* The program's handle's mode: a synchronous handle's notify
             * call waits, an asynchronous one's returns pending. */
            struct { ULONG mode; } mode = {0};
            IO_STATUS_BLOCK io;
            NtQueryInformationFile(handle, &io, &mode, sizeof mode, FILE_MODE_INFORMATION_CLASS);
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            init_attributes(&oa, &us, s->box, s->box_len, NULL);
            HANDLE h;
            if (real_NtOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                FILE_DIRECTORY_FILE | (mode.mode & MODE_SYNC_MASK)) >= 0) {
                if (handle_put(handle, &file_virtualizer, FILE_TAG_WATCH, h))
                    watch = h;
                else
                    real_NtClose(h);
            }
        }
    }
    scratch_release(s);
    return watch;
}

void file_watch_closed(void *data)
{
    real_NtClose((HANDLE)data);
}

static NTSTATUS NTAPI box_NtNotifyChangeDirectoryFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                                                      PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer,
                                                      ULONG length, ULONG filter, BOOLEAN subtree)
{
    HANDLE watch = runtime_bypassed() ? NULL : watch_handle(handle);
    return real_NtNotifyChangeDirectoryFile(watch ? watch : handle, event, apc, apc_context, io, buffer, length,
                                            filter, subtree);
}

static NTSTATUS NTAPI box_NtNotifyChangeDirectoryFileEx(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                                                        PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer,
                                                        ULONG length, ULONG filter, BOOLEAN subtree, ULONG klass)
{
    HANDLE watch = runtime_bypassed() ? NULL : watch_handle(handle);
    return real_NtNotifyChangeDirectoryFileEx(watch ? watch : handle, event, apc, apc_context, io, buffer, length,
                                              filter, subtree, klass);
}

void file_notify_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtNotifyChangeDirectoryFile);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtNotifyChangeDirectoryFileEx);
}
