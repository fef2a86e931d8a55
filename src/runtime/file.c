/* file.c - files: copy-on-write of the host file system into the box.
 *
 * Every name a program passes to the NT file calls is first made canonical
 * by core/ntpath (any \??\, \Device\, UNC, relative-to-handle, ".." or
 * trailing-dot spelling gives one answer), then decided:
 *   - inside FVM's own storage (the FVM root): denied, a box never touches
 *     its own or another box's delta directly;
 *   - a copy exists in the box: the box copy is opened;
 *   - the call could change the file (a creating disposition, write, delete
 *     or attribute access, delete-on-close): the file is first copied into
 *     the box (copy-up), or its folders are made there for a new file, and
 *     the box copy is opened;
 *   - otherwise the host file is opened as it is.
 * The box copy of host path \??\C:\a\b is <box>\drive\C\a\b (ntpath_to_box).
 * Renames and hard links name their target in the box too, so a handle to a
 * box file can never be renamed out onto the host.
 *
 * This is the first slice of the file virtualizer: deletions of host files
 * (tombstones), the merged directory listing and name queries that hide the
 * box location come with the box index. */
#include "runtime/runtime.h"

#include "runtime/file.h"

/* ---- the box's location, resolved once ---------------------------------- */

NtCreateFile_fn real_NtCreateFile;
NtOpenFile_fn real_NtOpenFile;
NtQueryAttributesFile_fn real_NtQueryAttributesFile;
NtQueryFullAttributesFile_fn real_NtQueryFullAttributesFile;
NtSetInformationFile_fn real_NtSetInformationFile;
static NTSTATUS (NTAPI *real_NtDeleteFile)(POBJECT_ATTRIBUTES);

ntpath g_box_root;             /* \??\C:\FVM\boxes\NAME */
ntpath g_fvm_root;      /* \??\C:\FVM: the storage of every box */
static BOOL g_paths_ready;

static DWORD g_scratch_slot = TLS_OUT_OF_INDEXES;

file_scratch *scratch_acquire(void)
{
    file_scratch *s = TlsGetValue(g_scratch_slot);
    if (!s) {
        s = HeapAlloc(GetProcessHeap(), 0, sizeof *s);
        if (!s)
            return NULL;
        s->in_use = FALSE;
        TlsSetValue(g_scratch_slot, s);
    }
    if (s->in_use)   /* re-entered on this thread: use a private one */
        return HeapAlloc(GetProcessHeap(), 0, sizeof *s);
    s->in_use = TRUE;
    return s;
}

void scratch_release(file_scratch *s)
{
    if (s == TlsGetValue(g_scratch_slot))
        s->in_use = FALSE;
    else
        HeapFree(GetProcessHeap(), 0, s);
}

void file_thread_detach(void)
{
    if (g_scratch_slot == TLS_OUT_OF_INDEXES)
        return;
    file_scratch *s = TlsGetValue(g_scratch_slot);
    if (s) {
        TlsSetValue(g_scratch_slot, NULL);
        HeapFree(GetProcessHeap(), 0, s);
    }
}

static BOOL init_box_paths(void)
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

/* ---- resolving the name a call was given -------------------------------- */

/* The canonical path of an open handle, from the name the object manager
 * reports, into s->dir. A handle to a box copy reports the box path: it is
 * mapped back to the host path it stands for (s->path is used as scratch). */
