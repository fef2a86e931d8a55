/* test_audit.c - audit records and their verification: the exact line a
 * record becomes (field order, ISO-8601 UTC times, JSON escaping of UTF-8
 * and of UTF-16 names with unpaired surrogates), the hash chain, the head
 * file, and the verifier against every kind of tampering: an edited byte,
 * a deleted, inserted, duplicated or swapped record, a record re-hashed
 * without its successor, a cut-off last line, whole records removed from
 * the end (caught only with the head), a replaced head, invalid JSON with
 * its column, and rotation with a start anchor. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/audit.h"

static audit_record sample(int i)
{
    static char names[16][64];
    audit_record r;
    memset(&r, 0, sizeof r);
    r.time_ms = 1764092472345LL + i * 1000;
    r.box = "b1";
    r.pid = 1234 + (uint32_t)i;
    r.image = "C:\\Tools\\app.exe";
    r.type = "file";
    r.op = "open";
    snprintf(names[i % 16], sizeof names[0], "\\??\\C:\\Data\\file%d.docx", i);
    r.name = names[i % 16];
    r.decision = i % 2 ? "deny" : "read";
    r.rule = "box.ini:12";
    return r;
}

/* A log of n records, and its head. */
static size_t make_log(int n, char *log, size_t cap, audit_chain *head)
{
    audit_chain chain;
    audit_chain_init(&chain);
    size_t len = 0;
    for (int i = 1; i <= n; i++) {
        audit_record r = sample(i);
        size_t line_len;
        fvm_error err;
        assert_int_equal(audit_chain_next(&chain, &r, log + len, cap - len, &line_len, &err), FVM_OK);
        len += line_len;
    }
    if (head)
        *head = chain;
    return len;
}

/* Start of line `number` (1-based) in a log. */
static char *line_start(char *log, int number)
{
    char *p = log;
    for (int i = 1; i < number; i++)
        p = strchr(p, '\n') + 1;
    return p;
}

static size_t line_length(const char *line)
{
    return (size_t)(strchr(line, '\n') - line) + 1;
}

static void expect_problem(const char *log, size_t len, const audit_chain *head, const char *message, size_t line)
{
    audit_verify_report report;
    assert_int_equal(audit_verify(log, len, NULL, head, &report), FVM_E_INVALID);
    assert_false(report.ok);
    if (strcmp(report.message, message) != 0)
        fail_msg("got '%s', expected '%s'", report.message, message);
    assert_int_equal(report.line, line);
}

/* ---- formatting ---- */

static void record_line_is_exact(void **state)
{
    audit_record r = sample(0);
    uint8_t zero[32] = {0}, hash[32];
    char line[1024];
    size_t len;
    fvm_error err;
    assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_OK);
    const char *expected_body =
        "{\"seq\":1,\"time\":\"2025-11-25T17:41:12.345Z\",\"box\":\"b1\",\"pid\":1234,"
        "\"image\":\"C:\\\\Tools\\\\app.exe\",\"type\":\"file\",\"op\":\"open\","
        "\"name\":\"\\\\??\\\\C:\\\\Data\\\\file0.docx\",\"decision\":\"read\",\"rule\":\"box.ini:12\","
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
    size_t body = strlen(expected_body);
    assert_memory_equal(line, expected_body, body);
    /* The hash is SHA-256 of everything before ,"hash": */
    uint8_t expected_hash[32];
    sha256(expected_body, body, expected_hash);
    assert_memory_equal(hash, expected_hash, 32);
    char hex[65];
    sha256_to_hex(hash, hex);
    char tail[128];
    snprintf(tail, sizeof tail, ",\"hash\":\"%s\"}\n", hex);
    assert_string_equal(line + body, tail);
    assert_int_equal(len, strlen(line));
}

static void times_are_iso8601_utc(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {4107542399999LL, "2100-02-28T23:59:59.999Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
    };
    uint8_t zero[32] = {0}, hash[32];
    char line[1024], want[64];
    size_t len;
    fvm_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        audit_record r = sample(0);
        r.time_ms = cases[i].ms;
        assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_OK);
        snprintf(want, sizeof want, "\"time\":\"%s\"", cases[i].text);
        assert_non_null(strstr(line, want));
    }
    audit_record r = sample(0);
    r.time_ms = -1;
    assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_E_RANGE);
    r.time_ms = 253402300800000LL;
    assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_E_RANGE);
}

