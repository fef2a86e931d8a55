/* runrequest.h - the command fvm run sends to a box's init (cli/ownserver.c,
 * a box with a Wine server of its own): which fvm.exe to start there, with
 * which arguments, environment and working directory.
 *
 * On the wire: a header {magic, argc, envc, bytes} (four little-endian
 * 32-bit words, sent with the caller's standard streams as descriptors),
 * then `bytes` bytes of NUL-ended strings: the directory, argc arguments
 * (the first is the program execve runs), envc variables, and nothing
 * after. The init decodes what any local process of the user could send
 * (the socket is in a 0700 directory), so decoding checks every count and
 * every string against the bytes received, and never writes outside the
 * caller's arrays. Pure: no system calls, safe in a forked child. */
#ifndef FVM_CORE_RUNREQUEST_H
#define FVM_CORE_RUNREQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RUN_REQUEST_MAGIC 0x46564d52u   /* "FVMR" */
#define RUN_REQUEST_BYTES_MAX (1024u * 1024u)
#define RUN_REQUEST_ARGS_MAX 1023u
#define RUN_REQUEST_ENV_MAX 8190u

typedef struct run_request_header {
    uint32_t magic, argc, envc, bytes;
} run_request_header;

/* Writes cwd, argv[] and envp[] (NULL-ended) into out and fills h.
 * FVM_E_RANGE if they do not fit in cap or in the limits above,
 * FVM_E_INVALID for no arguments or an empty program. */
fvm_status run_request_encode(const char *cwd, char *const *argv, char *const *envp, char *out, size_t cap,
                              run_request_header *h, fvm_error *err);

/* The header alone: magic, limits. */
fvm_status run_request_check(const run_request_header *h, fvm_error *err);

/* Splits data (h->bytes bytes, the caller's buffer; strings point into it)
 * into *cwd, argv[0..argc) and envp[0..envc), each array NULL-ended, so
 * argv_cap must exceed argc and envp_cap envc. FVM_E_INVALID, naming the
 * offset, for a string missing its NUL, bytes left over, or an empty
 * program; FVM_E_RANGE if the arrays are too small. */
fvm_status run_request_decode(const run_request_header *h, char *data, char **cwd, char **argv, size_t argv_cap,
                              char **envp, size_t envp_cap, fvm_error *err);

#endif
