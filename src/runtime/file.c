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
#include "runtime/ipc.h"
#include "runtime/guard.h"
#include "runtime/net.h"

/* ---- the box's location, resolved once ---------------------------------- */

NtCreateFile_fn real_NtCreateFile;
NtOpenFile_fn real_NtOpenFile;
NtQueryAttributesFile_fn real_NtQueryAttributesFile;
NtQueryFullAttributesFile_fn real_NtQueryFullAttributesFile;
NtSetInformationFile_fn real_NtSetInformationFile;
static NTSTATUS (NTAPI *real_NtDeleteFile)(POBJECT_ATTRIBUTES);

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
    NtQueryObject_fn query = real_NtQueryObject ? real_NtQueryObject : NtQueryObject;
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

/* The long name of one entry of a folder, looked up by its 8.3 alias: the
 * file system matches a search mask against short names too. Unhooked
 * calls only; FALSE if there is no such entry. */
static BOOL long_name_of(const uint16_t *dir, size_t dir_len, const uint16_t *name, size_t name_len,
                         uint16_t *out, size_t cap, size_t *out_len)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE handle;
    init_attributes(&oa, &us, dir, dir_len, NULL);
    if (real_NtOpenFile(&handle, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                        FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                        FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT) < 0)
        return FALSE;
    union {
        FILE_BOTH_DIR_INFORMATION info;
        uint8_t bytes[sizeof(FILE_BOTH_DIR_INFORMATION) + 512 * 2];
    } entry;
    UNICODE_STRING mask = {(USHORT)(name_len * 2), (USHORT)(name_len * 2), (PWSTR)name};
    NTSTATUS status = real_NtQueryDirectoryFile(handle, NULL, NULL, NULL, &io, &entry, sizeof entry,
                                                FileBothDirectoryInformation, TRUE, &mask, TRUE);
    NtClose(handle);
    size_t len = status >= 0 ? entry.info.FileNameLength / 2 : 0;
    if (!len || len > cap)
        return FALSE;
    memcpy(out, entry.info.FileName, len * 2);
    *out_len = len;
    return TRUE;
}

/* Replaces every 8.3 alias in s->path (PROGRA~1) by the long name it stands
 * for, on the host or else in the box, so that both spellings of a path get
 * one decision: otherwise C:\FVMROO~1 would not be recognised as FVM's own
 * storage, and a file written through its short name would not be seen
 * through its long one. */
static void expand_short_names(file_scratch *s)
{
    /* Windows' aliases look like PROGRA~1, Wine's like LONG~TX4: any name
     * with a '~' may be one. */
    size_t end = 0;
    for (size_t k = s->path.root_len; k < s->path.len; k++)
        if (s->path.path[k] == L'~')
            end = k + 1;
    if (!end)
        return;
    static const ntpath_context nt = {.input = NTPATH_INPUT_NT};
    uint16_t *out = s->box;               /* scratch until resolve() fills it */
    size_t out_len = s->path.root_len;
    memcpy(out, s->path.path, out_len * 2);
    size_t i = s->path.root_len;
    while (i < s->path.len) {
        if (s->path.path[i] == L'\\')
            i++;
        size_t start = i;
        while (i < s->path.len && s->path.path[i] != L'\\')
            i++;
        const uint16_t *name = s->path.path + start;
        size_t name_len = i - start;
        BOOL alias = FALSE;
        for (size_t k = 0; k < name_len; k++)
            alias |= name[k] == L'~';
        out[out_len++] = L'\\';
        size_t long_len = 0;
        if (alias && start < end) {
            /* The parent folder; the drive's root keeps its backslash
             * (without it the name is the volume, not its root folder). */
            size_t parent_len = out_len - 1 == s->path.root_len ? out_len : out_len - 1;
            BOOL found = long_name_of(out, parent_len, name, name_len, out + out_len, NTPATH_MAX_UNITS - out_len,
                                      &long_len);
            if (!found) {
                /* Perhaps an alias of a file made in the box. */
                ntpath *parent = &s->dir;
                fvm_error err;
                size_t box_len;
                uint16_t *box = HeapAlloc(GetProcessHeap(), 0, (NTPATH_MAX_UNITS + 1) * 2);
                if (box && ntpath_normalize(out, parent_len, &nt, parent, &err) == FVM_OK &&
                    ntpath_to_box(parent, g_box_root.path, g_box_root.len, box, NTPATH_MAX_UNITS + 1, &box_len,
                                  &err) == FVM_OK)
                    found = long_name_of(box, box_len, name, name_len, out + out_len, NTPATH_MAX_UNITS - out_len,
                                         &long_len);
                if (box)
                    HeapFree(GetProcessHeap(), 0, box);
            }
            if (!found)
                long_len = 0;
        }
        if (!long_len) {
            memcpy(out + out_len, name, name_len * 2);
            long_len = name_len;
        }
        out_len += long_len;
        if (out_len >= NTPATH_MAX_UNITS)
            return;
    }
    fvm_error err;
    if (ntpath_normalize(out, out_len, &nt, &s->dir, &err) == FVM_OK) {
        /* Keep the stream of the original name. */
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

/* NT spellings Windows refuses or reads as other names. The path core
 * canonicalizes them for the decision (a rule must not be bypassed by a
 * spelling), but going on with the canonical name would let a boxed
 * program open what the same call on the host does not (issue 18: "a\\b",
 * "a\..\b" and "dir \f" in NT form): answer as Wine and Windows do. The
 * FVM-root check comes first, so these forms cannot probe FVM storage. */
static file_place name_form_place(const ntpath *path)
{
    if (path->flags & (NTPATH_FLAG_WIN32_INPUT | NTPATH_FLAG_VERBATIM))
        return PLACE_HOST;   /* Win32 forms: Win32 itself collapses these */
    if (path->flags & (NTPATH_FLAG_DOT_COMPONENTS | NTPATH_FLAG_EMPTY_COMPONENTS))
        return PLACE_INVALID;
    if (path->flags & NTPATH_FLAG_INNER_TRAILING_DOTS)
        return PLACE_NO_PATH;
    return PLACE_HOST;
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
    /* The one rule for names (runtime.h): an odd byte length or a
     * misaligned buffer is refused before the path core reads it. */
    if (runtime_name_gate(POLICY_TYPE_FILE, "open", name, OBJNAME_ALLOW_EMPTY | OBJNAME_COLLAPSES) < 0)
        return PLACE_INVALID;
    if (attributes->RootDirectory) {
        if (!handle_path(attributes->RootDirectory, s, NULL))
            return PLACE_PASS;   /* a handle without a file name (a console): the device reads the rest */
        if (s->dir.kind == NTPATH_KIND_DEVICE && !(s->dir.flags & NTPATH_FLAG_RAW_STORAGE))
            return PLACE_PASS;   /* below a device that is no file system */
        if (s->dir.kind != NTPATH_KIND_DRIVE && s->dir.kind != NTPATH_KIND_UNC &&
            s->dir.kind != NTPATH_KIND_PIPE && s->dir.kind != NTPATH_KIND_MAILSLOT) {
            /* a volume, a disk, an unknown NT name: the rest could be any file */
            runtime_name_refused(POLICY_TYPE_FILE, "open", "a name relative to a volume or unknown object",
                                 (const uint16_t *)name->Buffer, name->Length / 2);
            return PLACE_DENY;
        }
        if (ntpath_join(&s->dir, (const uint16_t *)name->Buffer, name->Length / 2, ctx, &s->path, &err) != FVM_OK) {
            runtime_name_refused(POLICY_TYPE_FILE, "open", err.message, (const uint16_t *)name->Buffer,
                                 name->Length / 2);
            return PLACE_INVALID;
        }
    } else if (ntpath_normalize((const uint16_t *)name->Buffer, name->Length / 2, ctx, &s->path, &err) !=
               FVM_OK) {
        runtime_name_refused(POLICY_TYPE_FILE, "open", err.message, (const uint16_t *)name->Buffer, name->Length / 2);
        return PLACE_INVALID;
    }
    /* Wine's \??\unix\... names reach unix paths directly. */
    if (s->path.kind == NTPATH_KIND_DRIVE || s->path.kind == NTPATH_KIND_UNC)
        expand_short_names(s);
    /* One name for one file across Wine's drives (Z: is the Unix root):
     * decide on, and pass on, the name Wine gives the file itself. */
    if (s->path.kind == NTPATH_KIND_DRIVE && !file_alias_canonical(s)) {
        runtime_name_refused(POLICY_TYPE_FILE, "open", "a drive path with no DOS name", s->path.path, s->path.len);
        return PLACE_DENY;
    }
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
        if ((s->path.kind == NTPATH_KIND_PIPE || s->path.kind == NTPATH_KIND_MAILSLOT) &&
            !(s->path.flags & NTPATH_FLAG_ROOT))
            return PLACE_PIPE;
        return PLACE_PASS;
    }
    if (ntpath_is_within(&s->path, &g_fvm_root))
        return PLACE_DENY;
    file_place form = name_form_place(&s->path);
    if (form != PLACE_HOST)
        return form;
    if (ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                      &err) != FVM_OK)
        return PLACE_DENY;
    runtime_policy_decide(POLICY_TYPE_FILE, s->path.path, s->path.len, &s->decision);
    return PLACE_HOST;
}

