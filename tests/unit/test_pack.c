/* test_pack.c - the package format (core/pack): a package built with the
 * writing helpers reads back record by record; every byte flipped or cut
 * is refused before any record is visited; paths that would leave the box
 * folder and deltas outside their base are refused; zero squeezing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pack.h"
#include "core/sha256.h"

typedef struct builder {
    uint8_t buf[8192];
    size_t len;
} builder;

static void add(builder *b, const void *p, size_t n)
{
    assert_true(b->len + n <= sizeof b->buf);
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void record(builder *b, pack_record_type t, const void *p, size_t n)
{
    uint8_t h[PACK_RECORD_HEADER];
    pack_put_record_header(h, t, n);
    add(b, h, PACK_RECORD_HEADER);
    add(b, p, n);
}

static void finish(builder *b)
{
    uint8_t digest[32];
    sha256(b->buf, b->len, digest);
    record(b, PACK_REC_END, digest, 32);
}

static size_t file_part(uint8_t *out, const char *path, uint64_t size)
{
    uint16_t units[128];
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i++)
        units[i] = (uint8_t)path[i];
    pack_file f = {units, n, 0x20, 1, 2, 3, size};
    return pack_put_file(out, &f);
}

static void build(builder *b, const char *path, int with_delta)
{
    b->len = pack_put_header(b->buf, 0, 99, "box1", 4);
    record(b, PACK_REC_POLICY, "[sync]\n", 7);
    uint8_t p[1024];
    size_t n = file_part(p, path, 5);
    memcpy(p + n, "hello", 5);
    record(b, PACK_REC_FILE, p, n + 5);
    if (with_delta) {
        n = file_part(p, "\\??\\C:\\big", 100);
        uint8_t hash[32] = {7};
        pack_put_base(p + n, 96, 5, hash);
        n += PACK_BASE_LEN;
        n += pack_put_op(p + n, 1, 0, 90);
        n += pack_put_op(p + n, 0, 0, 10);
        memcpy(p + n, "0123456789", 10);
        n += 10;
        record(b, PACK_REC_DELTA, p, n);
    }
    n = file_part(p, "\\??\\C:\\dir", 0);
    record(b, PACK_REC_DIR, p, n);
    finish(b);
}

typedef struct seen {
    int header, blobs, files, deltas, dirs;
    char name[8];
    uint64_t delta_total;
} seen;

static fvm_status on_header(void *ctx, const pack_header *h, fvm_error *err)
{
    seen *s = ctx;
    s->header++;
    memcpy(s->name, h->name, h->name_len < 7 ? h->name_len : 7);
    return FVM_OK;
}
static fvm_status on_blob(void *ctx, pack_record_type t, const uint8_t *d, size_t n, fvm_error *err)
{
    ((seen *)ctx)->blobs++;
    return FVM_OK;
}
static fvm_status on_file(void *ctx, const pack_file *f, const uint8_t *d, fvm_error *err)
{
    assert_memory_equal(d, "hello", 5);
    ((seen *)ctx)->files++;
    return FVM_OK;
}
static fvm_status on_delta(void *ctx, const pack_file *f, const pack_delta *d, fvm_error *err)
{
    seen *s = ctx;
    s->deltas++;
    size_t pos = 0;
    pack_op op;
    while (pack_delta_next(d, &pos, &op))
        s->delta_total += op.length;
    return FVM_OK;
}
static fvm_status on_dir(void *ctx, const pack_file *f, fvm_error *err)
{
    ((seen *)ctx)->dirs++;
    return FVM_OK;
}

static void test_round_trip(void **state)
{
    builder b;
    build(&b, "\\??\\C:\\a\\f.txt", 1);
    seen s = {0};
    pack_visitor v = {on_header, on_blob, on_file, on_delta, on_dir, &s};
    fvm_error err;
    assert_int_equal(pack_parse(b.buf, b.len, &v, &err), FVM_OK);
    assert_int_equal(s.header, 1);
    assert_string_equal(s.name, "box1");
    assert_int_equal(s.blobs, 1);
    assert_int_equal(s.files, 1);
    assert_int_equal(s.deltas, 1);
    assert_int_equal(s.dirs, 1);
    assert_int_equal(s.delta_total, 100);
}

static void test_every_flip_and_cut_is_refused(void **state)
{
    builder b;
    build(&b, "\\??\\C:\\a\\f.txt", 1);
    fvm_error err;
    seen s = {0};
    pack_visitor v = {on_header, on_blob, on_file, on_delta, on_dir, &s};
    for (size_t i = 0; i < b.len; i++) {
        b.buf[i] ^= 0x01;
        assert_int_not_equal(pack_parse(b.buf, b.len, &v, &err), FVM_OK);
        b.buf[i] ^= 0x01;
    }
    for (size_t n = 0; n < b.len; n++)
        assert_int_not_equal(pack_parse(b.buf, n, &v, &err), FVM_OK);
    assert_int_equal(s.header + s.files + s.blobs + s.deltas + s.dirs, 0);
    assert_int_equal(pack_parse(b.buf, b.len, NULL, &err), FVM_OK);
}

static void test_paths_that_leave_the_box_are_refused(void **state)
{
    static const char *bad[] = {"\\??\\C:\\a\\..\\..\\x", "C:\\a", "\\??\\C:\\a\\.\\b", "\\??\\C:\\a\\\\b",
                                "\\??\\C:/x", "\\??\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        builder b;
        build(&b, bad[i], 0);
        fvm_error err;
        assert_int_equal(pack_parse(b.buf, b.len, NULL, &err), FVM_E_INVALID);
        assert_non_null(strstr(err.message, "path"));
    }
}

static void test_delta_outside_its_base_is_refused(void **state)
{
    builder b;
    b.len = pack_put_header(b.buf, 0, 99, "box1", 4);
    uint8_t p[512];
    size_t n = file_part(p, "\\??\\C:\\big", 100);
    uint8_t hash[32] = {0};
    pack_put_base(p + n, 50, 5, hash);
    n += PACK_BASE_LEN;
    n += pack_put_op(p + n, 1, 0, 100);   /* 100 bytes of a 50-byte base */
    record(&b, PACK_REC_DELTA, p, n);
    finish(&b);
    fvm_error err;
    assert_int_equal(pack_parse(b.buf, b.len, NULL, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "outside its base"));
}

static void test_squeeze(void **state)
{
    static uint8_t in[100000], out[200000], back[100000];
    for (int round = 0; round < 4; round++) {
        memset(in, 0, sizeof in);
        for (size_t i = 0; i < sizeof in; i += (size_t)(round * 997 + 13))
            in[i] = (uint8_t)(i | 1);
        if (round == 3)
            memset(in, 0, sizeof in);
        size_t n = pack_squeeze(in, sizeof in, out);
        assert_true(n <= pack_squeeze_bound(sizeof in));
        fvm_error err;
        assert_int_equal(pack_unsqueeze(out, n, back, sizeof back, &err), FVM_OK);
        assert_memory_equal(in, back, sizeof in);
        if (round == 3)
            assert_true(n < 32);
    }
    uint64_t size;
    fvm_error err;
    assert_int_equal(pack_unsqueezed_size(out, 10, &size, &err), FVM_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_flip_and_cut_is_refused),
        cmocka_unit_test(test_paths_that_leave_the_box_are_refused),
        cmocka_unit_test(test_delta_outside_its_base_is_refused),
        cmocka_unit_test(test_squeeze),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
