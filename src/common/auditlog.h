/* auditlog.h - a box's audit log on disk: the single writer (the broker)
 * and the readers (`fvm logs`), around core/audit.h's records and chain.
 *
 * Files, in the box folder:
 *   audit.jsonl  one JSON record per line, each chained to the previous one
 *   audit.head   {"seq":N,"hash":"..."}: the last record the writer
 *                finished, replaced atomically after every append
 *
 * The writer opens the log so that nobody else can write it (others may
 * read), resumes the chain where the file ends and appends each record at
 * a known offset, flushed, before it replaces the head (audit.head.tmp,
 * flushed, then MoveFileEx over audit.head). A new log gets a head of seq 0
 * at once, so a missing head always means someone removed it.
 *
 * On open the writer verifies the whole log against the head and refuses to
 * append to a log that does not verify: writing a new head over a tampered
 * log would make the tampering verify. Two leftovers of a crash are not
 * tampering and are repaired: records past the head (it stopped between the
 * append and the head update: the head is brought forward) and an
 * incomplete last line past the head (it stopped mid-write: the partial
 * line, never acknowledged by the head, is cut off).
 *
 * One fvm_audit_log is used by one thread at a time (the broker serialises
 * the records its clients send); the files allow one writer per box anyway.
 *
 * Not in the runtime build (FVM_RUNTIME): boxed processes never touch these
 * files; they send their records to the broker. */
#ifndef FVM_COMMON_AUDITLOG_H
#define FVM_COMMON_AUDITLOG_H

#ifndef FVM_RUNTIME

#include "common/boxcfg.h"
#include "core/audit.h"

#define FVM_AUDIT_LOG_NAME  L"audit.jsonl"
#define FVM_AUDIT_HEAD_NAME L"audit.head"
/* No record is longer; a longer line is not a record. */
#define FVM_AUDIT_LINE_MAX  (16u << 20)

typedef struct fvm_audit_log {
    HANDLE file;                         /* audit.jsonl, read/write, shared for reading only */
    uint64_t end;                        /* offset of the next record */
    audit_chain chain;                   /* the last record written */
    wchar_t head_path[FVM_PATH_MAX];
    wchar_t head_tmp_path[FVM_PATH_MAX];
    char *line;                          /* formatting buffer, grown as needed */
    size_t line_cap;
    BOOL unsynced;                       /* records written without flush or head (append_unsynced) */
} fvm_audit_log;

/* <box>\audit.jsonl and <box>\audit.head (either may be NULL).
 * FVM_E_RANGE when a path does not fit in cap characters. */
fvm_status fvm_audit_log_paths(const wchar_t *box_path, wchar_t *log_path, wchar_t *head_path, size_t cap);

/* Opens (creating if needed) the box's log for appending; see above for
 * what is verified and repaired. FVM_E_BUSY when another writer has it
 * open, FVM_E_INVALID when the log does not verify (why has the verifier's
 * words and what to do), FVM_E_IO otherwise. */
fvm_status fvm_audit_log_open(const wchar_t *box_path, fvm_audit_log *log, char *why, size_t why_size);

/* Appends one record (seq and prev from the chain) and updates the head.
 * Fails with nothing written (FVM_E_RANGE: a record the formatter refuses;
 * FVM_E_IO: the write failed and was undone), or - FVM_E_IO with why
 * saying so - with the record written but the head not updated: the chain
 * has advanced and the next append updates the head again. */
fvm_status fvm_audit_log_append(fvm_audit_log *log, const audit_record *record, char *why, size_t why_size);

/* The same for many records at once: one write, one flush, one head update
 * (group commit). */
fvm_status fvm_audit_log_append_many(fvm_audit_log *log, const audit_record *records, size_t count, char *why,
                                     size_t why_size);
/* Appends one record with a plain write: no flush, the head not moved (a
 * killed process loses nothing, the page cache has it; what a power loss
 * takes, open repairs as records past the head). For a writer that makes
 * many records in a row (fvm commit): fvm_audit_log_sync then flushes
 * them and moves the head once. */
fvm_status fvm_audit_log_append_unsynced(fvm_audit_log *log, const audit_record *record, char *why,
                                         size_t why_size);
fvm_status fvm_audit_log_sync(fvm_audit_log *log, char *why, size_t why_size);
void fvm_audit_log_close(fvm_audit_log *log);

/* Reads the head. *present is 0 (and FVM_OK) when there is no head file;
 * FVM_E_INVALID when it is damaged. */
fvm_status fvm_audit_head_read(const wchar_t *box_path, audit_chain *head, int *present, char *why,
                               size_t why_size);

/* Calls fn(ctx, line, len) for each complete line ('\n'-terminated; the
 * '\n' not passed) of an open log from *offset to its end; fn returns 0 to
 * stop. *offset moves past every line passed to fn, so calling again later
 * continues with lines appended meanwhile. *incomplete_tail (may be NULL)
 * is set when bytes without a final '\n' follow. */
typedef int (*fvm_audit_line_fn)(void *ctx, const char *line, size_t len);
fvm_status fvm_audit_read_lines(HANDLE file, uint64_t *offset, fvm_audit_line_fn fn, void *ctx,
                                int *incomplete_tail, char *why, size_t why_size);

/* Verifies the box's whole log against its head, as audit_verify does
 * (the same words in report->message), while a writer may be appending:
 * the head is read before the log, and a result a live writer can cause
 * (records past the head, a line being written) is checked again a few
 * times before it is reported. A missing head next to a non-empty log is
 * reported as a problem. Returns FVM_OK (intact), FVM_E_INVALID (report
 * says where), FVM_E_NOTFOUND (no log and no head: nothing recorded yet),
 * or FVM_E_IO (why). */
fvm_status fvm_audit_log_verify(const wchar_t *box_path, audit_verify_report *report, char *why,
                                size_t why_size);

#endif /* FVM_RUNTIME */
#endif