static void strings_are_escaped(void **state)
{
    audit_record r = sample(0);
    r.name = "q\"b\\s\x01\n\t\x7f caf\xC3\xA9 \xF0\x9F\x98\x80 bad\xFF\xC3";
    r.box = NULL;
    uint8_t zero[32] = {0}, hash[32];
    char line[1024];
    size_t len;
    fvm_error err;
    assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_OK);
    assert_non_null(strstr(line, "\"name\":\"q\\\"b\\\\s\\u0001\\n\\t\x7f caf\xC3\xA9 \xF0\x9F\x98\x80 "
                                 "bad\xEF\xBF\xBD\xEF\xBF\xBD\""));
    assert_non_null(strstr(line, "\"box\":\"\""));

    /* UTF-16 names: pairs become UTF-8, an unpaired surrogate an escape. */
    static const uint16_t name16[] = {'\\', 'x', 0xE9, 0xD83D, 0xDE00, 0xD800, 'y', 0xDC00};
    r.name16 = name16;
    r.name16_len = 8;
    assert_int_equal(audit_format_record(&r, 1, zero, line, sizeof line, &len, hash, &err), FVM_OK);
    assert_non_null(strstr(line, "\"name\":\"\\\\x\xC3\xA9\xF0\x9F\x98\x80\\ud800y\\udc00\""));

    /* The line reads back, and unescapes to the original. */
    audit_fields f;
    size_t column;
    assert_int_equal(audit_parse_line(line, len - 1, &f, &column, &err), FVM_OK);
    char name[64];
    audit_unescape(&f.name, name, sizeof name);
    assert_string_equal(name, "\\x\xC3\xA9\xF0\x9F\x98\x80\xEF\xBF\xBDy\xEF\xBF\xBD");
}

static void chain_links_records(void **state)
{
    audit_chain chain;
    audit_chain_init(&chain);
    char first[1024], second[1024];
    size_t n1, n2;
    fvm_error err;
    audit_record r = sample(1);
    assert_int_equal(audit_chain_next(&chain, &r, first, sizeof first, &n1, &err), FVM_OK);
    assert_int_equal(chain.seq, 1);
    uint8_t first_hash[32];
    memcpy(first_hash, chain.hash, 32);
    assert_int_equal(audit_chain_next(&chain, &r, second, sizeof second, &n2, &err), FVM_OK);
    assert_int_equal(chain.seq, 2);
    char hex[65], want[80];
    sha256_to_hex(first_hash, hex);
    snprintf(want, sizeof want, "\"prev\":\"%s\"", hex);
    assert_non_null(strstr(second, want));
    assert_non_null(strstr(second, "{\"seq\":2,"));

    /* A buffer too small leaves the chain where it was. */
    char small[100];
    audit_chain before = chain;
    assert_int_equal(audit_chain_next(&chain, &r, small, sizeof small, &n1, &err), FVM_E_RANGE);
    assert_memory_equal(&before, &chain, sizeof chain);
    assert_string_equal(small, "");
}

static void head_round_trip(void **state)
{
    audit_chain chain = {18446744073709551615ull, {0}}, back;
    for (int i = 0; i < 32; i++)
        chain.hash[i] = (uint8_t)(i * 9);
    char text[AUDIT_HEAD_MAX];
    size_t len;
    fvm_error err;
    assert_int_equal(audit_head_format(&chain, text, sizeof text, &len, &err), FVM_OK);
    assert_int_equal(len, strlen(text));
    assert_true(len < AUDIT_HEAD_MAX);
    assert_int_equal(audit_head_parse(text, len, &back, &err), FVM_OK);
    assert_memory_equal(&chain, &back, sizeof chain);
    assert_int_equal(audit_head_parse("{\"seq\":1}", 9, &back, &err), FVM_E_INVALID);
    assert_int_equal(audit_head_parse("{\"seq\":01,\"hash\":\"\"}", 20, &back, &err), FVM_E_INVALID);
    text[20] = 'G';
    assert_int_equal(audit_head_parse(text, len, &back, &err), FVM_E_INVALID);
}

/* ---- verification ---- */

