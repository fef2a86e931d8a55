/* fuzz_providerline.c - the relay sets the box field of whatever line a
 * boxed process sends (cli/relay.c): any bytes must be refused or give a
 * line whose fields but the second are the input's, within the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/providerline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = data[0];   /* small buffers too */
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    char *out = malloc(cap ? cap : 1);
    if (!out)
        return 0;
    size_t n = 0;
    if (provider_line_set_box(line, len, "box", out, cap, &n, NULL) == FVM_OK) {
        const char *first = memchr(line, '\t', len);
        size_t head = (size_t)(first + 1 - line);
        const char *second = memchr(first + 1, '\t', len - head);
        size_t tail = len - (size_t)(second - line);
        if (n > cap || n != head + 3 + tail || memcmp(out, line, head) || memcmp(out + head, "box", 3) ||
            memcmp(out + head + 3, second, tail))
            abort();
    }
    free(out);
    return 0;
}
