/* runagain.c - fvm.exe runs itself again as a Linux program, with its
 * Linux environment changed and, optionally, the child prepared before it
 * becomes Wine's loader again.
 *
 * Why: a Wine process's children inherit its *Linux* environment, not its
 * Windows one (SetEnvironmentVariable does not reach them; measured), and
 * what fvm run changes for a box lives below Wine: the X display Wine's
 * X11 driver opens (owndisplay.c), and the Wine server a process connects
 * to, with the namespace and Landlock domain around it (ownserver.c). So
 * fvm forks (a raw Linux fork), the child does its preparation with raw
 * system calls only (it is a fork of a multi-threaded process) and execve's
 * Wine's loader with fvm.exe and the same arguments; the parent waits and
 * returns the child's exit code. The standard streams are the same Linux
 * file descriptors. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/boxserver.h"
#include "core/cmdline.h"
#include "runtime/linux_syscall.h"

#define ENV_MAX (256 * 1024)
#define LNR_readlinkat 267

static char g_env[ENV_MAX];
static int64_t g_env_len = -1;

BOOL cli_on_linux(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
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

static BOOL load_env(void)
{
    if (g_env_len < 0)
        g_env_len = read_proc("/proc/self/environ", g_env, sizeof g_env);
    return g_env_len >= 0;
}

const char *cli_linux_env(const char *name)
{
    if (!cli_on_linux() || !load_env())
        return NULL;
    size_t n = strlen(name);
    for (int64_t i = 0; i < g_env_len; i += (int64_t)strlen(g_env + i) + 1)
        if (!strncmp(g_env + i, name, n) && g_env[i + n] == '=')
            return g_env + i + n + 1;
    return NULL;
}

static BOOL has_prefix_of(const char *entry, const char *const *list, size_t count)
{
    for (size_t k = 0; k < count && list[k]; k++) {
        const char *eq = strchr(list[k], '=');
        size_t n = eq ? (size_t)(eq - list[k]) + 1 : strlen(list[k]);
        if (!strncmp(entry, list[k], n))
            return TRUE;
    }
    return FALSE;
}

BOOL cli_wine_loader(char *out, size_t cap)
{
    int64_t n = linux_syscall6(LNR_readlinkat, L_AT_FDCWD, (int64_t) "/proc/self/exe", (int64_t)out, cap - 1, 0, 0);
    if (n <= 0)
        return FALSE;
    out[n] = 0;
    return TRUE;
}

BOOL cli_again_command(const box *b, const run_again *plan, char ***argv, char ***envp)
{
    /* How many arguments Wine gave us (fvm.exe's own included): the words
     * of our command line, which Wine made from them. */
    const uint16_t *line = (const uint16_t *)GetCommandLineW();
    size_t pos = 0;
    cmdline_token tok;
    int argc = cmdline_next_program(line, &pos, &tok, NULL, 0) ? 1 : 0;
    while (cmdline_next(line, &pos, &tok, NULL, 0))
        argc++;
    static char args[ENV_MAX];
    int64_t args_len = read_proc("/proc/self/cmdline", args, sizeof args);
    if (!load_env() || args_len < 0)
        return cli_error("box '%s': fvm cannot read its Linux environment", b->name), FALSE;
    /* argv: Wine's loader, fvm.exe's Linux path, then our arguments (Wine
     * puts a Windows program's own argv in /proc/self/cmdline). */
    static char loader[FVM_PATH_MAX * 3], exe_unix[FVM_PATH_MAX * 3];
    if (!cli_wine_loader(loader, sizeof loader))
        return cli_error("box '%s': cannot find Wine's loader (/proc/self/exe)", b->name), FALSE;
    wchar_t exe[FVM_PATH_MAX];
    GetModuleFileNameW(NULL, exe, FVM_PATH_MAX);
    if (!boxserver_linux_path(exe, exe_unix, sizeof exe_unix))
        return cli_error("box '%s': cannot find fvm.exe's Linux path", b->name), FALSE;
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
    for (int64_t i = 0; i < g_env_len && e < 8180; i += (int64_t)strlen(g_env + i) + 1)
        if (!has_prefix_of(g_env + i, plan->set, 8) && !has_prefix_of(g_env + i, plan->drop, 8))
            envp_out[e++] = g_env + i;
    for (size_t k = 0; k < 8 && plan->set[k]; k++)
        envp_out[e++] = (char *)plan->set[k];
    envp_out[e] = NULL;
    *argv = argv_out;
    *envp = envp_out;
    return TRUE;
}

int cli_run_again(const box *b, const run_again *plan, int *exit_code)
{
    char **argv_out, **envp_out;
    if (!cli_again_command(b, plan, &argv_out, &envp_out))
        return (*exit_code = EXIT_FAIL);
    fflush(stdout);
    fflush(stderr);
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        int code = plan->before_exec ? plan->before_exec(plan->ctx, envp_out) : 0;
        if (code == 0) {
            LSYS(LNR_execve, argv_out[0], argv_out, envp_out);
            code = 127;
        }
        LSYS(LNR_exit, code, 0, 0);
    }
    if (pid < 0)
        return (*exit_code = cli_error("box '%s': cannot start fvm again (%lld)", b->name, (long long)pid));
    if (plan->after_fork)
        plan->after_fork(plan->ctx);
    int32_t status = 0;
    int64_t r;
    do
        r = LSYS(LNR_wait4, pid, &status, 0);
    while (r == -4 /* EINTR */);
    if (r != pid)
        return (*exit_code = cli_error("box '%s': lost fvm started again (%lld)", b->name, (long long)r));
    *exit_code = cli_exit_status(status);
    return 0;
}

int cli_exit_status(int32_t status)
{
    /* Exited: its code; killed by a signal: 128 + it, as a shell says. */
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
}