static void intact_log_verifies(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(10, log, sizeof log, &head);
    audit_verify_report report;
    assert_int_equal(audit_verify(log, len, NULL, &head, &report), FVM_OK);
    assert_true(report.ok);
    assert_int_equal(report.records, 10);
    assert_int_equal(report.last.seq, 10);
    assert_memory_equal(report.last.hash, head.hash, 32);
    assert_string_equal(report.message, "ok: 10 records, ends at the head");
    assert_int_equal(audit_verify("", 0, NULL, NULL, &report), FVM_OK);
    assert_int_equal(report.records, 0);
}

static void edited_byte_is_a_hash_mismatch(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(5, log, sizeof log, &head);
    char *line3 = line_start(log, 3);
    char *decision = strstr(line3, "\"deny\"");
    memcpy(decision, "\"open\"", 6);
    expect_problem(log, len, &head, "line 3: hash mismatch (edited?)", 3);
}

static void every_single_byte_edit_is_caught(void **state)
{
    char log[16384], copy[16384];
    audit_chain head;
    size_t len = make_log(3, log, sizeof log, &head);
    audit_verify_report report;
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, log, len);
        copy[i] = copy[i] == 'x' ? 'y' : 'x';
        if (audit_verify(copy, len, NULL, &head, &report) == FVM_OK)
            fail_msg("changing byte %lu ('%c') went unnoticed", (unsigned long)i, log[i]);
    }
}

static void deleted_record_is_a_sequence_jump(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(5, log, sizeof log, &head);
    char *line3 = line_start(log, 3);
    size_t n = line_length(line3);
    memmove(line3, line3 + n, len - (size_t)(line3 - log) - n);
    len -= n;
    expect_problem(log, len, &head, "line 3: sequence jumps from 2 to 4 (records deleted or inserted)", 3);
}

static void inserted_or_duplicated_record_is_caught(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(4, log, sizeof log, &head);
    char *line2 = line_start(log, 2);
    size_t n = line_length(line2);
    memmove(line2 + n, line2, len - (size_t)(line2 - log));
    len += n;
    expect_problem(log, len, &head, "line 3: sequence jumps from 2 to 2 (records deleted or inserted)", 3);
}

static void swapped_records_are_caught(void **state)
{
    char log[16384], swapped[16384];
    audit_chain head;
    size_t len = make_log(4, log, sizeof log, &head);
    char *l2 = line_start(log, 2), *l3 = line_start(log, 3);
    size_t n2 = line_length(l2), n3 = line_length(l3), before = (size_t)(l2 - log);
    memcpy(swapped, log, before);
    memcpy(swapped + before, l3, n3);
    memcpy(swapped + before + n3, l2, n2);
    memcpy(swapped + before + n2 + n3, l3 + n3, len - before - n2 - n3);
    expect_problem(swapped, len, &head, "line 2: sequence jumps from 1 to 3 (records deleted or inserted)", 2);
}

/* A forger re-hashes the record they changed, but not its successor. */
static void rehashed_record_breaks_the_next_prev(void **state)
{
    char log[16384], forged_log[16384];
    audit_chain head;
    size_t len = make_log(4, log, sizeof log, &head);
    /* Rebuild record 2 with another decision and the right seq and prev. */
    audit_chain chain;
    audit_chain_init(&chain);
    char line[1024];
    size_t n;
    fvm_error err;
    audit_record r = sample(1);
    assert_int_equal(audit_chain_next(&chain, &r, line, sizeof line, &n, &err), FVM_OK);
    r = sample(2);
    r.decision = "open";
    char forged[1024];
    size_t forged_len;
    assert_int_equal(audit_chain_next(&chain, &r, forged, sizeof forged, &forged_len, &err), FVM_OK);
    char *l2 = line_start(log, 2);
    size_t n2 = line_length(l2), before = (size_t)(l2 - log);
    memcpy(forged_log, log, before);
    memcpy(forged_log + before, forged, forged_len);
    memcpy(forged_log + before + forged_len, l2 + n2, len - before - n2);
    size_t forged_total = len - n2 + forged_len;
    expect_problem(forged_log, forged_total, &head, "line 3: prev does not match line 2", 3);
}

static void cut_off_last_line_is_truncation(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(5, log, sizeof log, &head);
    expect_problem(log, len - 20, &head, "truncated: last line incomplete (line 5)", 0);
    expect_problem(log, len - 1, NULL, "truncated: last line incomplete (line 5)", 0);
}

