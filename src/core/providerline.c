/* providerline.c - a provider's question with its box field set by the
 * relay (providerline.h). */
#include "core/providerline.h"

#include <string.h>

fvm_status provider_line_set_box(const char *line, size_t len, const char *box, char *out, size_t cap,
                                 size_t *out_len, fvm_error *err)
{
    size_t name = strlen(box);
    if (!name || strcspn(box, "\t\r\n") != name)
        return fvm_error_set(err, FVM_E_INVALID, "provider question: the box name is not one field");
    /* (No memchr: the core is linked into fvm.dll too, which has no C library.) */
    const char *first = NULL, *second = NULL;
    for (size_t i = 0; i < len && !second; i++)
        if (line[i] == '\t') {
            if (first)
                second = line + i;
            else
                first = line + i;
        }
    if (!second)
        return fvm_error_set(err, FVM_E_INVALID, "provider question: no box field (%lu bytes)", (unsigned long)len);
    size_t head = (size_t)(first + 1 - line), tail = len - (size_t)(second - line);
    if (head + name + tail > cap)
        return fvm_error_set(err, FVM_E_RANGE, "provider question: %lu bytes do not fit %lu",
                             (unsigned long)(head + name + tail), (unsigned long)cap);
    memcpy(out, line, head);
    memcpy(out + head, box, name);
    memcpy(out + head + name, second, tail);
    *out_len = head + name + tail;
    return FVM_OK;
}
