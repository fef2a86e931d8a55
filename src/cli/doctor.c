/* doctor.c - fvm doctor: what this platform enforces, measured now.
 *
 * FVM uses real Windows mechanisms (job limits, restricted tokens, integrity
 * levels) where the platform enforces them, and its own user-mode layer
 * everywhere. Under Wine most of those calls succeed without effect, so each
 * line here comes from a probe that checks the effect, not the return code:
 * a limit is "enforced" only if a child process was actually stopped by it. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/linux_syscall.h"

NTSTATUS NTAPI RtlGetVersion(RTL_OSVERSIONINFOW *info);

typedef enum { ENFORCED, NOT_ENFORCED, UNAVAILABLE } verdict;

static const char *verdict_text(verdict v)
{
    return v == ENFORCED ? "enforced" : v == NOT_ENFORCED ? "accepted, NOT enforced" : "unavailable";
}

static void report(const char *what, verdict v, const char *detail)
{
    printf("  %-34s %-24s %s\n", what, verdict_text(v), detail);
}

/* Starts `fvm.exe __<verb> <arg>` suspended, for the limit probes. */
static BOOL start_helper(const char *verb, const char *arg, PROCESS_INFORMATION *pi)
{
    wchar_t exe[FVM_PATH_MAX], cmd[FVM_PATH_MAX + 64];
    GetModuleFileNameW(NULL, exe, FVM_PATH_MAX);
    _snwprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" __%hs %hs", exe, verb, arg);
    cmd[sizeof cmd / sizeof cmd[0] - 1] = 0;
    STARTUPINFOW si = {sizeof si};
    return CreateProcessW(exe, cmd, NULL, NULL, FALSE, CREATE_SUSPENDED | CREATE_NO_WINDOW, NULL, NULL, &si, pi);
}

static void end_helper(PROCESS_INFORMATION *pi)
{
    TerminateProcess(pi->hProcess, 0);
    WaitForSingleObject(pi->hProcess, 2000);
    CloseHandle(pi->hThread);
    CloseHandle(pi->hProcess);
}

static verdict probe_kill_on_close(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    PROCESS_INFORMATION pi;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim))
        return UNAVAILABLE;
    if (!start_helper("sleep", "10000", &pi))
        return UNAVAILABLE;
    AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    CloseHandle(job);
    verdict v = WaitForSingleObject(pi.hProcess, 3000) == WAIT_OBJECT_0 ? ENFORCED : NOT_ENFORCED;
    end_helper(&pi);
    return v;
}

static verdict probe_active_process_limit(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    lim.BasicLimitInformation.ActiveProcessLimit = 1;
    PROCESS_INFORMATION a, b;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim))
        return UNAVAILABLE;
    if (!start_helper("sleep", "10000", &a))
        return UNAVAILABLE;
    if (!start_helper("sleep", "10000", &b)) {
        end_helper(&a);
        return UNAVAILABLE;
    }
    BOOL first = AssignProcessToJobObject(job, a.hProcess);
    BOOL second = AssignProcessToJobObject(job, b.hProcess);
    end_helper(&a);
    end_helper(&b);
    CloseHandle(job);
    return first && !second ? ENFORCED : NOT_ENFORCED;
}

static verdict probe_memory_limit(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_PROCESS_MEMORY;
    lim.ProcessMemoryLimit = 64u << 20;
    PROCESS_INFORMATION pi;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim))
        return UNAVAILABLE;
    if (!start_helper("alloc", "256", &pi))
        return UNAVAILABLE;
    AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    DWORD code = 1;
    WaitForSingleObject(pi.hProcess, 10000);
    GetExitCodeProcess(pi.hProcess, &code);
    end_helper(&pi);
    CloseHandle(job);
    return code == 0 ? NOT_ENFORCED : ENFORCED;   /* 0: 256 MB allocated and touched */
}

