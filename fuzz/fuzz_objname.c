/* fuzz_objname.c - libFuzzer target for the names of the object manager's
 * namespace (core/objname.c): the rule that every name a boxed program hands
 * to a key, object or pipe call is decided - mapped into the box's view or
 * refused - and never passed on in a form the system would read otherwise.
 *
 * Input: byte 0 picks the namespace (key or object), the root handle's name
 * (none, "\", a registry key, a BaseNamedObjects directory, a directory
 * whose name ends oddly) and whether one byte is cut off the name's length;
 * the rest is the program's counted name as raw UTF-16LE bytes, so embedded
 * NULs and odd byte lengths come for free. Code units U+F000.. expand to
 * tokens (doubled and trailing separators, ".", "..", the link names, 300
 * units of one letter) so the fuzzer reaches long and deep forms quickly.
 *
 * Checks (trap when one breaks):
 *  - a name with an odd byte length or a NUL is refused;
 *  - a decided name is absolute, has no empty component, no trailing
 *    separator, no NUL; a key name is under \REGISTRY\, an object name has
 *    no Global/Local/Session link left;
 *  - deciding is a fixed point: the decided name, given again as an
 *    absolute name, decides to itself (one name for one object), so the
 *    box's copy ("<box dir>" + name) and the policy see the same name;
 *  - the Win32 prefix reader never points past the name. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/objname.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

static const char *const tokens[] = {
    "\\", "\\\\", "\\\\\\", ".", "..", "\\.\\", "\\..\\", "Global", "Local", "Session", "Global\\", "Local\\",
    "Session\\1\\", "Session\\", "\\BaseNamedObjects", "\\Sessions\\1\\BaseNamedObjects", "\\Sessions\\BNOLINKS\\",
    "\\REGISTRY", "\\Registry\\Machine\\", "\\REGISTRY\\USER\\S-1-5-21-0-0-0-1000", "Software", "FVM.0123456789abcdef",
    "\\KernelObjects\\", "\\RPC Control\\", "\\??\\", "\\Device\\NamedPipe\\",
};
#define TOKEN_BASE 0xF000u
#define TOKEN_LONG 0xF0FFu
#define TOKEN_COUNT (sizeof tokens / sizeof tokens[0])
#define MAX_UNITS 8192u
#define OUT_CAP 4096u

static const char *const roots[] = {
    NULL, "\\", "\\REGISTRY\\MACHINE\\Software", "\\REGISTRY\\USER\\S-1-5-21-0-0-0-1000",
    "\\Sessions\\1\\BaseNamedObjects", "\\BaseNamedObjects", "\\Sessions\\1", "\\KernelObjects",
};
#define ROOT_COUNT (sizeof roots / sizeof roots[0])

static uint16_t name[MAX_UNITS], root[64], out[OUT_CAP], again[OUT_CAP];

static size_t expand(const uint8_t *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < size && n < MAX_UNITS - 400; i += 2) {
        uint16_t c = (uint16_t)(data[i] | data[i + 1] << 8);
        if (c == TOKEN_LONG) {
            for (int k = 0; k < 300; k++)
                name[n++] = 'L';
        } else if (c >= TOKEN_BASE && c < TOKEN_BASE + TOKEN_COUNT) {
            for (const char *t = tokens[c - TOKEN_BASE]; *t; t++)
                name[n++] = (uint16_t)(unsigned char)*t;
        } else {
            name[n++] = c;
        }
    }
    return n;
}

static int has_link(const uint16_t *s, size_t len)
{
    uint16_t copy[OUT_CAP];
    size_t n = len;
    memcpy(copy, s, len * 2);
    return !objname_resolve_links(copy, &n, OUT_CAP) || n != len || memcmp(copy, s, len * 2) != 0;
}

static int starts_registry(const uint16_t *s, size_t len)
{
    static const char prefix[] = "\\REGISTRY\\";
    if (len <= 10)
        return 0;
    for (size_t i = 0; i < 10; i++) {
        uint16_t c = s[i] >= 'a' && s[i] <= 'z' ? (uint16_t)(s[i] - 32) : s[i];
        if (c != (uint16_t)prefix[i])
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    objname_space space = (mode & 1) ? OBJNAME_SPACE_KEY : OBJNAME_SPACE_OBJECT;
    const char *root_text = roots[(mode >> 1) % ROOT_COUNT];
    int cut = (mode & 0x80) != 0;
    size_t len = expand(data + 1, size - 1);
    size_t bytes = len * 2;
    if (cut && bytes)
        bytes--;   /* an odd byte length */
    size_t root_len = 0;
    if (root_text)
        for (; root_text[root_len]; root_len++)
            root[root_len] = (uint16_t)(unsigned char)root_text[root_len];

    size_t out_len = 0;
    objname_problem problem =
        objname_join(space, root_text ? root : NULL, root_len, name, bytes, out, OUT_CAP, &out_len);

    int has_nul = 0;
    for (size_t i = 0; i < bytes / 2; i++)
        has_nul |= name[i] == 0;
    if ((bytes & 1) || has_nul)
        CHECK(problem != OBJNAME_OK);
    CHECK(objname_problem_text(problem) != NULL);

    if (problem == OBJNAME_OK) {
        CHECK(out_len > 0 && out_len <= OUT_CAP);
        CHECK(objname_check(out, out_len * 2, OBJNAME_ABSOLUTE, 0, NULL) == OBJNAME_OK);
        if (space == OBJNAME_SPACE_KEY)
            CHECK(starts_registry(out, out_len));
        else
            CHECK(!has_link(out, out_len));
        /* A fixed point: the decided name decides to itself. */
        size_t again_len = 0;
        CHECK(objname_join(space, NULL, 0, out, out_len * 2, again, OUT_CAP, &again_len) == OBJNAME_OK);
        CHECK(again_len == out_len && memcmp(again, out, out_len * 2) == 0);
    }

    /* The other readers never crash nor point outside the name. */
    size_t check_at = 0;
    objname_problem checked = objname_check(name, bytes, mode >> 4, (mode & 0x40) ? 64 : 0, &check_at);
    CHECK(checked == OBJNAME_OK || check_at <= bytes / 2);
    objname_root r;
    if (objname_win32_root(name, bytes / 2, &r))
        CHECK(r.rest <= bytes / 2);
    (void)objname_in_named_objects(name, bytes / 2);
    if (bytes / 2 <= OUT_CAP) {
        size_t n = bytes / 2;
        memcpy(again, name, n * 2);
        size_t collapsed = objname_collapse(again, n);
        CHECK(collapsed <= n);
        for (size_t i = 1; i < collapsed; i++)
            CHECK(!(again[i] == '\\' && again[i - 1] == '\\'));
    }
    return 0;
}
