/* box.c - box folders and the box verbs: create, list, rm.
 *
 * A box is one folder, <root>\boxes\<name>, holding box.ini (what the box
 * is), an optional policy.ini, and the delta that later issues add. Whether a
 * box is running is read from its job object, owned by the box's broker.
 * The one piece of a box outside its folder is its registry tree while it
 * runs (HKU\FVM.<h>, common/regstore.h): rm and discard delete it too. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/policyload.h"
#include "common/regstore.h"
#include "core/boxname.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("fvm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

int cli_win_error(DWORD code, const char *fmt, ...)
{
    va_list ap;
    wchar_t wmsg[512];
    char msg[1024];
    fputs("fvm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (!FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0,
                        wmsg, 512, NULL))
        wmsg[0] = 0;
    cli_utf8(wmsg, msg, sizeof msg);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' ' || msg[n - 1] == '.'))
        msg[--n] = 0;
    fprintf(stderr, ": %s (error %lu)\n", n ? msg : "unknown error", (unsigned long)code);
    return EXIT_FAIL;
}

void cli_utf8(const wchar_t *in, char *out, size_t cap)
{
    if (!WideCharToMultiByte(CP_UTF8, 0, in, -1, out, (int)cap, NULL, NULL))
        out[0] = 0;
}

void cli_wide(const char *in, wchar_t *out, size_t cap)
{
    if (!MultiByteToWideChar(CP_UTF8, 0, in, -1, out, (int)cap))
        out[0] = 0;
}

void cli_exe_dir(wchar_t *out, size_t cap)
{
    DWORD n = GetModuleFileNameW(NULL, out, (DWORD)cap);
    while (n && out[n - 1] != L'\\')
        n--;
    out[n ? n - 1 : 0] = 0;
}

void box_root(wchar_t *out, size_t cap)
{
    DWORD n = GetEnvironmentVariableW(L"FVM_ROOT", out, (DWORD)cap);
    if (!n || n >= cap)
        fvm_wcscpy(out, cap, L"C:\\FVM");
    /* A full path, so that object names hashed from it are stable. */
    wchar_t full[FVM_PATH_MAX];
    if (GetFullPathNameW(out, FVM_PATH_MAX, full, NULL))
        fvm_wcscpy(out, cap, full);
    n = (DWORD)fvm_wcslen(out);
    while (n > 3 && out[n - 1] == L'\\')
        out[--n] = 0;
}

BOOL box_init(box *b, const char *name)
{
    fvm_error err;
    if (fvm_box_name_validate(name, &err) != FVM_OK) {
        cli_error("%s", err.message);
        return FALSE;
    }
    memset(b, 0, sizeof *b);
    strcpy(b->name, name);
    cli_wide(name, b->wname, FVM_BOX_NAME_MAX);
    box_root(b->path, FVM_PATH_MAX);
    fvm_wcscat(b->path, FVM_PATH_MAX, L"\\boxes\\");
    fvm_wcscat(b->path, FVM_PATH_MAX, b->wname);
    return TRUE;
}

static void box_file(const box *b, const wchar_t *leaf, wchar_t *out)
{
    fvm_wcscpy(out, FVM_PATH_MAX, b->path);
    fvm_wcscat(out, FVM_PATH_MAX, L"\\");
    fvm_wcscat(out, FVM_PATH_MAX, leaf);
}

BOOL box_exists(const box *b)
{
    wchar_t ini[FVM_PATH_MAX];
    box_file(b, L"box.ini", ini);
    return GetFileAttributesW(ini) != INVALID_FILE_ATTRIBUTES;
}

uint64_t box_quota(const box *b)
{
    wchar_t ini[FVM_PATH_MAX], value[32];
    box_file(b, L"box.ini", ini);
    GetPrivateProfileStringW(L"box", L"quota", L"0", value, 32, ini);
    return _wcstoui64(value, NULL, 10);
}

void box_config(const box *b, fvm_box_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = FVM_BOX_CONFIG_VERSION;
    cfg->quota_bytes = box_quota(b);
    wchar_t ini[FVM_PATH_MAX];
    box_file(b, L"box.ini", ini);
    cfg->flags |= box_process_flags(ini);
    GetPrivateProfileStringW(L"box", L"provider", L"fvm-decision-provider", cfg->provider,
                             FVM_BOX_NAME_MAX * 2, ini);
    fvm_wcscpy(cfg->box_name, FVM_BOX_NAME_MAX, b->wname);
    fvm_wcscpy(cfg->box_path, FVM_PATH_MAX, b->path);
    cli_exe_dir(cfg->dll_path, FVM_PATH_MAX);
    fvm_wcscat(cfg->dll_path, FVM_PATH_MAX, L"\\fvm.dll");
}

