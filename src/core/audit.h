/* audit.h - the tamper-evident audit trail: record formatting, the hash
 * chain, and its verifier.
 *
 * Every audited decision becomes one JSON line, written by the box's single
 * writer (the broker):
 *
 *   {"seq":7,"time":"2026-11-25T17:41:12.345Z","box":"b1","pid":1234,
 *    "image":"C:\\Tools\\app.exe","type":"file","op":"open",
 *    "name":"\\??\\C:\\Data\\a.docx","decision":"deny","rule":"box.ini:12",
 *    "subject":"broker","prev":"<64 hex>","hash":"<64 hex>"}
 *
 * (one line in the file; the members always come in this order). "subject"
 * says the writer (the broker) derived box, pid and image itself, from the
 * pipe client it read the record from, instead of taking the sender's word;
 * records of older writers lack it. seq counts
 * records from 1 with no gap; prev is the hash of the previous record (64
 * zeros before the first); hash is the SHA-256 of the line's bytes from the
 * opening '{' up to, not including, the ',' that starts the "hash" member -
 * so it covers seq, prev and every field. Editing any byte of a record
 * breaks its hash; deleting or inserting a record breaks the sequence and
 * the next record's prev.
 *
 * What a chain cannot show by itself is records cut off at the END: a prefix
 * of a valid chain is a valid chain. Hence the head, a second tiny file the
 * writer keeps next to the log:
 *
 *   {"seq":7,"hash":"<hash of record 7>"}
 *
 * The writer appends a record (and flushes it), then replaces the head
 * (write a temporary file, rename it over the head). The verifier takes the
 * head as input and requires the log to end exactly at the head's record:
 * fewer records means truncation from the end; a different hash at that seq
 * means the log or the head was replaced; more records means the writer
 * stopped between the two writes (the report says so) or records were
 * appended by someone else. Rotation: a new log starts where the previous
 * one ended; verify it with the previous log's last seq and hash as `start`.
 *
 * Limits, honestly: SHA-256 has no secret, so someone who can rewrite both
 * the log and the head and recompute every hash is not detected. The files
 * live in the box folder, which boxed programs cannot reach (the file
 * virtualizer denies the FVM root), and only the broker writes them; an
 * administrator who wants more keeps a copy of the head elsewhere (it is any
 * anchor: pass the kept copy as `head`).
 *
 * Portable C11, no allocation, only memcpy/memset/memcmp/strlen: the runtime
 * can format records, the broker can chain them, `fvm logs --verify` checks
 * them. */
#ifndef FVM_CORE_AUDIT_H
#define FVM_CORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/sha256.h"

/* A record is at most this long when its strings are short; the formatter
 * reports FVM_E_RANGE when out is too small for a given record. */
#define AUDIT_LINE_TYPICAL 1024u
/* The head file's longest form, with the newline and the NUL. */
#define AUDIT_HEAD_MAX 112u

/* One audited decision. Strings are UTF-8 (invalid sequences are written as
 * U+FFFD); NULL is an empty string. The runtime has names and image paths in
 * UTF-16: pass them as name16/image16 instead (they win when set), so that a
 * name with an unpaired surrogate - legal on NTFS - is kept exactly, as a
 * \uXXXX escape. */
typedef struct audit_record {
    int64_t time_ms;                /* milliseconds since 1970-01-01T00:00:00Z, years 1970..9999 */
    const char *box;
    uint32_t pid;
    const char *image;
    const uint16_t *image16;
    size_t image16_len;
    const char *type;               /* policy_type_name(): "file", "key", ... */
    const char *op;                 /* "open", "create", "delete", "rename", "query", ... */
    const char *name;
    const uint16_t *name16;
    size_t name16_len;
    const char *decision;           /* policy_action_name(): "deny", ... */
    const char *rule;               /* policy_decision_label(): "box.ini:12" or "default" */
    const char *subject;            /* "broker": box, pid and image are the writer's own view of the
                                     * sender, not the sender's word (NULL: no such member) */
    /* Issue 17.7: whether the decision is the writer's own (NULL: no such
     * member, as in records of older writers):
     *   "broker"  the writer decided the claim again and it holds
     *   "sender"  the writer could not decide it again: the sender's word
     *   "forged"  the sender claimed another decision or rule ("claim":
     *             "<decision> by <rule>"); decision and rule are the writer's
     * target: what was decided on, when it is not the name (a process
     * start's image; a connect's resolved host), NULL: none. */
    const char *target;
    const char *decided;
    const char *claim;
} audit_record;

/* Where the chain stands: the last record's seq and hash (0 and zeros
 * before the first record). Also the head file's content and a verifier's
 * start anchor. */
typedef struct audit_chain {
    uint64_t seq;
    uint8_t hash[SHA256_DIGEST_SIZE];
} audit_chain;

void audit_chain_init(audit_chain *chain);

