/* error.h - typed errors for the portable core.
 *
 * Core functions return an fvm_status and, when they fail, fill an fvm_error
 * with a human message that names the place (file:line:col, offset, path...).
 * The caller passes the error up or prints it; nothing in the core aborts. */
#ifndef FVM_CORE_ERROR_H
#define FVM_CORE_ERROR_H

#include <stddef.h>

typedef enum fvm_status {
    FVM_OK = 0,
    FVM_E_INVALID,      /* malformed input */
    FVM_E_UNSUPPORTED,  /* well-formed but not handled (e.g. unknown opcode) */
    FVM_E_RANGE,        /* value does not fit (displacement, buffer) */
    FVM_E_NOMEM,
    FVM_E_IO,
    FVM_E_NOTFOUND,
    FVM_E_EXISTS,
    FVM_E_BUSY,
    FVM_E_PARSE
} fvm_status;

typedef struct fvm_error {
    fvm_status status;
    char message[256];
} fvm_error;

/* Records status and a printf-style message in err (err may be NULL).
 * Returns status so callers can write `return fvm_error_set(err, ...)`. */
fvm_status fvm_error_set(fvm_error *err, fvm_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

const char *fvm_status_name(fvm_status status);

#endif
