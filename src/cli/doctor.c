/* doctor.c - fvm doctor: what this platform enforces, measured now.
 *
 * FVM uses real Windows mechanisms (job limits, restricted tokens, integrity
 * levels) where the platform enforces them, and its own user-mode layer
 * everywhere. Under Wine most of those calls succeed without effect, so each
 * line here comes from a probe that checks the effect, not the return code:
 * a limit is "enforced" only if a child process was actually stopped by it. */
#include "cli/cli.h"

#include <sddl.h>

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

/* JOB_OBJECT_LIMIT_JOB_MEMORY: the box's total memory limit on Windows. */
static verdict probe_job_memory_limit(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_JOB_MEMORY;
    lim.JobMemoryLimit = 64u << 20;
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
    return code == 0 ? NOT_ENFORCED : ENFORCED;
}

/* A 10% hard cap, then a helper that spins for 1 s of wall time: its main
 * thread's CPU time says whether the cap held (thread times work for
 * another process on Wine; process times read 0 there). */
static verdict probe_cpu_rate(void)
{
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION cpu;
    memset(&cpu, 0, sizeof cpu);
    cpu.ControlFlags = JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP;
    cpu.CpuRate = 1000;   /* 10% */
    BOOL ok = job && SetInformationJobObject(job, JobObjectCpuRateControlInformation, &cpu, sizeof cpu);
    PROCESS_INFORMATION pi;
    if (!ok || !start_helper("spin", "1000", &pi)) {
        if (job)
            CloseHandle(job);
        return UNAVAILABLE;
    }
    AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    WaitForSingleObject(pi.hProcess, 20000);
    FILETIME c, e, k, u;
    ULONGLONG used = 0;
    if (GetThreadTimes(pi.hThread, &c, &e, &k, &u))
        used = ((((ULONGLONG)k.dwHighDateTime << 32) | k.dwLowDateTime) +
                (((ULONGLONG)u.dwHighDateTime << 32) | u.dwLowDateTime)) / 10000;
    end_helper(&pi);
    CloseHandle(job);
    /* At 10% of the machine a 1 s spin gets at most a few hundred ms. */
    return used >= 600 ? NOT_ENFORCED : ENFORCED;
}

/* Windows' job I/O rate control: JobObjectIoRateControlInformation (class
 * 31 of NtSetInformationJobObject; kernel32's
 * SetIoRateControlInformationJobObject, Windows 10+). If the platform takes
 * a 4 MiB/s cap, a helper in the job writes 16 MiB unbuffered: under 2 s
 * means the cap did nothing. detail says what was found. */
NTSTATUS NTAPI NtSetInformationJobObject(HANDLE job, ULONG info_class, PVOID info, ULONG len);
#define JOB_IO_RATE_CONTROL_CLASS 31
typedef struct job_io_rate_native {
    LONG64 MaxIops, MaxBandwidth, ReservationIops;
    PWSTR VolumeName;
    ULONG BaseIoSize, ControlFlags;
    USHORT VolumeNameLength;
} job_io_rate_native;