/* The canonical host name (with its stream) for a call the policy sends to
 * the host itself: the name the decision was taken on, never the program's
 * own spelling, which the file system might read differently. */
static void host_attributes(file_scratch *s, OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const OBJECT_ATTRIBUTES *like)
{
    size_t len = s->path.len;
    memcpy(s->box, s->path.path, len * 2);
    if (s->path.stream_len && len + 1 + s->path.stream_len < NTPATH_MAX_UNITS) {
        s->box[len++] = L':';
        memcpy(s->box + len, s->path.stream, s->path.stream_len * 2);
        len += s->path.stream_len;
    }
    s->box_len = len;
    init_attributes(oa, us, s->box, len, like);
}

NTSTATUS place_status(file_place place)
{
    return place == PLACE_INVALID   ? STATUS_OBJECT_NAME_INVALID
         : place == PLACE_NO_PATH ? STATUS_OBJECT_PATH_NOT_FOUND
                                  : STATUS_ACCESS_DENIED;
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
    /* The whole copy is reserved before a byte is written. */
    LONG64 reserved = quota_active() ? quota_file_size(src) : 0;
    if (reserved < 0)
        reserved = 0;
    status = quota_reserve(reserved);
    if (status < 0) {
        NtClose(src);
        return status;
    }

    /* <box>\.fvm-staging\.fvm-copy-<tid>: made outside the file's folder
     * and renamed into it when complete, so a watch on the folder sees the
     * file arrive under its own name, never a temporary one (issue 18). */
    static const uint16_t staging[] = u"\\.fvm-staging";
    static const uint16_t suffix[] = u"\\.fvm-copy-";
    static volatile LONG staging_made;
    size_t tmp_len = g_box_root.len;
    uint16_t *tmp = HeapAlloc(GetProcessHeap(), 0, (g_box_root.len + 64) * sizeof(uint16_t));
    if (!tmp) {
        NtClose(src);
        return STATUS_NO_MEMORY;
    }
    memcpy(tmp, g_box_root.path, g_box_root.len * 2);
    for (size_t i = 0; staging[i]; i++)
        tmp[tmp_len++] = staging[i];
    if (!staging_made) {
        HANDLE dir;
        init_attributes(&oa, &us, tmp, tmp_len, NULL);
        if (real_NtCreateFile(&dir, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_DIRECTORY,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, FILE_OPEN_IF,
                              FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0) >= 0) {
            NtClose(dir);
            staging_made = 1;
        }
    }
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
    if (status < 0)
        quota_unreserve(reserved);
    return status;
}

#define KEY_CAP (BOXINDEX_MAX_KEY_UNITS + 1)

/* Full attributes (existence, folder, size, last write) of an NT path. */
static BOOL path_full_attributes(const uint16_t *path, size_t len, FILE_NETWORK_OPEN_INFORMATION *info)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    init_attributes(&oa, &us, path, len, NULL);
    return real_NtQueryFullAttributesFile(&oa, info) >= 0;
}

/* Prepares the box side for a call that may change path: after this the
 * call can be sent to the box path. The index learns of the change first,
 * so a process killed halfway leaves an entry pointing at a box copy that
 * may be missing (harmless: the open fails and is retried) rather than a box
 * copy the index does not know (which would hide it). */
