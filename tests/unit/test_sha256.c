/* test_sha256.c - SHA-256 against the FIPS 180-2 test vectors (appendix B:
 * "abc", the two-block 448-bit message, one million 'a'), the empty message,
 * and incremental updates split at every block-boundary case of the padding
 * (55, 56, 63, 64, 65 bytes) compared with the one-shot digest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/sha256.h"

static void assert_digest_hex(const uint8_t digest[SHA256_DIGEST_SIZE], const char *expected)
{
    char hex[SHA256_HEX_SIZE];
    sha256_to_hex(digest, hex);
    assert_string_equal(hex, expected);
}

static void fips_abc(void **state)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256("abc", 3, d);
    assert_digest_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void fips_two_blocks(void **state)
{
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256(msg, strlen(msg), d);
    assert_digest_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void fips_million_a(void **state)
{
    static char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    sha256_ctx ctx;
    sha256_init(&ctx);
    for (int i = 0; i < 1000; i++)
        sha256_update(&ctx, chunk, sizeof chunk);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_final(&ctx, d);
    assert_digest_hex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void empty_message(void **state)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256("", 0, d);
    assert_digest_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Every split point of messages around the padding boundaries gives the
 * one-shot digest. */
static void incremental_matches_one_shot(void **state)
{
    static const size_t lengths[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200};
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        size_t len = lengths[l];
        uint8_t whole[SHA256_DIGEST_SIZE];
        sha256(msg, len, whole);
        for (size_t split = 0; split <= len; split++) {
            sha256_ctx ctx;
            uint8_t parts[SHA256_DIGEST_SIZE];
            sha256_init(&ctx);
            sha256_update(&ctx, msg, split);
            sha256_update(&ctx, msg + split, len - split);
            sha256_final(&ctx, parts);
            assert_memory_equal(whole, parts, SHA256_DIGEST_SIZE);
        }
    }
}

/* 55 and 56 bytes: the length fits in the last block, or needs one more. */
static void padding_boundaries_known_values(void **state)
{
    char msg[64];
    uint8_t d[SHA256_DIGEST_SIZE];
    memset(msg, 'a', sizeof msg);
    sha256(msg, 55, d);
    assert_digest_hex(d, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    sha256(msg, 56, d);
    assert_digest_hex(d, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    sha256(msg, 64, d);
    assert_digest_hex(d, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void hex_round_trip(void **state)
{
    uint8_t d[SHA256_DIGEST_SIZE], back[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    sha256("abc", 3, d);
    sha256_to_hex(d, hex);
    assert_int_equal(strlen(hex), 64);
    assert_true(sha256_from_hex(hex, 64, back));
    assert_memory_equal(d, back, sizeof d);
    assert_true(sha256_from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", 64, back));
    assert_memory_equal(d, back, sizeof d);
    assert_false(sha256_from_hex(hex, 63, back));
    hex[10] = 'g';
    assert_false(sha256_from_hex(hex, 64, back));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fips_abc),
        cmocka_unit_test(fips_two_blocks),
        cmocka_unit_test(fips_million_a),
        cmocka_unit_test(empty_message),
        cmocka_unit_test(incremental_matches_one_shot),
        cmocka_unit_test(padding_boundaries_known_values),
        cmocka_unit_test(hex_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