/* Creates every missing folder of path. */
static BOOL make_dirs(const wchar_t *path)
{
    wchar_t buf[FVM_PATH_MAX];
    fvm_wcscpy(buf, FVM_PATH_MAX, path);
    for (wchar_t *p = buf + 3; *p; p++) {
        if (*p == L'\\') {
            *p = 0;
            if (!CreateDirectoryW(buf, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
                return FALSE;
            *p = L'\\';
        }
    }
    return CreateDirectoryW(buf, NULL) || GetLastError() == ERROR_ALREADY_EXISTS;
}

static BOOL write_text_file(const wchar_t *path, const char *text)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    DWORD written;
    BOOL ok = WriteFile(h, text, (DWORD)strlen(text), &written, NULL);
    return CloseHandle(h) && ok;
}

static BOOL remove_tree(const wchar_t *dir);

static void print_policy_diag(void *ctx, const policy_diag *d)
{
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    fprintf(stderr, "%s\n", line);
}

/* The part of full below dir, or NULL if full is not inside dir. */
static const wchar_t *path_below(const wchar_t *full, const wchar_t *dir)
{
    size_t n = wcslen(dir);
    if (!n || _wcsnicmp(full, dir, n) != 0 || full[n] != L'\\' || !full[n + 1])
        return NULL;
    return full + n + 1;
}

/* Copies a policy and every file it includes into the box, so the box is
 * self-contained: the top file becomes <box>\policy.ini and each include
 * keeps its place relative to it. Shipped templates stay where FVM ships
 * them. The policy is loaded first: a broken one is refused, with its
 * file:line:column, before the box exists. */
static int copy_policy_into_box(const box *b, const char *policy_file)
{
    wchar_t wpolicy[FVM_PATH_MAX], full[FVM_PATH_MAX], top_dir[FVM_PATH_MAX], target[FVM_PATH_MAX];
    char why[512];
    cli_wide(policy_file, wpolicy, FVM_PATH_MAX);
    if (!GetFullPathNameW(wpolicy, FVM_PATH_MAX, full, NULL))
        return cli_win_error(GetLastError(), "cannot find policy file '%s'", policy_file);
    fvm_policy_context *ctx = malloc(sizeof *ctx);
    if (!ctx || fvm_policy_context_init(ctx, why, sizeof why) != FVM_OK) {
        free(ctx);
        return cli_error("cannot read policy file '%s': out of memory", policy_file);
    }
    policy *loaded = NULL;
    int rc = 0;
    if (fvm_policy_load_with(ctx, full, &loaded, print_policy_diag, NULL, why, sizeof why) != FVM_OK) {
        rc = cli_error("cannot use policy file '%s': %s", policy_file, why);
    } else {
        fvm_wcscpy(top_dir, FVM_PATH_MAX, full);
        wchar_t *slash = wcsrchr(top_dir, L'\\');
        if (slash)
            *slash = 0;
        static const wchar_t *const reserved[] = {L"drive", L"unc", L"box.ini", L"audit.jsonl", L"audit.head"};
        for (size_t i = 0; i < ctx->file_count && !rc; i++) {
            const wchar_t *file = ctx->files[i].full_path;
            const wchar_t *rel = path_below(file, top_dir);
            if (!_wcsicmp(file, full)) {
                box_file(b, L"policy.ini", target);
            } else if (path_below(file, ctx->shipped_dir)) {
                continue;   /* a shipped template: read from next to fvm.exe */
            } else if (!rel) {
                rc = cli_error("policy include '%s' is outside the folder of '%s': put it there so the box can "
                               "take a copy", ctx->files[i].display, policy_file);
                break;
            } else {
                for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
                    size_t n = wcslen(reserved[r]);
                    if ((!_wcsnicmp(rel, reserved[r], n) && (!rel[n] || rel[n] == L'\\')) ||
                        !_wcsnicmp(rel, L"index-", 6))
                        rc = cli_error("policy include '%s' has a name FVM uses in the box folder; rename it",
                                       ctx->files[i].display);
                }
                box_file(b, rel, target);
                wchar_t parent[FVM_PATH_MAX];
                fvm_wcscpy(parent, FVM_PATH_MAX, target);
                *wcsrchr(parent, L'\\') = 0;
                if (!rc && !make_dirs(parent))
                    rc = cli_win_error(GetLastError(), "cannot make a folder for policy include '%s'",
                                       ctx->files[i].display);
            }
            if (!rc && !CopyFileW(file, target, FALSE))
                rc = cli_win_error(GetLastError(), "cannot copy policy file '%s' into the box",
                                   ctx->files[i].display);
        }
    }
    policy_free(loaded);
    fvm_policy_context_free(ctx);
    free(ctx);
    return rc;
}

