/* auditlog.c - the box's audit log on disk: one writer appending chained
 * records and replacing the head, readers streaming and verifying lines.
 * See auditlog.h for the files and the rules.
 *
 * The idea: the core (core/audit.c) formats, chains and verifies; this file
 * only adds the disk discipline around it - append at a known offset and
 * flush before the head moves, undo a failed write, refuse to extend a log
 * that does not verify, and read lines in bounded chunks so a large log is
 * never loaded whole. */
#ifndef FVM_RUNTIME

#include "common/auditlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The formatter accepts years 1970..9999 only. */
#define AUDIT_TIME_MAX_MS 253402300799999LL

static void set_why(char *why, size_t why_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_size, const char *fmt, ...)
{
    if (!why || !why_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

static void win_message(DWORD code, char *out, size_t cap)
{
    wchar_t wmsg[256];
    if (!FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, wmsg, 256, NULL) ||
        !WideCharToMultiByte(CP_UTF8, 0, wmsg, -1, out, (int)cap, NULL, NULL))
        out[0] = 0;
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '.'))
        out[--n] = 0;
    if (!n)
        snprintf(out, cap, "error %lu", (unsigned long)code);
}

static fvm_status io_error(DWORD code, char *why, size_t why_size, const char *what)
{
    char msg[256];
    win_message(code, msg, sizeof msg);
    set_why(why, why_size, "%s: %s", what, msg);
    return FVM_E_IO;
}

fvm_status fvm_audit_log_paths(const wchar_t *box_path, wchar_t *log_path, wchar_t *head_path, size_t cap)
{
    if (log_path && (!fvm_wcscpy(log_path, cap, box_path) || !fvm_wcscat(log_path, cap, L"\\") ||
                     !fvm_wcscat(log_path, cap, FVM_AUDIT_LOG_NAME)))
        return FVM_E_RANGE;
    if (head_path && (!fvm_wcscpy(head_path, cap, box_path) || !fvm_wcscat(head_path, cap, L"\\") ||
                      !fvm_wcscat(head_path, cap, FVM_AUDIT_HEAD_NAME)))
        return FVM_E_RANGE;
    return FVM_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

fvm_status fvm_audit_read_lines(HANDLE file, uint64_t *offset, fvm_audit_line_fn fn, void *ctx,
                                int *incomplete_tail, char *why, size_t why_size)
{
    size_t cap = 64 * 1024, have = 0, scanned = 0;
    uint64_t pos = *offset;      /* file offset of buf[0] */
    char *buf = malloc(cap);
    if (incomplete_tail)
        *incomplete_tail = 0;
    if (!buf) {
        set_why(why, why_size, "out of memory");
        return FVM_E_NOMEM;
    }
    for (;;) {
        if (have == cap) {
            /* A line fills the buffer: grow it, up to the longest record. */
            if (cap > FVM_AUDIT_LINE_MAX) {
                free(buf);
                set_why(why, why_size, "the line at byte %llu is longer than %u MB: not an audit record",
                        (unsigned long long)pos, FVM_AUDIT_LINE_MAX >> 20);
                return FVM_E_RANGE;
            }
            char *bigger = realloc(buf, cap * 4);
            if (!bigger) {
                free(buf);
                set_why(why, why_size, "out of memory");
                return FVM_E_NOMEM;
            }
            buf = bigger;
            cap *= 4;
        }
        LARGE_INTEGER at;
        at.QuadPart = (LONGLONG)(pos + have);
        DWORD got;
        if (!SetFilePointerEx(file, at, NULL, FILE_BEGIN) || !ReadFile(file, buf + have, (DWORD)(cap - have), &got, NULL)) {
            DWORD e = GetLastError();
            free(buf);
            return io_error(e, why, why_size, "cannot read the audit log");
        }
        if (got == 0)
            break;
        have += got;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + scanned, '\n', have - scanned);
            if (!nl)
                break;
            size_t end = (size_t)(nl - buf);
            int go_on = fn(ctx, buf + start, end - start);
            start = scanned = end + 1;
            *offset = pos + start;
            if (!go_on) {
                free(buf);
                return FVM_OK;
            }
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        scanned = have;
        pos += start;
    }
    free(buf);
    if (incomplete_tail)
        *incomplete_tail = have > 0;
    return FVM_OK;
}

