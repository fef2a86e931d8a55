/* proc.c - processes: every process created from inside a box is boxed.
 *
 * All of Windows' creation paths (CreateProcess*, ShellExecute, WinExec,
 * system(), _spawn, cmd chains, start) end in ntdll!NtCreateUserProcess.
 * Before the real call the hook opens the new process's image as the box
 * sees it (file.c's routing: the box copy of a replaced or installed
 * program, not found when the box deleted it) and reads its head: only an
 * x64 PE image may start. Wine runs any other file as a native Linux program
 * (fork and exec, outside every hook) and we have no 32-bit support, so those
 * are refused here with a clear message, audited. The image stays open,
 * sharing only reads, until the real call returns, and Wine is handed the
 * name that open was given, so the file Wine maps is the file we checked.
 * The real call then creates the process suspended; the hook injects fvm.dll
 * into it (common/inject.c), makes sure it belongs to the box's job object,
 * and only then lets it run (or leaves it suspended if the caller asked for
 * that). If any step fails the new process is terminated before it executes
 * a single instruction of its own, and the caller gets the error.
 *
 * A process started from a box copy has the box path as its image name; its
 * own fvm.dll puts the program's host name back into the process parameters
 * and the loader's module entry before any program code runs
 * (proc_fix_image_name), so GetModuleFileName and the DLL search see the
 * program's own name, which the file layer routes to the box copy again.
 *
 * Consoles: a console program started with a new console (CREATE_NEW_CONSOLE,
 * CREATE_NO_WINDOW, `start`) allocates it in kernelbase's initialisation,
 * which runs before fvm.dll's (kernelbase is a dependency of fvm.dll), and
 * that starts conhost.exe with no hook in place: an unboxed process in the
 * box's job that writes the host registry. So the hook hands such a child no
 * console and a flag in its injection block instead, and the child's fvm.dll
 * allocates the console once its hooks are installed (proc_after_hooks):
 * conhost.exe is then created through this hook, boxed like any child.
 *
 * The legacy NtCreateProcess(Ex) path creates a process without injection,
 * so it is refused. */
#include "runtime/runtime.h"
#include "runtime/ipc.h"

#include "runtime/file.h"
#include "runtime/guard.h"

#include "common/inject.h"
#include "core/peimage.h"

#define PROCESS_CREATE_FLAGS_BREAKAWAY       0x00000001
#define THREAD_CREATE_FLAGS_CREATE_SUSPENDED 0x00000001

#define PS_ATTRIBUTE_IMAGE_NAME 0x20005
#define PS_ATTRIBUTES_MAX       64   /* Windows defines about 30 kinds */

NTSTATUS NTAPI NtTerminateProcess(HANDLE process, NTSTATUS status);
NTSTATUS NTAPI NtResumeThread(HANDLE thread, ULONG *previous_count);
NTSTATUS NTAPI NtReadVirtualMemory(HANDLE process, const void *address, void *buffer, SIZE_T size,
                                   SIZE_T *read);
NTSTATUS NTAPI NtWriteVirtualMemory(HANDLE process, void *address, const void *buffer, SIZE_T size,
                                    SIZE_T *written);

/* Wine's values of RTL_USER_PROCESS_PARAMETERS.ConsoleHandle that make the
 * new process create a console (include/wine/condrv.h). */
#define CONSOLE_HANDLE_ALLOC           ((HANDLE)(LONG_PTR)-1)
#define CONSOLE_HANDLE_ALLOC_NO_WINDOW ((HANDLE)(LONG_PTR)-2)
#define CONSOLE_HANDLE_SHELL           ((HANDLE)(LONG_PTR)-3)

/* NtCreateUserProcess's attribute list (no SDK header has it). */
typedef struct ps_attribute {
    ULONG_PTR attribute;
    SIZE_T size;
    union {
        ULONG_PTR value;
        void *value_ptr;
    };
    SIZE_T *return_length;
} ps_attribute;

typedef struct ps_attribute_list {
    SIZE_T total_length;
    ps_attribute attributes[1];
} ps_attribute_list;