int box_create(const box *b, const char *policy_file, uint64_t quota)
{
    if (box_exists(b))
        return cli_error("box '%s' already exists", b->name);
    if (policy_file && GetFileAttributesA(policy_file) == INVALID_FILE_ATTRIBUTES)
        return cli_win_error(GetLastError(), "cannot read policy file '%s'", policy_file);
    if (!make_dirs(b->path)) {
        char p[FVM_PATH_MAX * 3];
        cli_utf8(b->path, p, sizeof p);
        return cli_win_error(GetLastError(), "cannot create box folder '%s'", p);
    }
    char ini[512];
    SYSTEMTIME now;
    GetSystemTime(&now);
    snprintf(ini, sizeof ini,
             "; FVM box. Deleting this folder removes every trace of the box.\r\n"
             "[box]\r\nname=%s\r\ncreated=%04u-%02u-%02uT%02u:%02u:%02uZ\r\nformat=1\r\nquota=%llu\r\n"
             "net=isolated\r\n",
             b->name, now.wYear, now.wMonth, now.wDay, now.wHour, now.wMinute, now.wSecond,
             (unsigned long long)quota);
    wchar_t path[FVM_PATH_MAX];
    if (policy_file) {
        int rc = copy_policy_into_box(b, policy_file);
        if (rc) {
            remove_tree(b->path);
            return rc;
        }
    }
    box_file(b, L"box.ini", path);
    if (!write_text_file(path, ini)) {
        DWORD e = GetLastError();
        remove_tree(b->path);
        return cli_win_error(e, "cannot write box.ini of box '%s'", b->name);
    }
    return 0;
}

DWORD box_process_count(const box *b)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_JOB, name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, name);
    if (!job)
        return 0;
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    DWORD count = 0;
    if (QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL))
        count = acct.ActiveProcesses;
    CloseHandle(job);
    return count;
}

int box_stop(const box *b, DWORD wait_ms)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_JOB, name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_TERMINATE | JOB_OBJECT_QUERY, FALSE, name);
    if (!job)
        return 0;   /* no broker, no processes */
    /* A process tree that keeps spawning adds members while we terminate;
     * they join the same job, so repeat until it is empty. */
    DWORD start = GetTickCount();
    for (;;) {
        JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
        if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL)) {
            DWORD e = GetLastError();
            CloseHandle(job);
            return cli_win_error(e, "cannot query the processes of box '%s'", b->name);
        }
        if (acct.ActiveProcesses == 0)
            break;
        if (GetTickCount() - start > wait_ms) {
            CloseHandle(job);
            return cli_error("box '%s' still has %lu processes after %lu ms", b->name,
                             (unsigned long)acct.ActiveProcesses, (unsigned long)wait_ms);
        }
        TerminateJobObject(job, 1);
        Sleep(20);
    }
    CloseHandle(job);
    return 0;
}

/* Deletes a folder tree; read-only files too. */
static BOOL remove_tree(const wchar_t *dir)
{
    wchar_t pattern[FVM_PATH_MAX], child[FVM_PATH_MAX];
    WIN32_FIND_DATAW fd;
    fvm_wcscpy(pattern, FVM_PATH_MAX, dir);
    fvm_wcscat(pattern, FVM_PATH_MAX, L"\\*");
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
                continue;
            fvm_wcscpy(child, FVM_PATH_MAX, dir);
            fvm_wcscat(child, FVM_PATH_MAX, L"\\");
            fvm_wcscat(child, FVM_PATH_MAX, fd.cFileName);
            if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
                !(fd.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
                if (!remove_tree(child)) {
                    FindClose(h);
                    return FALSE;
                }
            } else {
                if (fd.dwFileAttributes & FILE_ATTRIBUTE_READONLY)
                    SetFileAttributesW(child, FILE_ATTRIBUTE_NORMAL);
                if (!DeleteFileW(child) && !RemoveDirectoryW(child)) {
                    FindClose(h);
                    return FALSE;
                }
            }
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    return RemoveDirectoryW(dir);
}