BOOL handle_path(HANDLE handle, file_scratch *s, BOOL *in_box)
{
    static const ntpath_context any_form = {.input = NTPATH_INPUT_ANY};
    union {
        OBJECT_NAME_INFORMATION info;
        uint8_t bytes[sizeof(OBJECT_NAME_INFORMATION) + (NTPATH_MAX_UNITS + 1) * 2];
    } *name = HeapAlloc(GetProcessHeap(), 0, sizeof *name);
    ULONG got = 0;
    BOOL ok = FALSE;
    fvm_error err;
    if (!name)
        return FALSE;
    NTSTATUS (NTAPI *query)(HANDLE, OBJECT_INFORMATION_CLASS, PVOID, ULONG, PULONG) =
        real_NtQueryObject ? real_NtQueryObject : NtQueryObject;
    if (query(handle, ObjectNameInformation, name, sizeof *name, &got) >= 0 && name->info.Name.Buffer)
        ok = ntpath_normalize((const uint16_t *)name->info.Name.Buffer, name->info.Name.Length / 2, &any_form,
                              &s->dir, &err) == FVM_OK;
    HeapFree(GetProcessHeap(), 0, name);
    if (in_box)
        *in_box = ok && ntpath_is_within(&s->dir, &g_box_root);
    if (ok && ntpath_is_within(&s->dir, &g_box_root)) {
        if (ntpath_from_box(&s->dir, g_box_root.path, g_box_root.len, &s->path, &err) != FVM_OK)
            return FALSE;
        memcpy(&s->dir, &s->path, sizeof s->path);
    }
    return ok;
}

/* \Device\HarddiskVolumeN names need the volume table of this machine:
 * built on first use from the \??\X: links, so processes that never use such
 * names do not pay for it at start-up. */
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQuerySymbolicLinkObject(HANDLE, PUNICODE_STRING, PULONG);

static ntpath_context g_nt_context = {.input = NTPATH_INPUT_NT};
static ntpath_volume g_volumes[26];
static uint16_t g_volume_names[26][64];
static volatile LONG g_volumes_state;   /* 0 none, 1 building, 2 ready */

static void build_volume_table(void)
{
    if (InterlockedCompareExchange(&g_volumes_state, 1, 0) != 0) {
        while (g_volumes_state != 2)
            SwitchToThread();
        return;
    }
    size_t count = 0;
    for (uint16_t letter = 'A'; letter <= 'Z'; letter++) {
        uint16_t link[] = u"\\??\\X:";
        link[4] = letter;
        UNICODE_STRING us = {12, 14, (PWSTR)link};
        OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
        HANDLE h;
        if (NtOpenSymbolicLinkObject(&h, GENERIC_READ, &oa) < 0)
            continue;
        UNICODE_STRING target = {0, sizeof g_volume_names[0] - 2, (PWSTR)g_volume_names[count]};
        if (NtQuerySymbolicLinkObject(h, &target, NULL) >= 0) {
            g_volumes[count].device = g_volume_names[count];
            g_volumes[count].device_len = target.Length / 2;
            g_volumes[count].drive = letter;
            count++;
        }
        NtClose(h);
    }
    g_nt_context.volumes = g_volumes;
    g_nt_context.volume_count = count;
    InterlockedExchange(&g_volumes_state, 2);
}

static const ntpath_context *nt_context_for(const UNICODE_STRING *name)
{
    static const uint16_t device[] = u"\\DEVICE\\";
    if (g_volumes_state != 2 && name->Length >= 16) {
        BOOL is_device = TRUE;
        for (int i = 0; i < 8 && is_device; i++)
            is_device = fvm_wupcase(name->Buffer[i]) == device[i];
        if (is_device)
            build_volume_table();
    }
    return &g_nt_context;
}

/* Fills s->path (and s->box) from an OBJECT_ATTRIBUTES. A name the path
 * core cannot make canonical is refused rather than passed through: passing
 * it on would let a spelling we misjudge reach the host unvirtualized. */
