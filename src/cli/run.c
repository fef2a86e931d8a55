/* run.c - fvm run: start a program as the first process of a box.
 *
 * The program is not created by fvm.exe itself: fvm.exe sees the host, and
 * the program must be found and started as the box sees it (an exe that
 * exists only in the box, one the box replaced or deleted), and refused if
 * it is not an x64 Windows program (Wine would run a Linux program outside
 * the box). So fvm.exe starts a copy of itself in the box ("__start"), and
 * that boxed launcher creates the program through the runtime's
 * NtCreateUserProcess hook like any boxed program would (runtime/proc.c).
 *
 * Order matters: the launcher is created suspended, fvm.dll is injected
 * (common/inject.c), the process joins the box's job, and only then does it
 * run. The box lock is held from checking the broker until the launcher is
 * in the job, so the broker never exits between the two (see broker/main.c).
 * The launcher sends the program's pid back on a pipe and keeps its handle
 * to the program until fvm.exe has opened it (so the pid cannot be reused in
 * between), then exits: the program's parent is outside the box, as before,
 * and fvm.exe waits for the program and returns its exit code. */
#include "cli/cli.h"

#include "common/regstore.h"
#include "core/regfile.h"

#include <string.h>

#include "common/inject.h"
#include "common/policyload.h"
#include "core/cmdline.h"

static void print_diag(void *ctx, const policy_diag *d)
{
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    fprintf(stderr, "%s\n", line);
}

static int check_box_policy(const box *b)
{
    wchar_t path[FVM_PATH_MAX];
    char why[512], where[FVM_PATH_MAX * 3];
    void *blob = NULL;
    size_t len = 0;
    if (fvm_policy_box_path(b->path, path, FVM_PATH_MAX) != FVM_OK)
        return cli_error("the policy path of box '%s' is too long", b->name);
    fvm_status st = fvm_policy_compile_file(path, &blob, &len, print_diag, NULL, why, sizeof why);
    if (st != FVM_OK) {
        cli_utf8(path, where, sizeof where);
        return cli_error("the policy of box '%s' (%s) cannot be used: %s", b->name, where, why);
    }
    policy_blob_free(blob);
    return 0;
}

static fvm_status accept_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    return FVM_OK;
}

static fvm_status accept_value(void *ctx, const uint16_t *name, size_t name_len, uint32_t type, const uint8_t *data,
                               size_t size, fvm_error *err)
{
    return FVM_OK;
}

/* The broker loads <box>\registry.dat at start and refuses a damaged one;
 * reading it here first tells the user where it is damaged. */
static int check_box_registry(const box *b)
{
    wchar_t path[FVM_PATH_MAX];
    regstore_file_path(b->path, path, FVM_PATH_MAX);
    if (GetFileAttributesW(path) == INVALID_FILE_ATTRIBUTES)
        return 0;   /* a box that never touched the registry */
    char *text = NULL;
    size_t len = 0;
    fvm_error err;
    fvm_status st = regstore_read_file(path, &text, &len, &err);
    if (st == FVM_OK) {
        regfile_visitor v = {accept_key, accept_value, NULL};
        st = regfile_parse(text, len, &v, &err);
    }
    free(text);
    if (st != FVM_OK) {
        char where[FVM_PATH_MAX * 3];
        cli_utf8(path, where, sizeof where);
        return cli_error("the registry of box '%s' (%s) cannot be loaded: %s", b->name, where, err.message);
    }
    return 0;
}

