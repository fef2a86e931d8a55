/* logs.c - fvm logs: show, follow and verify a box's audit log; and the
 * hidden `fvm __audit-append`, which appends records through the writer
 * the broker uses (common/auditlog.c), so tests can build real logs.
 *
 * The log is <box>\audit.jsonl, one JSON record per line, with the chain's
 * end in <box>\audit.head (core/audit.h). Showing prints the lines as they
 * are - they are the record - filtered by the record's "type" on request.
 * Following keeps the file open for reading (the writer lets readers in)
 * and polls for complete new lines; a line still being written is printed
 * once its newline arrives. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/auditlog.h"
#include "core/policy.h"

static volatile LONG stop_requested;

static BOOL WINAPI on_console_break(DWORD event)
{
    if (event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT) {
        InterlockedExchange(&stop_requested, 1);
        return TRUE;
    }
    return FALSE;
}

typedef struct printer {
    const char *type;          /* only records of this type, or NULL */
    uint64_t line;             /* lines seen so far */
    uint64_t printed;
} printer;

static int print_line(void *ctx, const char *line, size_t len)
{
    printer *p = ctx;
    p->line++;
    if (p->type) {
        audit_fields f;
        size_t column;
        fvm_error err;
        if (audit_parse_line(line, len, &f, &column, &err) != FVM_OK) {
            fprintf(stderr, "fvm: warning: line %llu of the audit log is not a record (%s): skipped\n",
                    (unsigned long long)p->line, err.message);
            return 1;
        }
        char type[64];
        if (audit_unescape(&f.type, type, sizeof type) >= sizeof type || _stricmp(type, p->type) != 0)
            return 1;
    }
    fwrite(line, 1, len, stdout);
    fputc('\n', stdout);
    p->printed++;
    return 1;
}

static int logs_verify(const box *b)
{
    audit_verify_report report;
    char why[1024];
    switch (fvm_audit_log_verify(b->path, &report, why, sizeof why)) {
    case FVM_OK:
        printf("audit log OK: %llu %s, last seq %llu\n", (unsigned long long)report.records,
               report.records == 1 ? "record" : "records", (unsigned long long)report.last.seq);
        if (report.senders_word)
            printf("%llu %s the sender's word: the broker could not decide %s again (\"decided\":\"sender\")\n",
                   (unsigned long long)report.senders_word,
                   report.senders_word == 1 ? "decision is" : "decisions are", report.senders_word == 1 ? "it" : "them");
        return 0;
    case FVM_E_NOTFOUND:
        printf("no audit records yet\n");
        return 0;
    case FVM_E_INVALID:
        /* The chain verified before forged decisions are reported: the log
         * is what the broker wrote, and what it wrote says a boxed program
         * lied to it (issue 17.7). */
        if (report.forged && strstr(report.message, "forged its decision"))
            return cli_error("the audit log of box '%s' is intact, but a boxed program forged decisions the broker "
                             "decided again (\"decided\":\"forged\"; the log holds the broker's): %s",
                             b->name, report.message);
        return cli_error("the audit log of box '%s' does not verify: %s", b->name, report.message);
    default:
        return cli_error("cannot verify the audit log of box '%s': %s", b->name, why);
    }
}

static HANDLE open_log_for_reading(const wchar_t *path)
{
    /* Every sharing flag: never in the writer's way. */
    return CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
}