file_place resolve(POBJECT_ATTRIBUTES attributes, file_scratch *s)
{
    fvm_error err;
    if (!g_paths_ready || !attributes || !attributes->ObjectName || !attributes->ObjectName->Buffer)
        return PLACE_PASS;
    const UNICODE_STRING *name = attributes->ObjectName;
    const ntpath_context *ctx = nt_context_for(name);
    if (attributes->RootDirectory) {
        if (!handle_path(attributes->RootDirectory, s, NULL))
            return PLACE_PASS;   /* not a file handle we can name: the real call decides */
        if (s->dir.kind != NTPATH_KIND_DRIVE && s->dir.kind != NTPATH_KIND_UNC)
            return PLACE_PASS;
        if (ntpath_join(&s->dir, (const uint16_t *)name->Buffer, name->Length / 2, ctx, &s->path, &err) != FVM_OK)
            return PLACE_INVALID;
    } else if (ntpath_normalize((const uint16_t *)name->Buffer, name->Length / 2, ctx, &s->path, &err) !=
               FVM_OK) {
        return PLACE_INVALID;
    }
    /* Wine's \??\unix\... names reach unix paths directly. */
    if (s->path.flags & NTPATH_FLAG_WINE_UNIX)
        return PLACE_DENY;
    if (s->path.kind != NTPATH_KIND_DRIVE && s->path.kind != NTPATH_KIND_UNC) {
        /* Volumes and disks below the file system would bypass the box. */
        if (s->path.flags & NTPATH_FLAG_RAW_STORAGE)
            return PLACE_DENY;
        /* An NT name we do not know might still be a file system (an
         * unmapped volume device): refuse rather than guess. */
        if (s->path.kind == NTPATH_KIND_OTHER_NT)
            return PLACE_DENY;
        return PLACE_PASS;
    }
    if (ntpath_is_within(&s->path, &g_fvm_root))
        return PLACE_DENY;
    if (ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                      &err) != FVM_OK)
        return PLACE_DENY;
    return PLACE_HOST;
}

NTSTATUS place_status(file_place place)
{
    return place == PLACE_INVALID ? STATUS_OBJECT_NAME_INVALID : STATUS_ACCESS_DENIED;
}

void init_attributes(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const uint16_t *path, size_t len,
                            const OBJECT_ATTRIBUTES *like)
{
    us->Buffer = (PWSTR)path;
    us->Length = (USHORT)(len * 2);
    us->MaximumLength = (USHORT)(len * 2);
    oa->Length = sizeof *oa;
    oa->RootDirectory = NULL;
    oa->ObjectName = us;
    oa->Attributes = (like ? like->Attributes : 0) | OBJ_CASE_INSENSITIVE;
    oa->SecurityDescriptor = like ? like->SecurityDescriptor : NULL;
    oa->SecurityQualityOfService = like ? like->SecurityQualityOfService : NULL;
}

/* Attributes of an NT path, or INVALID_FILE_ATTRIBUTES if it does not exist. */
DWORD path_attributes(const uint16_t *path, size_t len)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    FILE_BASIC_INFORMATION info;
    init_attributes(&oa, &us, path, len, NULL);
    if (real_NtQueryAttributesFile(&oa, &info) < 0)
        return INVALID_FILE_ATTRIBUTES;
    return info.FileAttributes;
}

/* ---- copy-up -------------------------------------------------------------- */

/* Makes the box folder for every folder of the host path above the last
 * name, so the box copy has a parent. Host folders that do not exist fail
 * the call as they would on the host. */
static NTSTATUS make_box_parents(file_scratch *s)
{
    /* Walk the box path's separators after the box root's "\drive\X" part. */
    size_t start = g_box_root.len + 1;
    for (size_t i = start; i < s->box_len; i++) {
        if (s->box[i] != L'\\')
            continue;
        if (path_attributes(s->box, i) != INVALID_FILE_ATTRIBUTES)
            continue;
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        IO_STATUS_BLOCK io;
        HANDLE dir;
        init_attributes(&oa, &us, s->box, i, NULL);
        NTSTATUS status = real_NtCreateFile(&dir, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, NULL,
                                            FILE_ATTRIBUTE_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE,
                                            FILE_OPEN_IF, FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT,
                                            NULL, 0);
        if (status < 0)
            return status;
        NtClose(dir);
    }
    return STATUS_SUCCESS;
}

/* The host folder that would hold the path must exist (on the host or in the
 * box) for a new file to be created there. */
static BOOL parent_exists(file_scratch *s)
{
    size_t host_parent = s->path.name_offset ? s->path.name_offset - 1 : 0;
    size_t box_parent = s->box_len - (s->path.len - host_parent);
    if (host_parent <= s->path.root_len)
        return TRUE;
    DWORD attrs = path_attributes(s->box, box_parent);
    if (attrs == INVALID_FILE_ATTRIBUTES)
        attrs = path_attributes(s->path.path, host_parent);
    return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY);
}