typedef NTSTATUS (NTAPI *NtCreateUserProcess_fn)(PHANDLE process, PHANDLE thread,
    ACCESS_MASK process_access, ACCESS_MASK thread_access,
    POBJECT_ATTRIBUTES process_attributes, POBJECT_ATTRIBUTES thread_attributes,
    ULONG process_flags, ULONG thread_flags, void *parameters, void *create_info,
    void *attribute_list);
typedef NTSTATUS (NTAPI *NtCreateProcessEx_fn)(PHANDLE process, ACCESS_MASK access,
    POBJECT_ATTRIBUTES attributes, HANDLE parent, ULONG flags, HANDLE section,
    HANDLE debug_port, HANDLE token, ULONG reserved);

static NtCreateUserProcess_fn real_NtCreateUserProcess;
static NtCreateProcessEx_fn real_NtCreateProcessEx;

/* Makes a just-created, still suspended process a member of the box.
 * flags: FVM_BOX_FLAG_* for this child only. */
static NTSTATUS box_new_process(HANDLE process, HANDLE image_file, uint32_t flags)
{
    char why[200];
    fvm_box_config config = g_fvm.config;
    config.flags = (config.flags & ~FVM_BOX_FLAGS_ONE_PROCESS) | flags;
    config.given_index = config.given_index_size = config.given_tally = 0;
    config.given_index_number = 0;
    runtime_bypass_enter();   /* our own cross-process calls: the child is ours */
    /* If the injection fails the caller ends the child, and the handles
     * given with it. */
    box_index_give(process, &config);
    io_tally_give(process, &config);
    NTSTATUS status = fvm_inject_process(process, image_file, &config, why, sizeof why);
    runtime_bypass_leave();
    if (status < 0) {
        fvm_report("cannot box a new process (%s); it was not started", why);
        return status;
    }
    /* Children inherit the job; a caller could have named another parent
     * (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS), so check and repair. */
    HANDLE job = runtime_box_job();
    BOOL in_job = FALSE;
    if (!job || !IsProcessInJob(process, job, &in_job)) {
        fvm_report("cannot open the box's job object (error %lu); the new process was not started",
                   (unsigned long)GetLastError());
        return STATUS_ACCESS_DENIED;
    }
    if (!in_job && !AssignProcessToJobObject(job, process)) {
        fvm_report("a new process could not be put in the box's job (error %lu); it was not started",
                   (unsigned long)GetLastError());
        return STATUS_ACCESS_DENIED;
    }
    return STATUS_SUCCESS;
}

/* ---- the image of a new process ----------------------------------------- */

/* What the hook keeps between checking the image and the real call. */
typedef struct new_image {
    ps_attribute_list *attributes;   /* the caller's list, copied, naming `opened` */
    HANDLE handle;                    /* the image, open sharing reads only */
    uint16_t *opened;                 /* the NT name Wine is handed */
    size_t opened_len;
    uint16_t *name;                   /* the program's NT name as given */
    size_t name_len;
} new_image;

static void image_release(new_image *img)
{
    if (img->handle)
        NtClose(img->handle);
    HeapFree(GetProcessHeap(), 0, img->attributes);
    HeapFree(GetProcessHeap(), 0, img->opened);
    HeapFree(GetProcessHeap(), 0, img->name);
    memset(img, 0, sizeof *img);
}

/* Caller memory is read under the fault guard (guard.c): a bad pointer is an error
 * for the caller, never a crash of the boxed process. */
static BOOL read_caller(const void *from, void *to, SIZE_T size)
{
    return from && guard_copy(to, from, size);
}

static BOOL write_caller(void *to, const void *from, SIZE_T size)
{
    return to && guard_copy(to, from, size);
}

static void image_refused(const new_image *img, const char *op, const char *why)
{
    char name[1024];
    int n = WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)img->name, (int)img->name_len, name,
                                sizeof name - 1, NULL, NULL);
    name[n > 0 ? n : 0] = 0;
    const char *shown = name;
    if (shown[0] == '\\' && shown[1] == '?' && shown[2] == '?' && shown[3] == '\\')
        shown += 4;
    fvm_report("'%s' %s; it was not started", shown, why);
    static const char rule[] = "built-in";
    policy_decision d = {.action = POLICY_ACTION_DENY, .audit = 1, .rule = 0, .file = rule,
                         .file_len = sizeof rule - 1};
    runtime_audit(POLICY_TYPE_PROCESS, op, &d, img->name, img->name_len);
}

