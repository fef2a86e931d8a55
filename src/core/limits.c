/* limits.c - parsing and printing of a box's resource limits (see
 * limits.h). Numbers are read digit by digit with an overflow check, never
 * with strtoul, so " 5", "+5", "5 " and "0x5" are all refused. */
#include "core/limits.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *ini, *example;
} g_keys[LIMIT_KEY_COUNT] = {
    [LIMIT_CPU] = {"cpu", "cpu", "a share of one CPU from 1% to 100%, like 25%"},
    [LIMIT_MEMORY] = {"memory", "memory", "a size of at least 4M, like 512M or 2G"},
    [LIMIT_PROCESS_MEMORY] = {"process-memory", "process_memory", "a size of at least 4M, like 256M"},
    [LIMIT_IO_BANDWIDTH] = {"io-bandwidth", "io_bandwidth", "bytes per second of at least 4K/s, like 20MB/s"},
    [LIMIT_IO_OPS] = {"io-ops", "io_ops", "reads and writes per second, like 500"},
    [LIMIT_PROCS] = {"procs", "procs", "a number of processes, 1 to 100000"},
};

const char *limit_name(limit_key key)
{
    return key < LIMIT_KEY_COUNT ? g_keys[key].name : "?";
}

const char *limit_ini_key(limit_key key)
{
    return key < LIMIT_KEY_COUNT ? g_keys[key].ini : "?";
}

fvm_status limit_key_parse(const char *name, size_t len, limit_key *out, fvm_error *err)
{
    for (int k = 0; k < LIMIT_KEY_COUNT; k++) {
        const char *spellings[2] = {g_keys[k].name, g_keys[k].ini};
        for (int s = 0; s < 2; s++) {
            if (strlen(spellings[s]) == len && !memcmp(spellings[s], name, len)) {
                *out = (limit_key)k;
                return FVM_OK;
            }
        }
    }
    return fvm_error_set(err, FVM_E_INVALID,
                         "unknown limit '%.*s' (known: cpu, memory, process-memory, io-bandwidth, io-ops, procs)",
                         (int)(len > 40 ? 40 : len), name ? name : "");
}

/* Leading decimal digits of *p into *value; FALSE when there are none or
 * they overflow. */
static int read_digits(const char **p, uint64_t *value)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *value = v;
    return 1;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* A size: digits, then optionally K, M, G or T (with an optional 'i'),
 * then optionally 'B'. The rest is left in *p. */
static int read_size(const char **p, uint64_t *bytes)
{
    uint64_t v;
    if (!read_digits(p, &v))
        return 0;
    const char *s = *p;
    unsigned shift = 0;
    switch (lower(*s)) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: break;
    }
    if (shift) {
        s++;
        if (*s == 'i')
            s++;
    }
    if (lower(*s) == 'b')
        s++;
    if (shift && v > (UINT64_MAX >> shift))
        return 0;
    *bytes = v << shift;
    *p = s;
    return 1;
}

static fvm_status bad(limit_key key, const char *text, const char *why, fvm_error *err)
{
    return fvm_error_set(err, FVM_E_INVALID, "bad %s '%.40s': %s (%s, or none)", g_keys[key].name, text, why,
                         g_keys[key].example);
}

fvm_status limit_value_parse(limit_key key, const char *text, uint64_t *out, fvm_error *err)
{
    if (key >= LIMIT_KEY_COUNT)
        return fvm_error_set(err, FVM_E_INVALID, "unknown limit");
    if (!text || !*text)
        return bad(key, "", "empty", err);
    if (!strcmp(text, "none")) {
        *out = 0;
        return FVM_OK;
    }
    const char *p = text;
    uint64_t v = 0;
    switch (key) {
    case LIMIT_CPU:
        if (!read_digits(&p, &v))
            return bad(key, text, "not a number", err);
        if (*p == '%')
            p++;
        if (*p)
            return bad(key, text, "unexpected text after the number", err);
        if (v == 0)
            return bad(key, text, "0% would never let the box run", err);
        if (v > 100)
            return bad(key, text, "more than 100% of one CPU", err);
        break;
    case LIMIT_MEMORY:
    case LIMIT_PROCESS_MEMORY:
        if (!read_size(&p, &v))
            return bad(key, text, "not a size", err);
        if (*p)
            return bad(key, text, "unknown unit (use K, M, G or T)", err);
        if (v < LIMIT_MEMORY_MIN)
            return bad(key, text, v ? "too small" : "0 is not a limit", err);
        if (v > (1ull << 50))
            return bad(key, text, "too large", err);
        break;
    case LIMIT_IO_BANDWIDTH:
        if (!read_size(&p, &v))
            return bad(key, text, "not a rate", err);
        if (!strcmp(p, "/s"))
            p += 2;
        if (*p)
            return bad(key, text, "unknown unit (use K, M or G, per second: 20MB/s)", err);
        if (v < LIMIT_IO_BANDWIDTH_MIN)
            return bad(key, text, v ? "too small" : "0 is not a limit", err);
        if (v > (1ull << 50))
            return bad(key, text, "too large", err);
        break;
    case LIMIT_IO_OPS:
    case LIMIT_PROCS:
        if (!read_digits(&p, &v))
            return bad(key, text, "not a number", err);
        if (key == LIMIT_IO_OPS && !strcmp(p, "/s"))
            p += 2;
        if (*p)
            return bad(key, text, "unexpected text after the number", err);
        if (v == 0)
            return bad(key, text, "0 is not a limit", err);
        if (v > (key == LIMIT_PROCS ? 100000u : 10000000u))
            return bad(key, text, "too large", err);
        break;
    default:
        return fvm_error_set(err, FVM_E_INVALID, "unknown limit");
    }
    *out = v;
    return FVM_OK;
}

fvm_status limit_assignment_parse(const char *text, limit_key *key, uint64_t *value, fvm_error *err)
{
    const char *eq = text;
    while (eq && *eq && *eq != '=')
        eq++;
    if (!eq || !*eq)
        return fvm_error_set(err, FVM_E_INVALID, "'%.40s' is not key=value (like cpu=25%%)", text ? text : "");
    fvm_status st = limit_key_parse(text, (size_t)(eq - text), key, err);
    if (st != FVM_OK)
        return st;
    return limit_value_parse(*key, eq + 1, value, err);
}

void limit_format(limit_key key, uint64_t value, char *out, size_t cap)
{
    if (!cap)
        return;
    if (!value) {
        snprintf(out, cap, "none");
        return;
    }
    const char *suffix = "";
    switch (key) {
    case LIMIT_CPU:
        snprintf(out, cap, "%llu%%", (unsigned long long)value);
        return;
    case LIMIT_IO_OPS:
        snprintf(out, cap, "%llu/s", (unsigned long long)value);
        return;
    case LIMIT_PROCS:
        snprintf(out, cap, "%llu", (unsigned long long)value);
        return;
    case LIMIT_IO_BANDWIDTH:
        suffix = "/s";
        break;
    default:
        break;
    }
    static const char units[] = "KMGT";
    unsigned shift = 40;
    for (int u = 3; u >= 0; u--, shift -= 10) {
        if (value % (1ull << shift) == 0) {
            snprintf(out, cap, "%llu%c%s", (unsigned long long)(value >> shift), units[u], suffix);
            return;
        }
    }
    snprintf(out, cap, "%llu%s", (unsigned long long)value, suffix);
}