/* Whole records removed from the end: only the head can tell. */
static void records_removed_from_the_end_need_the_head(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(5, log, sizeof log, &head);
    size_t cut = (size_t)(line_start(log, 4) - log);
    audit_verify_report report;
    assert_int_equal(audit_verify(log, cut, NULL, NULL, &report), FVM_OK);
    assert_non_null(strstr(report.message, "no head given"));
    expect_problem(log, cut, &head,
                   "truncated: the log ends at record 3 but the head says 5 (records removed from the end)", 0);
    expect_problem(log, 0, &head,
                   "truncated: the log ends at record 0 but the head says 5 (records removed from the end)", 0);
    (void)len;
}

static void head_mismatch_and_log_past_head(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(5, log, sizeof log, &head);
    audit_chain other = head;
    other.hash[0] ^= 1;
    expect_problem(log, len, &other, "line 5: record 5 differs from the head (the log or the head was replaced)", 5);
    other = head;
    other.seq = 3;
    expect_problem(log, len, &other,
                   "line 4: record 4 is past the head (3): the writer stopped between writing it and updating the "
                   "head, or records were appended",
                   4);
}

static void invalid_json_reports_the_column(void **state)
{
    char log[16384];
    audit_chain head;
    make_log(2, log, sizeof log, &head);
    char *line2 = line_start(log, 2);
    strcpy(line2, "{\"seq\":2 x}\n");
    expect_problem(log, strlen(log), &head, "line 2: not valid JSON at column 10 (expected ',' or '}')", 2);
    strcpy(line2, "{\"seq\":2,\"name\":\"a\x01\"}\n");
    expect_problem(log, strlen(log), &head, "line 2: not valid JSON at column 19 (control character in a string)", 2);
    strcpy(line2, "\n");
    expect_problem(log, strlen(log), &head, "line 2: not valid JSON at column 1 (empty line)", 2);
    strcpy(line2, "[1,2]\n");
    expect_problem(log, strlen(log), &head,
                   "line 2: not valid JSON at column 1 (a record is a JSON object: expected '{')", 2);
    strcpy(line2, "{\"seq\":2,\"n\":\"\xC3\x28\"}\n");
    expect_problem(log, strlen(log), &head, "line 2: not valid JSON at column 15 (invalid UTF-8)", 2);
    strcpy(line2, "{\"seq\":2}\n");
    expect_problem(log, strlen(log), &head, "line 2: not an audit record: the field \"prev\" is missing", 2);
    strcpy(line2, "{\"seq\":-2,\"prev\":\"\",\"hash\":\"\"}\n");
    expect_problem(log, strlen(log), &head, "line 2: not an audit record: seq is not a whole number", 2);
    strcpy(line2, "{\"seq\":2,\"seq\":3}\n");
    expect_problem(log, strlen(log), &head, "line 2: not an audit record: a member appears twice", 2);
}

static void json_reader_accepts_all_of_json(void **state)
{
    const char *line = "{\"seq\":1,\"extra\":[1,-2.5e+3,true,false,null,{\"a\":[[]],\"b\":\"\\u00e9\\/\"}],"
                       "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                       "\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}";
    audit_fields f;
    size_t column;
    fvm_error err;
    assert_int_equal(audit_parse_line(line, strlen(line), &f, &column, &err), FVM_OK);
    assert_int_equal(f.seq, 1);
    assert_int_equal(line[f.hashed_len], ',');
    static const char *const bad[] = {"{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\" 1}",
                                      "{\"a\":[1,]}", "{\"a\":1", "{} x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(audit_parse_line(bad[i], strlen(bad[i]), &f, &column, &err), FVM_E_PARSE);
    char deep[200];
    memset(deep, '[', sizeof deep);
    memcpy(deep, "{\"a\":", 5);
    assert_int_equal(audit_parse_line(deep, sizeof deep, &f, &column, &err), FVM_E_PARSE);
    assert_non_null(strstr(err.message, "nested too deep"));
}

