/* sdkclient.c - sdkclient.exe, the sample client of the FVM SDK
 * (include/fvm/fvm.h), used by tests/e2e/test_sdk.py and as an example.
 *
 *   sdkclient demo BOX POLICY DENIED_FILE   the whole tour, see demo() below
 *   sdkclient create BOX [POLICY|-] [QUOTA] / remove BOX [force] / exists BOX
 *   sdkclient stop BOX / count BOX / verify BOX
 *   sdkclient run BOX PROGRAM [ARGS...]      waits; prints exit=N
 *   sdkclient lifecycle BOX PROBE_EXE        create, run a sleeping program without
 *                                            waiting, count, stop, remove
 *   sdkclient eval POLICY TYPE RESOURCE [PROGRAM]
 *   sdkclient boxeval BOX TYPE RESOURCE [PROGRAM]
 *   sdkclient follow BOX FROM_SEQ COUNT TIMEOUT_MS
 *
 * The SDK finds fvm.exe through FVM_HOME (or this program's folder) and the
 * boxes through FVM_ROOT. Output is one record per line, "WORD key=value
 * ...", the free-text value (a name, a message) last; errors are
 * "error step=S code=C message=M". Exit code 0 only when every step worked. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fvm/fvm.h"

static fvm_sdk *sdk;

static int report_error(const char *step, const fvm_sdk_error *err)
{
    printf("error step=%s code=%d message=%s\n", step, err->code, err->message);
    fflush(stdout);
    return 1;
}

static void print_decision(const char *resource, const fvm_decision *d)
{
    printf("decision action=%s audit=%d default=%d rule=%s resource=%s\n", d->action_name, d->audit,
           d->is_default, d->rule, resource);
}

/* ---- audit events: printed from the subscription's thread ---------------------------- */

typedef struct follower {
    volatile LONG received;
    LONG wanted;
    HANDLE enough;               /* set when `wanted` events arrived */
} follower;

static int on_event(void *ctx, const fvm_audit_event *ev)
{
    follower *f = ctx;
    printf("event seq=%llu pid=%lu type=%s op=%s decision=%s rule=%s image=%s name=%s\n",
           (unsigned long long)ev->seq, (unsigned long)ev->pid, ev->type, ev->op, ev->decision, ev->rule,
           ev->image, ev->name);
    fflush(stdout);
    if (InterlockedIncrement(&f->received) >= f->wanted)
        SetEvent(f->enough);
    return 0;
}

/* ---- commands ----------------------------------------------------------------------------- */

/* A Windows command line from argv[from..], quoting arguments with spaces. */
static wchar_t *join_command(int argc, wchar_t **argv, int from)
{
    size_t cap = 1;
    for (int i = from; i < argc; i++)
        cap += wcslen(argv[i]) + 3;
    wchar_t *line = calloc(cap, sizeof *line);
    for (int i = from; line && i < argc; i++) {
        int quote = wcschr(argv[i], L' ') != NULL;
        if (i > from)
            wcscat(line, L" ");
        if (quote)
            wcscat(line, L"\"");
        wcscat(line, argv[i]);
        if (quote)
            wcscat(line, L"\"");
    }
    return line;
}

/* Create, evaluate, subscribe, run a program that opens a denied file,
 * receive the audit record, verify, stop and remove. */