int cmd_logs(int argc, char **argv)
{
    const char *name = NULL, *type = NULL;
    BOOL follow = FALSE, verify = FALSE;
    double follow_seconds = 0;   /* hidden, for tests: stop following after this long */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
            follow = TRUE;
        else if (!strcmp(argv[i], "--verify"))
            verify = TRUE;
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type = argv[++i];
        else if (!strcmp(argv[i], "--follow-seconds") && i + 1 < argc) {
            follow = TRUE;
            follow_seconds = atof(argv[++i]);
            if (follow_seconds <= 0)
                return cli_error("logs: bad --follow-seconds '%s'", argv[i]), EXIT_USAGE;
        }
        else if (argv[i][0] == '-')
            return cli_error("logs: unknown option '%s'", argv[i]), EXIT_USAGE;
        else if (!name)
            name = argv[i];
        else
            return cli_error("logs: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (!name)
        return cli_error("usage: fvm logs NAME [--follow] [--type file|key|object|...] [--verify]"), EXIT_USAGE;
    policy_type known;
    if (type && !policy_type_from_name(type, strlen(type), &known))
        return cli_error("logs: unknown type '%s' (file, key, object, process, net, service, screen, print, "
                         "desktop, memory or data)", type), EXIT_USAGE;
    if (verify && (follow || type))
        return cli_error("logs: --verify checks the whole log and takes no other option"), EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", name);
    if (verify)
        return logs_verify(&b);

    wchar_t log_path[FVM_PATH_MAX];
    if (fvm_audit_log_paths(b.path, log_path, NULL, FVM_PATH_MAX) != FVM_OK)
        return cli_error("the path of box '%s' is too long", name);
    HANDLE file = open_log_for_reading(log_path);
    if (file == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e != ERROR_FILE_NOT_FOUND && e != ERROR_PATH_NOT_FOUND)
            return cli_win_error(e, "cannot open the audit log of box '%s'", name);
        if (!follow) {
            printf("no audit records yet\n");
            return 0;
        }
        fprintf(stderr, "fvm: no audit records yet; waiting for them\n");
    }
    if (follow)
        SetConsoleCtrlHandler(on_console_break, TRUE);
    printer p = {type, 0, 0};
    uint64_t offset = 0;
    ULONGLONG deadline = GetTickCount64() + (ULONGLONG)(follow_seconds * 1000);
    char why[512];
    for (;;) {
        if (file != INVALID_HANDLE_VALUE) {
            /* A log shorter than what we read was cut or replaced: start over. */
            LARGE_INTEGER size;
            if (offset && GetFileSizeEx(file, &size) && (uint64_t)size.QuadPart < offset) {
                fprintf(stderr, "fvm: the audit log got shorter (cut or replaced); reading it again from the start\n");
                offset = 0;
                p.line = 0;
            }
            if (fvm_audit_read_lines(file, &offset, print_line, &p, NULL, why, sizeof why) != FVM_OK) {
                CloseHandle(file);
                return cli_error("audit log of box '%s': %s", name, why);
            }
            fflush(stdout);
        }
        if (!follow)
            break;
        if (stop_requested || (follow_seconds > 0 && GetTickCount64() >= deadline))
            break;
        Sleep(200);
        if (file == INVALID_HANDLE_VALUE)
            file = open_log_for_reading(log_path);   /* the first record creates it */
    }
    if (file != INVALID_HANDLE_VALUE)
        CloseHandle(file);
    if (!follow && p.line == 0)
        printf("no audit records yet\n");
    return 0;
}

/* fvm __audit-append BOX TYPE OP DECISION RESOURCE... [--rule R] [--pid N]
 * [--image PATH] [--time-ms T] [--sender-subject]: one record per RESOURCE,
 * through the broker's writer, standing in for the broker (its records say
 * "subject":"broker"; --sender-subject writes them as a broker before issue
 * 17.7 did, without it). */
int cmd_audit_append(int argc, char **argv)
{
    const char *positional[64];
    int count = 0;
    const char *rule = "default", *image = NULL;
    uint32_t pid = GetCurrentProcessId();
    long long time_ms = -1;
    const char *subject = "broker";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sender-subject"))
            subject = NULL;
        else if (!strcmp(argv[i], "--rule") && i + 1 < argc)
            rule = argv[++i];
        else if (!strcmp(argv[i], "--image") && i + 1 < argc)
            image = argv[++i];
        else if (!strcmp(argv[i], "--pid") && i + 1 < argc)
            pid = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--time-ms") && i + 1 < argc)
            time_ms = strtoll(argv[++i], NULL, 10);
        else if (count < 64)
            positional[count++] = argv[i];
    }
    if (count < 5)
        return cli_error("usage: fvm __audit-append BOX TYPE OP DECISION RESOURCE... [--rule R] [--pid N] "
                         "[--image PATH] [--time-ms T]"), EXIT_USAGE;
    box b;
    if (!box_init(&b, positional[0]))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", positional[0]);
    char self[FVM_PATH_MAX * 3];
    if (!image) {
        wchar_t wself[FVM_PATH_MAX];
        GetModuleFileNameW(NULL, wself, FVM_PATH_MAX);
        cli_utf8(wself, self, sizeof self);
        image = self;
    }
    if (time_ms < 0) {
        FILETIME now;
        GetSystemTimeAsFileTime(&now);
        ULONGLONG ticks = ((ULONGLONG)now.dwHighDateTime << 32) | now.dwLowDateTime;
        time_ms = (long long)((ticks - 116444736000000000ULL) / 10000);   /* 100 ns since 1601 -> ms since 1970 */
    }
    fvm_audit_log log;
    char why[1024];
    if (fvm_audit_log_open(b.path, &log, why, sizeof why) != FVM_OK)
        return cli_error("cannot open the audit log of box '%s': %s", b.name, why);
    uint64_t first = log.chain.seq + 1;
    for (int i = 4; i < count; i++) {
        audit_record r = {0};
        r.time_ms = time_ms;
        r.box = b.name;
        r.pid = pid;
        r.image = image;
        r.type = positional[1];
        r.op = positional[2];
        r.decision = positional[3];
        r.name = positional[i];
        r.rule = rule;
        r.subject = subject;
        if (fvm_audit_log_append(&log, &r, why, sizeof why) != FVM_OK) {
            fvm_audit_log_close(&log);
            return cli_error("cannot append to the audit log of box '%s': %s", b.name, why);
        }
    }
    printf("appended records %llu..%llu\n", (unsigned long long)first, (unsigned long long)log.chain.seq);
    fvm_audit_log_close(&log);
    return 0;
}
