/* test_peimage.c - the kind of a program file from its head: x64 PE images
 * may start in a box; ELF programs, scripts and other files that Wine would
 * hand to Linux may not, nor 32-bit images. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/peimage.h"

/* A minimal head: "MZ", e_lfanew, "PE\0\0", machine, optional magic. */
static size_t make_pe(uint8_t *buf, size_t cap, uint32_t lfanew, uint16_t machine, uint16_t magic)
{
    memset(buf, 0, cap);
    buf[0] = 'M';
    buf[1] = 'Z';
    buf[0x3c] = (uint8_t)lfanew;
    buf[0x3d] = (uint8_t)(lfanew >> 8);
    buf[0x3e] = (uint8_t)(lfanew >> 16);
    buf[0x3f] = (uint8_t)(lfanew >> 24);
    if ((uint64_t)lfanew + 26 <= cap) {
        memcpy(buf + lfanew, "PE\0\0", 4);
        buf[lfanew + 4] = (uint8_t)machine;
        buf[lfanew + 5] = (uint8_t)(machine >> 8);
        buf[lfanew + 24] = (uint8_t)magic;
        buf[lfanew + 25] = (uint8_t)(magic >> 8);
    }
    return (size_t)lfanew + 26;
}

static void x64_image(void **state)
{
    uint8_t buf[512];
    size_t len = make_pe(buf, sizeof buf, 0x80, 0x8664, 0x20b);
    uint16_t machine;
    int pe32;
    assert_int_equal(peimage_classify(buf, len, NULL, &machine, &pe32), PEIMAGE_X64);
    assert_int_equal(machine, 0x8664);
    assert_false(pe32);
}

static void x86_image_is_other(void **state)
{
    uint8_t buf[512];
    size_t len = make_pe(buf, sizeof buf, 0x80, 0x14c, 0x10b);
    uint16_t machine;
    int pe32;
    assert_int_equal(peimage_classify(buf, len, NULL, &machine, &pe32), PEIMAGE_PE_OTHER);
    assert_int_equal(machine, 0x14c);
    assert_true(pe32);
    /* x64 machine with a 32-bit optional header is not an image Wine starts as x64. */
    len = make_pe(buf, sizeof buf, 0x80, 0x8664, 0x10b);
    assert_int_equal(peimage_classify(buf, len, NULL, NULL, NULL), PEIMAGE_PE_OTHER);
}

static void linux_programs(void **state)
{
    static const uint8_t elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
    static const uint8_t script[] = "#!/bin/sh\ntouch /tmp/x\n";
    assert_int_equal(peimage_classify(elf, sizeof elf, NULL, NULL, NULL), PEIMAGE_ELF);
    assert_int_equal(peimage_classify(script, sizeof script - 1, NULL, NULL, NULL), PEIMAGE_SCRIPT);
    assert_true(peimage_runs_on_linux(PEIMAGE_ELF));
    assert_true(peimage_runs_on_linux(PEIMAGE_SCRIPT));
    assert_false(peimage_runs_on_linux(PEIMAGE_NOT_MZ));
    assert_false(peimage_runs_on_linux(PEIMAGE_X64));
}

static void other_files(void **state)
{
    static const uint8_t batch[] = "@echo off\r\n";
    assert_int_equal(peimage_classify(batch, sizeof batch - 1, NULL, NULL, NULL), PEIMAGE_NOT_MZ);
    assert_int_equal(peimage_classify(NULL, 0, NULL, NULL, NULL), PEIMAGE_NOT_MZ);
    assert_int_equal(peimage_classify((const uint8_t *)"M", 1, NULL, NULL, NULL), PEIMAGE_NOT_MZ);
    /* MZ alone, a DOS header without PE, an e_lfanew pointing into the DOS header. */
    assert_int_equal(peimage_classify((const uint8_t *)"MZ", 2, NULL, NULL, NULL), PEIMAGE_MZ_ONLY);
    uint8_t buf[512];
    size_t len = make_pe(buf, sizeof buf, 0x80, 0x8664, 0x20b);
    buf[0x80] = 'N';
    assert_int_equal(peimage_classify(buf, len, NULL, NULL, NULL), PEIMAGE_MZ_ONLY);
    len = make_pe(buf, sizeof buf, 0x10, 0x8664, 0x20b);
    assert_int_equal(peimage_classify(buf, sizeof buf, NULL, NULL, NULL), PEIMAGE_MZ_ONLY);
}

static void header_beyond_the_head(void **state)
{
    uint8_t buf[0x2000];
    make_pe(buf, sizeof buf, 0x1800, 0x8664, 0x20b);
    size_t need = 0;
    assert_int_equal(peimage_classify(buf, 0x200, &need, NULL, NULL), PEIMAGE_NEED_MORE);
    assert_int_equal(need, 0x1800 + 26);
    assert_int_equal(peimage_classify(buf, need, &need, NULL, NULL), PEIMAGE_X64);
    /* An e_lfanew past the limit is not a PE image at all (no huge reads). */
    make_pe(buf, sizeof buf, 0x7fffffff, 0x8664, 0x20b);
    assert_int_equal(peimage_classify(buf, sizeof buf, &need, NULL, NULL), PEIMAGE_MZ_ONLY);
    make_pe(buf, sizeof buf, 0xffffffff, 0x8664, 0x20b);
    assert_int_equal(peimage_classify(buf, sizeof buf, &need, NULL, NULL), PEIMAGE_MZ_ONLY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(x64_image),
        cmocka_unit_test(x86_image_is_other),
        cmocka_unit_test(linux_programs),
        cmocka_unit_test(other_files),
        cmocka_unit_test(header_beyond_the_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