static NTSTATUS prepare_box_copy(file_scratch *s, ULONG disposition, ULONG options)
{
    FILE_NETWORK_OPEN_INFORMATION host;
    if (!path_full_attributes(s->path.path, s->path.len, &host)) {
        if (disposition == FILE_OPEN || disposition == FILE_OVERWRITE)
            return STATUS_OBJECT_NAME_NOT_FOUND;
        if (!parent_exists(s))
            return STATUS_OBJECT_PATH_NOT_FOUND;
        NTSTATUS status = make_box_parents(s);
        if (status >= 0)
            status = index_note_create(&s->path, s->key, KEY_CAP, (options & FILE_DIRECTORY_FILE) != 0);
        return status;
    }
    BOOL is_dir = (host.FileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
    if (disposition == FILE_CREATE)
        return STATUS_OBJECT_NAME_COLLISION;
    if (is_dir && (options & FILE_NON_DIRECTORY_FILE))
        return STATUS_FILE_IS_A_DIRECTORY;
    if (!is_dir && (options & FILE_DIRECTORY_FILE))
        return STATUS_NOT_A_DIRECTORY;
    /* The host's sharing check, which the box copy would never meet: a
     * handle on the host file (the box's own read open of it, or a host
     * program's) that does not share what this open asks for refuses it,
     * before anything is copied. */
    if (!is_dir && file_share_probe(s->path.path, s->path.len, s->open_access, s->open_share) ==
                       STATUS_SHARING_VIOLATION)
        return STATUS_SHARING_VIOLATION;
    NTSTATUS status = make_box_parents(s);
    if (status < 0)
        return status;
    boxindex_base base = {(uint64_t)host.EndOfFile.QuadPart, host.LastWriteTime.QuadPart, {0}};
    status = index_note_copy_up(&s->path, s->key, KEY_CAP, is_dir, &base);
    if (status < 0)
        return status;
    if (is_dir) {
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

NTSTATUS file_box_folder(file_scratch *s)
{
    switch (index_check(&s->path, s->key, KEY_CAP)) {
    case INDEX_IN_BOX: {
        DWORD attributes = path_attributes(s->box, s->box_len);
        return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)
                   ? STATUS_SUCCESS
                   : STATUS_OBJECT_NAME_NOT_FOUND;
    }
    case INDEX_UNTOUCHED:
        s->open_access = 0;
        return prepare_box_copy(s, FILE_OPEN_IF, FILE_DIRECTORY_FILE);
    default:
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
}

/* A create where the host has nothing that counts (deleted in the box, or
 * below a folder made in the box): make the box's folders and note it. */
static NTSTATUS prepare_box_create(file_scratch *s, ULONG options)
{
    NTSTATUS status = make_box_parents(s);
    if (status >= 0)
        status = index_note_create(&s->path, s->key, KEY_CAP, (options & FILE_DIRECTORY_FILE) != 0);
    return status;
}

/* ---- the hooks ------------------------------------------------------------ */

/* Decides an open or create; fills redirect with the box path when the call
 * must go to the box. Returns STATUS_SUCCESS to proceed (to the host if
 * *to_box is FALSE), or the status to fail the call with. */
static NTSTATUS decide_open(file_scratch *s, POBJECT_ATTRIBUTES attributes, ACCESS_MASK access,
                            ULONG disposition, ULONG options, BOOL *to_box, BOOL *to_host)
{
    *to_box = FALSE;
    *to_host = FALSE;
    file_place place = resolve(attributes, s);
    if (place == PLACE_PASS)
        return STATUS_SUCCESS;
    if (place == PLACE_PIPE) {   /* the box's own pipe namespace (pipe.c) */
        NTSTATUS status = pipe_client_decide(s->path.path, s->path.len, access, s->box, NTPATH_MAX_UNITS,
                                             &s->box_len);
        *to_box = status >= 0 && s->box_len;
        return status;
    }
    if (place != PLACE_HOST)
        return place_status(place);
    /* "name\" is a folder: Windows refuses it for a file (trailing
     * separator with FILE_NON_DIRECTORY_FILE), where the canonical name
     * alone would create a file "name" (issue 18). */
    if ((s->path.flags & NTPATH_FLAG_TRAILING_SEPARATOR) && !(s->path.flags & NTPATH_FLAG_ROOT) &&
        (options & FILE_NON_DIRECTORY_FILE))
        return STATUS_OBJECT_NAME_INVALID;
    BOOL writes = disposition != FILE_OPEN || (access & WRITE_INTENT_ACCESS) || (options & FILE_DELETE_ON_CLOSE);
    BOOL creates = disposition != FILE_OPEN && disposition != FILE_OVERWRITE;
    NTSTATUS status;
    runtime_audit(POLICY_TYPE_FILE, writes ? (creates ? "create" : "write") : "open", &s->decision, s->path.path,
                  s->path.len);
    switch (s->decision.action) {
    case POLICY_ACTION_DENY:
        return STATUS_ACCESS_DENIED;
    case POLICY_ACTION_HIDE:
        return STATUS_OBJECT_NAME_NOT_FOUND;
    case POLICY_ACTION_READ:
        if (writes)
            return STATUS_ACCESS_DENIED;
        *to_host = TRUE;
        return STATUS_SUCCESS;
    case POLICY_ACTION_OPEN:
        *to_host = TRUE;
        return STATUS_SUCCESS;
    default:
        break;   /* copy-on-write */
    }
    switch (index_check(&s->path, s->key, KEY_CAP)) {
    case INDEX_IN_BOX:
        *to_box = TRUE;
        return STATUS_SUCCESS;
    case INDEX_PARENT_DELETED:
        return STATUS_OBJECT_PATH_NOT_FOUND;
    case INDEX_DELETED:
        if (!creates)
            return STATUS_OBJECT_NAME_NOT_FOUND;
        status = prepare_box_create(s, options);
        *to_box = status >= 0;
        return status;
    case INDEX_BOX_ONLY:
        /* Below a folder made in the box: only the box's entries exist
         * (a renamed folder's content is not indexed one by one). */
        *to_box = TRUE;
        if (path_attributes(s->box, s->box_len) != INVALID_FILE_ATTRIBUTES)
            return STATUS_SUCCESS;
        if (!creates)
            return STATUS_OBJECT_NAME_NOT_FOUND;
        return prepare_box_create(s, options);
    case INDEX_UNTOUCHED:
        break;
    }
    if (!writes) {
        *to_host = TRUE;
        return STATUS_SUCCESS;
    }
    status = prepare_box_copy(s, disposition, options);
    if (status < 0)
        return status;
    *to_box = TRUE;
    return STATUS_SUCCESS;
}

/* Windows opens a folder that is not empty with FILE_DELETE_ON_CLOSE and
 * then cannot delete it at the close: it stays. A folder's box copy is
 * often empty while the host's folder has entries, so Wine would delete the
 * copy and the index note make the folder vanish (issue 18, F81): the flag
 * is dropped for a folder that is not empty in the merged view. */
static ULONG effective_options(file_scratch *s, ULONG options)
{
    if (!(options & FILE_DELETE_ON_CLOSE) || (options & FILE_NON_DIRECTORY_FILE))
        return options;
    if (!(options & FILE_DIRECTORY_FILE)) {
        DWORD attributes = path_attributes(s->box, s->box_len);
        if (attributes == INVALID_FILE_ATTRIBUTES || !(attributes & FILE_ATTRIBUTE_DIRECTORY))
            return options;
    }
    return dir_is_empty_merged(s) ? options : options & ~(ULONG)FILE_DELETE_ON_CLOSE;
}

/* A file or folder made in the box (no host file behind it), deleted through
 * a handle (delete-on-close, or a disposition): Windows deletes it when the
 * handle closes, and until then it is there (it can be found and opened
 * again). The index learns of the delete only after that close
 * (file_handle_closed), so the box copy stays the file meanwhile (issue 18,
 * F61, F65, F66, F74). A host file's tombstone still goes in at once: it
 * must hide the host file whatever happens to the handle. A process ended
 * without closing leaves an index entry without a box copy, which every
 * reader takes as no file. */
typedef struct pending_delete {
    BOOL directory;
    size_t len;
    uint16_t path[];   /* the canonical NT path, NUL-terminated */
} pending_delete;

static BOOL delete_when_closed(file_scratch *s, HANDLE handle, BOOL directory)
{
    if (s->path.stream_len || path_attributes(s->path.path, s->path.len) != INVALID_FILE_ATTRIBUTES)
        return FALSE;
    if (handle_find(handle, &file_virtualizer, FILE_TAG_DELETE, NULL, NULL))
        return TRUE;   /* asked twice: once is enough */
    pending_delete *p = HeapAlloc(GetProcessHeap(), 0, sizeof *p + (s->path.len + 1) * sizeof(uint16_t));
    if (!p)
        return FALSE;
    p->directory = directory;
    p->len = s->path.len;
    memcpy(p->path, s->path.path, (s->path.len + 1) * sizeof(uint16_t));
    if (!handle_put(handle, &file_virtualizer, FILE_TAG_DELETE, p)) {
        HeapFree(GetProcessHeap(), 0, p);
        return FALSE;
    }
    return TRUE;
}

/* After the close of a handle that deleted a box-made file: the index
 * forgets it. If the file is still there (another handle keeps it
 * delete-pending, or undeleted it), the entry stays: the file is there until
 * Wine deletes it at the last close, and an entry without a box copy is no
 * file to every reader (lookups, fvm diff, commit). */
static void deleted_when_closed(pending_delete *p)
{
    static const ntpath_context nt = {.input = NTPATH_INPUT_NT};
    file_scratch *s = scratch_acquire();
    fvm_error err;
    if (s && ntpath_normalize(p->path, p->len, &nt, &s->path, &err) == FVM_OK &&
        ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                      &err) == FVM_OK &&
        path_attributes(s->box, s->box_len) == INVALID_FILE_ATTRIBUTES)
        index_note_delete(&s->path, s->key, KEY_CAP, p->directory);
    if (s)
        scratch_release(s);
    HeapFree(GetProcessHeap(), 0, p);
}

/* After a successful open of a box copy: delete-on-close is a delete for
 * the index and the quota; a handle that can write is watched by the quota. */
static void after_box_open(file_scratch *s, HANDLE handle, ACCESS_MASK access, ULONG options)
{
    if (options & FILE_DELETE_ON_CLOSE) {
        BOOL directory = (options & FILE_DIRECTORY_FILE) != 0;
        if (!delete_when_closed(s, handle, directory))
            index_note_delete(&s->path, s->key, KEY_CAP, directory);
        if (quota_active())
            quota_release(quota_file_size(handle));
    }
    if (access & (FILE_WRITE_DATA | FILE_APPEND_DATA | GENERIC_WRITE | GENERIC_ALL | MAXIMUM_ALLOWED))
        quota_track(handle);
}

/* After a successful decided open: a directory's name is kept for its
 * listings (file_dir.c), a box copy's handle is followed (above). */
static void after_open(file_scratch *s, HANDLE handle, BOOL to_box, BOOL to_host, ACCESS_MASK access, ULONG options)
{
    if ((to_box || to_host) && (options & FILE_DIRECTORY_FILE) &&
        (s->path.kind == NTPATH_KIND_DRIVE || s->path.kind == NTPATH_KIND_UNC))
        file_dir_remember(handle, &s->path);
    if (to_box && s->path.kind != NTPATH_KIND_PIPE && s->path.kind != NTPATH_KIND_MAILSLOT)
        after_box_open(s, handle, access, options);
}

/* The OBJECT_ATTRIBUTES a decided open goes to: the box copy, the
 * canonical host name, or (a name we do not virtualize) the caller's own. */
static POBJECT_ATTRIBUTES decided_attributes(file_scratch *s, BOOL to_box, BOOL to_host, POBJECT_ATTRIBUTES caller,
                                             OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us)
{
    if (to_box) {
        init_attributes(oa, us, s->box, s->box_len, caller);
        return oa;
    }
    if (to_host) {
        host_attributes(s, oa, us, caller);
        return oa;
    }
    return caller;
}

static NTSTATUS NTAPI box_NtCreateFile(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes,
                                       PIO_STATUS_BLOCK io, PLARGE_INTEGER allocation, ULONG file_attributes,
                                       ULONG share, ULONG disposition, ULONG options, PVOID ea, ULONG ea_length)
{
    GUARD_ATTRIBUTES(attributes);
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL to_box, to_host;
    s->open_access = access;
    s->open_share = share;
    NTSTATUS status = decide_open(s, attributes, access, disposition, options, &to_box, &to_host);
    if (status >= 0) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        if (to_box)
            options = effective_options(s, options);
        status = real_NtCreateFile(handle, access, decided_attributes(s, to_box, to_host, attributes, &oa, &us), io,
                                   allocation, file_attributes, share, disposition, options, ea, ea_length);
        if (status >= 0)
            after_open(s, *handle, to_box, to_host, access, options);
    }
    scratch_release(s);
    return status;
}

static NTSTATUS NTAPI box_NtOpenFile(PHANDLE handle, ACCESS_MASK access, POBJECT_ATTRIBUTES attributes,
                                     PIO_STATUS_BLOCK io, ULONG share, ULONG options)
{
    GUARD_ATTRIBUTES(attributes);
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL to_box, to_host;
    s->open_access = access;
    s->open_share = share;
    NTSTATUS status = decide_open(s, attributes, access, FILE_OPEN, options, &to_box, &to_host);
    if (status >= 0) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        if (to_box)
            options = effective_options(s, options);
        status = real_NtOpenFile(handle, access, decided_attributes(s, to_box, to_host, attributes, &oa, &us), io,
                                 share, options);
        if (status >= 0)
            after_open(s, *handle, to_box, to_host, access, options);
    }
    scratch_release(s);
    return status;
}

