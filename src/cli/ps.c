/* ps.c - fvm ps and fvm stop.
 *
 * Box membership is the box's job object: every boxed process is in it from
 * before its first instruction (run.c, runtime/proc.c) and children inherit
 * it. Wine's tasklist is a stub and its job pid list omits inherited members,
 * so the list comes from the box's broker (common/brokerproto.h), with each
 * process's image and parent looked up here. */
#include "cli/cli.h"

#include "common/boxserver.h"

#include <string.h>
#include <winternl.h>

#include "common/brokerproto.h"
#include "core/boxname.h"
#include "core/ntpath.h"

typedef struct proc_row {
    DWORD pid, parent;
    char image[FVM_PATH_MAX * 3];
} proc_row;

/* A program started from a box copy has the box path as its image name
 * (runtime/proc.c): show the program's own (host) name, in place. */
static void host_image_name(const box *b, wchar_t *image)
{
    static const ntpath_context win32 = {.input = NTPATH_INPUT_WIN32};
    size_t box_len = wcslen(b->path);
    if (_wcsnicmp(image, b->path, box_len) || image[box_len] != L'\\')
        return;
    ntpath *paths = malloc(3 * sizeof(ntpath));
    if (!paths)
        return;
    fvm_error err;
    if (ntpath_normalize((const uint16_t *)b->path, box_len, &win32, &paths[0], &err) == FVM_OK &&
        ntpath_normalize((const uint16_t *)image, wcslen(image), &win32, &paths[1], &err) == FVM_OK &&
        ntpath_is_within(&paths[1], &paths[0]) &&
        ntpath_from_box(&paths[1], paths[0].path, paths[0].len, &paths[2], &err) == FVM_OK &&
        paths[2].kind == NTPATH_KIND_DRIVE && paths[2].len > 4 && paths[2].len - 4 < FVM_PATH_MAX) {
        memcpy(image, paths[2].path + 4, (paths[2].len - 4) * sizeof(wchar_t));
        image[paths[2].len - 4] = 0;
    }
    free(paths);
}

/* FALSE for a member that runs nothing any more: ended, or a thread-less
 * process Wine left in the job (boxlife_job_live_processes). */
static BOOL describe_process(const box *b, DWORD pid, proc_row *row)
{
    row->pid = pid;
    row->parent = 0;
    strcpy(row->image, "?");
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_QUERY_INFORMATION | SYNCHRONIZE, FALSE, pid);
    if (!h)
        return TRUE;
    if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
        CloseHandle(h);
        return FALSE;
    }
    PROCESS_BASIC_INFORMATION pbi;
    if (NtQueryInformationProcess(h, ProcessBasicInformation, &pbi, sizeof pbi, NULL) >= 0)
        row->parent = (DWORD)pbi.InheritedFromUniqueProcessId;
    wchar_t image[FVM_PATH_MAX];
    DWORD n = FVM_PATH_MAX;
    if (QueryFullProcessImageNameW(h, 0, image, &n)) {
        host_image_name(b, image);
        cli_utf8(image, row->image, sizeof row->image);
    }
    CloseHandle(h);
    return TRUE;
}

/* Asks the box's broker for its member list (common/brokerproto.h).
 * Returns the number of pids, 0 if the box is not running, -1 on error. */
static int query_members(const box *b, fvm_members_reply *reply)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    HANDLE pipe = INVALID_HANDLE_VALUE;
    for (int attempt = 0; attempt < 50 && pipe == INVALID_HANDLE_VALUE; attempt++) {
        pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        if (GetLastError() != ERROR_PIPE_BUSY)
            return box_process_count(b) ? -1 : 0;   /* no broker: no box processes */
        WaitNamedPipeW(name, 100);
    }
    if (pipe == INVALID_HANDLE_VALUE)
        return box_process_count(b) ? -1 : 0;
    DWORD mode = PIPE_READMODE_MESSAGE, written, got = 0;
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    BOOL ok = WriteFile(pipe, FVM_BROKER_REQ_MEMBERS, (DWORD)strlen(FVM_BROKER_REQ_MEMBERS), &written, NULL) &&
              ReadFile(pipe, reply, sizeof *reply, &got, NULL);
    CloseHandle(pipe);
    /* A broker whose box has just emptied closes its pipe as it exits,
     * maybe under our request: an empty job is the answer then. */
    if (!ok)
        return box_process_count(b) ? -1 : 0;
    /* Validate before use: the reply comes from another process. */
    if (got < 8 || reply->version != FVM_BROKER_PROTO_VERSION ||
        reply->count > FVM_BROKER_MAX_MEMBERS || got != 8 + reply->count * sizeof(uint32_t))
        return -1;
    return (int)reply->count;
}

/* Prints row i and, below it and indented, the rows whose parent it is. */
static void print_tree(const box *b, const proc_row *rows, int count, int i, int depth, BOOL *printed)
{
    if (printed[i] || depth > 64)
        return;
    printed[i] = TRUE;
    printf("%-16s %8lu %8lu  %*s%s%s\n", b->name, (unsigned long)rows[i].pid, (unsigned long)rows[i].parent,
           depth * 2, "", depth ? "\\_ " : "", rows[i].image);
    for (int j = 0; j < count; j++)
        if (j != i && rows[j].parent == rows[i].pid)
            print_tree(b, rows, count, j, depth + 1, printed);
}