static verdict probe_cpu_rate(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION cpu;
    memset(&cpu, 0, sizeof cpu);
    cpu.ControlFlags = JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP;
    cpu.CpuRate = 1000;   /* 10% */
    BOOL ok = job && SetInformationJobObject(job, JobObjectCpuRateControlInformation, &cpu, sizeof cpu);
    if (job)
        CloseHandle(job);
    /* Accepted is not proof of enforcement; without a timing probe, say so. */
    return ok ? NOT_ENFORCED : UNAVAILABLE;
}

static verdict probe_restricted_token(void)
{
    HANDLE token, restricted;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &token))
        return UNAVAILABLE;
    BOOL made = CreateRestrictedToken(token, DISABLE_MAX_PRIVILEGE, 0, NULL, 0, NULL, 0, NULL, &restricted);
    CloseHandle(token);
    if (!made)
        return UNAVAILABLE;
    DWORD privs_len = 0;
    GetTokenInformation(restricted, TokenPrivileges, NULL, 0, &privs_len);
    TOKEN_PRIVILEGES *privs = malloc(privs_len ? privs_len : 1);
    verdict v = NOT_ENFORCED;
    /* DISABLE_MAX_PRIVILEGE leaves only SeChangeNotify: more means ignored. */
    if (privs && GetTokenInformation(restricted, TokenPrivileges, privs, privs_len, &privs_len) &&
        privs->PrivilegeCount <= 1)
        v = ENFORCED;
    free(privs);
    CloseHandle(restricted);
    return v;
}

static verdict probe_low_integrity(void)
{
    HANDLE token, dup;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &token))
        return UNAVAILABLE;
    BOOL ok = DuplicateTokenEx(token, TOKEN_ALL_ACCESS, NULL, SecurityImpersonation, TokenPrimary, &dup);
    CloseHandle(token);
    if (!ok)
        return UNAVAILABLE;
    SID_IDENTIFIER_AUTHORITY label = SECURITY_MANDATORY_LABEL_AUTHORITY;
    PSID low;
    AllocateAndInitializeSid(&label, 1, SECURITY_MANDATORY_LOW_RID, 0, 0, 0, 0, 0, 0, 0, &low);
    TOKEN_MANDATORY_LABEL tml = {{low, SE_GROUP_INTEGRITY}};
    SetTokenInformation(dup, TokenIntegrityLevel, &tml, sizeof tml + GetLengthSid(low));
    FreeSid(low);
    char buf[128];
    DWORD len;
    verdict v = NOT_ENFORCED;
    if (GetTokenInformation(dup, TokenIntegrityLevel, buf, sizeof buf, &len)) {
        TOKEN_MANDATORY_LABEL *read = (TOKEN_MANDATORY_LABEL *)buf;
        DWORD rid = *GetSidSubAuthority(read->Label.Sid, *GetSidSubAuthorityCount(read->Label.Sid) - 1);
        v = rid == SECURITY_MANDATORY_LOW_RID ? ENFORCED : NOT_ENFORCED;
    }
    CloseHandle(dup);
    return v;
}

/* ---- the floor: Linux's Landlock, seccomp and namespaces under Wine ---- */