/* Formats one record with the given seq and prev as a line ending in '\n'
 * (out is NUL-terminated; *out_len excludes the NUL) and returns its hash.
 * FVM_E_RANGE when cap is too small or the time is outside 1970..9999. */
fvm_status audit_format_record(const audit_record *record, uint64_t seq, const uint8_t prev[SHA256_DIGEST_SIZE],
                               char *out, size_t cap, size_t *out_len, uint8_t hash[SHA256_DIGEST_SIZE],
                               fvm_error *err);

/* The writer's step: formats the record after chain (seq + 1, prev =
 * chain's hash) and, on success only, advances chain to it. */
fvm_status audit_chain_next(audit_chain *chain, const audit_record *record, char *out, size_t cap, size_t *out_len,
                            fvm_error *err);

/* The head file: {"seq":N,"hash":"<hex>"} and a newline. cap >=
 * AUDIT_HEAD_MAX is always enough. */
fvm_status audit_head_format(const audit_chain *chain, char *out, size_t cap, size_t *out_len, fvm_error *err);
fvm_status audit_head_parse(const char *text, size_t len, audit_chain *chain, fvm_error *err);

/* ---- reading records ---- */

/* A JSON string's contents as they stand in the line (still escaped). */
typedef struct audit_span {
    const char *text;
    size_t len;
} audit_span;

typedef struct audit_fields {
    uint64_t seq;
    uint32_t pid;
    audit_span time, box, image, type, op, name, decision, rule, subject, prev, hash;
    audit_span target, decided, claim;   /* empty when the record has none */
    size_t hashed_len;              /* bytes covered by hash: up to the ',' before "hash" */
} audit_fields;

/* Parses one line (without its '\n'): valid JSON (RFC 8259) and an audit
 * record (seq and pid integers, prev and hash 64 hex digits, hash the last
 * member, no duplicate member). On failure *column (1-based, in bytes) is
 * where it went wrong, 0 when it is about a whole field. */
fvm_status audit_parse_line(const char *line, size_t len, audit_fields *out, size_t *column, fvm_error *err);

/* Unescapes a span into UTF-8 (NUL-terminated, cut to cap); returns the
 * length wanted. For display and for `fvm logs --type`. */
size_t audit_unescape(const audit_span *span, char *out, size_t cap);

/* ---- verification ---- */

typedef struct audit_verify_report {
    int ok;
    uint64_t records;               /* records checked and good */
    audit_chain last;               /* the last good record (= start when none) */
    size_t line;                    /* 1-based line of the first problem; 0 when none or not about a line */
    size_t column;                  /* for JSON problems */
    uint64_t senders_word;          /* records whose decision is marked "decided":"sender" */
    uint64_t forged;                /* records marked "decided":"forged" */
    char message[256];              /* "line N: hash mismatch (edited?)", ... or "ok: N records" */
} audit_verify_report;

/* Verifies a whole log. start: the chain before its first line (NULL: a log
 * that starts at seq 1 with prev zeros). head: the writer's head file, NULL
 * to skip the end check (then truncation at the end cannot be seen). The
 * first problem is reported, in the words:
 *   "line N: not valid JSON at column C (...)"
 *   "line N: not an audit record: ..."
 *   "line N: hash mismatch (edited?)"
 *   "line N: sequence jumps from A to B (records deleted or inserted)"
 *   "line N: prev does not match line N-1"  (line 1: "...the start anchor")
 *   "truncated: last line incomplete (line N)"
 *   "truncated: the log ends at record A but the head says B (records removed from the end)"
 *   "line N: record B differs from the head (the log or the head was replaced)"
 *   "line N: record A is past the head (B): ..."
 *   "line N: record A does not have its subject from the broker's own view ..."
 *   "line N: record A: the sender forged its decision ..." (the first such
 *      record; reported after the whole chain verified, with the count)
 *      (both only with require_subject, which `fvm logs --verify` sets)
 * Returns FVM_OK when intact, FVM_E_INVALID otherwise (report says where). */
fvm_status audit_verify(const char *text, size_t len, const audit_chain *start, const audit_chain *head,
                        audit_verify_report *report);

/* The same, a line at a time, for logs read in pieces or followed. */
typedef struct audit_verifier {
    audit_chain expect;             /* the chain so far */
    uint64_t line;                  /* lines seen */
    int failed;
    int require_subject;            /* every record must say "subject":"broker", none "decided":"forged" */
    uint64_t first_forged_line, first_forged_seq;
    char forged_note[200];          /* the first forged record's claim and the broker's decision */
    audit_verify_report report;
} audit_verifier;

void audit_verifier_init(audit_verifier *v, const audit_chain *start);
/* One line without its '\n'. Returns 1 while the log is intact. */
int audit_verifier_line(audit_verifier *v, const char *line, size_t len);
/* last_line_complete: the text ended with '\n' (or was empty). */
fvm_status audit_verifier_finish(audit_verifier *v, int last_line_complete, const audit_chain *head,
                                 audit_verify_report *report);

#endif