/* An open for reading decided like the program's own (box copy, deleted in
 * the box, policy), which also gives the NT name the real open was given:
 * proc.c opens a new process's image this way and hands Wine that same name,
 * because Wine opens the image again by name, below our hooks. */
NTSTATUS file_open_viewed(POBJECT_ATTRIBUTES attributes, ACCESS_MASK access, ULONG share, ULONG options,
                          HANDLE *handle, uint16_t *name, size_t cap, size_t *name_len)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL to_box, to_host;
    s->open_access = access;
    s->open_share = share;
    NTSTATUS status = decide_open(s, attributes, access, FILE_OPEN, options, &to_box, &to_host);
    if (status >= 0) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        POBJECT_ATTRIBUTES target = decided_attributes(s, to_box, to_host, attributes, &oa, &us);
        const UNICODE_STRING *n = target->ObjectName;
        if (target->RootDirectory || !n || n->Length / 2 >= cap) {
            status = STATUS_OBJECT_NAME_INVALID;   /* a name Wine could not be handed alone */
        } else {
            IO_STATUS_BLOCK io;
            status = real_NtOpenFile(handle, access, target, &io, share, options);
            if (status >= 0) {
                memcpy(name, n->Buffer, n->Length);
                *name_len = n->Length / 2;
                name[*name_len] = 0;
            }
        }
    }
    scratch_release(s);
    return status;
}