static int demo(const char *box, const char *policy, const char *denied, const wchar_t *wdenied)
{
    fvm_sdk_error err;
    fvm_decision d;
    int failed = 0;
    if (fvm_box_create(sdk, box, policy, 0, &err) != FVM_SDK_OK)
        return report_error("create", &err);
    printf("step create ok\n");

    const char *resources[] = {denied, "C:\\windows\\win.ini"};
    for (size_t i = 0; i < 2; i++) {
        if (fvm_box_policy_evaluate(sdk, box, "file", resources[i], NULL, &d, &err) != FVM_SDK_OK)
            failed |= report_error("evaluate", &err);
        else
            print_decision(resources[i], &d);
    }

    follower f = {0, 1, CreateEventW(NULL, TRUE, FALSE, NULL)};
    fvm_audit_subscription *sub = NULL;
    if (fvm_audit_subscribe(sdk, box, 1, on_event, &f, &sub, &err) != FVM_SDK_OK)
        failed |= report_error("subscribe", &err);
    else
        printf("step subscribe ok\n");
    fflush(stdout);

    wchar_t command[MAX_PATH + 32];
    _snwprintf(command, MAX_PATH + 32, L"cmd /c type \"%ls\"", wdenied);
    command[MAX_PATH + 31] = 0;
    DWORD code = 0;
    if (fvm_box_run(sdk, box, command, FVM_RUN_WAIT, NULL, &code, &err) != FVM_SDK_OK)
        failed |= report_error("run", &err);
    else
        printf("step run exit=%lu\n", (unsigned long)code);
    fflush(stdout);

    if (sub) {
        if (WaitForSingleObject(f.enough, 10000) != WAIT_OBJECT_0) {
            printf("error step=audit code=0 message=no audit event within 10 s\n");
            failed = 1;
        }
        fvm_audit_unsubscribe(sub);
        printf("step audit events=%ld\n", f.received);
    }
    CloseHandle(f.enough);

    uint64_t records = 0;
    if (fvm_audit_verify(sdk, box, &records, &err) != FVM_SDK_OK)
        failed |= report_error("verify", &err);
    else
        printf("step verify records=%llu\n", (unsigned long long)records);
    if (fvm_box_stop(sdk, box, &err) != FVM_SDK_OK)
        failed |= report_error("stop", &err);
    else
        printf("step stop ok\n");
    if (fvm_box_remove(sdk, box, 1, &err) != FVM_SDK_OK)
        failed |= report_error("remove", &err);
    else
        printf("step remove ok\n");
    int exists = 1;
    fvm_box_exists(sdk, box, &exists, NULL);
    printf("step exists=%d\n", exists);
    return failed || exists;
}

/* Create, run a sleeping program without waiting, see it counted, stop the
 * box, see the fvm.exe handle end, remove. */
static int lifecycle(const char *box, const wchar_t *probe)
{
    fvm_sdk_error err;
    int exists = 0;
    unsigned long count = 0;
    if (fvm_box_create(sdk, box, NULL, 0, &err) != FVM_SDK_OK)
        return report_error("create", &err);
    fvm_box_exists(sdk, box, &exists, NULL);
    printf("step create exists=%d\n", exists);
    wchar_t command[MAX_PATH + 32];
    _snwprintf(command, MAX_PATH + 32, L"\"%ls\" sleep 60000", probe);
    command[MAX_PATH + 31] = 0;
    HANDLE process = NULL;
    if (fvm_box_run(sdk, box, command, 0, &process, NULL, &err) != FVM_SDK_OK)
        return report_error("run", &err);
    for (int i = 0; i < 200 && count == 0; i++) {
        if (fvm_box_process_count(sdk, box, &count, &err) != FVM_SDK_OK)
            return report_error("count", &err);
        if (!count)
            Sleep(50);
    }
    printf("step running count=%lu\n", count);
    if (fvm_box_remove(sdk, box, 0, &err) == FVM_SDK_OK)
        return printf("error step=remove-running code=0 message=a running box was removed\n"), 1;
    printf("step remove-running code=%d message=%s\n", err.code, err.message);
    if (fvm_box_stop(sdk, box, &err) != FVM_SDK_OK)
        return report_error("stop", &err);
    DWORD waited = WaitForSingleObject(process, 10000), code = 0;
    GetExitCodeProcess(process, &code);
    CloseHandle(process);
    fvm_box_process_count(sdk, box, &count, NULL);
    printf("step stopped ended=%d count=%lu\n", waited == WAIT_OBJECT_0, count);
    if (fvm_box_remove(sdk, box, 0, &err) != FVM_SDK_OK)
        return report_error("remove", &err);
    fvm_box_exists(sdk, box, &exists, NULL);
    printf("step removed exists=%d\n", exists);
    return waited != WAIT_OBJECT_0 || count != 0 || exists;
}

