/* file_name.c - name queries: a handle to a box copy reports the host name.
 *
 * A program that opened C:\data\a.txt and got the box copy must not learn
 * that it lives in C:\FVM\boxes\NAME\drive\C\data\a.txt: the names it reads
 * back (NtQueryObject's ObjectNameInformation, which GetFinalPathNameByHandle
 * uses; NtQueryInformationFile's FileNameInformation,
 * FileNormalizedNameInformation and the name inside FileAllInformation) are
 * translated back to the host path it asked for (NtQueryObject is hooked
 * once, by the handle registry in handles.c, which calls file_program_name
 * here as the file virtualizer's program_name). Each query runs into a
 * private buffer first, so the caller's buffer-size semantics (partial name,
 * STATUS_BUFFER_OVERFLOW, required length) are those of the translated name. */
#include "runtime/file.h"
#include "runtime/ipc.h"

static NtQueryInformationFile_fn real_NtQueryInformationFile;

#define FILE_NAME_INFORMATION_CLASS            9
#define FILE_ALL_INFORMATION_CLASS             18
#define FILE_NORMALIZED_NAME_INFORMATION_CLASS 48

/* The box root without its "\??\X:" prefix: how volume-relative names of
 * box files start ("\FVM\boxes\NAME"). */
static const uint16_t *volume_relative_root(size_t *len)
{
    *len = g_box_root.len - g_box_root.root_len;
    return g_box_root.path + g_box_root.root_len;
}

static BOOL has_prefix_nocase(const uint16_t *s, size_t len, const uint16_t *prefix, size_t prefix_len)
{
    if (len <= prefix_len || s[prefix_len] != L'\\')
        return FALSE;
    for (size_t i = 0; i < prefix_len; i++)
        if (ntpath_upcase(NULL, s[i]) != ntpath_upcase(NULL, prefix[i]))
            return FALSE;
    return TRUE;
}

/* Translates a full NT name of a box file (\??\C:\FVM\boxes\b\drive\D\x) to
 * the host name (\??\D:\x) in place. Returns the new length, or 0 if the
 * name is not in the box. */
size_t file_program_name(uint16_t *name, size_t len)
{
    if (!has_prefix_nocase(name, len, g_box_root.path, g_box_root.len))
        return 0;
    file_scratch *s = scratch_acquire();
    if (!s)
        return 0;
    static const ntpath_context any_form = {.input = NTPATH_INPUT_ANY};
    fvm_error err;
    size_t out = 0;
    if (ntpath_normalize(name, len, &any_form, &s->dir, &err) == FVM_OK &&
        ntpath_from_box(&s->dir, g_box_root.path, g_box_root.len, &s->path, &err) == FVM_OK &&
        s->path.len <= len) {
        memcpy(name, s->path.path, s->path.len * 2);
        out = s->path.len;
    }
    scratch_release(s);
    return out;
}

/* Translates a volume-relative name (\FVM\boxes\b\drive\D\x) to the host's
 * volume-relative name (\x). Returns the new length or 0. */
static size_t translate_volume_relative_name(uint16_t *name, size_t len)
{
    size_t root_len;
    const uint16_t *root = volume_relative_root(&root_len);
    if (!has_prefix_nocase(name, len, root, root_len))
        return 0;
    /* Rebuild the full box name to reuse the path core's mapping. */
    size_t full_len = g_box_root.root_len + len;
    uint16_t *full = HeapAlloc(GetProcessHeap(), 0, (full_len + 1) * 2);
    if (!full)
        return 0;
    memcpy(full, g_box_root.path, g_box_root.root_len * 2);
    memcpy(full + g_box_root.root_len, name, len * 2);
    size_t host_len = file_program_name(full, full_len);
    size_t out = 0;
    if (host_len) {
        /* Drop the host's drive prefix: "\??\D:" (6 units) or "\??\UNC". */
        size_t skip = 0;
        while (skip < host_len && !(skip > 4 && full[skip] == L'\\'))
            skip++;
        if (skip < host_len) {
            out = host_len - skip;
            memcpy(name, full + skip, out * 2);
        } else {
            name[0] = L'\\';
            out = 1;
        }
    }
    HeapFree(GetProcessHeap(), 0, full);
    return out;
}

/* FILE_NAME_INFORMATION at name_at inside a class's structure. */
static NTSTATUS query_name_class(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                 FILE_INFORMATION_CLASS klass, ULONG name_at)
{
    ULONG private_size = name_at + sizeof(ULONG) + (NTPATH_MAX_UNITS + 1) * 2;
    uint8_t *mine = HeapAlloc(GetProcessHeap(), 0, private_size);
    if (!mine)
        return real_NtQueryInformationFile(handle, io, info, length, klass);
    IO_STATUS_BLOCK my_io;
    NTSTATUS status = real_NtQueryInformationFile(handle, &my_io, mine, private_size, klass);
    FILE_NAME_INFORMATION *name = (FILE_NAME_INFORMATION *)(mine + name_at);
    size_t host_len = status >= 0 ? translate_volume_relative_name((uint16_t *)name->FileName,
                                                                   name->FileNameLength / 2) : 0;
    if (!host_len && status >= 0)   /* a box pipe: \FVM.<hash>\X (ipc.c) */
        host_len = ipc_program_pipe_file_name((uint16_t *)name->FileName, name->FileNameLength / 2);
    if (!host_len) {
        HeapFree(GetProcessHeap(), 0, mine);
        return real_NtQueryInformationFile(handle, io, info, length, klass);
    }
    name->FileNameLength = (ULONG)(host_len * 2);
    ULONG full = name_at + (ULONG)offsetof(FILE_NAME_INFORMATION, FileName) + (ULONG)(host_len * 2);
    ULONG fixed = name_at + (ULONG)offsetof(FILE_NAME_INFORMATION, FileName);
    if (length < fixed) {
        status = STATUS_INFO_LENGTH_MISMATCH;
    } else {
        ULONG copy = length < full ? length : full;
        memcpy(info, mine, copy);
        status = copy < full ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
        io->Status = status;
        io->Information = copy;
    }
    HeapFree(GetProcessHeap(), 0, mine);
    return status;
}

static NTSTATUS NTAPI box_NtQueryInformationFile(HANDLE handle, PIO_STATUS_BLOCK io, PVOID info, ULONG length,
                                                 FILE_INFORMATION_CLASS klass)
{
    switch ((ULONG)klass) {
    case FILE_NAME_INFORMATION_CLASS:
    case FILE_NORMALIZED_NAME_INFORMATION_CLASS:
        return query_name_class(handle, io, info, length, klass, 0);
    case FILE_ALL_INFORMATION_CLASS:
        return query_name_class(handle, io, info, length, klass,
                                (ULONG)offsetof(FILE_ALL_INFORMATION, NameInformation));
    default:
        return real_NtQueryInformationFile(handle, io, info, length, klass);
    }
}

void file_name_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtQueryInformationFile);
}