/* Where an attribute query looks: the box copy, the host, or nowhere. */
/* SIDE_HOST: the caller's own name (not a path we virtualize);
 * SIDE_HOST_CANONICAL: a host path decided on, by its canonical name. */
typedef enum lookup_side { SIDE_HOST, SIDE_HOST_CANONICAL, SIDE_BOX, SIDE_BOX_THEN_NONE, SIDE_NONE } lookup_side;

static lookup_side query_side(file_scratch *s, POBJECT_ATTRIBUTES attributes, NTSTATUS *fail)
{
    file_place place = resolve(attributes, s);
    *fail = STATUS_SUCCESS;
    if (place == PLACE_PASS)
        return SIDE_HOST;
    if (place == PLACE_PIPE) {
        *fail = pipe_client_decide(s->path.path, s->path.len, 0, s->box, NTPATH_MAX_UNITS, &s->box_len);
        return *fail < 0 ? SIDE_NONE : s->box_len ? SIDE_BOX : SIDE_HOST;
    }
    if (place != PLACE_HOST) {
        *fail = place_status(place);
        return SIDE_NONE;
    }
    switch (s->decision.action) {
    case POLICY_ACTION_DENY:
        runtime_audit(POLICY_TYPE_FILE, "query", &s->decision, s->path.path, s->path.len);
        *fail = STATUS_ACCESS_DENIED;
        return SIDE_NONE;
    case POLICY_ACTION_HIDE:
        runtime_audit(POLICY_TYPE_FILE, "query", &s->decision, s->path.path, s->path.len);
        *fail = STATUS_OBJECT_NAME_NOT_FOUND;
        return SIDE_NONE;
    case POLICY_ACTION_READ:
    case POLICY_ACTION_OPEN:
        return SIDE_HOST_CANONICAL;
    default:
        break;
    }
    switch (index_check(&s->path, s->key, KEY_CAP)) {
    case INDEX_IN_BOX:
        return SIDE_BOX;
    case INDEX_BOX_ONLY:
        return SIDE_BOX_THEN_NONE;
    case INDEX_DELETED:
        *fail = STATUS_OBJECT_NAME_NOT_FOUND;
        return SIDE_NONE;
    case INDEX_PARENT_DELETED:
        *fail = STATUS_OBJECT_PATH_NOT_FOUND;
        return SIDE_NONE;
    default:
        return SIDE_HOST_CANONICAL;   /* untouched: no look at the box at all */
    }
}

/* Attribute queries see the box copy where there is one; a host path
 * decided on goes by its canonical name, like an open. */
typedef NTSTATUS (NTAPI *attributes_query_fn)(POBJECT_ATTRIBUTES, void *);

/* Programs ask for the attributes of the same few files again and again.
 * A thread keeps its last answers to "where does this name go": the exact
 * NT name the program passed (absolute, no RootDirectory, no '~' that an
 * 8.3 expansion could read differently later) and the name the real call
 * got, valid while the box index is unchanged (the policy never changes
 * while a process lives). Decisions that are audited or asked are never
 * kept: each of them must be seen. */
static BOOL cacheable_name(const OBJECT_ATTRIBUTES *attributes)
{
    if (!attributes || attributes->RootDirectory || !attributes->ObjectName || !attributes->ObjectName->Buffer)
        return FALSE;
    const UNICODE_STRING *n = attributes->ObjectName;
    size_t len = n->Length / 2;
    if (len < 7 || len > RESOLVED_NAME_UNITS || n->Buffer[0] != L'\\' || n->Buffer[1] != L'?' ||
        n->Buffer[2] != L'?' || n->Buffer[3] != L'\\')
        return FALSE;
    for (size_t i = 4; i < len; i++)
        if (n->Buffer[i] == L'~')
            return FALSE;
    return TRUE;
}

static const resolved_name *resolved_find(file_scratch *s, const UNICODE_STRING *n, uint64_t generation)
{
    size_t len = n->Length / 2;
    for (unsigned i = 0; i < sizeof s->resolved / sizeof s->resolved[0]; i++) {
        const resolved_name *r = &s->resolved[i];
        if (r->generation == generation && r->name_len == len && !memcmp(r->name, n->Buffer, len * 2))
            return r;
    }
    return NULL;
}

static void resolved_keep(file_scratch *s, const UNICODE_STRING *n, uint64_t generation, lookup_side side,
                          NTSTATUS fail, const uint16_t *target, size_t target_len)
{
    if (target_len > RESOLVED_NAME_UNITS + 64)
        return;
    resolved_name *r = &s->resolved[s->resolved_next++ % (sizeof s->resolved / sizeof s->resolved[0])];
    r->generation = generation;
    r->name_len = (uint16_t)(n->Length / 2);
    memcpy(r->name, n->Buffer, n->Length);
    r->side = side;
    r->fail = fail;
    r->target_len = (uint16_t)target_len;
    memcpy(r->target, target, target_len * 2);
}