/* The box's registry delta: its live tree (left by a broker that died, as
 * a running box's broker deletes its own when it exits), then registry.dat. */
static int remove_registry(const box *b)
{
    if (!regstore_delete_box_tree(b->path))
        return cli_error("cannot delete the registry tree of box '%s'", b->name);
    wchar_t file[FVM_PATH_MAX];
    regstore_file_path(b->path, file, FVM_PATH_MAX);
    if (!DeleteFileW(file) && GetLastError() != ERROR_FILE_NOT_FOUND)
        return cli_win_error(GetLastError(), "cannot delete the registry file of box '%s'", b->name);
    return 0;
}

int box_discard_delta(const box *b)
{
    /* The index first: without it nothing claims the copies, and a box
     * folder left half-deleted (an error below) shows its host again. */
    wchar_t path[FVM_PATH_MAX], pattern[FVM_PATH_MAX];
    WIN32_FIND_DATAW fd;
    box_file(b, L"index-*.fvm", pattern);
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            box_file(b, fd.cFileName, path);
            if (!DeleteFileW(path)) {
                DWORD e = GetLastError();
                FindClose(h);
                return cli_win_error(e, "cannot delete the index of box '%s'", b->name);
            }
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    static const wchar_t *const trees[] = {L"drive", L"unc"};
    for (size_t i = 0; i < 2; i++) {
        box_file(b, trees[i], path);
        if (GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES && !remove_tree(path))
            return cli_win_error(GetLastError(), "cannot delete the changes of box '%s'", b->name);
    }
    return remove_registry(b);
}

/* Bytes stored in the box folder: the weight of its delta. */
ULONGLONG tree_size(const wchar_t *dir)
{
    wchar_t pattern[FVM_PATH_MAX], child[FVM_PATH_MAX];
    WIN32_FIND_DATAW fd;
    ULONGLONG total = 0;
    fvm_wcscpy(pattern, FVM_PATH_MAX, dir);
    fvm_wcscat(pattern, FVM_PATH_MAX, L"\\*");
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
            continue;
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            fvm_wcscpy(child, FVM_PATH_MAX, dir);
            fvm_wcscat(child, FVM_PATH_MAX, L"\\");
            fvm_wcscat(child, FVM_PATH_MAX, fd.cFileName);
            total += tree_size(child);
        } else {
            total += ((ULONGLONG)fd.nFileSizeHigh << 32) | fd.nFileSizeLow;
        }
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return total;
}

/* "500M", "2G", "64k", "1048576": bytes, with binary suffixes. */
static BOOL parse_size(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text)
        return FALSE;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (shift && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end || !value || value > (~0ull >> shift))
        return FALSE;
    *out = (uint64_t)value << shift;
    return TRUE;
}

