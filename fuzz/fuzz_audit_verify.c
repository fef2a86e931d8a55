/* fuzz_audit_verify.c - libFuzzer target for the audit log reader and
 * verifier (a log on disk is outside input: anyone may have edited it).
 *
 * Byte 0 picks the use of the rest:
 *  - bit 0 clear: the rest is a log, verified with no head, with a head
 *    parsed from its first line when that parses, and line by line; every
 *    line is also parsed and its fields unescaped. Never crash; the report
 *    message is NUL-terminated; a log reported intact re-verifies intact
 *    against its own end as the head.
 *  - bit 0 set: the rest, split at NUL bytes, becomes the strings of records
 *    (UTF-8 of any validity, and UTF-16 names); the records are chained and
 *    the log must verify intact, its every line must parse, and cutting the
 *    last byte must be reported as truncation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static void read_log(const char *text, size_t len)
{
    audit_verify_report report;
    fvm_status st = audit_verify(text, len, NULL, NULL, &report);
    CHECK(memchr(report.message, 0, sizeof report.message) != NULL);
    CHECK((st == FVM_OK) == (report.ok != 0));
    if (st == FVM_OK) {
        audit_verify_report again;
        CHECK(audit_verify(text, len, NULL, &report.last, &again) == FVM_OK);
        CHECK(again.records == report.records);
    }
    const char *newline = memchr(text, '\n', len);
    audit_chain head;
    fvm_error err;
    if (newline && audit_head_parse(text, (size_t)(newline - text), &head, &err) == FVM_OK)
        audit_verify(newline + 1, len - (size_t)(newline + 1 - text), NULL, &head, &report);

    audit_verifier v;
    audit_verifier_init(&v, NULL);
    size_t start = 0;
    char scratch[256];
    while (start < len) {
        const char *end = memchr(text + start, '\n', len - start);
        size_t n = end ? (size_t)(end - text) - start : len - start;
        audit_verifier_line(&v, text + start, n);
        audit_fields f;
        size_t column;
        if (audit_parse_line(text + start, n, &f, &column, &err) == FVM_OK) {
            CHECK(f.hashed_len < n && text[start + f.hashed_len] == ',');
            audit_span spans[] = {f.time, f.box, f.image, f.type, f.op, f.name, f.decision, f.rule};
            for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
                size_t wanted = audit_unescape(&spans[i], scratch, sizeof scratch);
                CHECK(strlen(scratch) == (wanted < sizeof scratch ? wanted : strlen(scratch)));
            }
        } else {
            CHECK(column <= n + 1);
        }
        start += n + 1;
    }
    audit_verifier_finish(&v, len == 0 || text[len - 1] == '\n', NULL, &report);
}

static void write_log(const uint8_t *data, size_t size)
{
    /* Up to 8 strings separated by NUL. */
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *fields[8] = {"", "", "", "", "", "", "", ""};
    size_t count = 0;
    for (size_t i = 0; i <= size && count < 8;) {
        fields[count++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    static char log[1 << 16];
    size_t len = 0;
    audit_chain chain;
    audit_chain_init(&chain);
    uint16_t name16[64];
    size_t name16_len = 0;
    for (size_t i = 0; i + 1 < size && name16_len < 64; i += 2)
        name16[name16_len++] = (uint16_t)(data[i] | data[i + 1] << 8);
    for (int k = 0; k < 4; k++) {
        audit_record r;
        memset(&r, 0, sizeof r);
        r.time_ms = (int64_t)(size * 7919u) * 1000003 % 253402300799999LL;
        r.box = fields[0];
        r.pid = (uint32_t)size;
        r.image = fields[1];
        r.type = fields[2];
        r.op = fields[3];
        r.name = fields[4];
        if (k & 1) {
            r.name16 = name16;
            r.name16_len = name16_len;
        }
        r.decision = fields[5];
        r.rule = fields[6];
        size_t n;
        fvm_error err;
        if (audit_chain_next(&chain, &r, log + len, sizeof log - len, &n, &err) != FVM_OK)
            break;
        len += n;
    }
    audit_verify_report report;
    CHECK(audit_verify(log, len, NULL, &chain, &report) == FVM_OK);
    CHECK(report.records == chain.seq);
    if (len > 0) {
        CHECK(audit_verify(log, len - 1, NULL, &chain, &report) == FVM_E_INVALID);
        CHECK(strncmp(report.message, "truncated: last line incomplete", 31) == 0);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 32768)
        return 0;
    if (data[0] & 1)
        write_log(data + 1, size - 1);
    else
        read_log((const char *)data + 1, size - 1);
    return 0;
}