static NTSTATUS query_attributes(attributes_query_fn real, POBJECT_ATTRIBUTES attributes, void *info)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    NTSTATUS status;
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    uint64_t generation = 0;
    if (cacheable_name(attributes) && (generation = index_generation()) != 0) {
        const resolved_name *r = resolved_find(s, attributes->ObjectName, generation);
        if (r) {
            if (r->side == SIDE_NONE) {
                status = r->fail;
            } else {
                init_attributes(&oa, &us, r->target, r->target_len, attributes);
                status = real(&oa, info);
            }
            scratch_release(s);
            return status;
        }
    }
    lookup_side side = query_side(s, attributes, &status);
    BOOL keep = generation && (s->path.kind == NTPATH_KIND_DRIVE || s->path.kind == NTPATH_KIND_UNC) &&
                !s->decision.audit && !s->decision.ask_timeout_ms;
    if (side == SIDE_HOST_CANONICAL) {
        host_attributes(s, &oa, &us, attributes);
        status = real(&oa, info);
        if (keep)
            resolved_keep(s, attributes->ObjectName, generation, side, STATUS_SUCCESS, s->box, s->box_len);
    } else if (side == SIDE_HOST) {
        status = real(attributes, info);
    } else if (side != SIDE_NONE) {
        init_attributes(&oa, &us, s->box, s->box_len, attributes);
        status = real(&oa, info);
        if (keep && side == SIDE_BOX)
            resolved_keep(s, attributes->ObjectName, generation, side, STATUS_SUCCESS, s->box, s->box_len);
    } else if (keep && (status == STATUS_OBJECT_NAME_NOT_FOUND || status == STATUS_OBJECT_PATH_NOT_FOUND)) {
        resolved_keep(s, attributes->ObjectName, generation, side, status, NULL, 0);
    }
    scratch_release(s);
    return status;
}

static NTSTATUS NTAPI box_NtQueryAttributesFile(POBJECT_ATTRIBUTES attributes, FILE_BASIC_INFORMATION *info)
{
    GUARD_ATTRIBUTES(attributes);
    return query_attributes((attributes_query_fn)(void *)real_NtQueryAttributesFile, attributes, info);
}