static int follow(const char *box, uint64_t from, long wanted, DWORD timeout_ms)
{
    fvm_sdk_error err;
    follower f = {0, wanted, CreateEventW(NULL, TRUE, FALSE, NULL)};
    fvm_audit_subscription *sub;
    if (fvm_audit_subscribe(sdk, box, from, on_event, &f, &sub, &err) != FVM_SDK_OK)
        return report_error("subscribe", &err);
    printf("subscribed\n");
    fflush(stdout);
    DWORD w = WaitForSingleObject(f.enough, timeout_ms);
    fvm_audit_unsubscribe(sub);
    CloseHandle(f.enough);
    printf("received %ld\n", f.received);
    return w != WAIT_OBJECT_0;
}

int wmain(int argc, wchar_t **argv)
{
    static char args[16][1024];
    for (int i = 0; i < argc && i < 16; i++)
        WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, args[i], sizeof args[i], NULL, NULL);
    if (argc < 3) {
        fprintf(stderr, "usage: sdkclient demo|create|remove|exists|stop|count|verify|run|lifecycle|eval|boxeval|"
                        "follow ...\n");
        return 2;
    }
    const char *cmd = args[1], *box = args[2];
    fvm_sdk_error err;
    if (fvm_sdk_open(NULL, NULL, &sdk, &err) != FVM_SDK_OK)
        return report_error("open", &err);

    int rc = 2;
    fvm_decision d;
    if (!strcmp(cmd, "demo") && argc == 5) {
        rc = demo(box, args[3], args[4], argv[4]);
    } else if (!strcmp(cmd, "create")) {
        const char *policy = argc > 3 && strcmp(args[3], "-") ? args[3] : NULL;
        uint64_t quota = argc > 4 ? _strtoui64(args[4], NULL, 10) : 0;
        rc = fvm_box_create(sdk, box, policy, quota, &err) ? report_error("create", &err) : (printf("ok\n"), 0);
    } else if (!strcmp(cmd, "remove")) {
        rc = fvm_box_remove(sdk, box, argc > 3 && !strcmp(args[3], "force"), &err) ? report_error("remove", &err)
                                                                                   : (printf("ok\n"), 0);
    } else if (!strcmp(cmd, "exists")) {
        int exists;
        rc = fvm_box_exists(sdk, box, &exists, &err) ? report_error("exists", &err)
                                                     : (printf("exists=%d\n", exists), 0);
    } else if (!strcmp(cmd, "stop")) {
        rc = fvm_box_stop(sdk, box, &err) ? report_error("stop", &err) : (printf("ok\n"), 0);
    } else if (!strcmp(cmd, "count")) {
        unsigned long count;
        rc = fvm_box_process_count(sdk, box, &count, &err) ? report_error("count", &err)
                                                           : (printf("count=%lu\n", count), 0);
    } else if (!strcmp(cmd, "verify")) {
        uint64_t records;
        rc = fvm_audit_verify(sdk, box, &records, &err) ? report_error("verify", &err)
                                                        : (printf("records=%llu\n", (unsigned long long)records), 0);
    } else if (!strcmp(cmd, "run") && argc > 3) {
        wchar_t *line = join_command(argc, argv, 3);
        DWORD code = 0;
        if (fvm_box_run(sdk, box, line, FVM_RUN_WAIT, NULL, &code, &err) != FVM_SDK_OK) {
            rc = report_error("run", &err);
        } else {
            fflush(stdout);
            printf("exit=%lu\n", (unsigned long)code);
            rc = 0;
        }
        free(line);
    } else if (!strcmp(cmd, "lifecycle") && argc == 4) {
        rc = lifecycle(box, argv[3]);
    } else if ((!strcmp(cmd, "eval") || !strcmp(cmd, "boxeval")) && argc >= 5) {
        const char *program = argc > 5 ? args[5] : NULL;
        fvm_result r = !strcmp(cmd, "eval") ? fvm_policy_evaluate(sdk, box, args[3], args[4], program, &d, &err)
                                            : fvm_box_policy_evaluate(sdk, box, args[3], args[4], program, &d, &err);
        rc = r ? report_error("evaluate", &err) : (print_decision(args[4], &d), 0);
    } else if (!strcmp(cmd, "follow") && argc == 6) {
        rc = follow(box, _strtoui64(args[3], NULL, 10), atol(args[4]), (DWORD)atol(args[5]));
    } else {
        fprintf(stderr, "sdkclient: unknown command or wrong arguments\n");
    }
    fflush(stdout);
    fvm_sdk_close(sdk);
    return rc;
}
