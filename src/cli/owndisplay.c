/* owndisplay.c - the CLI's part of a box's own X display (box.ini
 * display=own, broker/display.c).
 *
 * The box's display number is chosen when the box is created (the first
 * free one from 100 on: no /tmp/.X11-unix/XN socket or /tmp/.XN-lock) and
 * kept in box.ini (display_number=N); its broker starts an Xvfb on it.
 *
 * Wine's X11 driver opens the display named by the *Linux* environment's
 * DISPLAY, and a Wine process's children inherit its Linux environment, not
 * its Windows one (SetEnvironmentVariable does not reach it; measured). So
 * fvm run, when its own Linux DISPLAY is not the box's, runs itself again
 * as a Linux program with DISPLAY=:N (fork, then execve of Wine's loader
 * with the same arguments and environment, DISPLAY replaced, and
 * FVM_OWN_DISPLAY=N so it never loops), waits for it and returns its exit
 * code; the standard streams are the same Linux file descriptors. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/cmdline.h"
#include "runtime/linux_syscall.h"

#define FIRST_NUMBER 100
#define LAST_NUMBER 999
#define ENV_MAX (256 * 1024)
#define LNR_access 21
#define LNR_readlinkat 267

static BOOL on_linux(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

int own_display_number(const box *b)
{
    int n = fvm_box_display_number(b->path);
    return n >= 0 ? n : -1;
}

int own_display_pick(void)
{
    if (!on_linux())
        return -1;
    for (int n = FIRST_NUMBER; n <= LAST_NUMBER; n++) {
        char socket_path[48], lock_path[48];
        snprintf(socket_path, sizeof socket_path, "/tmp/.X11-unix/X%d", n);
        snprintf(lock_path, sizeof lock_path, "/tmp/.X%d-lock", n);
        if (LSYS(LNR_access, socket_path, 0, 0) < 0 && LSYS(LNR_access, lock_path, 0, 0) < 0)
            return n;
    }
    return -1;
}

/* The whole of a small /proc file; its length, or -1. */
static int64_t read_proc(const char *path, char *buf, size_t cap)
{
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        int64_t n = LSYS(LNR_read, fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap)
            break;
    }
    LSYS(LNR_close, fd, 0, 0);
    return got < cap ? (int64_t)got : -1;
}

int own_display_reexec(const box *b, int number, int *exit_code)
{
    /* How many arguments Wine gave us (fvm.exe's own included): the words
     * of our command line, which Wine made from them. */
    const uint16_t *line = (const uint16_t *)GetCommandLineW();
    size_t pos = 0;
    cmdline_token tok;
    int argc = cmdline_next_program(line, &pos, &tok, NULL, 0) ? 1 : 0;
    while (cmdline_next(line, &pos, &tok, NULL, 0))
        argc++;
    if (!on_linux())
        return 0;
    char want[32], marker[40];
    snprintf(want, sizeof want, "DISPLAY=:%d", number);
    snprintf(marker, sizeof marker, "FVM_OWN_DISPLAY=%d", number);
    static char env[ENV_MAX], args[ENV_MAX];
    int64_t env_len = read_proc("/proc/self/environ", env, sizeof env);
    int64_t args_len = read_proc("/proc/self/cmdline", args, sizeof args);
    if (env_len < 0 || args_len < 0)
        return (*exit_code = cli_error("box '%s' has a display of its own, and fvm cannot read its Linux environment", b->name)), 1;
    size_t count = 0;
    for (int64_t i = 0; i < env_len; i += (int64_t)strlen(env + i) + 1) {
        if (!strcmp(env + i, want))
            return 0;   /* already the box's display */
        if (!strcmp(env + i, marker))
            return (*exit_code = cli_error("box '%s' has a display of its own (:%d), and fvm could not give it to the box's "
                             "programs", b->name, number)), 1;
        count++;
    }
    /* argv: Wine's loader, fvm.exe's Linux path, then our arguments (Wine
     * puts a Windows program's own argv in /proc/self/cmdline). */
    static char loader[FVM_PATH_MAX * 3], exe_unix[FVM_PATH_MAX * 3];
    int64_t n = linux_syscall6(LNR_readlinkat, L_AT_FDCWD, (int64_t) "/proc/self/exe", (int64_t)loader,
                               sizeof loader - 1, 0, 0);
    if (n <= 0)
        return (*exit_code = cli_error("box '%s': cannot find Wine's loader (/proc/self/exe)", b->name)), 1;
    loader[n] = 0;
    wchar_t exe[FVM_PATH_MAX];
    GetModuleFileNameW(NULL, exe, FVM_PATH_MAX);
    char *(CDECL * to_unix)(const wchar_t *) =
        (char *(CDECL *)(const wchar_t *))(void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"),
                                                                "wine_get_unix_file_name");
    char *unix_exe = to_unix ? to_unix(exe) : NULL;
    if (!unix_exe)
        return (*exit_code = cli_error("box '%s': cannot find fvm.exe's Linux path", b->name)), 1;
    snprintf(exe_unix, sizeof exe_unix, "%s", unix_exe);
    HeapFree(GetProcessHeap(), 0, unix_exe);
    static char *argv_out[1024], *envp_out[8192];
    size_t a = 0;
    argv_out[a++] = loader;
    argv_out[a++] = exe_unix;
    int64_t at = 0;
    for (int k = 0; k < argc && at < args_len; k++) {
        if (k > 0 && a < 1023)   /* argument 0 is fvm.exe, given above */
            argv_out[a++] = args + at;
        at += (int64_t)strlen(args + at) + 1;
    }
    argv_out[a] = NULL;
    size_t e = 0;
    for (int64_t i = 0; i < env_len && e < 8189; i += (int64_t)strlen(env + i) + 1)
        if (strncmp(env + i, "DISPLAY=", 8))
            envp_out[e++] = env + i;
    envp_out[e++] = want;
    envp_out[e++] = marker;
    envp_out[e] = NULL;
    fflush(stdout);
    fflush(stderr);
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        LSYS(LNR_execve, loader, argv_out, envp_out);
        LSYS(LNR_exit, 127, 0, 0);
    }
    if (pid < 0)
        return (*exit_code = cli_error("box '%s': cannot start fvm again with its display (%lld)", b->name, (long long)pid)), 1;
    int32_t status = 0;
    int64_t r;
    do
        r = LSYS(LNR_wait4, pid, &status, 0);
    while (r == -4 /* EINTR */);
    if (r != pid)
        return (*exit_code = cli_error("box '%s': lost fvm started again with its display (%lld)", b->name, (long long)r)), 1;
    /* Exited: its code; killed by a signal: 128 + it, as a shell says. */
    *exit_code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    return 1;
}
