/* fuzz_resolvemsg.c - libFuzzer target for the name-resolution messages
 * (core/resolvemsg.c): the requests a boxed program sends its broker and
 * the replies the runtime reads, forward and reverse. Never crash; a decoded message encodes back to
 * the same bytes; a decoded reply lays out a list whose every pointer stays
 * inside the block; error messages are terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/resolvemsg.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    fvm_error err;
    static resolve_request req;
    static resolve_reply reply;
    static uint8_t again[RESOLVE_REPLY_MAX + RESOLVE_REQUEST_MAX];
    if (resolve_request_decode(data, size, &req, &err) == FVM_OK) {
        CHECK(resolve_request_encode(&req, again, sizeof again) == size);
        CHECK(!memcmp(again, data, size));
        CHECK(strlen(req.node) == req.node_len && strlen(req.service) == req.service_len);
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    if (resolve_reply_decode(data, size, &reply, &err) == FVM_OK) {
        CHECK(resolve_reply_encode(&reply, again, sizeof again) == size);
        CHECK(!memcmp(again, data, size));
        if (reply.count) {
            size_t n = resolve_layout_size(&reply);
            uint8_t *block = malloc(n);
            CHECK(block != NULL);
            uint64_t base = 0x10000;   /* pointers are checked as numbers */
            resolve_layout(&reply, block, base);
            for (uint32_t i = 0; i < reply.count; i++) {
                const uint8_t *ai = block + (size_t)i * RESOLVE_ADDRINFO_SIZE;
                uint64_t addr = get64(ai + 32), len = get64(ai + 16), canon = get64(ai + 24), next = get64(ai + 40);
                CHECK(addr >= base && addr + len <= base + n);
                CHECK(!canon || (i == 0 && canon >= base && canon + reply.canon_len < base + n &&
                                 block[canon - base + reply.canon_len] == 0));
                CHECK(i + 1 < reply.count ? next == base + (i + 1) * RESOLVE_ADDRINFO_SIZE : next == 0);
            }
            free(block);
        }
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    static resolve_reverse rev;
    static resolve_names names;
    if (resolve_reverse_decode(data, size, &rev, &err) == FVM_OK) {
        CHECK(resolve_reverse_encode(&rev, again, sizeof again) == size && !memcmp(again, data, size));
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    if (resolve_names_decode(data, size, &names, &err) == FVM_OK) {
        CHECK(resolve_names_encode(&names, again, sizeof again) == size && !memcmp(again, data, size));
        CHECK(strlen(names.host) == names.host_len && strlen(names.serv) == names.serv_len);
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    return 0;
}