/* Copies a host file's data, attributes and times into its box path. The
 * copy is written to a temporary name and renamed into place, so a process
 * killed mid-copy never leaves a half-written box file that would hide the
 * host file. */
static NTSTATUS copy_up_file(file_scratch *s)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE src, dst;
    FILE_BASIC_INFORMATION basic;

    init_attributes(&oa, &us, s->path.path, s->path.len, NULL);
    NTSTATUS status = real_NtOpenFile(&src, FILE_READ_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE, &oa, &io,
                                      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                      FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE);
    if (status < 0)
        return status;
    status = NtQueryInformationFile(src, &io, &basic, sizeof basic, FileBasicInformation);
    if (status < 0) {
        NtClose(src);
        return status;
    }

    /* <box path>.fvmtmp<tid> next to the final name. */
    static const uint16_t suffix[] = u".fvm-copy-";
    size_t tmp_len = s->box_len;
    uint16_t *tmp = HeapAlloc(GetProcessHeap(), 0, (s->box_len + 40) * sizeof(uint16_t));
    if (!tmp) {
        NtClose(src);
        return STATUS_NO_MEMORY;
    }
    memcpy(tmp, s->box, s->box_len * 2);
    for (size_t i = 0; suffix[i]; i++)
        tmp[tmp_len++] = suffix[i];
    for (DWORD tid = GetCurrentThreadId(), k = 0; k < 8; k++, tid >>= 4)
        tmp[tmp_len++] = (uint16_t)"0123456789abcdef"[tid & 15];

    init_attributes(&oa, &us, tmp, tmp_len, NULL);
    status = real_NtCreateFile(&dst, FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | DELETE | SYNCHRONIZE, &oa, &io, NULL,
                               basic.FileAttributes & ~FILE_ATTRIBUTE_READONLY, 0, FILE_OVERWRITE_IF,
                               FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0);
    if (status >= 0) {
        enum { CHUNK = 1 << 20 };
        void *buf = VirtualAlloc(NULL, CHUNK, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
        status = buf ? STATUS_SUCCESS : STATUS_NO_MEMORY;
        while (status >= 0) {
            NTSTATUS r = NtReadFile(src, NULL, NULL, NULL, &io, buf, CHUNK, NULL, NULL);
            if (r == STATUS_END_OF_FILE || (r >= 0 && io.Information == 0))
                break;
            if (r < 0) {
                status = r;
                break;
            }
            ULONG n = (ULONG)io.Information;
            status = NtWriteFile(dst, NULL, NULL, NULL, &io, buf, n, NULL, NULL);
        }
        if (buf)
            VirtualFree(buf, 0, MEM_RELEASE);
        if (status >= 0)
            status = real_NtSetInformationFile(dst, &io, &basic, sizeof basic, FileBasicInformation);
        if (status >= 0) {
            /* Rename the finished copy over the final name. */
            size_t info_size = sizeof(FILE_RENAME_INFORMATION) + s->box_len * 2;
            FILE_RENAME_INFORMATION *rename = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, info_size);
            if (!rename) {
                status = STATUS_NO_MEMORY;
            } else {
                rename->ReplaceIfExists = FALSE;
                rename->FileNameLength = (ULONG)(s->box_len * 2);
                memcpy(rename->FileName, s->box, s->box_len * 2);
                status = real_NtSetInformationFile(dst, &io, rename, (ULONG)info_size, FileRenameInformation);
                HeapFree(GetProcessHeap(), 0, rename);
                /* Another process of the box copied it first: theirs wins. */
                if (status == STATUS_OBJECT_NAME_COLLISION)
                    status = STATUS_SUCCESS;
            }
        }
        if (status < 0 || path_attributes(tmp, tmp_len) != INVALID_FILE_ATTRIBUTES) {
            FILE_DISPOSITION_INFORMATION del = {TRUE};
            real_NtSetInformationFile(dst, &io, &del, sizeof del, FileDispositionInformation);
        }
        NtClose(dst);
    }
    HeapFree(GetProcessHeap(), 0, tmp);
    NtClose(src);
    return status;
}

