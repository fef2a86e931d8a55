/* resolver.h - a boxed program's name lookup answered outside the box
 * (resolver.c; the messages: core/resolvemsg.h). */
#ifndef FVM_COMMON_RESOLVER_H
#define FVM_COMMON_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

struct policy_view;

/* The reply to one FVMRSV01 or FVMRNI01 message (a malformed one gets an
 * error reply), after the box's policy (view; NULL: none) for the asking
 * program (image, image_len units; NULL: not known, the rules for every
 * program decide). Written into out (cap >= RESOLVE_REPLY_MAX); its size,
 * or 0 when out of memory. */
size_t resolver_answer(const struct policy_view *view, const wchar_t *image, size_t image_len, const uint8_t *buf,
                       size_t len, uint8_t *out, size_t cap);

#endif
