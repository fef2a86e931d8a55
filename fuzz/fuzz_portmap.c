/* fuzz_portmap.c - libFuzzer target for the port map's outside input: the
 * `publish` setting (box.ini, fvm create/net options) and the FVMPRT01
 * request a boxed process sends the broker. Never crash; an accepted
 * publish list formats to a text that parses back to the same list; a
 * decoded request encodes back to the same bytes; messages are terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/portmap.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static portmap g_map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    fvm_error err;
    portmap_publish list[PORTMAP_PUBLISH_MAX], back[PORTMAP_PUBLISH_MAX];
    size_t n, m;
    if (portmap_publish_parse((const char *)data, size, list, PORTMAP_PUBLISH_MAX, &n, &err) == FVM_OK) {
        char text[PORTMAP_PUBLISH_MAX * 20];
        size_t len = portmap_publish_format(list, n, text, sizeof text);
        CHECK(portmap_publish_parse(text, len, back, PORTMAP_PUBLISH_MAX, &m, &err) == FVM_OK && m == n);
        CHECK(n == 0 || !memcmp(list, back, n * sizeof list[0]));
        portmap_init(&g_map);
        portmap_set_publish(&g_map, list, n);
        for (size_t i = 0; i < n; i++)
            CHECK(portmap_published(&g_map, list[i].proto, list[i].box) == list[i].host);
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    portmap_request r;
    if (portmap_request_decode(data, size, &r, &err) == FVM_OK) {
        uint8_t again[PORTMAP_REQUEST_SIZE];
        CHECK(portmap_request_encode(&r, again, sizeof again) == PORTMAP_REQUEST_SIZE);
        CHECK(!memcmp(again, data, PORTMAP_REQUEST_SIZE));
        uint16_t join;
        CHECK(portmap_claim_flags(&g_map, r.proto, r.family, r.vport, 1, r.flags, NULL, NULL, &join, &err) !=
              FVM_E_INVALID);
        CHECK(portmap_claim_flags(&g_map, r.proto, r.family, r.vport, 2, r.flags, NULL, NULL, &join, &err) != FVM_OK ||
              (r.flags & PORTMAP_SHARED));   /* a second claim succeeds only when shared */
    }
    return 0;
}