/* Prepares the box side for a call that may change path: after this the
 * call can be sent to the box path. */
static NTSTATUS prepare_box_copy(file_scratch *s, ULONG disposition, ULONG options)
{
    DWORD host = path_attributes(s->path.path, s->path.len);
    if (host == INVALID_FILE_ATTRIBUTES) {
        if (disposition == FILE_OPEN || disposition == FILE_OVERWRITE)
            return STATUS_OBJECT_NAME_NOT_FOUND;
        if (!parent_exists(s))
            return STATUS_OBJECT_PATH_NOT_FOUND;
        return make_box_parents(s);
    }
    if (disposition == FILE_CREATE)
        return STATUS_OBJECT_NAME_COLLISION;
    if ((host & FILE_ATTRIBUTE_DIRECTORY) && (options & FILE_NON_DIRECTORY_FILE))
        return STATUS_FILE_IS_A_DIRECTORY;
    if (!(host & FILE_ATTRIBUTE_DIRECTORY) && (options & FILE_DIRECTORY_FILE))
        return STATUS_NOT_A_DIRECTORY;
    NTSTATUS status = make_box_parents(s);
    if (status < 0)
        return status;
    if (host & FILE_ATTRIBUTE_DIRECTORY) {
        /* A folder is "copied" as an empty box folder: its host entries stay
         * visible through the host. */
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        IO_STATUS_BLOCK io;
        HANDLE dir;
        init_attributes(&oa, &us, s->box, s->box_len, NULL);
        status = real_NtCreateFile(&dir, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, NULL,
                                   FILE_ATTRIBUTE_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN_IF,
                                   FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        if (status >= 0)
            NtClose(dir);
        return status;
    }
    /* Overwriting dispositions replace the content: nothing to copy. */
    if (disposition == FILE_SUPERSEDE || disposition == FILE_OVERWRITE || disposition == FILE_OVERWRITE_IF)
        return STATUS_SUCCESS;
    return copy_up_file(s);
}

/* ---- the hooks ------------------------------------------------------------ */

/* Decides an open or create; fills redirect with the box path when the call
 * must go to the box. Returns STATUS_SUCCESS to proceed (to the host if
 * *to_box is FALSE), or the status to fail the call with. */
static NTSTATUS decide_open(file_scratch *s, POBJECT_ATTRIBUTES attributes, ACCESS_MASK access,
                            ULONG disposition, ULONG options, BOOL *to_box)
{
    *to_box = FALSE;
    file_place place = resolve(attributes, s);
    if (place == PLACE_PASS)
        return STATUS_SUCCESS;
    if (place != PLACE_HOST)
        return place_status(place);
    if (path_attributes(s->box, s->box_len) != INVALID_FILE_ATTRIBUTES) {
        *to_box = TRUE;
        return STATUS_SUCCESS;
    }
    BOOL writes = disposition != FILE_OPEN || (access & WRITE_INTENT_ACCESS) || (options & FILE_DELETE_ON_CLOSE);
    if (!writes)
        return STATUS_SUCCESS;
    NTSTATUS status = prepare_box_copy(s, disposition, options);
    if (status < 0)
        return status;
    *to_box = TRUE;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI box_NtCreateFile(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes,
                                       PIO_STATUS_BLOCK io, PLARGE_INTEGER allocation, ULONG file_attributes,
                                       ULONG share, ULONG disposition, ULONG options, PVOID ea, ULONG ea_length)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL to_box;
    NTSTATUS status = decide_open(s, attributes, access, disposition, options, &to_box);
    if (status >= 0) {
        if (to_box) {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            init_attributes(&oa, &us, s->box, s->box_len, attributes);
            status = real_NtCreateFile(handle, access, &oa, io, allocation, file_attributes, share, disposition,
                                       options, ea, ea_length);
        } else {
            status = real_NtCreateFile(handle, access, attributes, io, allocation, file_attributes, share,
                                       disposition, options, ea, ea_length);
        }
    }
    scratch_release(s);
    return status;
}

static NTSTATUS NTAPI box_NtOpenFile(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes,
                                     PIO_STATUS_BLOCK io, ULONG share, ULONG options)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL to_box;
    NTSTATUS status = decide_open(s, attributes, access, FILE_OPEN, options, &to_box);
    if (status >= 0) {
        if (to_box) {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            init_attributes(&oa, &us, s->box, s->box_len, attributes);
            status = real_NtOpenFile(handle, access, &oa, io, share, options);
        } else {
            status = real_NtOpenFile(handle, access, attributes, io, share, options);
        }
    }
    scratch_release(s);
    return status;
}