fvm_status fvm_audit_head_read(const wchar_t *box_path, audit_chain *head, int *present, char *why,
                               size_t why_size)
{
    wchar_t path[FVM_PATH_MAX];
    *present = 0;
    audit_chain_init(head);
    if (fvm_audit_log_paths(box_path, NULL, path, FVM_PATH_MAX) != FVM_OK) {
        set_why(why, why_size, "box path too long");
        return FVM_E_RANGE;
    }
    /* FILE_SHARE_DELETE: the writer may replace the head while we read. */
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return FVM_OK;
        return io_error(e, why, why_size, "cannot read audit.head");
    }
    char text[AUDIT_HEAD_MAX + 1];
    DWORD got = 0;
    BOOL ok = ReadFile(h, text, sizeof text, &got, NULL);
    DWORD e = GetLastError();
    CloseHandle(h);
    if (!ok)
        return io_error(e, why, why_size, "cannot read audit.head");
    *present = 1;
    fvm_error err;
    if (got > AUDIT_HEAD_MAX || audit_head_parse(text, got, head, &err) != FVM_OK) {
        set_why(why, why_size, "audit.head is damaged: %s",
                got > AUDIT_HEAD_MAX ? "longer than a head can be" : err.message);
        return FVM_E_INVALID;
    }
    return FVM_OK;
}

/* One pass of the verifier over a log, remembering the chain at the head's
 * seq (to check that the head's record is the one in the log). */
typedef struct log_scan {
    audit_verifier verifier;
    const audit_chain *head;
    int head_matches;            /* the record at head->seq has head's hash */
    int tail;                    /* bytes after the last '\n' */
    uint64_t end;                /* offset after the last line read */
} log_scan;

static int scan_line(void *ctx, const char *line, size_t len)
{
    log_scan *s = ctx;
    if (!audit_verifier_line(&s->verifier, line, len))
        return 0;
    if (s->head && s->verifier.expect.seq == s->head->seq)
        s->head_matches = !memcmp(s->verifier.expect.hash, s->head->hash, sizeof s->head->hash);
    return 1;
}

static fvm_status scan_log(HANDLE file, const audit_chain *head, int require_subject, log_scan *s, char *why,
                           size_t why_size)
{
    memset(s, 0, sizeof *s);
    audit_verifier_init(&s->verifier, NULL);
    s->verifier.require_subject = require_subject;
    s->head = head;
    /* A head at seq 0 names the empty chain. */
    if (head && head->seq == 0)
        s->head_matches = !memcmp(s->verifier.expect.hash, head->hash, sizeof head->hash);
    return fvm_audit_read_lines(file, &s->end, scan_line, s, &s->tail, why, why_size);
}

/* ---- verifying -------------------------------------------------------------------- */

