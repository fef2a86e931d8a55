/* sdk_audit.c - the SDK's audit stream: fvm_audit_subscribe follows a box's
 * <box>\audit.jsonl on a thread of its own and hands each record, parsed
 * and unescaped, to the caller's callback; fvm_audit_verify checks the log.
 *
 * The idea: the log is the interface. Only the broker writes it (appending
 * complete, flushed lines); readers poll for new complete lines, as `fvm
 * logs --follow` does, with the same reader (common/auditlog.c) and parser
 * (core/audit.c). The file is opened for each poll and closed at once, with
 * every sharing flag, so a subscriber never keeps `fvm rm` from deleting the
 * box. Records are delivered by seq, never twice, even when the log is cut
 * or replaced under the subscriber. */
#include "sdk/sdk.h"

#include <process.h>
#include <stdlib.h>
#include <string.h>

#include "common/auditlog.h"

#define POLL_MS 100

struct fvm_audit_subscription {
    wchar_t log_path[FVM_PATH_MAX];
    uint64_t from_seq;               /* deliver records with seq >= from_seq */
    uint64_t last_seq;               /* the last seq delivered (0: none) */
    volatile LONG64 delivered;
    fvm_audit_callback callback;
    void *ctx;
    int callback_stopped;            /* the callback asked to stop */
    HANDLE stop_event;
    HANDLE thread;
    char *fields;                    /* unescaped strings of the current record */
    size_t fields_cap;
};

/* One line of the log: parse, filter by seq, unescape, deliver. */
static int on_line(void *vsub, const char *line, size_t len)
{
    fvm_audit_subscription *sub = vsub;
    audit_fields f;
    size_t column;
    fvm_error e;
    if (audit_parse_line(line, len, &f, &column, &e) != FVM_OK)
        return 1;   /* not a record: skipped (fvm_audit_verify reports it) */
    if (f.seq < sub->from_seq || f.seq <= sub->last_seq)
        return 1;

    /* An unescaped string is never longer than its escaped form plus a few
     * bytes (a \uXXXX escape is six characters, its UTF-8 at most four). */
    const audit_span *spans[] = {&f.time, &f.box, &f.image, &f.type, &f.op, &f.name, &f.decision, &f.rule, &f.hash};
    enum { SPAN_COUNT = sizeof spans / sizeof spans[0] };
    size_t need = 0;
    for (size_t i = 0; i < SPAN_COUNT; i++)
        need += spans[i]->len + 8;
    if (need > sub->fields_cap) {
        char *grown = realloc(sub->fields, need);
        if (!grown)
            return 1;   /* out of memory: skip rather than stop the stream */
        sub->fields = grown;
        sub->fields_cap = need;
    }
    const char *text[SPAN_COUNT];
    char *w = sub->fields;
    for (size_t i = 0; i < SPAN_COUNT; i++) {
        size_t cap = spans[i]->len + 8;
        audit_unescape(spans[i], w, cap);
        text[i] = w;
        w += cap;
    }
    fvm_audit_event ev = {
        .seq = f.seq, .pid = f.pid,
        .time = text[0], .box = text[1], .image = text[2], .type = text[3], .op = text[4],
        .name = text[5], .decision = text[6], .rule = text[7], .hash = text[8],
        .line = line, .line_len = len,
    };
    sub->last_seq = f.seq;
    InterlockedIncrement64(&sub->delivered);
    if (sub->callback(sub->ctx, &ev) != 0) {
        sub->callback_stopped = 1;
        return 0;
    }
    return 1;
}

static unsigned __stdcall follow_thread(void *vsub)
{
    fvm_audit_subscription *sub = vsub;
    uint64_t offset = 0;
    char why[256];
    while (!sub->callback_stopped) {
        HANDLE file = CreateFileW(sub->log_path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                  NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (file != INVALID_HANDLE_VALUE) {
            /* Shorter than what we read: cut or replaced. Read it again;
             * last_seq keeps records already delivered from coming twice. */
            LARGE_INTEGER size;
            if (GetFileSizeEx(file, &size) && (uint64_t)size.QuadPart < offset)
                offset = 0;
            if (fvm_audit_read_lines(file, &offset, on_line, sub, NULL, why, sizeof why) != FVM_OK)
                offset = 0;   /* a read error: try again from the start at the next poll */
            CloseHandle(file);
        }
        if (sub->callback_stopped || WaitForSingleObject(sub->stop_event, POLL_MS) == WAIT_OBJECT_0)
            break;
    }
    return 0;
}

fvm_result fvm_audit_subscribe(fvm_sdk *sdk, const char *name, uint64_t from_seq, fvm_audit_callback callback,
                               void *ctx, fvm_audit_subscription **out, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX];
    if (!out || !callback)
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_audit_subscribe: callback and out are required");
    *out = NULL;
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    fvm_audit_subscription *sub = calloc(1, sizeof *sub);
    if (!sub)
        return sdk_fail(err, FVM_SDK_E_NOMEM, "out of memory");
    if (fvm_audit_log_paths(box_path, sub->log_path, NULL, FVM_PATH_MAX) != FVM_OK) {
        free(sub);
        return sdk_fail(err, FVM_SDK_E_INVALID, "box '%s': the path of its audit log is too long", name);
    }
    sub->from_seq = from_seq;
    sub->callback = callback;
    sub->ctx = ctx;
    sub->stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!sub->stop_event) {
        DWORD e = GetLastError();
        free(sub);
        return sdk_win_fail(err, e, "cannot create the subscription's stop event");
    }
    /* _beginthreadex, not CreateThread: the thread uses the C runtime. */
    sub->thread = (HANDLE)_beginthreadex(NULL, 0, follow_thread, sub, 0, NULL);
    if (!sub->thread) {
        DWORD e = GetLastError();
        CloseHandle(sub->stop_event);
        free(sub);
        return sdk_win_fail(err, e, "cannot start the subscription's thread");
    }
    *out = sub;
    return sdk_ok(err);
}

void fvm_audit_unsubscribe(fvm_audit_subscription *sub)
{
    if (!sub)
        return;
    SetEvent(sub->stop_event);
    WaitForSingleObject(sub->thread, INFINITE);
    CloseHandle(sub->thread);
    CloseHandle(sub->stop_event);
    free(sub->fields);
    free(sub);
}

uint64_t fvm_audit_delivered(const fvm_audit_subscription *sub)
{
    return sub ? (uint64_t)InterlockedCompareExchange64((volatile LONG64 *)&sub->delivered, 0, 0) : 0;
}

fvm_result fvm_audit_verify(fvm_sdk *sdk, const char *name, uint64_t *records, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX];
    if (records)
        *records = 0;
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    audit_verify_report report;
    char why[512];
    switch (fvm_audit_log_verify(box_path, &report, why, sizeof why)) {
    case FVM_OK:
        if (records)
            *records = report.records;
        return sdk_ok(err);
    case FVM_E_NOTFOUND:
        return sdk_ok(err);   /* nothing recorded yet */
    case FVM_E_INVALID:
        return sdk_fail(err, FVM_SDK_E_TAMPERED, "the audit log of box '%s' does not verify: %s", name,
                        report.message);
    default:
        return sdk_fail(err, FVM_SDK_E_SYSTEM, "cannot verify the audit log of box '%s': %s", name, why);
    }
}