/* Starts the broker of the box unless it is running, with the lock held. */
static int ensure_broker(const box *b)
{
    wchar_t ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);
    HANDLE ready = OpenEventW(SYNCHRONIZE, FALSE, ready_name);
    if (ready) {
        CloseHandle(ready);
        return 0;
    }

    /* The broker compiles the box's policy; compile it here first so that
     * a mistake in it reaches the user as file:line:column. */
    int rc = check_box_policy(b);
    if (!rc)
        rc = check_box_registry(b);
    if (rc)
        return rc;

    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE started = CreateEventW(&inherit, TRUE, FALSE, NULL);
    if (!started)
        return cli_win_error(GetLastError(), "cannot create an event");
    wchar_t exe[FVM_PATH_MAX], cmdline[FVM_PATH_MAX * 2 + 64];
    cli_exe_dir(exe, FVM_PATH_MAX);
    fvm_wcscat(exe, FVM_PATH_MAX, L"\\fvm-broker.exe");
    _snwprintf(cmdline, sizeof cmdline / sizeof cmdline[0], L"\"%ls\" %llu \"%ls\" %llu", exe,
               (unsigned long long)(UINT_PTR)started, b->path, (unsigned long long)box_quota(b));
    cmdline[sizeof cmdline / sizeof cmdline[0] - 1] = 0;

    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    /* Only the started event is inherited, and the standard handles are
     * none: the broker must not keep our console or our caller's pipes open
     * after we exit. */
    si.dwFlags = STARTF_USESTDHANDLES;
    char attr_buf[128];
    SIZE_T attr_size = sizeof attr_buf;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = (LPPROC_THREAD_ATTRIBUTE_LIST)attr_buf;
    STARTUPINFOEXW six;
    memset(&six, 0, sizeof six);
    six.StartupInfo = si;
    six.StartupInfo.cb = sizeof six;
    if (!InitializeProcThreadAttributeList(attrs, 1, 0, &attr_size) ||
        !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, &started, sizeof started, NULL, NULL)) {
        CloseHandle(started);
        return cli_win_error(GetLastError(), "cannot prepare the broker's attributes");
    }
    six.lpAttributeList = attrs;
    if (!cli_create_process(exe, cmdline, TRUE,
                            DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | EXTENDED_STARTUPINFO_PRESENT, NULL,
                            &six.StartupInfo, &pi)) {
        DWORD e = GetLastError();
        DeleteProcThreadAttributeList(attrs);
        CloseHandle(started);
        char p[FVM_PATH_MAX * 3];
        cli_utf8(exe, p, sizeof p);
        return cli_win_error(e, "cannot start the box broker '%s'", p);
    }
    DeleteProcThreadAttributeList(attrs);
    CloseHandle(pi.hThread);
    HANDLE waits[2] = {started, pi.hProcess};
    DWORD w = WaitForMultipleObjects(2, waits, FALSE, 15000);
    DWORD broker_exit = 0;
    if (w == WAIT_OBJECT_0 + 1)
        GetExitCodeProcess(pi.hProcess, &broker_exit);
    CloseHandle(pi.hProcess);
    CloseHandle(started);
    if (w == WAIT_OBJECT_0)
        return 0;
    if (w == WAIT_OBJECT_0 + 1 && broker_exit == 16)
        return cli_error("box '%s' has a display of its own (box.ini display=own), and it could not be started: "
                         "it needs Xvfb (/usr/bin/Xvfb; Debian: apt install xvfb) and a Linux host",
                         b->name);
    if (w == WAIT_OBJECT_0 + 1)
        return cli_error("the broker of box '%s' exited during start-up (code %lu)", b->name,
                         (unsigned long)broker_exit);
    return cli_error("the broker of box '%s' did not start within 15 s", b->name);
}

/* Creates the boxed launcher (fvm.exe __start PIPE EVENT PROGRAM...)
 * suspended, boxes it, and returns its handles. */