int cmd_create(int argc, char **argv)
{
    const char *name = NULL, *policy = NULL;
    uint64_t quota = 0;
    unsigned long procs = 0;
    BOOL confidential = FALSE;
    box_limits limits = {{0}};
    net_settings net;
    memset(&net, 0, sizeof net);
    for (int i = 1; i < argc; i++) {
        int taken = net_create_option(argc, argv, &i, &net);
        if (taken >= 0) {
            if (taken)
                return taken;
            continue;
        }
        taken = limits_create_option(argc, argv, &i, &limits);
        if (taken >= 0) {
            if (taken)
                return taken;
            continue;
        }
        if ((!strcmp(argv[i], "--policy") || !strcmp(argv[i], "--quota") || !strcmp(argv[i], "--procs")) &&
            i + 1 >= argc)
            return cli_error("create: %s needs a value", argv[i]), EXIT_USAGE;
        if (!strcmp(argv[i], "--policy"))
            policy = argv[++i];
        else if (!strcmp(argv[i], "--quota")) {
            if (!parse_size(argv[++i], &quota))
                return cli_error("create: bad --quota '%s' (a size like 500M, 2G or 1048576)", argv[i]),
                       EXIT_USAGE;
        }
        else if (!strcmp(argv[i], "--procs")) {
            char *end;
            procs = strtoul(argv[++i], &end, 10);
            if (*end || !procs || procs > 100000)
                return cli_error("create: bad --procs '%s' (a number of processes, 1 or more)", argv[i]), EXIT_USAGE;
        }
        else if (!strcmp(argv[i], "--confidential"))
            confidential = TRUE;
        else if (argv[i][0] == '-')
            return cli_error("create: unknown option '%s'", argv[i]), EXIT_USAGE;
        else if (!name)
            name = argv[i];
        else
            return cli_error("create: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (!name)
        return cli_error("usage: fvm create NAME [--policy FILE] [--quota SIZE] [--procs N] [--confidential]\n"
                         "                  [--net isolated|shared] [--publish HOSTPORT:BOXPORT[/udp]]\n"
                         "                  [--cpu 25%%] [--memory SIZE] [--process-memory SIZE] [--io-bandwidth RATE] [--io-ops N]"),
               EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    int rc = box_create(&b, policy, quota);
    if (rc == 0)
        rc = box_process_settings(&b, procs, confidential);
    if (rc == 0)
        rc = limits_write_all(&b, &limits);
    if (rc == 0)
        rc = net_write_settings(&b, &net);
    if (rc == 0) {
        char p[FVM_PATH_MAX * 3];
        cli_utf8(b.path, p, sizeof p);
        printf("created box '%s' at %s\n", b.name, p);
    }
    return rc;
}

int cmd_list(int argc, char **argv)
{
    if (argc > 1)
        return cli_error("usage: fvm list"), EXIT_USAGE;
    wchar_t pattern[FVM_PATH_MAX];
    box_root(pattern, FVM_PATH_MAX);
    fvm_wcscat(pattern, FVM_PATH_MAX, L"\\boxes\\*");
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    printf("%-32s %-8s %6s %12s\n", "NAME", "STATE", "PROCS", "DELTA-BYTES");
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    do {
        if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || fd.cFileName[0] == L'.')
            continue;
        char name[FVM_BOX_NAME_MAX * 3];
        cli_utf8(fd.cFileName, name, sizeof name);
        box b;
        fvm_error err;
        if (fvm_box_name_validate(name, &err) != FVM_OK || !box_init(&b, name) || !box_exists(&b))
            continue;
        DWORD procs = box_process_count(&b);
        printf("%-32s %-8s %6lu %12llu\n", b.name, procs ? "running" : "stopped", (unsigned long)procs,
               (unsigned long long)tree_size(b.path));
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return 0;
}

int box_parse_name_force(int argc, char **argv, const char *usage, box *b, BOOL *force)
{
    const char *name = NULL;
    *force = FALSE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            *force = TRUE;
        else if (argv[i][0] == '-')
            return cli_error("%s: unknown option '%s'", argv[0], argv[i]), EXIT_USAGE;
        else if (!name)
            name = argv[i];
        else
            return cli_error("%s: unexpected argument '%s'", argv[0], argv[i]), EXIT_USAGE;
    }
    if (!name)
        return cli_error("usage: %s", usage), EXIT_USAGE;
    if (!box_init(b, name))
        return EXIT_FAIL;
    if (!box_exists(b))
        return cli_error("no box named '%s'", name);
    return 0;
}

/* Waits until the box's broker has exited: its last act, under the box
 * lock, is saving the registry and deleting the live tree, then closing its
 * ready event, so nothing of the box changes after this. */
static int wait_broker_gone(const box *b, DWORD wait_ms)
{
    wchar_t ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);
    for (DWORD start = GetTickCount();; Sleep(20)) {
        HANDLE ready = OpenEventW(SYNCHRONIZE, FALSE, ready_name);
        if (!ready)
            return 0;
        CloseHandle(ready);
        if (GetTickCount() - start > wait_ms)
            return cli_error("the broker of box '%s' is still running after %lu ms", b->name,
                             (unsigned long)wait_ms);
    }
}

int box_stop_unless_running(const box *b, BOOL force)
{
    DWORD procs = box_process_count(b);
    if (procs && !force)
        return cli_error("box '%s' is running (%lu processes); stop it first or use --force", b->name,
                         (unsigned long)procs);
    int rc = procs ? box_stop(b, 10000) : 0;
    return rc ? rc : wait_broker_gone(b, 10000);
}

int cmd_rm(int argc, char **argv)
{
    box b;
    BOOL force;
    int rc = box_parse_name_force(argc, argv, "fvm rm NAME [--force]", &b, &force);
    if (rc || (rc = box_stop_unless_running(&b, force)) != 0 || (rc = remove_registry(&b)) != 0)
        return rc;
    /* Files of processes that just ended may stay open a moment. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (remove_tree(b.path))
            return 0;
        Sleep(100);
    }
    return cli_win_error(GetLastError(), "cannot remove every file of box '%s'", b.name);
}
