/* runrequest.c - the command sent to a box's init: encode and decode
 * (runrequest.h). Decoding walks the bytes once, string by string, and
 * trusts no count it was given until the strings are there. */
#include "core/runrequest.h"

#include <string.h>

fvm_status run_request_check(const run_request_header *h, fvm_error *err)
{
    if (h->magic != RUN_REQUEST_MAGIC)
        return fvm_error_set(err, FVM_E_INVALID, "run request: bad magic 0x%08x", (unsigned)h->magic);
    if (h->argc < 1 || h->argc > RUN_REQUEST_ARGS_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "run request: %u arguments (1 to %u)", (unsigned)h->argc,
                             RUN_REQUEST_ARGS_MAX);
    if (h->envc > RUN_REQUEST_ENV_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "run request: %u variables (at most %u)", (unsigned)h->envc,
                             RUN_REQUEST_ENV_MAX);
    if (h->bytes > RUN_REQUEST_BYTES_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "run request: %u bytes (at most %u)", (unsigned)h->bytes,
                             RUN_REQUEST_BYTES_MAX);
    return FVM_OK;
}

static fvm_status put_string(const char *s, char *out, size_t cap, size_t *at, fvm_error *err)
{
    size_t n = strlen(s) + 1;
    if (n > cap - *at)
        return fvm_error_set(err, FVM_E_RANGE, "run request: more than %lu bytes", (unsigned long)cap);
    memcpy(out + *at, s, n);
    *at += n;
    return FVM_OK;
}

fvm_status run_request_encode(const char *cwd, char *const *argv, char *const *envp, char *out, size_t cap,
                              run_request_header *h, fvm_error *err)
{
    if (!argv || !argv[0] || !argv[0][0])
        return fvm_error_set(err, FVM_E_INVALID, "run request: no program");
    if (cap > RUN_REQUEST_BYTES_MAX)
        cap = RUN_REQUEST_BYTES_MAX;
    memset(h, 0, sizeof *h);
    h->magic = RUN_REQUEST_MAGIC;
    size_t at = 0;
    fvm_status st = put_string(cwd ? cwd : "/", out, cap, &at, err);
    for (size_t i = 0; st == FVM_OK && argv[i]; i++, h->argc++)
        st = h->argc >= RUN_REQUEST_ARGS_MAX
                 ? fvm_error_set(err, FVM_E_RANGE, "run request: more than %u arguments", RUN_REQUEST_ARGS_MAX)
                 : put_string(argv[i], out, cap, &at, err);
    for (size_t i = 0; st == FVM_OK && envp && envp[i]; i++, h->envc++)
        st = h->envc >= RUN_REQUEST_ENV_MAX
                 ? fvm_error_set(err, FVM_E_RANGE, "run request: more than %u variables", RUN_REQUEST_ENV_MAX)
                 : put_string(envp[i], out, cap, &at, err);
    h->bytes = (uint32_t)at;
    return st;
}

fvm_status run_request_decode(const run_request_header *h, char *data, char **cwd, char **argv, size_t argv_cap,
                              char **envp, size_t envp_cap, fvm_error *err)
{
    fvm_status st = run_request_check(h, err);
    if (st != FVM_OK)
        return st;
    if (argv_cap <= h->argc || envp_cap <= h->envc)
        return fvm_error_set(err, FVM_E_RANGE, "run request: %u arguments and %u variables do not fit",
                             (unsigned)h->argc, (unsigned)h->envc);
    size_t at = 0, want = 1 + (size_t)h->argc + h->envc;
    for (size_t i = 0; i < want; i++) {
        size_t z = at;   /* (no memchr: the core is linked into fvm.dll, which has no C runtime) */
        while (z < h->bytes && data[z])
            z++;
        if (z >= h->bytes)
            return fvm_error_set(err, FVM_E_INVALID, "run request: string %lu at byte %lu has no end", (unsigned long)i,
                                 (unsigned long)at);
        char *s = data + at;
        if (i == 0)
            *cwd = s;
        else if (i <= h->argc)
            argv[i - 1] = s;
        else
            envp[i - 1 - h->argc] = s;
        at = z + 1;
    }
    if (at != h->bytes)
        return fvm_error_set(err, FVM_E_INVALID, "run request: %lu bytes left over at byte %lu",
                             (unsigned long)(h->bytes - at), (unsigned long)at);
    if (!argv[0][0])
        return fvm_error_set(err, FVM_E_INVALID, "run request: the program is empty");
    argv[h->argc] = NULL;
    envp[h->envc] = NULL;
    return FVM_OK;
}