/* Rotation: the second file continues the chain of the first. */
static void rotated_log_verifies_from_an_anchor(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(6, log, sizeof log, &head);
    char *second = line_start(log, 4);
    size_t second_len = len - (size_t)(second - log);
    audit_verify_report first_part;
    assert_int_equal(audit_verify(log, (size_t)(second - log), NULL, NULL, &first_part), FVM_OK);
    audit_verify_report report;
    assert_int_equal(audit_verify(second, second_len, &first_part.last, &head, &report), FVM_OK);
    assert_int_equal(report.records, 3);
    assert_int_equal(audit_verify(second, second_len, NULL, &head, &report), FVM_E_INVALID);
    assert_string_equal(report.message, "line 1: sequence jumps from 0 to 4 (records deleted or inserted)");
    audit_chain wrong = first_part.last;
    wrong.hash[5] ^= 0x80;
    assert_int_equal(audit_verify(second, second_len, &wrong, &head, &report), FVM_E_INVALID);
    assert_int_equal(report.line, 1);
    assert_non_null(strstr(report.message, "prev does not match the start anchor"));
}

/* Line by line, as `fvm logs --follow --verify` would. */
static void verifier_line_by_line(void **state)
{
    char log[16384];
    audit_chain head;
    size_t len = make_log(3, log, sizeof log, &head);
    audit_verifier v;
    audit_verifier_init(&v, NULL);
    for (int i = 1; i <= 3; i++) {
        const char *line = line_start(log, i);
        assert_true(audit_verifier_line(&v, line, line_length(line) - 1));
    }
    audit_verify_report report;
    assert_int_equal(audit_verifier_finish(&v, 1, &head, &report), FVM_OK);
    assert_int_equal(report.records, 3);
    /* Resuming the writer from the verified end. */
    audit_chain resumed = report.last;
    char line[1024];
    size_t n;
    fvm_error err;
    audit_record r = sample(4);
    assert_int_equal(audit_chain_next(&resumed, &r, line, sizeof line, &n, &err), FVM_OK);
    memcpy(log + len, line, n + 1);
    assert_int_equal(audit_verify(log, len + n, NULL, &resumed, &report), FVM_OK);
    assert_int_equal(report.records, 4);
}

static void parse_fields_for_filtering(void **state)
{
    char log[4096];
    make_log(1, log, sizeof log, NULL);
    audit_fields f;
    size_t column;
    fvm_error err;
    assert_int_equal(audit_parse_line(log, line_length(log) - 1, &f, &column, &err), FVM_OK);
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.pid, 1235);
    char text[128];
    audit_unescape(&f.type, text, sizeof text);
    assert_string_equal(text, "file");
    audit_unescape(&f.name, text, sizeof text);
    assert_string_equal(text, "\\??\\C:\\Data\\file1.docx");
    audit_unescape(&f.time, text, sizeof text);
    assert_string_equal(text, "2025-11-25T17:41:13.345Z");
    assert_int_equal(audit_unescape(&f.name, text, 4), strlen("\\??\\C:\\Data\\file1.docx"));
    assert_string_equal(text, "\\??");
}

/* Records whose subject the writer derived itself say so; a verifier that
 * requires it (fvm logs --verify) refuses a record that does not. */
static void subject_from_the_writer_is_required(void **state)
{
    char line[2][AUDIT_LINE_TYPICAL];
    size_t len[2];
    audit_chain chain;
    fvm_error err;
    audit_chain_init(&chain);
    audit_record r = sample(1);
    r.subject = "broker";
    assert_int_equal(audit_chain_next(&chain, &r, line[0], sizeof line[0], &len[0], &err), FVM_OK);
    assert_non_null(strstr(line[0], ",\"rule\":\"box.ini:12\",\"subject\":\"broker\",\"prev\":"));
    r = sample(2);   /* an older writer's record: no subject */
    assert_int_equal(audit_chain_next(&chain, &r, line[1], sizeof line[1], &len[1], &err), FVM_OK);
    audit_fields f;
    size_t column;
    assert_int_equal(audit_parse_line(line[0], len[0] - 1, &f, &column, &err), FVM_OK);
    assert_int_equal(f.subject.len, 6);
    audit_verifier v;
    audit_verifier_init(&v, NULL);
    v.require_subject = 1;
    assert_true(audit_verifier_line(&v, line[0], len[0] - 1));
    assert_false(audit_verifier_line(&v, line[1], len[1] - 1));
    assert_non_null(strstr(v.report.message, "line 2: record 2 does not have its subject from the broker"));
    audit_verifier_init(&v, NULL);   /* without the requirement both chain */
    assert_true(audit_verifier_line(&v, line[0], len[0] - 1));
    assert_true(audit_verifier_line(&v, line[1], len[1] - 1));
}

