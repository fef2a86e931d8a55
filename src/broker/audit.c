/* audit.c - the box's single audit writer.
 *
 * Boxed processes send one message per audited decision (core/brokermsg.h)
 * on the broker's control pipe; every connection's thread hands it here, and
 * one lock puts the records in one order in <box>\audit.jsonl, chained by
 * common/auditlog.c (sequence numbers and a SHA-256 hash chain anchored by
 * <box>\audit.head). The log is opened on the first record, so a box that
 * audits nothing has no log. The broker adds what a process cannot forge:
 * the time, the box's name and (in main.c) the client's real pid. */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auditlog.h"
#include "core/policy.h"

/* Records wait in a queue, filled by the connection threads (which only
 * copy and enqueue) and drained by one writer thread that appends everything
 * queued with one write, one flush and one head update. A busy box costs one
 * flush per batch, not per record, and a boxed process never waits for the
 * disk. */
typedef struct queued_record {
    struct queued_record *next;
    audit_record record;
    char text[];                         /* the record's strings */
} queued_record;

static CRITICAL_SECTION g_queue_lock;
static queued_record *g_queue_head, **g_queue_tail = &g_queue_head;
static size_t g_queued;
static HANDLE g_queue_event, g_writer_thread;
static volatile LONG g_stopping;
static fvm_audit_log g_log;
static BOOL g_log_open, g_log_failed;
static wchar_t g_box_path[FVM_PATH_MAX];
static char g_box_name[FVM_BOX_NAME_MAX * 3];

static int64_t now_ms(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (int64_t)((t - 116444736000000000ull) / 10000);   /* 1601 -> 1970, 100 ns -> ms */
}

/* Appends everything queued so far. Only the writer thread calls it (and
 * the broker's exit path, after the writer stopped). */
static void write_queued(void)
{
    EnterCriticalSection(&g_queue_lock);
    queued_record *batch = g_queue_head;
    size_t count = g_queued;
    g_queue_head = NULL;
    g_queue_tail = &g_queue_head;
    g_queued = 0;
    LeaveCriticalSection(&g_queue_lock);
    if (!batch)
        return;
    char why[512];
    if (!g_log_open && !g_log_failed) {
        g_log_open = fvm_audit_log_open(g_box_path, &g_log, why, sizeof why) == FVM_OK;
        g_log_failed = !g_log_open;
    }
    audit_record *records = malloc(count * sizeof *records);
    size_t n = 0;
    for (queued_record *q = batch; q && records; q = q->next)
        records[n++] = q->record;
    if (g_log_open && records)
        fvm_audit_log_append_many(&g_log, records, n, why, sizeof why);
    free(records);
    while (batch) {
        queued_record *next = batch->next;
        free(batch);
        batch = next;
    }
}

static DWORD WINAPI writer_thread(void *arg)
{
    while (!g_stopping) {
        WaitForSingleObject(g_queue_event, INFINITE);
        write_queued();
    }
    return 0;
}

BOOL broker_audit_start(const wchar_t *box_path, const wchar_t *box_name)
{
    InitializeCriticalSection(&g_queue_lock);
    fvm_wcscpy(g_box_path, FVM_PATH_MAX, box_path);
    WideCharToMultiByte(CP_UTF8, 0, box_name, -1, g_box_name, sizeof g_box_name, NULL, NULL);
    g_queue_event = CreateEventW(NULL, FALSE, FALSE, NULL);
    g_writer_thread = g_queue_event ? CreateThread(NULL, 0, writer_thread, NULL, 0, NULL) : NULL;
    return g_writer_thread != NULL;
}

/* Appends a NUL-terminated copy of a message text at *at; an embedded NUL
 * would end the field early, so it is replaced. */
static const char *copy_text(char **at, const brokermsg_text *t)
{
    char *start = *at;
    memcpy(start, t->text, t->len);
    for (size_t i = 0; i < t->len; i++)
        if (!start[i])
            start[i] = '?';
    start[t->len] = 0;
    *at += t->len + 1;
    return start;
}

void broker_audit_write(const brokermsg_audit *msg)
{
    size_t text = msg->op.len + msg->decision.len + msg->rule.len + msg->image.len + msg->name.len + 5;
    queued_record *q = malloc(sizeof *q + text);
    if (!q)
        return;
    char *at = q->text;
    memset(&q->record, 0, sizeof q->record);
    q->next = NULL;
    q->record.time_ms = now_ms();
    q->record.box = g_box_name;
    q->record.pid = msg->pid;
    q->record.type = policy_type_name((policy_type)(msg->type < POLICY_TYPE_COUNT ? msg->type : POLICY_TYPE_FILE));
    q->record.op = copy_text(&at, &msg->op);
    q->record.decision = copy_text(&at, &msg->decision);
    q->record.rule = copy_text(&at, &msg->rule);
    q->record.image = copy_text(&at, &msg->image);
    q->record.name = copy_text(&at, &msg->name);
    EnterCriticalSection(&g_queue_lock);
    *g_queue_tail = q;
    g_queue_tail = &q->next;
    g_queued++;
    LeaveCriticalSection(&g_queue_lock);
    SetEvent(g_queue_event);
}

void broker_audit_flush(void)
{
    if (!g_writer_thread)
        return;
    InterlockedExchange(&g_stopping, 1);
    SetEvent(g_queue_event);
    WaitForSingleObject(g_writer_thread, 10000);
    write_queued();   /* what arrived after the writer's last batch */
}
