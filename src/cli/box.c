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

#include "common/boxlife.h"
#include "common/brokerproto.h"
#include "common/policyload.h"
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

BOOL cli_create_process(const wchar_t *app, wchar_t *cmdline, BOOL inherit, DWORD flags, const wchar_t *dir,
                        STARTUPINFOW *si, PROCESS_INFORMATION *pi)
{
    for (int attempt = 0;; attempt++) {
        if (CreateProcessW(app, cmdline, NULL, NULL, inherit, flags, NULL, dir, si, pi))
            return TRUE;
        /* Nothing of the child ran (NtCreateUserProcess gave up before the
         * process existed for anyone), so a second try is safe. */
        if (GetLastError() != ERROR_INTERNAL_ERROR || attempt == 1)
            return FALSE;
        Sleep(50);
    }
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

/* Every verb that opens a box asks this first: an import a kill interrupted
 * in its swap is finished or rolled back here (cli/importswap.c), so no
 * verb sees a box half swapped. */
BOOL box_exists(const box *b)
{
    if (!boxlife_exists(b->path))
        return FALSE;
    import_recover(b);
    return TRUE;
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

/* Shows a lifecycle error the way every verb does: "fvm: <message>". */
static int box_life_error(const boxlife_error *err)
{
    return cli_error("%s", err->message);
}

static void print_policy_diag(void *ctx, const policy_diag *d)
{
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    fprintf(stderr, "%s\n", line);
}

int box_create(const box *b, const char *policy_file, uint64_t quota)
{
    boxlife_options opt = {0};
    wchar_t wpolicy[FVM_PATH_MAX];
    if (policy_file) {
        cli_wide(policy_file, wpolicy, FVM_PATH_MAX);
        opt.policy_file = wpolicy;
    }
    opt.quota_bytes = quota;
    opt.policy_diag = print_policy_diag;
    boxlife_error err;
    return boxlife_create(b->path, b->name, &opt, &err) == FVM_OK ? 0 : box_life_error(&err);
}

DWORD box_process_count(const box *b)
{
    return boxlife_process_count(b->path);
}

int box_stop(const box *b, DWORD wait_ms)
{
    boxlife_error err;
    return boxlife_stop(b->path, b->name, wait_ms, &err) == FVM_OK ? 0 : box_life_error(&err);
}

int box_discard_delta(const box *b)
{
    boxlife_error err;
    return boxlife_discard_delta(b->path, b->name, &err) == FVM_OK ? 0 : box_life_error(&err);
}

/* Bytes stored in the box folder: the weight of its delta. */
ULONGLONG tree_size(const wchar_t *dir)
{
    return boxlife_tree_size(dir);
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
    BOOL confidential = FALSE, own_display = FALSE, host_display = FALSE, own_server = FALSE, host_server = FALSE;
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
        else if (!strcmp(argv[i], "--own-display"))
            own_display = TRUE;
        else if (!strcmp(argv[i], "--host-display"))
            host_display = TRUE;
        else if (!strcmp(argv[i], "--own-server"))
            own_server = TRUE;
        else if (!strcmp(argv[i], "--host-server"))
            host_server = TRUE;
        else if (argv[i][0] == '-')
            return cli_error("create: unknown option '%s'", argv[i]), EXIT_USAGE;
        else if (!name)
            name = argv[i];
        else
            return cli_error("create: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (!name)
        return cli_error("usage: fvm create NAME [--policy FILE] [--quota SIZE] [--procs N] [--confidential]\n"
                         "                  [--own-server | --host-server] [--own-display | --host-display]\n"
                         "                  [--net isolated|shared] [--publish HOSTPORT:BOXPORT[/udp]]\n"
                         "                  [--cpu 25%%] [--memory SIZE] [--process-memory SIZE] [--io-bandwidth RATE] [--io-ops N]"),
               EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    boxlife_options opt = {0};
    wchar_t wpolicy[FVM_PATH_MAX];
    if (policy) {
        cli_wide(policy, wpolicy, FVM_PATH_MAX);
        opt.policy_file = wpolicy;
    }
    opt.quota_bytes = quota;
    opt.procs = procs;
    opt.confidential = confidential;
    opt.own_display = own_display;
    opt.host_display = host_display;
    if (own_display && host_display)
        return cli_error("create: --own-display and --host-display exclude each other"), EXIT_USAGE;
    if (own_server && host_server)
        return cli_error("create: --own-server and --host-server exclude each other"), EXIT_USAGE;
    opt.own_server = own_server;   /* neither: boxlife_wants_own_server decides */
    opt.host_server = host_server;
    if (own_display && (opt.display_number = own_display_pick()) < 0)
        return cli_error("create: no free X display number (100-999) for --own-display (or not on Linux)");
    opt.limits = &limits;
    opt.net_mode = net.mode[0] ? net.mode : NULL;
    opt.publish = net.publish_set && net.publish[0] ? net.publish : NULL;
    opt.policy_diag = print_policy_diag;
    boxlife_error err;
    if (boxlife_create(b.path, b.name, &opt, &err) != FVM_OK)
        return box_life_error(&err);
    char p[FVM_PATH_MAX * 3];
    cli_utf8(b.path, p, sizeof p);
    printf("created box '%s' at %s\n", b.name, p);
    return 0;
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
        /* A box on its own Wine server counts 1 from here: its broker, in
         * that server, says how many (ownserver.c). */
        static char stats[FVM_BROKER_STATS_MAX];
        if (procs && fvm_box_own_server(b.path) && stats_query(&b, stats, sizeof stats) &&
            stats_field(stats, "processes") >= 1)
            procs = (DWORD)stats_field(stats, "processes");
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
    sync_reap_hold(b);   /* rm and discard never run with a commit's reaper (cli/reap.c) */
    return 0;
}

int box_stop_unless_running(const box *b, BOOL force)
{
    boxlife_error err;
    return boxlife_stop_unless_running(b->path, b->name, force, &err) == FVM_OK ? 0 : box_life_error(&err);
}

int cmd_rm(int argc, char **argv)
{
    box b;
    BOOL force;
    int rc = box_parse_name_force(argc, argv, "fvm rm NAME [--force]", &b, &force);
    if (rc)
        return rc;
    boxlife_error err;
    if (boxlife_remove(b.path, b.name, force, &err) != FVM_OK)
        return box_life_error(&err);
    /* The box's commit journals (cli/commit.c keeps them in <root>\\journals). */
    wchar_t pattern[FVM_PATH_MAX], path[FVM_PATH_MAX];
    box_root(pattern, FVM_PATH_MAX);
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\journals\\", pattern);
    path[FVM_PATH_MAX - 1] = 0;
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls%ls-*.commit.journal*", path, b.wname);
    pattern[FVM_PATH_MAX - 1] = 0;
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        size_t dir_len = wcslen(path);
        do {
            _snwprintf(path + dir_len, FVM_PATH_MAX - dir_len, L"%ls", fd.cFileName);
            DeleteFileW(path);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    return 0;
}