static int launch_boxed(const box *b, wchar_t *cmdline, BOOL no_floor, PROCESS_INFORMATION *pi)
{
    fvm_box_config cfg;
    box_config(b, &cfg);
    if (no_floor)
        cfg.flags |= FVM_BOX_FLAG_NO_FLOOR;   /* fvm.dll records it in the box's audit log */
    if (GetFileAttributesW(cfg.dll_path) == INVALID_FILE_ATTRIBUTES)
        return cli_win_error(GetLastError(), "cannot find fvm.dll next to fvm.exe");

    wchar_t job_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_ASSIGN_PROCESS | JOB_OBJECT_QUERY, FALSE, job_name);
    if (!job)
        return cli_win_error(GetLastError(), "cannot open the job of box '%s'", b->name);

    wchar_t exe[FVM_PATH_MAX];
    cli_exe_dir(exe, FVM_PATH_MAX);
    fvm_wcscat(exe, FVM_PATH_MAX, L"\\fvm.exe");
    STARTUPINFOW si = {sizeof si};
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    if (!cli_create_process(exe, cmdline, TRUE, CREATE_SUSPENDED, NULL, &si, pi)) {
        DWORD e = GetLastError();
        char c[FVM_PATH_MAX * 3];
        CloseHandle(job);
        cli_utf8(exe, c, sizeof c);
        return cli_win_error(e, "cannot start the launcher '%s'", c);
    }
    char why[256];
    NTSTATUS st = fvm_inject_process(pi->hProcess, NULL, &cfg, why, sizeof why);
    const char *failed = NULL;
    if (st < 0)
        failed = why;
    else if (!AssignProcessToJobObject(job, pi->hProcess))
        failed = "cannot put the process in the box's job";
    CloseHandle(job);
    if (failed) {
        TerminateProcess(pi->hProcess, 1);
        CloseHandle(pi->hThread);
        CloseHandle(pi->hProcess);
        return cli_error("cannot box the program, so it was not started: %s", failed);
    }
    return 0;
}

/* fvm.exe __start PIPE EVENT PROGRAM [ARGS...], run boxed by fvm run:
 * creates PROGRAM as the box sees it, sends its pid on PIPE and keeps its
 * handle until fvm.exe sets EVENT. Refuses to run outside a box. */
