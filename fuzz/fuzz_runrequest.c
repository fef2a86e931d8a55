/* fuzz_runrequest.c - a box's init decodes the run request any local
 * process of the user could send (cli/ownserver.c): arbitrary header and
 * bytes must be refused or decoded within bounds, and a decoded request
 * must encode back to the same header and bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/runrequest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < sizeof(run_request_header) + 2)
        return 0;
    run_request_header h;
    memcpy(&h, data, sizeof h);
    h.magic = RUN_REQUEST_MAGIC;   /* get past the magic most of the time */
    size_t len = size - sizeof h;
    h.bytes = (uint32_t)(len < RUN_REQUEST_BYTES_MAX ? len : RUN_REQUEST_BYTES_MAX);
    h.argc %= 64;
    h.envc %= 64;
    if (data[size - 1] & 1)
        h.argc += data[size - 2];   /* sometimes more than the arrays hold */
    char *bytes = malloc(h.bytes ? h.bytes : 1);
    if (!bytes)
        return 0;
    memcpy(bytes, data + sizeof h, h.bytes);
    char *cwd, *argv[65], *envp[65];
    fvm_error err;
    if (run_request_decode(&h, bytes, &cwd, argv, 65, envp, 65, &err) == FVM_OK) {
        char *again = malloc(h.bytes + 1);
        run_request_header h2;
        if (!again || run_request_encode(cwd, argv, envp, again, h.bytes + 1, &h2, &err) != FVM_OK ||
            h2.argc != h.argc || h2.envc != h.envc || h2.bytes != h.bytes || memcmp(again, bytes, h.bytes))
            abort();
        free(again);
    }
    free(bytes);
    return 0;
}