/* The head of the open image, as much as peimage asks for. */
static peimage_kind read_image_kind(HANDLE file, uint16_t *machine)
{
    uint8_t head[1024];
    IO_STATUS_BLOCK io;
    LARGE_INTEGER zero = {0};
    if (NtReadFile(file, NULL, NULL, NULL, &io, head, sizeof head, &zero, NULL) < 0)
        return PEIMAGE_NOT_MZ;
    size_t need = 0;
    peimage_kind kind = peimage_classify(head, io.Information, &need, machine, NULL);
    if (kind != PEIMAGE_NEED_MORE)
        return kind;
    uint8_t *more = HeapAlloc(GetProcessHeap(), 0, need);
    kind = PEIMAGE_MZ_ONLY;
    if (more && NtReadFile(file, NULL, NULL, NULL, &io, more, (ULONG)need, &zero, NULL) >= 0)
        kind = peimage_classify(more, io.Information, &need, machine, NULL);
    HeapFree(GetProcessHeap(), 0, more);
    return kind == PEIMAGE_NEED_MORE ? PEIMAGE_MZ_ONLY : kind;
}

/* Finds the image name among the caller's attributes, opens the image as
 * the box sees it, checks that it may start, and makes a copy of the
 * attribute list that names the file that was opened. */
static NTSTATUS image_prepare(const void *caller_list, new_image *img)
{
    memset(img, 0, sizeof *img);
    SIZE_T total = 0;
    if (!read_caller(caller_list, &total, sizeof total) || total < sizeof(SIZE_T) ||
        total > sizeof(SIZE_T) + PS_ATTRIBUTES_MAX * sizeof(ps_attribute))
        return STATUS_INVALID_PARAMETER;
    img->attributes = HeapAlloc(GetProcessHeap(), 0, total);
    if (!img->attributes)
        return STATUS_NO_MEMORY;
    if (!read_caller(caller_list, img->attributes, total))
        return STATUS_INVALID_PARAMETER;
    img->attributes->total_length = total;   /* as read first: the caller cannot change it under us */
    size_t count = (total - sizeof(SIZE_T)) / sizeof(ps_attribute);
    ps_attribute *image = NULL;
    for (size_t i = 0; i < count; i++)   /* Wine takes the last one */
        if (img->attributes->attributes[i].attribute == PS_ATTRIBUTE_IMAGE_NAME)
            image = &img->attributes->attributes[i];
    if (!image || !image->size || image->size % 2 || image->size > NTPATH_MAX_UNITS * 2)
        return STATUS_OBJECT_NAME_INVALID;
    img->name_len = image->size / 2;
    img->name = HeapAlloc(GetProcessHeap(), 0, image->size + 2);
    img->opened = HeapAlloc(GetProcessHeap(), 0, (NTPATH_MAX_UNITS + 1) * 2);
    if (!img->name || !img->opened)
        return STATUS_NO_MEMORY;
    if (!read_caller(image->value_ptr, img->name, image->size))
        return STATUS_INVALID_PARAMETER;
    img->name[img->name_len] = 0;

    UNICODE_STRING us = {(USHORT)image->size, (USHORT)image->size, (PWSTR)img->name};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
    NTSTATUS status = file_open_viewed(&oa, GENERIC_READ | SYNCHRONIZE, FILE_SHARE_READ,
                                       FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, &img->handle,
                                       img->opened, NTPATH_MAX_UNITS + 1, &img->opened_len);
    if (status < 0) {
        img->handle = NULL;
        return status;
    }
    uint16_t machine = 0;
    switch (read_image_kind(img->handle, &machine)) {
    case PEIMAGE_X64:
    case PEIMAGE_MZ_ONLY:   /* DOS/NE: Wine refuses it itself, and never runs it on Linux */
        break;
    case PEIMAGE_PE_OTHER:
        image_refused(img, "start-not-x64", machine == 0x14c
                      ? "is a 32-bit program: only 64-bit (x64) Windows programs run in a box"
                      : "is not an x64 program: only 64-bit (x64) Windows programs run in a box");
        return STATUS_INVALID_IMAGE_FORMAT;
    case PEIMAGE_ELF:
    case PEIMAGE_SCRIPT:
        image_refused(img, "start-linux", "is a Linux program, which would run outside the box");
        return STATUS_ACCESS_DENIED;
    default:
        /* Not a program: the caller's own fallbacks (kernelbase runs .bat
         * and .cmd files with cmd.exe) see the status Windows gives. */
        return STATUS_INVALID_IMAGE_NOT_MZ;
    }
    image->value_ptr = img->opened;
    image->size = img->opened_len * 2;
    return STATUS_SUCCESS;
}