int cmd_start_in_box(const wchar_t *raw_cmdline)
{
    typedef BOOL (*status_fn)(wchar_t *, DWORD);
    HMODULE runtime = GetModuleHandleW(L"fvm.dll");
    status_fn boxed = runtime ? (status_fn)(void *)GetProcAddress(runtime, "fvm_runtime_status") : NULL;
    if (!boxed || !boxed(NULL, 0))
        return cli_error("__start runs only inside a box (it is fvm run's launcher)");

    const uint16_t *line = (const uint16_t *)raw_cmdline;
    size_t pos = 0;
    cmdline_token tok;
    uint16_t value[32];
    HANDLE handles[2] = {NULL, NULL};
    cmdline_next_program(line, &pos, &tok, NULL, 0);   /* fvm.exe */
    cmdline_next(line, &pos, &tok, NULL, 0);           /* __start */
    for (int i = 0; i < 2; i++) {
        if (!cmdline_next(line, &pos, &tok, value, 32))
            return cli_error("__start: missing handles"), EXIT_USAGE;
        char digits[32];
        size_t n = 0;
        for (; value[n] && n + 1 < sizeof digits; n++)
            digits[n] = (char)value[n];
        digits[n] = 0;
        handles[i] = (HANDLE)(UINT_PTR)strtoull(digits, NULL, 10);
    }
    if (!cmdline_next(line, &pos, &tok, NULL, 0))
        return cli_error("__start: no program"), EXIT_USAGE;
    HANDLE pipe = handles[0], opened = handles[1];
    /* The program must not inherit FVM's own handles. */
    SetHandleInformation(pipe, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(opened, HANDLE_FLAG_INHERIT, 0);

    size_t len = fvm_wcslen(raw_cmdline + tok.start);
    wchar_t *program = HeapAlloc(GetProcessHeap(), 0, (len + 1) * sizeof(wchar_t));
    if (!program)
        return cli_error("out of memory");
    memcpy(program, raw_cmdline + tok.start, (len + 1) * sizeof(wchar_t));
    STARTUPINFOW si = {sizeof si};
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    if (!cli_create_process(NULL, program, TRUE, 0, NULL, &si, &pi)) {
        DWORD e = GetLastError();
        char c[2048];
        cli_utf8(program, c, sizeof c);
        HeapFree(GetProcessHeap(), 0, program);
        return cli_win_error(e, "cannot start '%s'", c);
    }
    HeapFree(GetProcessHeap(), 0, program);
    CloseHandle(pi.hThread);
    DWORD pid = pi.dwProcessId, written = 0;
    WriteFile(pipe, &pid, sizeof pid, &written, NULL);
    CloseHandle(pipe);
    WaitForSingleObject(opened, 30000);
    CloseHandle(opened);
    CloseHandle(pi.hProcess);
    return 0;
}

/* After the launcher runs: the program's pid from the pipe, the program
 * opened while the launcher still holds it. NULL if the launcher failed
 * (it said why); *launcher_code is then its exit code. */
static HANDLE receive_program(HANDLE pipe, HANDLE opened, HANDLE launcher, DWORD *launcher_code)
{
    DWORD pid = 0, got = 0;
    HANDLE program = NULL;
    if (ReadFile(pipe, &pid, sizeof pid, &got, NULL) && got == sizeof pid) {
        program = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
        if (!program)
            cli_win_error(GetLastError(), "cannot open the started program (pid %lu)", (unsigned long)pid);
    }
    SetEvent(opened);
    WaitForSingleObject(launcher, INFINITE);
    *launcher_code = EXIT_FAIL;
    GetExitCodeProcess(launcher, launcher_code);
    if (program == NULL && *launcher_code == 0)
        *launcher_code = EXIT_FAIL;
    return program;
}

/* When the program was the box's last process, the broker writes the last
 * audit records and saves the registry, then exits: wait (a little) for
 * that, so what the program did is in the box's log and files when fvm run
 * returns. If other processes still run, the box goes on without us. */
static void wait_for_box_end(const box *b)
{
    wchar_t job_name[FVM_OBJ_NAME_MAX], ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(b->path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);
    for (int waited = 0; waited < 3000; waited += 10) {
        HANDLE job = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, job_name);
        JOBOBJECT_BASIC_ACCOUNTING_INFORMATION info;
        BOOL busy = job && QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &info, sizeof info,
                                                     NULL) && info.ActiveProcesses != 0;
        if (job)
            CloseHandle(job);
        if (busy)
            return;
        HANDLE ready = OpenEventW(SYNCHRONIZE, FALSE, ready_name);
        if (!ready)
            return;   /* the broker is gone: everything is written */
        CloseHandle(ready);
        Sleep(10);
    }
}