/* Attribute queries see the box copy first. */
static NTSTATUS NTAPI box_NtQueryAttributesFile(POBJECT_ATTRIBUTES attributes, FILE_BASIC_INFORMATION *info)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    NTSTATUS status;
    file_place place = resolve(attributes, s);
    switch (place) {
    case PLACE_DENY:
    case PLACE_INVALID:
        status = place_status(place);
        break;
    case PLACE_HOST: {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        init_attributes(&oa, &us, s->box, s->box_len, attributes);
        status = real_NtQueryAttributesFile(&oa, info);
        if (status >= 0)
            break;
        __attribute__((fallthrough));   /* no box copy */
    }
    default:
        status = real_NtQueryAttributesFile(attributes, info);
    }
    scratch_release(s);
    return status;
}

static NTSTATUS NTAPI box_NtQueryFullAttributesFile(POBJECT_ATTRIBUTES attributes,
                                                    FILE_NETWORK_OPEN_INFORMATION *info)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    NTSTATUS status;
    file_place place = resolve(attributes, s);
    switch (place) {
    case PLACE_DENY:
    case PLACE_INVALID:
        status = place_status(place);
        break;
    case PLACE_HOST: {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        init_attributes(&oa, &us, s->box, s->box_len, attributes);
        status = real_NtQueryFullAttributesFile(&oa, info);
        if (status >= 0)
            break;
        __attribute__((fallthrough));   /* no box copy */
    }
    default:
        status = real_NtQueryFullAttributesFile(attributes, info);
    }
    scratch_release(s);
    return status;
}

/* Renames and hard links: the target name is decided like a create, so it
 * always lands in the box. The handle itself is already a box handle if the
 * file can be renamed at all (opening with DELETE access copied it up). */
/* Information classes that change a file through an open handle. Wine does
 * not check the handle's access for some of them (SetFileAttributesW opens
 * with SYNCHRONIZE only and then sets FileBasicInformation), so a handle to a
 * host file could change the host: the change is applied to the file's box
 * copy instead, made first if needed. */
static BOOL modifies_file(ULONG klass)
{
    switch (klass) {
    case 4:    /* FileBasicInformation */
    case 13:   /* FileDispositionInformation */
    case 19:   /* FileAllocationInformation */
    case 20:   /* FileEndOfFileInformation */
    case 39:   /* FileValidDataLengthInformation */
    case 40:   /* FileShortNameInformation */
    case 64:   /* FileDispositionInformationEx */
    case 71:   /* FileCaseSensitiveInformation */
        return TRUE;
    default:
        return FALSE;
    }
}

static NTSTATUS set_information_on_box_copy(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                            FILE_INFORMATION_CLASS klass, BOOL *handled)
{
    *handled = FALSE;
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL in_box = FALSE;
    fvm_error err;
    NTSTATUS status = STATUS_SUCCESS;
    if (handle_path(handle, s, &in_box) && !in_box &&
        (s->dir.kind == NTPATH_KIND_DRIVE || s->dir.kind == NTPATH_KIND_UNC)) {
        *handled = TRUE;
        memcpy(&s->path, &s->dir, sizeof s->dir);
        if (ntpath_is_within(&s->path, &g_fvm_root) ||
            ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                          &err) != FVM_OK) {
            status = STATUS_ACCESS_DENIED;
        } else if (path_attributes(s->box, s->box_len) != INVALID_FILE_ATTRIBUTES ||
                   (status = prepare_box_copy(s, FILE_OPEN, 0)) >= 0) {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            IO_STATUS_BLOCK open_io;
            HANDLE boxed;
            init_attributes(&oa, &us, s->box, s->box_len, NULL);
            status = real_NtOpenFile(&boxed, FILE_WRITE_ATTRIBUTES | FILE_WRITE_DATA | DELETE | SYNCHRONIZE, &oa,
                                     &open_io, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                     FILE_SYNCHRONOUS_IO_NONALERT | FILE_OPEN_FOR_BACKUP_INTENT);
            if (status >= 0) {
                status = real_NtSetInformationFile(boxed, io, info, length, klass);
                NtClose(boxed);
            }
        }
    }
    scratch_release(s);
    return status;
}