fvm_status fvm_audit_log_verify(const wchar_t *box_path, audit_verify_report *report, char *why,
                                size_t why_size)
{
    wchar_t log_path[FVM_PATH_MAX];
    memset(report, 0, sizeof *report);
    if (fvm_audit_log_paths(box_path, log_path, NULL, FVM_PATH_MAX) != FVM_OK) {
        set_why(why, why_size, "box path too long");
        return FVM_E_RANGE;
    }
    for (int attempt = 0;; attempt++) {
        /* The head first: the writer moves it only after the log, so the log
         * read next holds at least the head's records. */
        audit_chain head;
        int present;
        char head_why[256];
        fvm_status st = fvm_audit_head_read(box_path, &head, &present, head_why, sizeof head_why);
        if (st == FVM_E_INVALID) {
            snprintf(report->message, sizeof report->message, "%s", head_why);
            return FVM_E_INVALID;
        }
        if (st != FVM_OK) {
            set_why(why, why_size, "%s", head_why);
            return st;
        }
        log_scan s;
        HANDLE file = CreateFileW(log_path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                  NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (file == INVALID_HANDLE_VALUE) {
            DWORD e = GetLastError();
            if (e != ERROR_FILE_NOT_FOUND && e != ERROR_PATH_NOT_FOUND)
                return io_error(e, why, why_size, "cannot open the audit log");
            if (!present || head.seq == 0)
                return FVM_E_NOTFOUND;
            memset(&s, 0, sizeof s);   /* no log: verified as an empty one, against the head */
            audit_verifier_init(&s.verifier, NULL);
        } else {
            /* --verify also proves every record's subject is the broker's
             * own view of its sender (issue 17.7). */
            st = scan_log(file, NULL, 1, &s, why, why_size);
            CloseHandle(file);
            if (st != FVM_OK)
                return st;
        }
        audit_verifier *v = &s.verifier;
        /* What a writer in the middle of an append looks like: look again. */
        int in_flight = !v->failed && (s.tail || (present && v->expect.seq > head.seq));
        if (in_flight && attempt < 5) {
            Sleep(100);
            continue;
        }
        if (!v->failed && s.tail)
            v->line++;   /* the incomplete line's number, as audit_verify counts it */
        audit_verifier_finish(v, !s.tail, present ? &head : NULL, report);
        if (report->ok && !present && report->records > 0) {
            report->ok = 0;
            snprintf(report->message, sizeof report->message,
                     "audit.head is missing: the %llu records chain correctly, but without the head records "
                     "removed from the end cannot be noticed", (unsigned long long)report->records);
        }
        return report->ok ? FVM_OK : FVM_E_INVALID;
    }
}

/* ---- writing ---------------------------------------------------------------------- */

static fvm_status write_head(fvm_audit_log *log, char *why, size_t why_size)
{
    char text[AUDIT_HEAD_MAX];
    size_t len;
    fvm_error err;
    if (audit_head_format(&log->chain, text, sizeof text, &len, &err) != FVM_OK) {
        set_why(why, why_size, "%s", err.message);
        return FVM_E_RANGE;
    }
    HANDLE h = CreateFileW(log->head_tmp_path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return io_error(GetLastError(), why, why_size, "cannot write audit.head.tmp");
    DWORD written;
    BOOL ok = WriteFile(h, text, (DWORD)len, &written, NULL) && written == len && FlushFileBuffers(h);
    DWORD e = GetLastError();
    CloseHandle(h);
    if (!ok)
        return io_error(e, why, why_size, "cannot write audit.head.tmp");
    /* A reader holding the old head open for a moment can make the
     * replacement fail on Windows: try a little longer. */
    for (int attempt = 0;; attempt++) {
        if (MoveFileExW(log->head_tmp_path, log->head_path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
            return FVM_OK;
        e = GetLastError();
        if (attempt == 20 || (e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION))
            return io_error(e, why, why_size, "cannot replace audit.head");
        Sleep(10);
    }
}

static fvm_status truncate_at(HANDLE file, uint64_t offset)
{
    LARGE_INTEGER at;
    at.QuadPart = (LONGLONG)offset;
    return SetFilePointerEx(file, at, NULL, FILE_BEGIN) && SetEndOfFile(file) ? FVM_OK : FVM_E_IO;
}

fvm_status fvm_audit_log_open(const wchar_t *box_path, fvm_audit_log *log, char *why, size_t why_size)
{
    wchar_t log_path[FVM_PATH_MAX];
    memset(log, 0, sizeof *log);
    log->file = INVALID_HANDLE_VALUE;
    if (fvm_audit_log_paths(box_path, log_path, log->head_path, FVM_PATH_MAX) != FVM_OK ||
        !fvm_wcscpy(log->head_tmp_path, FVM_PATH_MAX, log->head_path) ||
        !fvm_wcscat(log->head_tmp_path, FVM_PATH_MAX, L".tmp")) {
        set_why(why, why_size, "box path too long");
        return FVM_E_RANGE;
    }
    /* Others may read (fvm logs --follow), nobody else may write: this
     * handle is what makes the writer single. */
    log->file = CreateFileW(log_path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_ALWAYS,
                            FILE_ATTRIBUTE_NORMAL, NULL);
    if (log->file == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_SHARING_VIOLATION) {
            set_why(why, why_size, "the audit log is open by another writer (the box's broker?)");
            return FVM_E_BUSY;
        }
        return io_error(e, why, why_size, "cannot open the audit log");
    }
    audit_chain head;
    int present;
    fvm_status st = fvm_audit_head_read(box_path, &head, &present, why, why_size);
    log_scan s;
    if (st == FVM_OK)
        st = scan_log(log->file, present ? &head : NULL, 0, &s, why, why_size);
    if (st != FVM_OK) {
        fvm_audit_log_close(log);
        return st;
    }
    audit_verifier *v = &s.verifier;
    audit_chain last = v->expect;
    char problem[300] = "";
    if (v->failed)
        snprintf(problem, sizeof problem, "%s", v->report.message);
    else if (!present && (last.seq > 0 || s.tail))
        snprintf(problem, sizeof problem, "audit.head is missing next to a log of %llu records",
                 (unsigned long long)last.seq);
    else if (present && last.seq < head.seq)
        snprintf(problem, sizeof problem, "truncated: the log ends at record %llu but the head says %llu%s",
                 (unsigned long long)last.seq, (unsigned long long)head.seq,
                 s.tail ? " (and its last line is incomplete)" : " (records removed from the end)");
    else if (present && !s.head_matches)
        snprintf(problem, sizeof problem, "record %llu differs from the head (the log or the head was replaced)",
                 (unsigned long long)head.seq);
    if (problem[0]) {
        char shown[FVM_PATH_MAX * 3];
        WideCharToMultiByte(CP_UTF8, 0, log_path, -1, shown, sizeof shown, NULL, NULL);
        set_why(why, why_size, "the audit log %s does not verify (%s); records are not appended to a damaged log: "
                "keep it as evidence and move audit.jsonl and audit.head aside to start a new one", shown, problem);
        fvm_audit_log_close(log);
        return FVM_E_INVALID;
    }
    /* Leftovers of a writer that stopped mid-append (see auditlog.h): a
     * partial line past the head is cut off, and the head brought forward. */
    if (s.tail && truncate_at(log->file, s.end) != FVM_OK) {
        fvm_audit_log_close(log);
        return io_error(GetLastError(), why, why_size, "cannot cut the incomplete last line of the audit log");
    }
    log->end = s.end;
    log->chain = last;
    if (!present || head.seq != last.seq) {
        st = write_head(log, why, why_size);
        if (st != FVM_OK) {
            fvm_audit_log_close(log);
            return st;
        }
    }
    return FVM_OK;
}

/* Formats records[0..count) after the chain into log->line (grown as
 * needed); *len gets the bytes. On failure the chain is where it was. */
static fvm_status format_batch(fvm_audit_log *log, const audit_record *records, size_t count, size_t *len,
                               char *why, size_t why_size)
{
    audit_chain before = log->chain;
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const audit_record *record = &records[i];
        if (record->time_ms < 0 || record->time_ms > AUDIT_TIME_MAX_MS) {
            log->chain = before;
            set_why(why, why_size, "record time %lld ms is outside the years 1970..9999", (long long)record->time_ms);
            return FVM_E_RANGE;
        }
        for (;;) {
            if (log->line_cap - used < AUDIT_LINE_TYPICAL || !log->line) {
                size_t cap = log->line_cap ? log->line_cap * 2 : AUDIT_LINE_TYPICAL * 4;
                char *bigger = cap <= FVM_AUDIT_LINE_MAX * 4 ? realloc(log->line, cap) : NULL;
                if (!bigger) {
                    log->chain = before;
                    set_why(why, why_size, "out of memory");
                    return FVM_E_NOMEM;
                }
                log->line = bigger;
                log->line_cap = cap;
            }
            size_t n;
            fvm_error err;
            audit_chain at = log->chain;
            fvm_status st = audit_chain_next(&log->chain, record, log->line + used, log->line_cap - used, &n, &err);
            if (st == FVM_OK) {
                used += n;
                break;
            }
            log->chain = at;
            if (st != FVM_E_RANGE || log->line_cap >= FVM_AUDIT_LINE_MAX * 4) {
                log->chain = before;
                set_why(why, why_size, "%s", err.message);
                return st;
            }
            /* Long names: a bigger buffer (the chain has not moved). */
            char *bigger = realloc(log->line, log->line_cap * 4);
            if (!bigger) {
                log->chain = before;
                set_why(why, why_size, "out of memory");
                return FVM_E_NOMEM;
            }
            log->line = bigger;
            log->line_cap *= 4;
        }
    }
    *len = used;
    return FVM_OK;
}

/* Appends records[0..count) (seq and prev from the chain) with one write,
 * one flush and one head update: group commit for a busy box. A crash
 * between the write and the head leaves records past the head, which open
 * repairs by bringing the head forward. */
static fvm_status append_records(fvm_audit_log *log, const audit_record *records, size_t count, BOOL sync,
                                 char *why, size_t why_size);

fvm_status fvm_audit_log_append_many(fvm_audit_log *log, const audit_record *records, size_t count, char *why,
                                     size_t why_size)
{
    return append_records(log, records, count, TRUE, why, why_size);
}

fvm_status fvm_audit_log_append_unsynced(fvm_audit_log *log, const audit_record *record, char *why, size_t why_size)
{
    return append_records(log, record, 1, FALSE, why, why_size);
}

fvm_status fvm_audit_log_sync(fvm_audit_log *log, char *why, size_t why_size)
{
    if (log->file == INVALID_HANDLE_VALUE || !log->unsynced)
        return FVM_OK;
    if (!FlushFileBuffers(log->file))
        return io_error(GetLastError(), why, why_size, "cannot flush the audit log");
    log->unsynced = FALSE;
    return write_head(log, why, why_size);
}

static fvm_status append_records(fvm_audit_log *log, const audit_record *records, size_t count, BOOL sync,
                                 char *why, size_t why_size)
{
    if (log->file == INVALID_HANDLE_VALUE) {
        set_why(why, why_size, "the audit log is not open");
        return FVM_E_INVALID;
    }
    if (!count)
        return FVM_OK;
    audit_chain before = log->chain;
    size_t len;
    fvm_status st = format_batch(log, records, count, &len, why, why_size);
    if (st != FVM_OK)
        return st;
    /* At our own offset: the handle is the only writer. */
    size_t done = 0;
    while (done < len) {
        OVERLAPPED at = {0};
        uint64_t offset = log->end + done;
        at.Offset = (DWORD)offset;
        at.OffsetHigh = (DWORD)(offset >> 32);
        DWORD written;
        DWORD chunk = len - done > 0x40000000u ? 0x40000000u : (DWORD)(len - done);
        if (!WriteFile(log->file, log->line + done, chunk, &written, &at) || written == 0)
            break;
        done += written;
    }
    if (done < len || (sync && !FlushFileBuffers(log->file))) {
        DWORD e = GetLastError();
        truncate_at(log->file, log->end);   /* no half record left behind */
        log->chain = before;
        return io_error(e, why, why_size, "cannot append to the audit log");
    }
    log->end += len;
    if (!sync) {
        log->unsynced = TRUE;   /* written (a killed process loses nothing); flushed and the head moved by sync */
        return FVM_OK;
    }
    log->unsynced = FALSE;
    char head_why[512];
    st = write_head(log, head_why, sizeof head_why);
    if (st != FVM_OK) {
        set_why(why, why_size, "record %llu was written, but the head was not updated (%s)",
                (unsigned long long)log->chain.seq, head_why);
        return FVM_E_IO;
    }
    return FVM_OK;
}

fvm_status fvm_audit_log_append(fvm_audit_log *log, const audit_record *record, char *why, size_t why_size)
{
    return fvm_audit_log_append_many(log, record, 1, why, why_size);
}

void fvm_audit_log_close(fvm_audit_log *log)
{
    if (log->file != INVALID_HANDLE_VALUE)
        CloseHandle(log->file);
    log->file = INVALID_HANDLE_VALUE;
    free(log->line);
    log->line = NULL;
    log->line_cap = 0;
}

#else
typedef int auditlog_not_in_runtime;
#endif