static NTSTATUS NTAPI box_NtQueryFullAttributesFile(POBJECT_ATTRIBUTES attributes,
                                                    FILE_NETWORK_OPEN_INFORMATION *info)
{
    GUARD_ATTRIBUTES(attributes);
    return query_attributes((attributes_query_fn)(void *)real_NtQueryFullAttributesFile, attributes, info);
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

/* Whether a disposition call asks to delete (TRUE) or to undelete (FALSE). */
static BOOL disposition_deletes(ULONG klass, const void *info, ULONG length)
{
    if (klass == 13)
        return length >= sizeof(FILE_DISPOSITION_INFORMATION) && ((const FILE_DISPOSITION_INFORMATION *)info)->DoDeleteFile;
    return length >= sizeof(ULONG) && (*(const ULONG *)info & 1);   /* FILE_DISPOSITION_DELETE */
}

/* Before a delete: a folder must be empty in the merged view (its box copy
 * is empty while the host's entries are still visible). */
static NTSTATUS check_deletable(file_scratch *s, HANDLE handle)
{
    FILE_BASIC_INFORMATION basic;
    IO_STATUS_BLOCK io;
    if (NtQueryInformationFile(handle, &io, &basic, sizeof basic, FileBasicInformation) >= 0 &&
        (basic.FileAttributes & FILE_ATTRIBUTE_DIRECTORY) && !dir_is_empty_merged(s))
        return STATUS_DIRECTORY_NOT_EMPTY;
    return STATUS_SUCCESS;
}

/* After a disposition change on a box copy: the index learns that the host
 * path is gone (a tombstone when the host has it) or back. */
static void note_disposition(file_scratch *s, BOOL deleting, BOOL directory)
{
    if (deleting)
        index_note_delete(&s->path, s->key, KEY_CAP, directory);
    else
        index_note_create(&s->path, s->key, KEY_CAP, directory);
}

/* Disposition, attributes, size...: set through the file's box copy. The
 * handle may be a box handle (the usual case: write or delete access copied
 * the file up when it was opened) or a host handle opened without such
 * access (Wine does not check it for these classes): then the file is
 * copied up first and the change applied through a handle of our own. */
static NTSTATUS set_information_on_box_copy(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                            FILE_INFORMATION_CLASS klass)
{
    file_scratch *s = scratch_acquire();
    if (!s)
        return STATUS_NO_MEMORY;
    BOOL in_box = FALSE;
    fvm_error err;
    NTSTATUS status;
    ULONG k = (ULONG)klass;
    BOOL disposition = k == 13 || k == 64;
    if (!handle_path(handle, s, &in_box) || (s->dir.kind != NTPATH_KIND_DRIVE && s->dir.kind != NTPATH_KIND_UNC)) {
        scratch_release(s);
        return real_NtSetInformationFile(handle, io, info, length, klass);
    }
    memcpy(&s->path, &s->dir, sizeof s->dir);
    if (ntpath_is_within(&s->path, &g_fvm_root) ||
        ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                      &err) != FVM_OK) {
        scratch_release(s);
        return STATUS_ACCESS_DENIED;
    }
    BOOL deleting = disposition && disposition_deletes(k, info, length);
    FILE_BASIC_INFORMATION basic;
    IO_STATUS_BLOCK query_io;
    BOOL directory = NtQueryInformationFile(handle, &query_io, &basic, sizeof basic, FileBasicInformation) >= 0 &&
                     (basic.FileAttributes & FILE_ATTRIBUTE_DIRECTORY);
    if (deleting && (status = check_deletable(s, handle)) < 0) {
        scratch_release(s);
        return status;
    }
    /* Growing a file through its size is a write to the quota; deleting or
     * shrinking one gives its bytes back. */
    LONG64 size_before = quota_active() && !directory ? quota_file_size(handle) : -1;
    LONG64 growth = 0;
    if (size_before >= 0 && (k == 19 || k == 20) && length >= sizeof(LARGE_INTEGER)) {
        growth = ((const LARGE_INTEGER *)info)->QuadPart - size_before;
        if (growth > 0 && (status = quota_reserve(growth)) < 0) {
            scratch_release(s);
            return status;
        }
    }
    if (in_box) {
        status = real_NtSetInformationFile(handle, io, info, length, klass);
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
    if (status >= 0 && disposition) {
        pending_delete *undone = NULL;
        if (in_box && deleting && delete_when_closed(s, handle, directory))
            ;   /* noted when the handle closes */
        else if (in_box && !deleting && (undone = handle_take(handle, &file_virtualizer, FILE_TAG_DELETE)))
            HeapFree(GetProcessHeap(), 0, undone);   /* undeleted before the index heard of it */
        else
            note_disposition(s, deleting, directory);
    }
    if (status < 0 && growth > 0)
        quota_unreserve(growth);
    else if (status >= 0 && growth < 0)
        quota_release(-growth);
    else if (status >= 0 && deleting && size_before > 0)
        quota_release(size_before);
    scratch_release(s);
    return status;
}

/* Copies the visible content of a host folder (s->path, box copy s->box)
 * into the box, recursively, so that the box folder can be renamed with
 * everything in it. Entries the box already has or deleted are skipped. */
typedef struct tree_copy {
    file_scratch *parent;
    NTSTATUS status;
} tree_copy;

static NTSTATUS copy_up_tree(file_scratch *dir);

static int copy_up_child(void *ctx, const FILE_DIRECTORY_INFORMATION *e)
{
    tree_copy *tc = ctx;
    file_scratch *parent = tc->parent;
    size_t name_len = e->FileNameLength / 2;
    if (index_hidden_child(&parent->path, e->FileName, name_len, parent->key, KEY_CAP))
        return 0;
    file_scratch *child = HeapAlloc(GetProcessHeap(), 0, sizeof *child);
    if (!child) {
        tc->status = STATUS_NO_MEMORY;
        return 1;
    }
    child->in_use = TRUE;
    fvm_error err;
    size_t len = parent->path.len;
    uint16_t *joined = child->box;   /* scratch for the joined name */
    memcpy(joined, parent->path.path, len * 2);
    joined[len++] = L'\\';
    memcpy(joined + len, e->FileName, name_len * 2);
    len += name_len;
    static const ntpath_context nt = {.input = NTPATH_INPUT_NT};
    if (ntpath_normalize(joined, len, &nt, &child->path, &err) != FVM_OK ||
        ntpath_to_box(&child->path, g_box_root.path, g_box_root.len, child->box, NTPATH_MAX_UNITS + 1,
                      &child->box_len, &err) != FVM_OK) {
        tc->status = STATUS_OBJECT_NAME_INVALID;
    } else if (path_attributes(child->box, child->box_len) == INVALID_FILE_ATTRIBUTES) {
        BOOL is_dir = (e->FileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
        tc->status = prepare_box_copy(child, FILE_OPEN, is_dir ? FILE_DIRECTORY_FILE : FILE_NON_DIRECTORY_FILE);
        if (tc->status >= 0 && is_dir)
            tc->status = copy_up_tree(child);
    } else if (e->FileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
        tc->status = copy_up_tree(child);
    }
    HeapFree(GetProcessHeap(), 0, child);
    return tc->status < 0;
}

static NTSTATUS copy_up_tree(file_scratch *dir)
{
    if (index_folder_is_opaque(&dir->path, dir->key, KEY_CAP))
        return STATUS_SUCCESS;
    tree_copy tc = {dir, STATUS_SUCCESS};
    int r = dir_enumerate(dir->path.path, dir->path.len, copy_up_child, &tc);
    if (r < 0 && r != (int)STATUS_OBJECT_NAME_NOT_FOUND && r != (int)STATUS_OBJECT_PATH_NOT_FOUND)
        return (NTSTATUS)r;
    return tc.status;
}

/* The source of a rename or link: its host path (src->path) and box path.
 * A host file is copied into the box first (a host folder with everything
 * visible in it), because the operation must act on the box copy: through a
 * host handle it would move or link the host file itself, and Wine does not
 * require DELETE access for that. *boxed_handle receives a handle to the box
 * copy when the caller's handle is a host handle. */
static NTSTATUS prepare_source(HANDLE handle, file_scratch *src, BOOL *directory, HANDLE *boxed_handle)
{
    BOOL in_box = FALSE;
    fvm_error err;
    *boxed_handle = NULL;
    src->path.kind = NTPATH_KIND_NONE;
    if (!handle_path(handle, src, &in_box) ||
        (src->dir.kind != NTPATH_KIND_DRIVE && src->dir.kind != NTPATH_KIND_UNC)) {
        src->path.kind = NTPATH_KIND_NONE;
        return STATUS_OBJECT_TYPE_MISMATCH;
    }
    memcpy(&src->path, &src->dir, sizeof src->dir);
    if (ntpath_is_within(&src->path, &g_fvm_root) ||
        ntpath_to_box(&src->path, g_box_root.path, g_box_root.len, src->box, NTPATH_MAX_UNITS + 1, &src->box_len,
                      &err) != FVM_OK)
        return STATUS_ACCESS_DENIED;
    FILE_BASIC_INFORMATION basic;
    IO_STATUS_BLOCK io;
    *directory = NtQueryInformationFile(handle, &io, &basic, sizeof basic, FileBasicInformation) >= 0 &&
                 (basic.FileAttributes & FILE_ATTRIBUTE_DIRECTORY);
    NTSTATUS status = STATUS_SUCCESS;
    if (!in_box && path_attributes(src->box, src->box_len) == INVALID_FILE_ATTRIBUTES)
        status = prepare_box_copy(src, FILE_OPEN, 0);
    if (status >= 0 && *directory && index_check(&src->path, src->key, KEY_CAP) != INDEX_BOX_ONLY)
        status = copy_up_tree(src);
    if (status >= 0 && !in_box) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        IO_STATUS_BLOCK open_io;
        init_attributes(&oa, &us, src->box, src->box_len, NULL);
        status = real_NtOpenFile(boxed_handle, DELETE | FILE_READ_ATTRIBUTES | SYNCHRONIZE, &oa, &open_io,
                                 FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                 FILE_SYNCHRONOUS_IO_NONALERT | FILE_OPEN_FOR_BACKUP_INTENT);
    }
    return status;
}

static NTSTATUS NTAPI box_NtSetInformationFile(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                               FILE_INFORMATION_CLASS klass)
{
    ULONG k = (ULONG)klass;
    if (k == 30 /* FileCompletionInformation: the network virtualizer keeps the port (AcceptEx) */) {
        NTSTATUS status = real_NtSetInformationFile(handle, io, info, length, klass);
        if (status >= 0)
            net_completion_port_set(handle, info, length);
        return status;
    }
    if (modifies_file(k))
        return set_information_on_box_copy(handle, io, info, length, klass);
    if (k != FileRenameInformation && k != FileLinkInformation && k != FILE_RENAME_INFORMATION_EX_CLASS &&
        k != FILE_LINK_INFORMATION_EX_CLASS)
        return real_NtSetInformationFile(handle, io, info, length, klass);
    if (!info || length < sizeof(FILE_RENAME_INFORMATION))
        return STATUS_INVALID_PARAMETER;
    if (!guard_readable(info, length))
        return STATUS_ACCESS_VIOLATION;
    FILE_RENAME_INFORMATION *rename = info;
    if (rename->FileNameLength > length - offsetof(FILE_RENAME_INFORMATION, FileName))
        return STATUS_INVALID_PARAMETER;
    BOOL is_link = k == FileLinkInformation || k == FILE_LINK_INFORMATION_EX_CLASS;

    file_scratch *target = scratch_acquire();
    file_scratch *src = scratch_acquire();   /* nested: a private one */
    if (!target || !src) {
        if (target)
            scratch_release(target);
        if (src)
            scratch_release(src);
        return STATUS_NO_MEMORY;
    }
    BOOL directory = FALSE;
    HANDLE boxed_handle = NULL;
    FILE_RENAME_INFORMATION *boxed = NULL;
    ULONG size = 0;
    NTSTATUS status = prepare_source(handle, src, &directory, &boxed_handle);
    if (status == STATUS_OBJECT_TYPE_MISMATCH) {
        /* Not a file we can name: let the real call decide, with the target
         * still confined below. */
        status = STATUS_SUCCESS;
    }

    /* The target: a bare name stays in the source's folder; any other name
     * is decided like a create and always lands in the box. */
    BOOL bare_name = !rename->RootDirectory && rename->FileNameLength > 0;
    for (ULONG i = 0; bare_name && i < rename->FileNameLength / 2; i++)
        bare_name = rename->FileName[i] != L'\\';
    UNICODE_STRING us = {(USHORT)rename->FileNameLength, (USHORT)rename->FileNameLength, rename->FileName};
    OBJECT_ATTRIBUTES target_oa = {.Length = sizeof target_oa, .RootDirectory = rename->RootDirectory,
                                   .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
    if (status >= 0 && bare_name) {
        if (src->path.kind != NTPATH_KIND_DRIVE && src->path.kind != NTPATH_KIND_UNC) {
            status = STATUS_ACCESS_DENIED;
        } else {
            /* <source folder>\<name> */
            size_t len = src->path.name_offset;
            memcpy(target->box, src->path.path, len * 2);
            memcpy(target->box + len, rename->FileName, rename->FileNameLength);
            len += rename->FileNameLength / 2;
            UNICODE_STRING joined = {(USHORT)(len * 2), (USHORT)(len * 2), (PWSTR)target->box};
            target_oa.ObjectName = &joined;
            target_oa.RootDirectory = NULL;
            file_place place = resolve(&target_oa, target);
            status = place == PLACE_HOST ? STATUS_SUCCESS : place_status(place);
        }
    } else if (status >= 0) {
        file_place place = resolve(&target_oa, target);
        status = place == PLACE_HOST ? STATUS_SUCCESS : place == PLACE_PASS ? STATUS_ACCESS_DENIED
                                                                             : place_status(place);
    }
    if (status >= 0 && index_check(&target->path, target->key, KEY_CAP) == INDEX_PARENT_DELETED)
        status = STATUS_OBJECT_PATH_NOT_FOUND;
    if (status >= 0)
        status = make_box_parents(target);
    if (status >= 0) {
        size = (ULONG)(offsetof(FILE_RENAME_INFORMATION, FileName) + target->box_len * 2);
        boxed = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, size);
        if (!boxed) {
            status = STATUS_NO_MEMORY;
        } else {
            memcpy(boxed, rename, offsetof(FILE_RENAME_INFORMATION, FileName));
            boxed->RootDirectory = NULL;
            boxed->FileNameLength = (ULONG)(target->box_len * 2);
            memcpy(boxed->FileName, target->box, target->box_len * 2);
            status = real_NtSetInformationFile(boxed_handle ? boxed_handle : handle, io, boxed, size, klass);
        }
    }
    if (status >= 0 && src->path.kind != NTPATH_KIND_NONE) {
        if (is_link)
            index_note_create(&target->path, target->key, KEY_CAP, FALSE);
        else
            index_note_rename(&src->path, &target->path, target->key, KEY_CAP, directory);
    }
    if (boxed_handle)
        NtClose(boxed_handle);
    if (boxed)
        HeapFree(GetProcessHeap(), 0, boxed);
    scratch_release(src);
    scratch_release(target);
    return status;
}

/* NtDeleteFile deletes by name: open (which copies a host file into the box)
 * and delete the box copy. */
static NTSTATUS NTAPI box_NtDeleteFile(POBJECT_ATTRIBUTES attributes)
{
    GUARD_ATTRIBUTES(attributes);
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

static BOOL file_start(void)
{
    return file_paths_start() && file_quota_start();
}

static void file_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtCreateFile);
    FVM_HOOK(table, "ntdll.dll", NtOpenFile);
    FVM_HOOK(table, "ntdll.dll", NtQueryAttributesFile);
    FVM_HOOK(table, "ntdll.dll", NtQueryFullAttributesFile);
    FVM_HOOK(table, "ntdll.dll", NtSetInformationFile);
    FVM_HOOK(table, "ntdll.dll", NtDeleteFile);
    file_dir_hooks(table);
    file_name_hooks(table);
    file_notify_hooks(table);
}

static void file_handle_closed(HANDLE handle, unsigned tag, void *data)
{
    if (tag == FILE_TAG_LISTING)
        file_dir_listing_closed(data);
    else if (tag == FILE_TAG_DELETE)
        deleted_when_closed(data);
    else if (tag == FILE_TAG_WATCH)
        file_watch_closed(data);
    else if (tag == FILE_TAG_DIR_NAME)
        HeapFree(GetProcessHeap(), 0, data);   /* a name (handle_put_name) */
}

/* A copy of a box file opened for writing can grow it too: it counts
 * against the quota like the original. A listing is not shared: the copy
 * lists afresh. */
static void *file_handle_duplicated(HANDLE from, HANDLE to, unsigned tag, void *data)
{
    return tag == FILE_TAG_QUOTA ? data : NULL;
}

const fvm_virtualizer file_virtualizer = {
    .name = "file",
    .policy = POLICY_TYPE_FILE,
    .start = file_start,
    .hooks = file_hooks,
    .handle_closed = file_handle_closed,
    .handle_duplicated = file_handle_duplicated,
    .program_name = file_program_name,
    .thread_detach = file_thread_detach,
};
