/* crt.c - the few C library functions the runtime needs, on top of ntdll.
 *
 * fvm.dll links no C runtime (see runtime.h); ntdll exports memcpy, memset,
 * strlen and _vsnprintf, which is all the portable core and the runtime use,
 * except vsnprintf whose C99 termination guarantee we provide here. */
#include <stdarg.h>
#include <stddef.h>

int __cdecl _vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

int __cdecl vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (!size)
        return 0;
    int n = _vsnprintf(buf, size, fmt, ap);
    if (n < 0 || (size_t)n >= size) {
        buf[size - 1] = 0;
        return n < 0 ? (int)size - 1 : n;
    }
    return n;
}