int cmd_run(int argc, char **argv, const wchar_t *raw_cmdline)
{
    /* Walk the raw line in step with argv to find where PROGRAM starts. */
    const uint16_t *line = (const uint16_t *)raw_cmdline;
    size_t pos = 0;
    cmdline_token tok;
    cmdline_next_program(line, &pos, &tok, NULL, 0);   /* fvm.exe */
    cmdline_next(line, &pos, &tok, NULL, 0);           /* run */
    const char *box_name = "default";
    BOOL no_floor = FALSE;
    int i = 1;
    size_t program_start = 0;
    for (; i < argc; i++) {
        cmdline_next(line, &pos, &tok, NULL, 0);
        if (!strcmp(argv[i], "--box") && i + 1 >= argc)
            return cli_error("run: --box needs a box name"), EXIT_USAGE;
        if (!strcmp(argv[i], "--box")) {
            box_name = argv[++i];
            cmdline_next(line, &pos, &tok, NULL, 0);
        } else if (!strcmp(argv[i], "--no-floor")) {
            no_floor = TRUE;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            if (i < argc) {
                cmdline_next(line, &pos, &tok, NULL, 0);
                program_start = tok.start;
            }
            break;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return cli_error("run: unknown option '%s'", argv[i]), EXIT_USAGE;
        } else {
            program_start = tok.start;
            break;
        }
    }
    if (i >= argc)
        return cli_error("usage: fvm run [--box NAME] [--no-floor] [--] PROGRAM [ARGS...]"), EXIT_USAGE;

    box b;
    if (!box_init(&b, box_name))
        return EXIT_FAIL;
    if (!box_exists(&b)) {
        if (strcmp(box_name, "default") != 0)
            return cli_error("no box named '%s' (create it with: fvm create %s)", box_name, box_name);
        int rc = box_create(&b, NULL, 0);
        if (rc)
            return rc;
    }
    int display = own_display_number(&b), again_code;
    if (fvm_box_own_server(b.path)) {
        if (own_server_run(&b, display, no_floor, &again_code))
            return again_code;   /* run again in the box's own Wine server (ownserver.c) */
    } else if (display >= 0 && own_display_reexec(&b, display, &again_code)) {
        return again_code;   /* run again with the box's DISPLAY (owndisplay.c) */
    }

    /* fvm.exe __start PIPE EVENT PROGRAM...: the handles are inherited by
     * the launcher only (it makes them non-inheritable before it creates
     * the program). */
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE pipe_read = NULL, pipe_write = NULL;
    HANDLE opened = CreateEventW(&inherit, TRUE, FALSE, NULL);
    if (!opened || !CreatePipe(&pipe_read, &pipe_write, &inherit, 0))
        return cli_win_error(GetLastError(), "cannot create the launcher's pipe");
    SetHandleInformation(pipe_read, HANDLE_FLAG_INHERIT, 0);
    size_t len = fvm_wcslen(raw_cmdline + program_start);
    size_t cap = len + FVM_PATH_MAX + 96;
    wchar_t *cmdline = HeapAlloc(GetProcessHeap(), 0, cap * sizeof(wchar_t));
    if (!cmdline)
        return cli_error("out of memory");
    wchar_t exe[FVM_PATH_MAX];
    cli_exe_dir(exe, FVM_PATH_MAX);
    _snwprintf(cmdline, cap, L"\"%ls\\fvm.exe\" __start %llu %llu %ls", exe,
               (unsigned long long)(UINT_PTR)pipe_write, (unsigned long long)(UINT_PTR)opened,
               raw_cmdline + program_start);
    cmdline[cap - 1] = 0;

    wchar_t lock_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b.path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    HANDLE lock = CreateMutexW(NULL, FALSE, lock_name);
    if (!lock)
        return cli_win_error(GetLastError(), "cannot create the lock of box '%s'", b.name);
    WaitForSingleObject(lock, INFINITE);
    PROCESS_INFORMATION pi;
    int rc = ensure_broker(&b);
    if (rc == 0)
        rc = launch_boxed(&b, cmdline, no_floor, &pi);
    ReleaseMutex(lock);
    CloseHandle(lock);
    HeapFree(GetProcessHeap(), 0, cmdline);
    CloseHandle(pipe_write);
    if (rc) {
        CloseHandle(pipe_read);
        CloseHandle(opened);
        return rc;
    }
    if (no_floor)
        fprintf(stderr, "fvm: warning: box '%s' runs without its kernel floor (--no-floor): a program that "
                        "bypasses the hooks is not contained; recorded in the box's audit log\n", b.name);

    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    DWORD code = EXIT_FAIL;
    HANDLE program = receive_program(pipe_read, opened, pi.hProcess, &code);
    CloseHandle(pipe_read);
    CloseHandle(opened);
    CloseHandle(pi.hProcess);
    if (!program)
        return (int)code;
    WaitForSingleObject(program, INFINITE);
    code = EXIT_FAIL;
    GetExitCodeProcess(program, &code);
    CloseHandle(program);
    wait_for_box_end(&b);
    return (int)code;
}