/* Issue 17.7: the writer marks whether it decided a record again. A
 * verifier that requires the broker's view counts the sender's words, and
 * reports a forged decision after the chain verified (the first one, with
 * the claim and the broker's decision, and how many there are). */
static void forged_decisions_are_reported(void **state)
{
    char line[4][AUDIT_LINE_TYPICAL];
    size_t len[4];
    audit_chain chain, head;
    fvm_error err;
    audit_chain_init(&chain);
    const char *decided[4] = {"broker", "sender", "forged", "forged"};
    for (int i = 0; i < 4; i++) {
        audit_record r = sample(i + 1);
        r.subject = "broker";
        r.decided = decided[i];
        if (i >= 2) {
            r.type = "net";
            r.decision = "deny";
            r.rule = "default";
            r.claim = "open by made-up.ini:1";
            r.target = "out:tcp:10.0.0.1:80|h.example";
        }
        assert_int_equal(audit_chain_next(&chain, &r, line[i], sizeof line[i], &len[i], &err), FVM_OK);
    }
    assert_non_null(strstr(line[2], ",\"subject\":\"broker\",\"target\":\"out:tcp:10.0.0.1:80|h.example\","
                                    "\"decided\":\"forged\",\"claim\":\"open by made-up.ini:1\",\"prev\":"));
    audit_fields f;
    size_t column;
    assert_int_equal(audit_parse_line(line[2], len[2] - 1, &f, &column, &err), FVM_OK);
    assert_int_equal(f.decided.len, 6);
    assert_int_equal(f.claim.len, strlen("open by made-up.ini:1"));
    head = chain;
    audit_verifier v;
    audit_verifier_init(&v, NULL);
    v.require_subject = 1;
    for (int i = 0; i < 4; i++)
        assert_true(audit_verifier_line(&v, line[i], len[i] - 1));   /* the chain goes on */
    audit_verify_report report;
    assert_int_equal(audit_verifier_finish(&v, 1, &head, &report), FVM_E_INVALID);
    assert_int_equal(report.forged, 2);
    assert_int_equal(report.senders_word, 1);
    assert_int_equal(report.line, 3);
    assert_non_null(strstr(report.message, "line 3: record 3: the sender forged its decision (it claimed \"open by "
                                           "made-up.ini:1\", the broker's policy gives \"deny by default\"); 2 such records"));
    /* without the forged ones: ok, and the sender's words counted */
    audit_verifier_init(&v, NULL);
    v.require_subject = 1;
    for (int i = 0; i < 2; i++)
        assert_true(audit_verifier_line(&v, line[i], len[i] - 1));
    assert_int_equal(audit_verifier_finish(&v, 1, NULL, &report), FVM_OK);
    assert_non_null(strstr(report.message, "1 decision is the sender's word"));
    /* a plain verifier (no requirement) does not judge decisions */
    audit_verifier_init(&v, NULL);
    for (int i = 0; i < 4; i++)
        assert_true(audit_verifier_line(&v, line[i], len[i] - 1));
    assert_int_equal(audit_verifier_finish(&v, 1, &head, &report), FVM_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_line_is_exact),
        cmocka_unit_test(subject_from_the_writer_is_required),
        cmocka_unit_test(forged_decisions_are_reported),
        cmocka_unit_test(times_are_iso8601_utc),
        cmocka_unit_test(strings_are_escaped),
        cmocka_unit_test(chain_links_records),
        cmocka_unit_test(head_round_trip),
        cmocka_unit_test(intact_log_verifies),
        cmocka_unit_test(edited_byte_is_a_hash_mismatch),
        cmocka_unit_test(every_single_byte_edit_is_caught),
        cmocka_unit_test(deleted_record_is_a_sequence_jump),
        cmocka_unit_test(inserted_or_duplicated_record_is_caught),
        cmocka_unit_test(swapped_records_are_caught),
        cmocka_unit_test(rehashed_record_breaks_the_next_prev),
        cmocka_unit_test(cut_off_last_line_is_truncation),
        cmocka_unit_test(records_removed_from_the_end_need_the_head),
        cmocka_unit_test(head_mismatch_and_log_past_head),
        cmocka_unit_test(invalid_json_reports_the_column),
        cmocka_unit_test(json_reader_accepts_all_of_json),
        cmocka_unit_test(rotated_log_verifies_from_an_anchor),
        cmocka_unit_test(verifier_line_by_line),
        cmocka_unit_test(parse_fields_for_filtering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