/* A rename or hard link through a handle to a host file would move or link
 * the host file itself (Wine does not require DELETE access for it): the
 * file is copied up first and the operation applied to the box copy, through
 * a handle of our own. */
static NTSTATUS rename_or_link_box_copy(HANDLE handle, PIO_STATUS_BLOCK io, FILE_RENAME_INFORMATION *boxed,
                                        ULONG size, FILE_INFORMATION_CLASS klass, BOOL *handled)
{
    *handled = FALSE;
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL in_box = FALSE;
    fvm_error err;
    NTSTATUS status = STATUS_SUCCESS;
    if (handle_path(handle, s, &in_box) && !in_box &&
        (s->dir.kind == NTPATH_KIND_DRIVE || s->dir.kind == NTPATH_KIND_UNC)) {
        *handled = TRUE;
        memcpy(&s->path, &s->dir, sizeof s->dir);
        if (ntpath_is_within(&s->path, &g_fvm_root) ||
            ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                          &err) != FVM_OK) {
            status = STATUS_ACCESS_DENIED;
        } else if (path_attributes(s->box, s->box_len) != INVALID_FILE_ATTRIBUTES ||
                   (status = prepare_box_copy(s, FILE_OPEN, 0)) >= 0) {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            IO_STATUS_BLOCK open_io;
            HANDLE boxed_handle;
            init_attributes(&oa, &us, s->box, s->box_len, NULL);
            status = real_NtOpenFile(&boxed_handle, DELETE | FILE_READ_ATTRIBUTES | SYNCHRONIZE, &oa, &open_io,
                                     FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                     FILE_SYNCHRONOUS_IO_NONALERT | FILE_OPEN_FOR_BACKUP_INTENT);
            if (status >= 0) {
                status = real_NtSetInformationFile(boxed_handle, io, boxed, size, klass);
                NtClose(boxed_handle);
            }
        }
    }
    scratch_release(s);
    return status;
}

