/* error.c - see error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

fvm_status fvm_error_set(fvm_error *err, fvm_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->status = status;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *fvm_status_name(fvm_status status)
{
    switch (status) {
    case FVM_OK: return "ok";
    case FVM_E_INVALID: return "invalid";
    case FVM_E_UNSUPPORTED: return "unsupported";
    case FVM_E_RANGE: return "out of range";
    case FVM_E_NOMEM: return "out of memory";
    case FVM_E_IO: return "i/o error";
    case FVM_E_NOTFOUND: return "not found";
    case FVM_E_EXISTS: return "exists";
    case FVM_E_BUSY: return "busy";
    case FVM_E_PARSE: return "parse error";
    }
    return "unknown";
}