/* If dos (a Win32 path, len units) names a place in the box folder, the
 * host path it stands for, in Win32 form, into out (cap units, terminated);
 * returns its length, or 0 when dos is not in the box. */
static size_t host_dos_name(const wchar_t *dos, size_t len, wchar_t *out, size_t cap)
{
    static const ntpath_context win32 = {.input = NTPATH_INPUT_WIN32};
    const wchar_t *box = g_fvm.config.box_path;
    size_t box_len = fvm_wcslen(box);
    /* Cheap test first: nearly every name is not in the box. */
    if (!dos || len <= box_len + 7 || dos[box_len] != L'\\')
        return 0;
    for (size_t i = 0; i < box_len; i++)
        if (fvm_wupcase(dos[i]) != fvm_wupcase(box[i]))
            return 0;
    ntpath *paths = HeapAlloc(GetProcessHeap(), 0, 3 * sizeof(ntpath));
    if (!paths)
        return 0;
    ntpath *root = &paths[0], *boxed = &paths[1], *host = &paths[2];
    fvm_error err;
    size_t total = 0;
    if (ntpath_normalize((const uint16_t *)box, box_len, &win32, root, &err) == FVM_OK &&
        ntpath_normalize((const uint16_t *)dos, len, &win32, boxed, &err) == FVM_OK &&
        ntpath_is_within(boxed, root) &&
        ntpath_from_box(boxed, root->path, root->len, host, &err) == FVM_OK && host->len > 4) {
        /* \??\C:\x is C:\x; \??\UNC\s\x is \\s\x. */
        const uint16_t *from = host->path + 4;
        size_t from_len = host->len - 4, at = 0;
        if (host->kind == NTPATH_KIND_UNC) {
            from += 3;
            from_len -= 3;
            if (cap)
                out[at++] = L'\\';
        }
        if (at + from_len < cap) {
            memcpy(out + at, from, from_len * 2);
            total = at + from_len;
            out[total] = 0;
        }
    }
    HeapFree(GetProcessHeap(), 0, paths);
    return total;
}

/* In a process started from a box copy, or in a folder of the box: the
 * program's own (host) names in place of the box paths, in the process
 * parameters (image, current folder) and the main module's loader entry.
 * The host name is always the shorter, so all are rewritten in place (the
 * current folder's handle is the box folder already). Runs in fvm.dll's
 * entry point, before any program code. */
static void proc_fix_image_name(void)
{
    PEB *peb;
    __asm__("movq %%gs:0x60, %0" : "=r"(peb));
    RTL_USER_PROCESS_PARAMETERS *params = peb->ProcessParameters;
    UNICODE_STRING *cwd = (UNICODE_STRING *)&params->Reserved2[5];   /* CurrentDirectory.DosPath */
    wchar_t *host = NULL;
    size_t len;
    if (cwd->Buffer && cwd->Length / 2 > 8 && (host = HeapAlloc(GetProcessHeap(), 0, cwd->Length + 4)) &&
        (len = host_dos_name(cwd->Buffer, cwd->Length / 2, host, cwd->Length / 2)) != 0) {
        host[len++] = L'\\';   /* a current folder ends with a separator */
        memcpy(cwd->Buffer, host, len * 2);
        cwd->Buffer[len] = 0;
        cwd->Length = (USHORT)(len * 2);
    }
    HeapFree(GetProcessHeap(), 0, host);

    UNICODE_STRING *image = &params->ImagePathName;
    if (!image->Buffer || image->Length < 16 || !(host = HeapAlloc(GetProcessHeap(), 0, image->Length + 2)))
        return;
    size_t total = host_dos_name(image->Buffer, image->Length / 2, host, image->Length / 2);
    if (total) {
        LDR_DATA_TABLE_ENTRY *main_module = NULL;
        LIST_ENTRY *head = &peb->Ldr->InMemoryOrderModuleList;
        if (head->Flink && head->Flink != head)
            main_module = CONTAINING_RECORD(head->Flink, LDR_DATA_TABLE_ENTRY, InMemoryOrderLinks);
        UNICODE_STRING *full = main_module ? &main_module->FullDllName : NULL;
        BOOL same = full && full->Buffer && full->Length == image->Length;
        for (size_t i = 0; same && i < image->Length / 2; i++)
            same = fvm_wupcase(full->Buffer[i]) == fvm_wupcase(image->Buffer[i]);
        memcpy(image->Buffer, host, (total + 1) * 2);
        image->Length = (USHORT)(total * 2);
        if (same) {
            /* BaseDllName follows FullDllName and points into its buffer. */
            UNICODE_STRING *base = full + 1;
            memcpy(full->Buffer, host, (total + 1) * 2);
            full->Length = image->Length;
            size_t base_len = base->Length / 2;
            if (base_len <= total)
                base->Buffer = full->Buffer + total - base_len;
        }
    }
    HeapFree(GetProcessHeap(), 0, host);
}

