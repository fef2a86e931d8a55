/* stats.c - `fvm stats [NAME] [--json] [--follow]`: what running boxes use
 * now, against their limits (issue 12).
 *
 * The numbers that need a global view (CPU %, committed memory granted,
 * processes, throttling, refusals) come from each box's broker (the
 * "stats" request, broker/limits.c), which measures them anyway to enforce
 * the limits; the delta's size is measured here. The I/O rate (reads and
 * writes per second, bytes and ops) is known only for a box with an I/O
 * limit: its processes ask the broker for their I/O; a box without one
 * never talks to the broker about I/O, so its rate shows as "-". --json prints one JSON
 * object per box and line; --follow refreshes every second, like docker
 * stats, until interrupted. */
#include "cli/cli.h"

#include <string.h>

#include "common/boxlimits.h"
#include "common/brokerproto.h"
#include "core/boxname.h"

/* A JSON object from another process: one line of printable ASCII. */
static BOOL plain_object(char *out, size_t got)
{
    if (got < 2 || out[0] != '{')
        return FALSE;
    out[got] = 0;
    for (size_t i = 0; i < got; i++)
        if (out[i] < 0x20 || out[i] > 0x7e)
            return FALSE;
    return TRUE;
}

/* The broker's JSON for the box, or FALSE when it is not running. */
BOOL stats_query(const box *b, char *out, size_t cap)
{
    if (fvm_box_own_server(b->path) && !own_server_inside()) {
        /* Its broker is in the box's own Wine server: asked there (ownserver.c). */
        const char *const ask[] = {"__stats-json", b->name, NULL};
        return own_server_capture(b, ask, out, cap) && plain_object(out, strcspn(out, "\r\n"));
    }
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    HANDLE pipe = INVALID_HANDLE_VALUE;
    for (int attempt = 0; attempt < 50 && pipe == INVALID_HANDLE_VALUE; attempt++) {
        pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        if (GetLastError() != ERROR_PIPE_BUSY)
            return FALSE;
        WaitNamedPipeW(name, 100);
    }
    if (pipe == INVALID_HANDLE_VALUE)
        return FALSE;
    DWORD mode = PIPE_READMODE_MESSAGE, written, got = 0;
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    BOOL ok = WriteFile(pipe, FVM_BROKER_REQ_STATS, (DWORD)strlen(FVM_BROKER_REQ_STATS), &written, NULL) &&
              ReadFile(pipe, out, (DWORD)cap - 1, &got, NULL);
    CloseHandle(pipe);
    return ok && plain_object(out, got);
}

int cmd_stats_json(int argc, char **argv)
{
    box b;
    static char text[FVM_BROKER_STATS_MAX];
    if (argc != 2 || !box_init(&b, argv[1]) || !stats_query(&b, text, sizeof text))
        return 1;
    printf("%s\n", text);
    return 0;
}

/* A number field of the broker's JSON ("key":123.4), or 0. */
double stats_field(const char *json, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    return at ? strtod(at + strlen(pattern), NULL) : 0;
}

static void human(double bytes, char *out, size_t cap)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4)
        bytes /= 1024, u++;
    snprintf(out, cap, u ? "%.1f%s" : "%.0f%s", bytes, units[u]);
}