static verdict probe_io_rate(char *detail, size_t cap)
{
    typedef DWORD(WINAPI * set_io_fn)(HANDLE, void *);
    set_io_fn set_io =
        (set_io_fn)(void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"), "SetIoRateControlInformationJobObject");
    HANDLE job = CreateJobObjectW(NULL, NULL);
    if (!job)
        return snprintf(detail, cap, "no job object"), UNAVAILABLE;
    job_io_rate_native io;
    memset(&io, 0, sizeof io);
    io.MaxBandwidth = 4 << 20;
    io.ControlFlags = 1;   /* JOB_OBJECT_IO_RATE_CONTROL_ENABLE */
    NTSTATUS st = NtSetInformationJobObject(job, JOB_IO_RATE_CONTROL_CLASS, &io, sizeof io);
    if (st < 0 && !set_io) {
        CloseHandle(job);
        snprintf(detail, cap, "kernel32 has no SetIoRateControlInformationJobObject; class 31 refused (0x%08lx)",
                 (unsigned long)st);
        return UNAVAILABLE;
    }
    if (st < 0) {
        /* Only the kernel32 call: its own layout (volume name as a pointer). */
        struct {
            LONG64 MaxIops, MaxBandwidth, ReservationIops;
            PCWSTR VolumeName;
            ULONG BaseIoSize, ControlFlags;
        } k32 = {0, 4 << 20, 0, NULL, 0, 1};
        if (!set_io(job, &k32)) {
            CloseHandle(job);
            snprintf(detail, cap, "SetIoRateControlInformationJobObject fails (error %lu)", GetLastError());
            return UNAVAILABLE;
        }
    }
    PROCESS_INFORMATION pi;
    if (!start_helper("write", "16", &pi)) {
        CloseHandle(job);
        return snprintf(detail, cap, "cap accepted; the helper did not start"), UNAVAILABLE;
    }
    AssignProcessToJobObject(job, pi.hProcess);
    DWORD start = GetTickCount();
    ResumeThread(pi.hThread);
    WaitForSingleObject(pi.hProcess, 30000);
    DWORD took = GetTickCount() - start;
    end_helper(&pi);
    CloseHandle(job);
    snprintf(detail, cap, "cap of 4 MiB/s accepted; 16 MiB written unbuffered in %lu ms", (unsigned long)took);
    return took >= 2000 ? ENFORCED : NOT_ENFORCED;
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

/* What a box's first process does (runtime/floor_ns.c), tried in a forked
 * child so nothing of it stays: a user and mount namespace, our uid and gid
 * mapped, a tmpfs mounted, a network namespace with them. 0 when all of it
 * worked, else the step that failed (1 unshare, 2 the maps, 3 the mount,
 * 4 only the network namespace), or -1 when no child ran. */
static int probe_namespace(void)
{
    int64_t uid = LSYS(102 /* getuid */, 0, 0, 0), gid = LSYS(104 /* getgid */, 0, 0, 0);
    static char uid_map[48], gid_map[48];
    snprintf(uid_map, sizeof uid_map, "%lld %lld 1\n", (long long)uid, (long long)uid);
    snprintf(gid_map, sizeof gid_map, "%lld %lld 1\n", (long long)gid, (long long)gid);
    static const char *const files[3] = {"/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map"};
    const char *texts[3] = {"deny", uid_map, gid_map};
    size_t lengths[3] = {4, strlen(uid_map), strlen(gid_map)};
    fflush(stdout);
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {   /* only raw calls from here on */
        /* As the box's first process does (common/floor_namespace.c): the
         * network namespace in the same step, or the rest without it. */
        int network = LSYS(LNR_unshare, 0x10000000 | 0x00020000 | 0x40000000, 0, 0) == 0;
        if (!network && LSYS(LNR_unshare, 0x10000000 | 0x00020000, 0, 0) != 0)
            LSYS(LNR_exit, 1, 0, 0);
        for (int i = 0; i < 3; i++) {
            int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, files[i], L_O_WRONLY);
            if (fd < 0 || LSYS(LNR_write, fd, texts[i], lengths[i]) != (int64_t)lengths[i])
                LSYS(LNR_exit, 2, 0, 0);
            LSYS(LNR_close, fd, 0, 0);
        }
        if (linux_syscall6(165 /* mount */, (int64_t) "none", (int64_t) "/tmp", (int64_t) "tmpfs", 0, 0, 0) != 0)
            LSYS(LNR_exit, 3, 0, 0);
        LSYS(LNR_exit, network ? 0 : 4, 0, 0);
    }
    if (pid < 0)
        return -1;
    int32_t status = 0;
    if (LSYS(LNR_wait4, pid, &status, 0) != pid || (status & 0x7f))
        return -1;
    return (status >> 8) & 0xff;
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
    snprintf(detail, sizeof detail,
             abi >= 6   ? "ABI %lld: files, execute, own TCP bind/connect, signal and abstract-socket scoping"
             : abi >= 4 ? "ABI %lld: files, execute, own TCP bind/connect"
                        : "ABI %lld: files, execute", (long long)abi);
    floor_line("Landlock", abi >= 1, abi >= 1 ? detail : "boxes refuse to start (--no-floor)");
    int64_t mode = LSYS(LNR_prctl, 21 /* PR_GET_SECCOMP */, 0, 0);
    floor_line("seccomp filter", mode >= 0,
           mode >= 0 ? "ptrace, process_vm_*, namespaces, mounts, io_uring refused" : "");
    int64_t userns = read_linux_number("/proc/sys/user/max_user_namespaces");
    int ns = userns > 0 ? probe_namespace() : 1;
    static const char *const ns_failed[] = {"", "no user namespace", "the uid/gid maps were refused",
                                            "a mount in it was refused"};
    snprintf(detail, sizeof detail, "unavailable (%s): a box's raw client can reach the host's Wine server socket",
             ns > 0 && ns <= 3 ? ns_failed[ns] : "the probe did not run");
    floor_line("user namespaces", ns == 0 || ns == 4,
               ns == 0 || ns == 4 ? "hides the host's Wine servers (and other X displays) from boxes (probed)" : detail);
    floor_line("network namespaces", ns == 0,
               ns == 0 ? "box programs get an empty network: raw sockets and the host's abstract sockets out of "
                         "reach; Winsock works, names are resolved outside the box (probed)"
                       : "unavailable: a box's raw UDP and the host's abstract sockets stay reachable");
    BOOL xvfb = LSYS(21 /* access */, "/usr/bin/Xvfb", 1 /* X_OK */, 0) == 0;
    floor_line("own X display (--own-display)", xvfb,
               xvfb ? "Xvfb found: such a box gets a display of its own and abstract-socket scoping"
                    : "no /usr/bin/Xvfb: boxes created with --own-display do not start (apt install xvfb)");
    BOOL xephyr = LSYS(21 /* access */, "/usr/bin/Xephyr", 1 /* X_OK */, 0) == 0;
    floor_line("nested X display (default)", xephyr,
               xephyr ? "Xephyr found: a box on its own server sees a display of its own, shown as one window on "
                        "the user's, and no other display"
                      : "no /usr/bin/Xephyr: a box on its own server does not start where there is a DISPLAY "
                        "(apt install xserver-xephyr, or create it with --host-display)");
    static char loader[4096], server[4200];
    BOOL own_server = FALSE;
    if (cli_wine_loader(loader, sizeof loader) && strrchr(loader, '/')) {
        *strrchr(loader, '/') = 0;
        snprintf(server, sizeof server, "%s/wineserver64", loader);
        own_server = LSYS(21 /* access */, server, 1 /* X_OK */, 0) == 0;
        if (!own_server) {
            snprintf(server, sizeof server, "%s/wineserver", loader);
            own_server = LSYS(21 /* access */, server, 1 /* X_OK */, 0) == 0;
        }
    }
    own_server = own_server && ns == 0 && abi >= 1;
    floor_line("own Wine server (--own-server)", own_server,
               own_server ? "the box's wineserver runs in its domain: server-side changes are held too"
                          : "needs Landlock, user namespaces and Wine's wineserver next to its loader");
    /* SECCOMP_GET_NOTIF_SIZES: the kernel knows user notifications, and
     * its struct seccomp_notif is the one core/floor_supervise.c reads. */
    struct {
        uint16_t notif, resp, data;
    } sizes = {0, 0, 0};
    BOOL notify = LSYS(LNR_seccomp, 3 /* SECCOMP_GET_NOTIF_SIZES */, 0, &sizes) == 0 && sizes.notif >= 80 &&
                  sizes.resp >= 24 && sizes.data == 64;
    floor_line("seccomp user notification", notify && own_server,
               notify && own_server ? "a box server's connections are decided by address when the policy "
                                      "denies addresses (or UDP) to every program"
                                    : "unavailable: address denies are the hooks' alone");
    printf("  active for new boxes: %s\n",
           abi >= 1 && mode >= 0 ? "yes (fvm run --no-floor disables it for one run, audited)"
                                 : "NO: boxes refuse to start unless fvm run --no-floor");
    if (!own_server)
        printf("  NOTE: new boxes get a Wine server of their own by default, which this machine cannot give:\n"
               "  create them with --host-server (weaker: see below)\n");
    printf("  new boxes get a Wine server of their own (the default since session 18), which holds what\n"
           "  that server does for a program too; not covered in a box created with --host-server: changes\n"
           "  the host's server makes for a program (file opens, renames, deletes, registry, objects, other\n"
           "  processes' memory) reached without the hooks (docs/design.md)\n");
}

/* Does the platform check a process's DACL when another program opens it?
 * (What a confidential box relies on against host programs.) */
static verdict probe_process_dacl(void)
{
    PROCESS_INFORMATION pi;
    if (!start_helper("__sleep", "5000", &pi))
        return UNAVAILABLE;
    PSECURITY_DESCRIPTOR sd = NULL;
    verdict v = UNAVAILABLE;
    if (ConvertStringSecurityDescriptorToSecurityDescriptorW(L"O:SYD:P(A;;0x101400;;;WD)", SDDL_REVISION_1, &sd,
                                                             NULL)) {
        if (SetKernelObjectSecurity(pi.hProcess, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, sd) ||
            SetKernelObjectSecurity(pi.hProcess, DACL_SECURITY_INFORMATION, sd)) {
            HANDLE reader = OpenProcess(PROCESS_VM_READ, FALSE, pi.dwProcessId);
            v = reader ? NOT_ENFORCED : ENFORCED;
            if (reader)
                CloseHandle(reader);
        }
        LocalFree(sd);
    }
    end_helper(&pi);
    return v;
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
    report("job: job memory limit", probe_job_memory_limit(), "");
    report("job: CPU rate hard cap", probe_cpu_rate(), "a 1 s spin under a 10% cap");
    char io_detail[160] = "";
    verdict io_verdict = probe_io_rate(io_detail, sizeof io_detail);
    report("job: I/O rate control", io_verdict, io_detail);
    report("restricted token", probe_restricted_token(), "");
    report("low integrity level", probe_low_integrity(), "");
    report("process DACL checked at open", probe_process_dacl(), "confidential boxes: host programs refused");
    report("AppContainer", has_export(L"userenv.dll", "CreateAppContainerProfile") ? NOT_ENFORCED : UNAVAILABLE,
           "");
    report_floor();
    printf("\nFVM's own layer (enforced in every boxed process by fvm.dll):\n"
           "  injection before any program code   enforced                 import-table injection; refused if it fails\n"
           "  box membership and fvm stop         enforced                 job object owned by the box broker\n"
           "  process isolation (box -> outside)  enforced                 open/list/act on processes only in the box's job\n"
           "  process count quota (--procs)       enforced                 the broker grants each start\n"
           "  CPU limit (--cpu)                   enforced                 the broker's suspend/resume duty cycle\n"
           "  memory limits (--memory, ...)       enforced                 commits granted by the broker (not raw syscalls)\n"
           "  I/O limits (--io-bandwidth, -ops)   enforced                 file reads/writes take from the broker's token buckets\n"
           "  [process] start rules (path, hash)  enforced                 checked before each start in the box\n"
           "  confidential (outside -> box)       as the DACL line above   process DACL; host programs are not hooked\n"
           "\"accepted, NOT enforced\" means the call succeeds but a probe showed no effect;\n"
           "FVM does not rely on those mechanisms for isolation on this platform.\n");
    return 0;
}

int cmd_internal(int argc, char **argv)
{
    if (!strcmp(argv[0], "__sleep") && (argc == 2 || (argc == 4 && !strcmp(argv[2], "--ready-fd")))) {
        /* --ready-fd N: a byte on the Linux descriptor N once this process
         * runs (a box server's keeper, cli/ownserver.c: its runner starts
         * the box's program only then). */
        if (argc == 4) {
            int fd = atoi(argv[3]);
            LSYS(1 /* write */, fd, "1", 1);
            LSYS(3 /* close */, fd, 0, 0);
        }
        Sleep((DWORD)atoi(argv[1]));
        return 0;
    }
    if (!strcmp(argv[0], "__spin") && argc == 2) {
        DWORD start = GetTickCount();
        volatile unsigned long x = 0;
        while (GetTickCount() - start < (DWORD)atoi(argv[1]))
            x++;
        return 0;
    }
    if (!strcmp(argv[0], "__write") && argc == 2) {
        /* Unbuffered writes (the job I/O rate control acts below the cache). */
        wchar_t dir[FVM_PATH_MAX], path[FVM_PATH_MAX];
        GetTempPathW(FVM_PATH_MAX, dir);
        GetTempFileNameW(dir, L"fvm", 0, path);
        HANDLE f = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                               FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH | FILE_FLAG_DELETE_ON_CLOSE, NULL);
        char *block = VirtualAlloc(NULL, 1 << 20, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (f == INVALID_HANDLE_VALUE || !block)
            return 1;
        DWORD put;
        for (int i = 0; i < atoi(argv[1]); i++)
            if (!WriteFile(f, block, 1 << 20, &put, NULL))
                return 1;
        CloseHandle(f);
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