/* The new process's current folder, as the box sees it: Wine opens it by
 * name below the hooks (in this process for a Linux program's cwd, in the
 * child at start-up), so a folder that exists only in the box would not be
 * found and the child would start in the Windows folder. When the box's
 * view of it is a box folder, the child is handed that folder's path (its
 * fvm.dll puts the host name back); the caller's string is restored after
 * the real call. Returns the buffer to free, or NULL when unchanged. */
static wchar_t *cwd_prepare(RTL_USER_PROCESS_PARAMETERS *params, UNICODE_STRING *saved)
{
    UNICODE_STRING *cwd = (UNICODE_STRING *)&params->Reserved2[5];   /* CurrentDirectory.DosPath */
    UNICODE_STRING given;
    if (!params || !read_caller(cwd, &given, sizeof given) || given.Length < 6 || given.Length > 4096)
        return NULL;
    size_t len = given.Length / 2;
    wchar_t *nt = HeapAlloc(GetProcessHeap(), 0, (len + 5) * 2);
    uint16_t *opened = HeapAlloc(GetProcessHeap(), 0, (NTPATH_MAX_UNITS + 1) * 2);
    wchar_t *result = NULL;
    if (!nt || !opened || !read_caller(given.Buffer, nt + 4, given.Length))
        goto done;
    memcpy(nt, L"\\??\\", 8);
    if (nt[4 + len - 1] == L'\\')
        len--;   /* the folder itself, not an empty last name */
    UNICODE_STRING us = {(USHORT)((len + 4) * 2), (USHORT)((len + 4) * 2), nt};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
    HANDLE dir = NULL;
    size_t opened_len = 0;
    if (file_open_viewed(&oa, FILE_TRAVERSE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, &dir, opened, NTPATH_MAX_UNITS + 1,
                         &opened_len) < 0)
        goto done;
    NtClose(dir);
    size_t root = fvm_wcslen(g_fvm.config.box_path);
    /* In the box only when the open went to the box folder: \??\<box>\... */
    if (opened_len <= 4 + root + 1 || opened_len + 2 > 32000 || opened[4 + root] != L'\\')
        goto done;
    for (size_t i = 0; i < root; i++)
        if (fvm_wupcase(opened[4 + i]) != fvm_wupcase(g_fvm.config.box_path[i]))
            goto done;
    if (!(result = HeapAlloc(GetProcessHeap(), 0, (opened_len + 2) * 2)))
        goto done;
    size_t dos_len = opened_len - 4;
    memcpy(result, opened + 4, dos_len * 2);
    result[dos_len++] = L'\\';
    result[dos_len] = 0;
    *saved = given;
    UNICODE_STRING boxed = {(USHORT)(dos_len * 2), (USHORT)((dos_len + 1) * 2), result};
    if (!write_caller(cwd, &boxed, sizeof boxed)) {
        HeapFree(GetProcessHeap(), 0, result);
        result = NULL;
    }
done:
    HeapFree(GetProcessHeap(), 0, nt);
    HeapFree(GetProcessHeap(), 0, opened);
    return result;
}

/* ---- consoles ------------------------------------------------------------- */

