/* audit.c - the box's single audit writer.
 *
 * Boxed processes send one message per audited decision (core/brokermsg.h)
 * on the broker's control pipe; every connection's thread hands it here, and
 * one lock puts the records in one order in <box>\audit.jsonl, chained by
 * common/auditlog.c (sequence numbers and a SHA-256 hash chain anchored by
 * <box>\audit.head). The log is opened on the first record, so a box that
 * audits nothing has no log.
 *
 * A boxed program can write anything to that pipe (it holds its runtime's
 * connection), so a message is only the sender's claim about what was
 * decided. The subject is not: the broker takes the pid from the pipe
 * itself (GetNamedPipeClientProcessId, in main.c), checks it is a process of
 * the box's job, and takes the image from that process; box and time are its
 * own. Such records carry "subject":"broker", which `fvm logs --verify`
 * requires. The decision is decided again: plain names by policy_match
 * (policy.c; a claim the policy does not give is dropped, a refusal taken
 * as claimed and marked "decided":"sender"), [net] and [process] records
 * from their targets (core/policy_redecide.c): a claim that differs is
 * written with the broker's decision, "decided":"forged" and the claim
 * beside it, which `fvm logs --verify` reports. What the sender says is bounded: known types and decision words
 * only, short op and rule, names cut to NAME_MAX bytes; each sender gets
 * RATE_PER_S records a second (bursts of RATE_BURST); at most QUEUE_MAX
 * records wait; the log's bytes count against the box's storage quota (and
 * against RUN_LOG_MAX per broker run without one). What is refused is not
 * lost silently: the writer adds one "audit"/"drop" record, at most once a
 * second and again at exit, counting what was dropped and why. */
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

#define NAME_MAX_BYTES 4096
#define OP_MAX_BYTES   32
#define RULE_MAX_BYTES 160
#define RATE_PER_S     200
#define RATE_BURST     1000
#define QUEUE_MAX      4096
#define RUN_LOG_MAX    (64ull << 20)
#define RECORD_OVERHEAD 400          /* seq, time, box, hashes, member names: a generous bound */

/* Records refused, by reason, since the last "drop" record. */
enum { DROP_RATE, DROP_QUOTA, DROP_MALFORMED, DROP_BACKLOG, DROP_OUTSIDE, DROP_REASONS };
static uint64_t g_dropped[DROP_REASONS];
static uint64_t g_log_bytes;            /* reserved for this run's records */
static DWORD g_last_drop_record;
static BOOL g_drop_record_refused;      /* the quota had no room for it: written at exit */

static int64_t now_ms(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (int64_t)((t - 116444736000000000ull) / 10000);   /* 1601 -> 1970, 100 ns -> ms */
}

/* Appends everything queued so far. Only the writer thread calls it (and
 * the broker's exit path, after the writer stopped). */
static queued_record *drop_record(BOOL final);