static BOOL under_wine(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

static int64_t read_linux_number(const char *path)
{
    char buf[32];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return -1;
    int64_t n = LSYS(LNR_read, fd, buf, sizeof buf - 1);
    LSYS(LNR_close, fd, 0, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return atoll(buf);
}

static void floor_line(const char *what, BOOL available, const char *detail)
{
    printf("  %-34s %-24s %s\n", what, available ? "available" : "unavailable", detail);
}

/* What the kernel offers, probed by calling it (fvm.dll's own state in a
 * running box is what `hostile_floor floor` prints, tests/e2e/test_floor.py). */
static void report_floor(void)
{
    printf("\nThe floor under the hooks (Linux kernel, set up by fvm.dll in every boxed process):\n");
    if (!under_wine()) {
        printf("  not under Wine: the restricted token and job above are the floor on Windows\n");
        return;
    }
    char detail[160];
    int64_t abi = LSYS(LNR_landlock_create_ruleset, 0, 0, 1);
    snprintf(detail, sizeof detail, abi >= 6 ? "ABI %lld: files, execute, signal and abstract-socket scoping"
                                             : "ABI %lld", (long long)abi);
    floor_line("Landlock", abi >= 1, abi >= 1 ? detail : "boxes refuse to start (--no-floor)");
    int64_t mode = LSYS(LNR_prctl, 21 /* PR_GET_SECCOMP */, 0, 0);
    floor_line("seccomp filter", mode >= 0,
           mode >= 0 ? "ptrace, process_vm_*, namespaces, mounts, io_uring refused" : "");
    int64_t userns = read_linux_number("/proc/sys/user/max_user_namespaces");
    floor_line("user namespaces", userns > 0,
           userns > 0 ? "available; not used (a box shares Wine's server)" : "");
    printf("  active for new boxes: %s\n",
           abi >= 1 && mode >= 0 ? "yes (fvm run --no-floor disables it for one run, audited)"
                                 : "NO: boxes refuse to start unless fvm run --no-floor");
    printf("  not covered: changes Wine's server makes for a program (file opens, renames, deletes,\n"
           "  registry, objects, other processes' memory) reached without the hooks (docs/design.md)\n");
}

static BOOL has_export(const wchar_t *dll, const char *name)
{
    HMODULE m = LoadLibraryW(dll);
    BOOL has = m && GetProcAddress(m, name);
    if (m)
        FreeLibrary(m);
    return has;
}

int cmd_doctor(int argc, char **argv)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    const char *(*wine_version)(void) = (const char *(*)(void))(void *)GetProcAddress(ntdll, "wine_get_version");
    OSVERSIONINFOW os = {sizeof os};
    RtlGetVersion((RTL_OSVERSIONINFOW *)&os);
    printf("platform: Windows %lu.%lu.%lu%s%s\n", (unsigned long)os.dwMajorVersion,
           (unsigned long)os.dwMinorVersion, (unsigned long)os.dwBuildNumber,
           wine_version ? ", Wine " : "", wine_version ? wine_version() : "");
    printf("\nReal-Windows mechanisms (probed by their effect on a helper process):\n");
    report("job: kill on close", probe_kill_on_close(), "boxes end with their broker");
    report("job: active process limit", probe_active_process_limit(), "");
    report("job: process memory limit", probe_memory_limit(), "");
    verdict cpu = probe_cpu_rate();
    report("job: CPU rate hard cap", cpu, cpu == NOT_ENFORCED ? "(accepted; enforcement not measured)" : "");
    report("job: I/O rate control",
           has_export(L"kernel32.dll", "SetIoRateControlInformationJobObject") ? NOT_ENFORCED : UNAVAILABLE,
           "");
    report("restricted token", probe_restricted_token(), "");
    report("low integrity level", probe_low_integrity(), "");
    report("AppContainer", has_export(L"userenv.dll", "CreateAppContainerProfile") ? NOT_ENFORCED : UNAVAILABLE,
           "");
    report_floor();
    printf("\nFVM's own layer (enforced in every boxed process by fvm.dll):\n"
           "  injection before any program code   enforced                 import-table injection; refused if it fails\n"
           "  box membership and fvm stop         enforced                 job object owned by the box broker\n"
           "\"accepted, NOT enforced\" means the call succeeds but a probe showed no effect;\n"
           "FVM does not rely on those mechanisms for isolation on this platform.\n");
    return 0;
}

int cmd_internal(int argc, char **argv)
{
    if (!strcmp(argv[0], "__sleep") && argc == 2) {
        Sleep((DWORD)atoi(argv[1]));
        return 0;
    }
    if (!strcmp(argv[0], "__alloc") && argc == 2) {
        size_t size = (size_t)atoi(argv[1]) << 20;
        char *p = VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (!p)
            return 1;
        for (size_t i = 0; i < size; i += 4096)
            p[i] = 1;
        return 0;
    }
    return cli_error("unknown command '%s'", argv[0]), EXIT_USAGE;
}
