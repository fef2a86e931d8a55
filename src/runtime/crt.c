/* crt.c - the few C library functions the runtime needs.
 *
 * fvm.dll links no C runtime (see runtime.h), and mingw's import library for
 * ntdll does not expose its CRT exports, so the handful of memory and string
 * functions the compiler and the portable core call are defined here, and
 * vsnprintf forwards to ntdll's _vsnprintf found at run time. This file is
 * compiled with -fno-builtin (Makefile) so the loops below are not turned
 * back into calls to themselves. */
#include <windows.h>
#include <stdarg.h>
#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

typedef int (__cdecl *vsnprintf_fn)(char *, size_t, const char *, va_list);

/* mingw's stdio.h routes vsnprintf to __ms_vsnprintf when it is not using
 * its own printf; both names end here. */
int __cdecl __ms_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    static vsnprintf_fn ntdll_vsnprintf;
    if (!size)
        return 0;
    if (!ntdll_vsnprintf)
        ntdll_vsnprintf = (vsnprintf_fn)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "_vsnprintf");
    int n = ntdll_vsnprintf ? ntdll_vsnprintf(buf, size, fmt, ap) : -1;
    if (n < 0 || (size_t)n >= size) {
        buf[size - 1] = 0;
        return n < 0 ? (int)size - 1 : n;
    }
    return n;
}

int __cdecl vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    return __ms_vsnprintf(buf, size, fmt, ap);
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

size_t strcspn(const char *s, const char *reject)
{
    size_t n = 0;
    for (; s[n]; n++)
        for (const char *r = reject; *r; r++)
            if (s[n] == *r)
                return n;
    return n;
}