static int print_box_processes(const box *b, BOOL header)
{
    static fvm_members_reply reply;
    static proc_row rows[FVM_BROKER_MAX_MEMBERS];
    static BOOL printed[FVM_BROKER_MAX_MEMBERS];
    if (header)
        printf("%-16s %8s %8s  %s\n", "BOX", "PID", "PPID", "IMAGE");
    int count = query_members(b, &reply);
    if (count < 0)
        return cli_error("cannot get the process list of box '%s' from its broker", b->name);
    int described = 0;
    for (int i = 0; i < count; i++) {
        if (describe_process(b, reply.pids[i], &rows[described]))
            printed[described++] = FALSE;
    }
    count = described;
    /* The tree: each process whose parent is not in the box is a root. */
    for (int i = 0; i < count; i++) {
        BOOL has_parent = FALSE;
        for (int j = 0; j < count && !has_parent; j++)
            has_parent = j != i && rows[j].pid == rows[i].parent;
        if (!has_parent)
            print_tree(b, rows, count, i, 0, printed);
    }
    for (int i = 0; i < count; i++)   /* a cycle of reused pids: still listed */
        print_tree(b, rows, count, i, 0, printed);
    return 0;
}

uint32_t box_process_flags(const wchar_t *ini)
{
    wchar_t value[16];
    uint32_t flags = 0;
    GetPrivateProfileStringW(L"box", L"confidential", L"no", value, 16, ini);
    if (!_wcsicmp(value, L"yes") || !_wcsicmp(value, L"true") || !wcscmp(value, L"1"))
        flags |= FVM_BOX_FLAG_CONFIDENTIAL;
    if (GetPrivateProfileIntW(L"box", L"procs", 0, ini) > 0)
        flags |= FVM_BOX_FLAG_PROCS_LIMIT;
    GetPrivateProfileStringW(L"box", L"show_box_in_title", L"no", value, 16, ini);
    if (!_wcsicmp(value, L"yes") || !_wcsicmp(value, L"true") || !wcscmp(value, L"1"))
        flags |= FVM_BOX_FLAG_SHOW_TITLE;
    GetPrivateProfileStringW(L"box", L"display", L"host", value, 16, ini);
    if (!_wcsicmp(value, L"own"))
        flags |= FVM_BOX_FLAG_OWN_DISPLAY;
    GetPrivateProfileStringW(L"box", L"server", L"host", value, 16, ini);
    if (!_wcsicmp(value, L"own"))
        flags |= FVM_BOX_FLAG_OWN_SERVER;
    return flags;
}

int cmd_ps(int argc, char **argv)
{
    if (argc > 2)
        return cli_error("usage: fvm ps [NAME]"), EXIT_USAGE;
    if (argc == 2) {
        box b;
        if (!box_init(&b, argv[1]))
            return EXIT_FAIL;
        if (!box_exists(&b))
            return cli_error("no box named '%s'", argv[1]);
        int code;
        if (own_server_join(&b, &code))
            return code;   /* asked in the box's own Wine server (ownserver.c) */
        return print_box_processes(&b, TRUE);
    }
    wchar_t pattern[FVM_PATH_MAX];
    box_root(pattern, FVM_PATH_MAX);
    fvm_wcscat(pattern, FVM_PATH_MAX, L"\\boxes\\*");
    WIN32_FIND_DATAW fd;
    BOOL header = TRUE;
    int rc = 0;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) {
        printf("%-16s %8s %8s  %s\n", "BOX", "PID", "PPID", "IMAGE");
        return 0;
    }
    do {
        if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || fd.cFileName[0] == L'.')
            continue;
        char name[FVM_BOX_NAME_MAX * 3];
        box b;
        fvm_error err;
        cli_utf8(fd.cFileName, name, sizeof name);
        if (fvm_box_name_validate(name, &err) != FVM_OK || !box_init(&b, name) || !box_exists(&b))
            continue;
        if (!own_server_inside() && boxserver_busy(b.path)) {
            if (header)
                printf("%-16s %8s %8s  %s\n", "BOX", "PID", "PPID", "IMAGE");
            printf("%-16s %8s %8s  (in its own Wine server: fvm ps %s)\n", b.name, "-", "-", b.name);
            header = FALSE;
            continue;
        }
        rc |= print_box_processes(&b, header);
        header = FALSE;
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    if (header)
        printf("%-16s %8s %8s  %s\n", "BOX", "PID", "PPID", "IMAGE");
    return rc;
}

int cmd_stop(int argc, char **argv)
{
    if (argc != 2)
        return cli_error("usage: fvm stop NAME"), EXIT_USAGE;
    box b;
    if (!box_init(&b, argv[1]))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", argv[1]);
    int code;
    if (own_server_join(&b, &code)) {
        own_server_end_idle(&b);
        return code;   /* stopped from inside the box's own Wine server, so its broker saves the registry */
    }
    DWORD before = box_process_count(&b);
    int rc = box_stop(&b, 15000);
    if (rc == 0)
        printf("stopped box '%s' (%lu processes were running)\n", b.name, (unsigned long)before);
    return rc;
}