static void print_box(const box *b, BOOL json, BOOL *header)
{
    char text[FVM_BROKER_STATS_MAX];
    if (!stats_query(b, text, sizeof text))
        return;
    ULONGLONG delta = tree_size(b->path);
    uint64_t storage = box_quota(b);
    if (json) {
        text[strlen(text) - 1] = 0;   /* the closing brace */
        printf("{\"box\":\"%s\",\"delta_bytes\":%llu,\"storage_quota\":%llu,%s}\n", b->name, delta,
               (unsigned long long)storage, text + 1);
        return;
    }
    if (!*header) {
        printf("%-20s %7s %6s %21s %11s %21s %27s %s\n", "BOX", "CPU%", "LIMIT", "MEMORY / LIMIT", "PROCS",
               "DELTA / QUOTA", "IO READ / WRITE / LIMIT", "THROTTLED");
        *header = TRUE;
    }
    char mem[32], memlimit[32], cpulimit[16], procs[24], d[32], q[32], memcol[64], deltacol[64];
    human(stats_field(text, "memory_bytes"), mem, sizeof mem);
    if (stats_field(text, "memory_limit") > 0)
        human(stats_field(text, "memory_limit"), memlimit, sizeof memlimit);
    else
        snprintf(memlimit, sizeof memlimit, "-");
    if (stats_field(text, "cpu_limit") > 0)
        snprintf(cpulimit, sizeof cpulimit, "%.0f%%", stats_field(text, "cpu_limit"));
    else
        snprintf(cpulimit, sizeof cpulimit, "-");
    if (stats_field(text, "procs_limit") > 0)
        snprintf(procs, sizeof procs, "%.0f / %.0f", stats_field(text, "processes"), stats_field(text, "procs_limit"));
    else
        snprintf(procs, sizeof procs, "%.0f / -", stats_field(text, "processes"));
    human((double)delta, d, sizeof d);
    if (storage)
        human((double)storage, q, sizeof q);
    else
        snprintf(q, sizeof q, "-");
    snprintf(memcol, sizeof memcol, "%s / %s", mem, memlimit);
    snprintf(deltacol, sizeof deltacol, "%s / %s", d, q);
    char iocol[96], ior[32], iow[32], iol[32];
    if (strstr(text, "\"io_measured\":true")) {
        human(stats_field(text, "io_read_bytes_per_s"), ior, sizeof ior);
        human(stats_field(text, "io_write_bytes_per_s"), iow, sizeof iow);
        if (stats_field(text, "io_bandwidth_limit") > 0)
            human(stats_field(text, "io_bandwidth_limit"), iol, sizeof iol);
        else if (stats_field(text, "io_ops_limit") > 0)
            snprintf(iol, sizeof iol, "%.0fops", stats_field(text, "io_ops_limit"));
        else
            snprintf(iol, sizeof iol, "-");
        snprintf(iocol, sizeof iocol, "%s/s / %s/s / %s%s", ior, iow, iol, iol[0] == '-' ? "" : "/s");
    } else {
        snprintf(iocol, sizeof iocol, "- / - / -");
    }
    printf("%-20s %6.1f%% %6s %21s %11s %21s %27s %.1fs\n", b->name, stats_field(text, "cpu_percent"), cpulimit, memcol,
           procs, deltacol, iocol, stats_field(text, "throttled_ms") / 1000.0);
}

static void print_all(const char *only, BOOL json)
{
    BOOL header = FALSE;
    if (only) {
        box b;
        if (box_init(&b, only))
            print_box(&b, json, &header);
        return;
    }
    wchar_t pattern[FVM_PATH_MAX];
    box_root(pattern, FVM_PATH_MAX);
    fvm_wcscat(pattern, FVM_PATH_MAX, L"\\boxes\\*");
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return;
    do {
        if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || fd.cFileName[0] == L'.')
            continue;
        char name[FVM_BOX_NAME_MAX * 3];
        cli_utf8(fd.cFileName, name, sizeof name);
        fvm_error err;
        box b;
        if (fvm_box_name_validate(name, &err) == FVM_OK && box_init(&b, name) && box_exists(&b) &&
            box_process_count(&b))
            print_box(&b, json, &header);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
}

int cmd_stats(int argc, char **argv)
{
    const char *only = NULL;
    BOOL json = FALSE, follow = FALSE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = TRUE;
        else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
            follow = TRUE;
        else if (argv[i][0] == '-' || only)
            return cli_error("usage: fvm stats [NAME] [--json] [--follow]"), EXIT_USAGE;
        else
            only = argv[i];
    }
    if (only) {
        box b;
        if (!box_init(&b, only))
            return EXIT_FAIL;
        if (!box_exists(&b))
            return cli_error("no box '%s'", b.name);
        if (!box_process_count(&b) && !follow)
            return cli_error("box '%s' is not running", b.name);
    }
    for (;;) {
        print_all(only, json);
        fflush(stdout);
        if (!follow)
            return 0;
        Sleep(1000);
        if (!json)
            printf("\n");
    }
}
