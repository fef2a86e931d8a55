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
#include <string.h>

#include "common/auditlog.h"
#include "core/policy.h"

static CRITICAL_SECTION g_audit_lock;
static fvm_audit_log g_log;
static BOOL g_log_open, g_log_failed;
static wchar_t g_box_path[FVM_PATH_MAX];
static char g_box_name[FVM_BOX_NAME_MAX * 3];

BOOL broker_audit_start(const wchar_t *box_path, const wchar_t *box_name)
{
    InitializeCriticalSection(&g_audit_lock);
    fvm_wcscpy(g_box_path, FVM_PATH_MAX, box_path);
    WideCharToMultiByte(CP_UTF8, 0, box_name, -1, g_box_name, sizeof g_box_name, NULL, NULL);
    return TRUE;
}

/* A NUL-terminated copy of a message text, cut at cap. */
static const char *terminated(const brokermsg_text *t, char *buf, size_t cap)
{
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    memcpy(buf, t->text, n);
    buf[n] = 0;
    /* an embedded NUL would end the field early: replace it */
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = '?';
    return buf;
}

static int64_t now_ms(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (int64_t)((t - 116444736000000000ull) / 10000);   /* 1601 -> 1970, 100 ns -> ms */
}

void broker_audit_write(const brokermsg_audit *msg)
{
    static char op[64], decision[32], rule[512], image[FVM_PATH_MAX * 3], name[BROKERMSG_MAX];
    char why[512];
    EnterCriticalSection(&g_audit_lock);
    if (!g_log_open && !g_log_failed) {
        g_log_open = fvm_audit_log_open(g_box_path, &g_log, why, sizeof why) == FVM_OK;
        g_log_failed = !g_log_open;
    }
    if (g_log_open) {
        audit_record r;
        memset(&r, 0, sizeof r);
        r.time_ms = now_ms();
        r.box = g_box_name;
        r.pid = msg->pid;
        r.image = terminated(&msg->image, image, sizeof image);
        r.type = policy_type_name((policy_type)(msg->type < POLICY_TYPE_COUNT ? msg->type : POLICY_TYPE_FILE));
        r.op = terminated(&msg->op, op, sizeof op);
        r.name = terminated(&msg->name, name, sizeof name);
        r.decision = terminated(&msg->decision, decision, sizeof decision);
        r.rule = terminated(&msg->rule, rule, sizeof rule);
        fvm_audit_log_append(&g_log, &r, why, sizeof why);
    }
    LeaveCriticalSection(&g_audit_lock);
}