/* Set while proc_after_hooks allocates a console without a window: the one
 * process created meanwhile is conhost.exe, and gets --headless (what
 * kernelbase's own allocation would have passed). */
static volatile BOOL g_console_headless;

/* If the new process would create a console itself (before it is hooked),
 * takes that from it: *flags says what its runtime must allocate, and the
 * caller's ConsoleHandle is put back by console_restore. */
static BOOL console_take(RTL_USER_PROCESS_PARAMETERS *params, HANDLE *saved, uint32_t *flags)
{
    HANDLE *slot = (HANDLE *)&params->Reserved2[0];   /* ConsoleHandle */
    HANDLE none = NULL;
    *flags = 0;
    if (!params || !read_caller(slot, saved, sizeof *saved))
        return FALSE;
    if (*saved == CONSOLE_HANDLE_ALLOC || *saved == CONSOLE_HANDLE_SHELL)
        *flags = FVM_BOX_FLAG_ALLOC_CONSOLE;
    else if (*saved == CONSOLE_HANDLE_ALLOC_NO_WINDOW)
        *flags = FVM_BOX_FLAG_ALLOC_CONSOLE | FVM_BOX_FLAG_CONSOLE_NO_WINDOW;
    else
        return FALSE;
    if (!write_caller(slot, &none, sizeof none)) {
        *flags = 0;
        return FALSE;
    }
    return TRUE;
}

static void console_restore(RTL_USER_PROCESS_PARAMETERS *params, HANDLE saved)
{
    write_caller(&params->Reserved2[0], &saved, sizeof saved);
}

/* conhost.exe --headless for a console without a window: the command line
 * with the switch appended, swapped into the parameters for the real call. */
static wchar_t *headless_command_line(RTL_USER_PROCESS_PARAMETERS *params, UNICODE_STRING *saved)
{
    static const wchar_t headless[] = L" --headless";
    UNICODE_STRING *line = &params->CommandLine;
    size_t len = line->Length / 2, extra = sizeof headless / 2 - 1;
    wchar_t *buf = HeapAlloc(GetProcessHeap(), 0, (len + extra + 1) * 2);
    if (!buf)
        return NULL;
    memcpy(buf, line->Buffer, len * 2);
    memcpy(buf + len, headless, sizeof headless);
    *saved = *line;
    line->Buffer = buf;
    line->Length = (USHORT)((len + extra) * 2);
    line->MaximumLength = (USHORT)((len + extra + 1) * 2);
    return buf;
}

void proc_after_hooks(void)
{
    uint32_t flags = g_fvm.config.flags;
    g_fvm.config.flags &= ~FVM_BOX_FLAGS_ONE_PROCESS;
    if (!(flags & FVM_BOX_FLAG_ALLOC_CONSOLE))
        return;
    /* As kernelbase: only console programs get a console of their own. */
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)GetModuleHandleW(NULL);
    const IMAGE_NT_HEADERS64 *nt = (const IMAGE_NT_HEADERS64 *)((const uint8_t *)dos + dos->e_lfanew);
    if (nt->OptionalHeader.Subsystem != IMAGE_SUBSYSTEM_WINDOWS_CUI)
        return;
    g_console_headless = (flags & FVM_BOX_FLAG_CONSOLE_NO_WINDOW) != 0;
    if (!AllocConsole())
        fvm_report("cannot allocate this program's console (error %lu)", (unsigned long)GetLastError());
    g_console_headless = FALSE;
}

/* FVM_INJECT_START_FAILURES=N (tests): this process's first N process
 * creations fail as Wine's loader failure does (STATUS_INTERNAL_ERROR),
 * without calling Wine, so the retry below can be tested; it can only make
 * the process's own starts fail. */
static BOOL injected_start_failure(void)
{
    static volatile LONG left = -1;
    if (left < 0) {
        wchar_t value[16];
        DWORD n = GetEnvironmentVariableW(L"FVM_INJECT_START_FAILURES", value, 16);
        LONG count = 0;
        for (DWORD i = 0; i < n && i < 15 && value[i] >= L'0' && value[i] <= L'9'; i++)
            count = count * 10 + (value[i] - L'0');
        InterlockedCompareExchange(&left, count, -1);
    }
    for (LONG now = left; now > 0; now = left)
        if (InterlockedCompareExchange(&left, now - 1, now) == now)
            return TRUE;
    return FALSE;
}

