/* probe.c - probe.exe, the test program that tells whether it runs boxed.
 *
 *   probe.exe                 print one status line and exit 0
 *   probe.exe exit N          print status, exit with code N
 *   probe.exe spawn N         print status, run "probe.exe spawn N-1" with
 *                             CreateProcessW and exit with its code (N=0 stops)
 *   probe.exe suspended       create a child with CREATE_SUSPENDED, wait a
 *                             moment, resume it, exit with the child's code
 *   probe.exe system CMD      run CMD through system() (cmd /c), exit with its code
 *   probe.exe chain N         keep a chain of N more processes alive: spawn one
 *                             child "chain N-1" after 200 ms and respawn it
 *                             whenever it dies; the last one just waits; never
 *                             exits (for fvm stop)
 *   probe.exe sleep MS        print status, sleep, exit 0
 *   probe.exe storm           start "probe.exe exit 0" without waiting, again
 *                             and again, never exits: a box whose processes
 *                             are always starting (for fvm stop)
 *
 * Status line: "probe pid=P ppid=Q box=NAME dllmain=H tls=H main=H" where H
 * is "hooked" or "unhooked": at DllMain of a static import (probedll.dll), at
 * the TLS callback, and at main. */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__declspec(dllimport) int probe_is_hooked(void);
__declspec(dllimport) int probe_hooked_at_dllmain(void);

static int hooked_at_tls = -1;

static void NTAPI tls_callback(void *module, DWORD reason, void *reserved)
{
    if (reason == DLL_PROCESS_ATTACH)
        hooked_at_tls = probe_is_hooked();
}

/* Registers tls_callback in the image's TLS directory (mingw's CRT builds the
 * directory from the .CRT$XL* sections). */
__attribute__((section(".CRT$XLB"), used)) PIMAGE_TLS_CALLBACK probe_tls_callback = tls_callback;

static const char *word(int hooked)
{
    return hooked == 1 ? "hooked" : hooked == 0 ? "unhooked" : "unknown";
}

static DWORD parent_pid(void)
{
    PROCESS_BASIC_INFORMATION pbi;
    if (NtQueryInformationProcess(GetCurrentProcess(), ProcessBasicInformation, &pbi, sizeof pbi, NULL) < 0)
        return 0;
    return (DWORD)pbi.InheritedFromUniqueProcessId;
}

static void print_status(void)
{
    wchar_t box[64] = L"";
    HMODULE fvm = GetModuleHandleW(L"fvm.dll");
    BOOL (*status)(wchar_t *, DWORD) = fvm ? (BOOL (*)(wchar_t *, DWORD))(void *)GetProcAddress(fvm, "fvm_runtime_status") : NULL;
    if (status)
        status(box, 64);
    printf("probe pid=%lu ppid=%lu box=%ls dllmain=%s tls=%s main=%s\n", (unsigned long)GetCurrentProcessId(),
           (unsigned long)parent_pid(), box[0] ? box : L"-", word(probe_hooked_at_dllmain()), word(hooked_at_tls),
           word(probe_is_hooked()));
    fflush(stdout);
}

static DWORD run_child(const char *args, DWORD flags, PROCESS_INFORMATION *out)
{
    char self[MAX_PATH], cmd[MAX_PATH + 128];
    GetModuleFileNameA(NULL, self, MAX_PATH);
    snprintf(cmd, sizeof cmd, "\"%s\" %s", self, args);
    STARTUPINFOA si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, flags, NULL, NULL, &si, &pi)) {
        printf("probe: CreateProcess failed: %lu\n", (unsigned long)GetLastError());
        fflush(stdout);
        return 255;
    }
    if (out) {
        *out = pi;
        return 0;
    }
    DWORD code = 255;
    CloseHandle(pi.hThread);
    WaitForSingleObject(pi.hProcess, INFINITE);
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    return code;
}

int wmain(int argc, wchar_t **wargv)
{
    static char storage[16][512];
    char *argv[16];
    for (int i = 0; i < argc && i < 16; i++) {
        WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, storage[i], 512, NULL, NULL);
        argv[i] = storage[i];
    }
    if (argc > 16)
        argc = 16;
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "chain") != 0 && strcmp(mode, "storm") != 0)
        print_status();
    if (!strcmp(mode, "exit") && argc > 2)
        return atoi(argv[2]);
    if (!strcmp(mode, "sleep") && argc > 2) {
        Sleep((DWORD)atoi(argv[2]));
        return 0;
    }
    if (!strcmp(mode, "spawn") && argc > 2) {
        int n = atoi(argv[2]);
        if (n <= 0)
            return 0;
        char args[32];
        snprintf(args, sizeof args, "spawn %d", n - 1);
        return (int)run_child(args, 0, NULL);
    }
    if (!strcmp(mode, "suspended")) {
        PROCESS_INFORMATION pi;
        if (run_child("exit 5", CREATE_SUSPENDED, &pi))
            return 255;
        Sleep(200);
        /* Still suspended: it must not have printed or exited yet. */
        if (WaitForSingleObject(pi.hProcess, 0) != WAIT_TIMEOUT) {
            printf("probe: suspended child ran before ResumeThread\n");
            return 254;
        }
        ResumeThread(pi.hThread);
        WaitForSingleObject(pi.hProcess, INFINITE);
        DWORD code = 255;
        GetExitCodeProcess(pi.hProcess, &code);
        return (int)code;
    }
    if (!strcmp(mode, "system") && argc > 2) {
        char cmd[1024] = "";
        for (int i = 2; i < argc; i++) {
            strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
            strcat(cmd, " ");
        }
        fflush(stdout);
        return system(cmd);
    }
    if (!strcmp(mode, "storm")) {
        for (;;) {
            PROCESS_INFORMATION pi;
            if (run_child("exit 0", 0, &pi) == 0) {
                CloseHandle(pi.hThread);
                CloseHandle(pi.hProcess);
            } else {
                Sleep(10);
            }
        }
    }
    if (!strcmp(mode, "chain") && argc > 2) {
        int n = atoi(argv[2]);
        char args[32];
        snprintf(args, sizeof args, "chain %d", n - 1);
        Sleep(200);
        for (;;) {
            PROCESS_INFORMATION pi;
            if (n <= 0)
                Sleep(INFINITE);
            if (run_child(args, 0, &pi) == 0) {
                CloseHandle(pi.hThread);
                WaitForSingleObject(pi.hProcess, INFINITE);
                CloseHandle(pi.hProcess);
            }
            Sleep(50);
        }
    }
    return 0;
}