static NTSTATUS NTAPI box_NtSetInformationFile(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                               FILE_INFORMATION_CLASS klass)
{
    ULONG k = (ULONG)klass;
    if (modifies_file(k)) {
        BOOL handled;
        NTSTATUS status = set_information_on_box_copy(handle, io, info, length, klass, &handled);
        return handled ? status : real_NtSetInformationFile(handle, io, info, length, klass);
    }
    if (k != FileRenameInformation && k != FileLinkInformation && k != FILE_RENAME_INFORMATION_EX_CLASS &&
        k != FILE_LINK_INFORMATION_EX_CLASS)
        return real_NtSetInformationFile(handle, io, info, length, klass);
    if (!info || length < sizeof(FILE_RENAME_INFORMATION))
        return STATUS_INVALID_PARAMETER;
    FILE_RENAME_INFORMATION *rename = info;
    if (rename->FileNameLength > length - offsetof(FILE_RENAME_INFORMATION, FileName))
        return STATUS_INVALID_PARAMETER;

    /* Decide the target first: it always lands in the box. */
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    UNICODE_STRING us = {(USHORT)rename->FileNameLength, (USHORT)rename->FileNameLength, rename->FileName};
    OBJECT_ATTRIBUTES target = {.Length = sizeof target, .RootDirectory = rename->RootDirectory, .ObjectName = &us,
                               .Attributes = OBJ_CASE_INSENSITIVE};
    NTSTATUS status = STATUS_ACCESS_DENIED;
    FILE_RENAME_INFORMATION *boxed = NULL;
    ULONG size = length;
    BOOL bare_name = !rename->RootDirectory && rename->FileNameLength > 0;
    for (ULONG i = 0; bare_name && i < rename->FileNameLength / 2; i++)
        bare_name = rename->FileName[i] != L'\\';
    file_place place = bare_name ? PLACE_PASS : resolve(&target, s);
    if (place == PLACE_DENY || place == PLACE_INVALID) {
        status = place_status(place);
    } else if (place == PLACE_PASS && !bare_name) {
        status = STATUS_ACCESS_DENIED;
    } else if (place == PLACE_PASS) {
        /* A bare name renames within the file's own folder. */
        boxed = HeapAlloc(GetProcessHeap(), 0, length);
        if (boxed)
            memcpy(boxed, info, length);
        status = boxed ? STATUS_SUCCESS : STATUS_NO_MEMORY;
    } else if ((status = make_box_parents(s)) >= 0) {
        size = (ULONG)(offsetof(FILE_RENAME_INFORMATION, FileName) + s->box_len * 2);
        boxed = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, size);
        if (!boxed) {
            status = STATUS_NO_MEMORY;
        } else {
            memcpy(boxed, rename, offsetof(FILE_RENAME_INFORMATION, FileName));
            boxed->RootDirectory = NULL;
            boxed->FileNameLength = (ULONG)(s->box_len * 2);
            memcpy(boxed->FileName, s->box, s->box_len * 2);
        }
    }
    scratch_release(s);
    if (boxed) {
        BOOL handled;
        status = rename_or_link_box_copy(handle, io, boxed, size, klass, &handled);
        if (!handled)
            status = real_NtSetInformationFile(handle, io, boxed, size, klass);
        HeapFree(GetProcessHeap(), 0, boxed);
    }
    return status;
}

/* NtDeleteFile deletes by name: open (which copies a host file into the box)
 * and delete the box copy. */
static NTSTATUS NTAPI box_NtDeleteFile(POBJECT_ATTRIBUTES attributes)
{
    HANDLE handle;
    IO_STATUS_BLOCK io;
    NTSTATUS status = box_NtOpenFile(&handle, DELETE | SYNCHRONIZE, attributes, &io,
                                     FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                     FILE_OPEN_FOR_BACKUP_INTENT | FILE_OPEN_REPARSE_POINT);
    if (status < 0)
        return status;
    FILE_DISPOSITION_INFORMATION disposition = {TRUE};
    status = box_NtSetInformationFile(handle, &io, &disposition, sizeof disposition, FileDispositionInformation);
    NtClose(handle);
    return status;
}

BOOL file_hooks(hook_table *table)
{
    g_scratch_slot = TlsAlloc();
    if (g_scratch_slot == TLS_OUT_OF_INDEXES || !init_box_paths())
        return FALSE;
    hook_table_add(table, "ntdll.dll", "NtCreateFile", (void *)box_NtCreateFile, (void **)&real_NtCreateFile);
    hook_table_add(table, "ntdll.dll", "NtOpenFile", (void *)box_NtOpenFile, (void **)&real_NtOpenFile);
    hook_table_add(table, "ntdll.dll", "NtQueryAttributesFile", (void *)box_NtQueryAttributesFile,
                   (void **)&real_NtQueryAttributesFile);
    hook_table_add(table, "ntdll.dll", "NtQueryFullAttributesFile", (void *)box_NtQueryFullAttributesFile,
                   (void **)&real_NtQueryFullAttributesFile);
    hook_table_add(table, "ntdll.dll", "NtSetInformationFile", (void *)box_NtSetInformationFile,
                   (void **)&real_NtSetInformationFile);
    hook_table_add(table, "ntdll.dll", "NtDeleteFile", (void *)box_NtDeleteFile, (void **)&real_NtDeleteFile);
    file_dir_hooks(table);
    file_name_hooks(table);
    return TRUE;
}