static NTSTATUS NTAPI box_NtCreateUserProcess(PHANDLE process, PHANDLE thread,
    ACCESS_MASK process_access, ACCESS_MASK thread_access,
    POBJECT_ATTRIBUTES process_attributes, POBJECT_ATTRIBUTES thread_attributes,
    ULONG process_flags, ULONG thread_flags, void *parameters, void *create_info,
    void *attribute_list)
{
    new_image img;
    NTSTATUS status = image_prepare(attribute_list, &img);
    if (status >= 0)
        status = process_start_check(parameters);   /* [process] rules, quota (process.c) */
    if (status < 0) {
        image_release(&img);
        return status;
    }
    RTL_USER_PROCESS_PARAMETERS *params = parameters;
    HANDLE caller_console = NULL;
    uint32_t child_flags = 0;
    BOOL console_taken = console_take(params, &caller_console, &child_flags);
    UNICODE_STRING caller_line, caller_cwd;
    wchar_t *headless = g_console_headless ? headless_command_line(params, &caller_line) : NULL;
    wchar_t *boxed_cwd = cwd_prepare(params, &caller_cwd);
    /* Wine's loader fails about one start in 1000 here before the child
     * runs any code (its shared user data page taken by the randomized brk
     * heap: docs/design.md "Wine starts that fail"), and Wine reports that
     * as STATUS_INTERNAL_ERROR. The child never ran, so it is started
     * again: a boxed program does not see a platform accident its start
     * would not have on Windows. */
    for (int attempt = 1;; attempt++) {
        status = injected_start_failure() ? STATUS_INTERNAL_ERROR : real_NtCreateUserProcess(process, thread,
            process_access | PROCESS_VM_OPERATION | PROCESS_VM_READ | PROCESS_VM_WRITE |
                PROCESS_QUERY_INFORMATION | PROCESS_SET_QUOTA | PROCESS_TERMINATE,
            thread_access | THREAD_SUSPEND_RESUME, process_attributes, thread_attributes,
            process_flags & ~PROCESS_CREATE_FLAGS_BREAKAWAY,
            thread_flags | THREAD_CREATE_FLAGS_CREATE_SUSPENDED,
            parameters, create_info, img.attributes);
        if (status != STATUS_INTERNAL_ERROR || attempt == 3)
            break;
    }
    if (headless) {
        params->CommandLine = caller_line;
        HeapFree(GetProcessHeap(), 0, headless);
    }
    if (console_taken)
        console_restore(params, caller_console);
    if (boxed_cwd) {
        write_caller(&params->Reserved2[5], &caller_cwd, sizeof caller_cwd);
        HeapFree(GetProcessHeap(), 0, boxed_cwd);
    }
    if (status < 0) {
        image_release(&img);
        process_start_failed();
        return status;
    }
    if (!*process || !*thread) {   /* Wine ran something that is not a Windows process */
        image_release(&img);
        process_start_failed();
        fvm_report("the new process has no handles (not a Windows process?); refused");
        return STATUS_ACCESS_DENIED;
    }

    /* The image is still open against writers: the injection reads its
     * headers from the file instead of from the child. */
    NTSTATUS boxed = box_new_process(*process, img.handle, child_flags);
    image_release(&img);
    if (boxed < 0) {
        /* No process_start_failed: the child inherited the job at its
         * creation, and the broker took its grant when it saw it. */
        NtTerminateProcess(*process, boxed);
        CloseHandle(*thread);
        CloseHandle(*process);
        *thread = *process = NULL;
        return boxed;
    }
    if (!(thread_flags & THREAD_CREATE_FLAGS_CREATE_SUSPENDED)) {
        runtime_bypass_enter();
        NtResumeThread(*thread, NULL);
        runtime_bypass_leave();
    } else {
        /* kernelbase resumes it right after this returns: the process
         * virtualizer need not ask the server whether it is the box's. */
        fvm_thread *t = fvm_thread_get();
        if (t)
            t->created_thread = *thread;
    }
    return status;
}