static void write_queued(BOOL final)
{
    EnterCriticalSection(&g_queue_lock);
    queued_record *batch = g_queue_head;
    size_t count = g_queued;
    g_queue_head = NULL;
    g_queue_tail = &g_queue_head;
    g_queued = 0;
    LeaveCriticalSection(&g_queue_lock);
    queued_record *drop = drop_record(final);
    if (drop) {
        drop->next = batch;
        batch = drop;
        count++;
    }
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
        /* Woken at least once a second while records are being dropped. */
        WaitForSingleObject(g_queue_event, 1000);
        write_queued(FALSE);
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

/* Queues a record whose texts are copied in: op, decision, rule, name (each
 * NUL-terminated), then target, decided and claim (each NULL: no member). */
enum { TEXTS = 7 };
static queued_record *new_record(uint32_t pid, const char *image, const char *type, const char *texts[TEXTS])
{
    size_t text = strlen(image) + 1;
    for (int i = 0; i < TEXTS; i++)
        text += texts[i] ? strlen(texts[i]) + 1 : 0;
    queued_record *q = malloc(sizeof *q + text);
    if (!q)
        return NULL;
    char *at = q->text;
    const char **slots[1 + TEXTS] = {&q->record.image, &q->record.op,     &q->record.decision, &q->record.rule,
                                     &q->record.name,  &q->record.target, &q->record.decided,  &q->record.claim};
    const char *from[1 + TEXTS] = {image, texts[0], texts[1], texts[2], texts[3], texts[4], texts[5], texts[6]};
    memset(&q->record, 0, sizeof q->record);
    q->next = NULL;
    for (int i = 0; i < 1 + TEXTS; i++) {
        if (!from[i])
            continue;
        size_t n = strlen(from[i]);
        memcpy(at, from[i], n + 1);
        *slots[i] = at;
        at += n + 1;
    }
    q->record.time_ms = now_ms();
    q->record.box = g_box_name;
    q->record.pid = pid;
    q->record.type = type;
    q->record.subject = "broker";
    return q;
}

/* The "drop" record, when records were refused since the last one: at most
 * once a second, and at exit. With g_queue_lock not held. */
static queued_record *drop_record(BOOL final)
{
    EnterCriticalSection(&g_queue_lock);
    uint64_t total = 0, counts[DROP_REASONS];
    for (int i = 0; i < DROP_REASONS; i++)
        total += counts[i] = g_dropped[i];
    BOOL due = total && (final || GetTickCount() - g_last_drop_record >= 1000);
    if (due && !final && broker_quota_reserve(0, RECORD_OVERHEAD + 200, 0) == 0) {
        due = FALSE;   /* no room: it waits for the exit */
        g_drop_record_refused = TRUE;
    }
    if (due) {
        memset(g_dropped, 0, sizeof g_dropped);
        g_last_drop_record = GetTickCount();
    }
    LeaveCriticalSection(&g_queue_lock);
    if (!due)
        return NULL;
    char name[256];
    snprintf(name, sizeof name,
             "%llu records dropped: %llu over the rate, %llu over the storage quota or log limit, %llu malformed or not what the policy decides, "
             "%llu over the backlog, %llu from outside the box",
             (unsigned long long)total, (unsigned long long)counts[DROP_RATE], (unsigned long long)counts[DROP_QUOTA],
             (unsigned long long)counts[DROP_MALFORMED], (unsigned long long)counts[DROP_BACKLOG],
             (unsigned long long)counts[DROP_OUTSIDE]);
    const char *texts[TEXTS] = {"drop", "none", "broker", name, NULL, "broker", NULL};
    return new_record(GetCurrentProcessId(), "fvm-broker", "audit", texts);
}

static void count_drop(int reason)
{
    EnterCriticalSection(&g_queue_lock);
    g_dropped[reason]++;
    LeaveCriticalSection(&g_queue_lock);
}

static void enqueue(uint32_t pid, const char *image, const char *type, const char *texts[TEXTS]);

void broker_audit_sender_init(audit_sender *s, uint32_t pid)
{
    memset(s, 0, sizeof *s);
    s->pid = pid;
    HANDLE process = broker_open_member(pid);
    s->member = process != NULL;
    s->tokens = RATE_BURST;
    s->refilled = GetTickCount();
    wchar_t image[FVM_PATH_MAX];
    DWORD len = FVM_PATH_MAX;
    if (process && QueryFullProcessImageNameW(process, 0, image, &len)) {
        WideCharToMultiByte(CP_UTF8, 0, image, (int)len + 1, s->image, sizeof s->image, NULL, NULL);
        memcpy(s->image16, image, (len + 1) * sizeof(wchar_t));
    } else {
        snprintf(s->image, sizeof s->image, "?");
    }
    if (process)
        CloseHandle(process);
}

/* A text of the message, NUL-terminated, at most max bytes (cut at a UTF-8
 * character boundary), embedded NULs replaced. */
static void take_text(char *out, size_t max, const brokermsg_text *t)
{
    size_t n = t->len < max ? t->len : max;
    while (n < t->len && n > 0 && ((unsigned char)t->text[n] & 0xC0) == 0x80)
        n--;   /* do not split a character */
    memcpy(out, t->text, n);
    for (size_t i = 0; i < n; i++)
        if (!out[i])
            out[i] = '?';
    out[n] = 0;
}

static BOOL known_decision(const brokermsg_text *t)
{
    static const char *const words[] = {"open", "cow", "read", "ask", "hide", "deny", "none"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (t->len == strlen(words[i]) && !memcmp(t->text, words[i], t->len))
            return TRUE;
    return FALSE;
}

/* Letters, digits and '-': what an operation's name is. */
static BOOL plain_word(const brokermsg_text *t, size_t max)
{
    if (!t->len || t->len > max)
        return FALSE;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return FALSE;
    }
    return TRUE;
}

/* A rule's label ("default", "<policy file>:<line>"): no control characters. */
static BOOL printable(const brokermsg_text *t, size_t max)
{
    if (t->len > max)
        return FALSE;
    for (size_t i = 0; i < t->len; i++)
        if ((unsigned char)t->text[i] < 0x20)
            return FALSE;
    return TRUE;
}

void broker_audit_submit(audit_sender *s, const brokermsg_audit *msg)
{
    if (!s->member) {
        count_drop(DROP_OUTSIDE);
        return;
    }
    if (msg->type >= POLICY_TYPE_COUNT || !known_decision(&msg->decision) || !plain_word(&msg->op, OP_MAX_BYTES) ||
        !printable(&msg->rule, RULE_MAX_BYTES)) {
        count_drop(DROP_MALFORMED);
        return;
    }
    /* The sender's rate: RATE_PER_S a second, RATE_BURST at once. */
    DWORD now = GetTickCount();
    s->tokens += (double)(now - s->refilled) * RATE_PER_S / 1000.0;
    s->refilled = now;
    if (s->tokens > RATE_BURST)
        s->tokens = RATE_BURST;
    if (s->tokens < 1) {
        count_drop(DROP_RATE);
        return;
    }
    s->tokens -= 1;
    char op[OP_MAX_BYTES + 1], decision[16], rule[RULE_MAX_BYTES + 1], name[NAME_MAX_BYTES + 1];
    take_text(op, OP_MAX_BYTES, &msg->op);
    take_text(decision, sizeof decision - 1, &msg->decision);
    take_text(rule, RULE_MAX_BYTES, &msg->rule);
    take_text(name, NAME_MAX_BYTES, &msg->name);
    if (msg->name.len > NAME_MAX_BYTES) {
        count_drop(DROP_MALFORMED);
        return;
    }
    if (policy_redecide_handles(msg->type)) {
        /* [net] and [process]: the broker decides the record's target
         * again; a claim that differs is logged with the broker's decision
         * and flagged, so `fvm logs --verify` reports it. */
        redecide_outcome o;
        redecide_result r = broker_policy_redecide(msg, s->image16, &o);
        if (r == REDECIDE_REFUSED) {
            count_drop(DROP_MALFORMED);
            return;
        }
        char target[BROKERMSG_TARGET_MAX + 1], claim[16 + 4 + RULE_MAX_BYTES + 1];
        take_text(target, BROKERMSG_TARGET_MAX, &msg->target);
        BOOL show_target = msg->target.len && strcmp(target, name);
        const char *decided = r == REDECIDE_CONFIRMED ? "broker" : r == REDECIDE_SENDERS_WORD ? "sender" : "forged";
        if (r == REDECIDE_FORGED) {
            snprintf(claim, sizeof claim, "%s by %s", decision, rule);
            const char *texts[TEXTS] = {op, o.decision, o.rule, name, show_target ? target : NULL, decided, claim};
            enqueue(s->pid, s->image, policy_type_name((policy_type)msg->type), texts);
            return;
        }
        const char *texts[TEXTS] = {op, decision, rule, name, show_target ? target : NULL, decided, NULL};
        enqueue(s->pid, s->image, policy_type_name((policy_type)msg->type), texts);
        return;
    }
    /* The decision and the rule must be what the policy gives this name
     * for this image: a made-up rule or an "open" the policy never gave
     * is refused. (The name itself stays the sender's word.) */
    BOOL decided_again = FALSE;
    if (msg->target.len || !broker_policy_confirms(msg->type, name, s->image16, decision, rule, &decided_again)) {
        count_drop(DROP_MALFORMED);
        return;
    }
    const char *texts[TEXTS] = {op, decision, rule, name, NULL, decided_again ? "broker" : "sender", NULL};
    enqueue(s->pid, s->image, policy_type_name((policy_type)msg->type), texts);
}

void broker_audit_write(const brokermsg_audit *msg)
{
    char op[OP_MAX_BYTES + 1], decision[16], rule[RULE_MAX_BYTES + 1], name[NAME_MAX_BYTES + 1];
    char image[FVM_PATH_MAX * 3];
    take_text(op, OP_MAX_BYTES, &msg->op);
    take_text(decision, sizeof decision - 1, &msg->decision);
    take_text(rule, RULE_MAX_BYTES, &msg->rule);
    take_text(name, NAME_MAX_BYTES, &msg->name);
    take_text(image, sizeof image - 1, &msg->image);
    const char *texts[TEXTS] = {op, decision, rule, name, NULL, "broker", NULL};
    enqueue(msg->pid, image, policy_type_name((policy_type)(msg->type < POLICY_TYPE_COUNT ? msg->type : POLICY_TYPE_FILE)),
            texts);
}

/* Queues a record once its bytes are within the limits: the log's bytes are
 * the box's, so the storage quota counts them. */
static void enqueue(uint32_t pid, const char *image, const char *type, const char *texts[TEXTS])
{
    uint64_t bytes = RECORD_OVERHEAD + strlen(image) + strlen(texts[0]) + strlen(texts[2]) + strlen(texts[3]) * 6 / 4;
    for (int i = 4; i < TEXTS; i++)
        bytes += texts[i] ? strlen(texts[i]) * 6 / 4 + 16 : 0;
    EnterCriticalSection(&g_queue_lock);
    BOOL backlog = g_queued >= QUEUE_MAX;
    BOOL over = !backlog && g_log_bytes + bytes > RUN_LOG_MAX;
    if (!backlog && !over)
        g_log_bytes += bytes;
    LeaveCriticalSection(&g_queue_lock);
    if (backlog || over || broker_quota_reserve(0, bytes, 0) == 0) {
        count_drop(backlog ? DROP_BACKLOG : DROP_QUOTA);
        return;
    }
    queued_record *q = new_record(pid, image, type, texts);
    if (!q)
        return;
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
    write_queued(TRUE);   /* what arrived after the writer's last batch, and the last drop count */
}
