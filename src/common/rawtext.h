/* rawtext.h - building short strings without the C runtime's formatting,
 * for code that may run in a fork of a multi-threaded Wine process (where
 * a lock another thread held at the fork stays held), or in fvm.dll. */
#ifndef FVM_COMMON_RAWTEXT_H
#define FVM_COMMON_RAWTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Appends text at out[at] within cap (always terminated); the new end. */
static inline size_t raw_put(char *out, size_t cap, size_t at, const char *text)
{
    while (*text && at + 1 < cap)
        out[at++] = *text++;
    if (at < cap)
        out[at] = 0;
    return at;
}

/* Appends value in decimal; the new end. */
static inline size_t raw_put_number(char *out, size_t cap, size_t at, uint64_t value)
{
    char digits[24], text[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + value % 10);
    while ((value /= 10) && n < 23);
    for (int i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = 0;
    return raw_put(out, cap, at, text);
}

#endif