static NTSTATUS NTAPI box_NtCreateProcessEx(PHANDLE process, ACCESS_MASK access,
    POBJECT_ATTRIBUTES attributes, HANDLE parent, ULONG flags, HANDLE section,
    HANDLE debug_port, HANDLE token, ULONG reserved)
{
    fvm_report("legacy process creation (NtCreateProcessEx) is refused in a box");
    return STATUS_ACCESS_DENIED;
}

/* ---- the image name other calls report --------------------------------- */

typedef NTSTATUS (NTAPI *NtQueryInformationProcess_fn)(HANDLE, PROCESSINFOCLASS, PVOID, ULONG, PULONG);
static NtQueryInformationProcess_fn real_NtQueryInformationProcess;

#define PROCESS_IMAGE_FILE_NAME       27
#define PROCESS_IMAGE_FILE_NAME_WIN32 43

/* Wine's server keeps the name the image was opened by, which for a
 * program started from a box copy is the box path: report the host name,
 * as the process parameters do (QueryFullProcessImageName,
 * GetProcessImageFileName). In place: the host name is the shorter. */
static void report_host_image_name(UNICODE_STRING *name, PULONG return_length)
{
    static const ntpath_context any = {.input = NTPATH_INPUT_ANY};
    size_t len = name->Length / 2;
    if (!name->Buffer || len < 4)
        return;
    ntpath *paths = HeapAlloc(GetProcessHeap(), 0, 3 * sizeof(ntpath));
    if (!paths)
        return;
    ntpath *root = &paths[0], *boxed = &paths[1], *host = &paths[2];
    fvm_error err;
    const wchar_t *box = g_fvm.config.box_path;
    static const ntpath_context win32 = {.input = NTPATH_INPUT_WIN32};
    BOOL nt_form = name->Buffer[0] == L'\\';
    if (ntpath_normalize((const uint16_t *)box, fvm_wcslen(box), &win32, root, &err) == FVM_OK &&
        ntpath_normalize((const uint16_t *)name->Buffer, len, &any, boxed, &err) == FVM_OK &&
        ntpath_is_within(boxed, root) &&
        ntpath_from_box(boxed, root->path, root->len, host, &err) == FVM_OK && host->len > 4 &&
        host->kind == NTPATH_KIND_DRIVE) {
        const uint16_t *out = nt_form ? host->path : host->path + 4;   /* \??\C:\x or C:\x */
        size_t out_len = nt_form ? host->len : host->len - 4;
        if (out_len < len) {
            memcpy(name->Buffer, out, out_len * 2);
            name->Buffer[out_len] = 0;
            name->Length = (USHORT)(out_len * 2);
            if (return_length)
                *return_length = (ULONG)(sizeof *name + out_len * 2 + 2);
        }
    }
    HeapFree(GetProcessHeap(), 0, paths);
}

static NTSTATUS NTAPI box_NtQueryInformationProcess(HANDLE process, PROCESSINFOCLASS klass, PVOID info,
                                                    ULONG length, PULONG return_length)
{
    NTSTATUS status = real_NtQueryInformationProcess(process, klass, info, length, return_length);
    if (status >= 0 && info && length >= sizeof(UNICODE_STRING) &&
        (klass == PROCESS_IMAGE_FILE_NAME || klass == PROCESS_IMAGE_FILE_NAME_WIN32)) {
        DWORD error = GetLastError();
        report_host_image_name((UNICODE_STRING *)info, return_length);
        SetLastError(error);
    }
    return status;
}

static void proc_hooks(hook_table *table)
{
    hook_table_add(table, "ntdll.dll", "NtCreateUserProcess",
                   (void *)box_NtCreateUserProcess, (void **)&real_NtCreateUserProcess);
    hook_table_add(table, "ntdll.dll", "NtQueryInformationProcess",
                   (void *)box_NtQueryInformationProcess, (void **)&real_NtQueryInformationProcess);
    hook_table_add_optional(table, "ntdll.dll", "NtCreateProcessEx",
                   (void *)box_NtCreateProcessEx, (void **)&real_NtCreateProcessEx);
}

static BOOL proc_start(void)
{
    proc_fix_image_name();
    return TRUE;
}

const fvm_virtualizer process_virtualizer = {
    .name = "process",
    .policy = POLICY_TYPE_PROCESS,
    .start = proc_start,
    .hooks = proc_hooks,
};
