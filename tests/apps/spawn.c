/* spawn.c - spawn.exe, starts programs the ways a boxed program can, for the
 * process-image tests (a Linux program, a 32-bit image, an exe that exists
 * only in the box, one the box replaced or deleted).
 *
 *   spawn.exe create CMDLINE...   CreateProcessW(NULL, CMDLINE), wait, print
 *                                 "spawn: exit=N" and exit with N, or print
 *                                 "spawn: error=E" and exit 200
 *   spawn.exe app APP CMDLINE...  the same with lpApplicationName = APP
 *   spawn.exe shell FILE [ARGS]   ShellExecuteExW, as above
 *   spawn.exe selfname            print "selfname: <GetModuleFileNameW(NULL)>"
 *                                 "imagepath: <the process parameters' ImagePathName>"
 *                                 and "fullname: <QueryFullProcessImageNameW>"
 *   spawn.exe exit N              exit with code N
 *   spawn.exe sleep MS            sleep, exit 0
 *   spawn.exe launchers N FVM PROGRAM...
 *                                 hostile: start FVM (fvm.exe) N times as fvm
 *                                 run's launcher (`__start PIPE EVENT PROGRAM`,
 *                                 with an event never set, so each waits 30 s),
 *                                 print "created=C", then after 3 s
 *                                 "alive=A" (launchers still running), end them
 *
 * CMDLINE is the rest of this program's own command line, as typed. */
#include <windows.h>
#include <winternl.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

/* The rest of the command line after the first `skip` arguments. */
static wchar_t *rest_of_line(int skip)
{
    wchar_t *p = GetCommandLineW();
    for (int i = 0; i < skip; i++) {
        while (*p == L' ' || *p == L'\t')
            p++;
        BOOL quoted = FALSE;
        while (*p && (quoted || (*p != L' ' && *p != L'\t'))) {
            if (*p == L'"')
                quoted = !quoted;
            p++;
        }
    }
    while (*p == L' ' || *p == L'\t')
        p++;
    return p;
}

static int finish(HANDLE process)
{
    WaitForSingleObject(process, INFINITE);
    DWORD code = 0;
    GetExitCodeProcess(process, &code);
    CloseHandle(process);
    printf("spawn: exit=%lu\n", (unsigned long)code);
    return (int)code;
}

static int failed(void)
{
    printf("spawn: error=%lu\n", (unsigned long)GetLastError());
    return 200;
}

/* Processes of the image fvm run uses as its launcher, started from inside
 * the box: each must count against the box's process quota. */
static int launchers(int count, const wchar_t *fvm, const wchar_t *program)
{
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE never = CreateEventW(&inherit, TRUE, FALSE, NULL), pipe_read, pipe_write;
    if (!never || !CreatePipe(&pipe_read, &pipe_write, &inherit, 0) || count < 1 || count > 32)
        return failed();
    HANDLE started[32];
    int created = 0;
    for (int i = 0; i < count; i++) {
        wchar_t line[4096];
        _snwprintf(line, 4096, L"\"%ls\" __start %llu %llu %ls", fvm, (unsigned long long)(UINT_PTR)pipe_write,
                   (unsigned long long)(UINT_PTR)never, program);
        line[4095] = 0;
        STARTUPINFOW si = {sizeof si};
        PROCESS_INFORMATION pi;
        if (CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
            CloseHandle(pi.hThread);
            started[created++] = pi.hProcess;
        }
    }
    printf("created=%d\n", created);
    Sleep(3000);
    int alive = 0;
    for (int i = 0; i < created; i++) {
        if (WaitForSingleObject(started[i], 0) == WAIT_TIMEOUT)
            alive++;
        TerminateProcess(started[i], 0);
        CloseHandle(started[i]);
    }
    printf("alive=%d\n", alive);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    if (!wcscmp(argv[1], L"exit") && argc > 2)
        return _wtoi(argv[2]);
    if (!wcscmp(argv[1], L"sleep") && argc > 2) {
        Sleep((DWORD)_wtoi(argv[2]));
        return 0;
    }
    if (!wcscmp(argv[1], L"selfname")) {
        wchar_t name[MAX_PATH * 2];
        GetModuleFileNameW(NULL, name, MAX_PATH * 2);
        printf("selfname: %ls\n", name);
        PEB *peb;
        __asm__("movq %%gs:0x60, %0" : "=r"(peb));
        printf("imagepath: %.*ls\n", (int)(peb->ProcessParameters->ImagePathName.Length / 2),
               peb->ProcessParameters->ImagePathName.Buffer);
        DWORD len = MAX_PATH * 2;
        if (QueryFullProcessImageNameW(GetCurrentProcess(), 0, name, &len))
            printf("fullname: %ls\n", name);
        return 0;
    }
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!wcscmp(argv[1], L"launchers") && argc > 4)
        return launchers(_wtoi(argv[2]), argv[3], rest_of_line(4));
    if (!wcscmp(argv[1], L"create") && argc > 2) {
        if (!CreateProcessW(NULL, rest_of_line(2), NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
            return failed();
        CloseHandle(pi.hThread);
        if (!pi.hProcess) {
            printf("spawn: no process handle\n");
            return 201;
        }
        return finish(pi.hProcess);
    }
    if (!wcscmp(argv[1], L"app") && argc > 3) {
        if (!CreateProcessW(argv[2], rest_of_line(3), NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
            return failed();
        CloseHandle(pi.hThread);
        if (!pi.hProcess) {
            printf("spawn: no process handle\n");
            return 201;
        }
        return finish(pi.hProcess);
    }
    if (!wcscmp(argv[1], L"shell") && argc > 2) {
        SHELLEXECUTEINFOW sei = {sizeof sei};
        sei.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_FLAG_NO_UI | SEE_MASK_NO_CONSOLE;
        sei.lpFile = argv[2];
        sei.lpParameters = argc > 3 ? rest_of_line(3) : NULL;
        sei.nShow = SW_SHOWNORMAL;
        if (!ShellExecuteExW(&sei))
            return failed();
        if (!sei.hProcess) {
            printf("spawn: no process handle\n");
            return 201;
        }
        return finish(sei.hProcess);
    }
    return 2;
}
