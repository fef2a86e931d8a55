/* fuzz_floor_rules.c - libFuzzer target for the floor's parsers
 * (core/floor_rules.c): the ELF header of Wine's loader, read from disk in
 * every boxed process, and the Linux paths the floor walks (a box folder
 * may be named anything).
 *
 * Byte 0 picks the use of the rest:
 *  - even, bit 1 clear: the rest is the first bytes of an ELF file; an
 *    interpreter found must be NUL-terminated within the output;
 *  - even, bit 1 set: the rest is a struct sockaddr as the connect
 *    supervisor reads it from a box's Wine server (core/floor_supervise.h):
 *    an address is IPv4 or (not mapped) IPv6, with the bytes' port;
 *  - odd: the rest (cut at the first NUL) is a path; the walk's directories
 *    must each be a prefix of it, and the FVM root a prefix of the box. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/floor_rules.h"
#include "core/floor_supervise.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

typedef struct walk { const char *path; int visits; } walk;

static fvm_status visit(void *ctx, const char *dir, const char *skip)
{
    walk *w = ctx;
    size_t n = strlen(dir);
    CHECK(!strncmp(w->path, dir, n));
    CHECK(skip[0] != 0 && !strchr(skip, '/'));
    w->visits++;
    return FVM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fvm_error err;
    if (!(data[0] & 1) && (data[0] & 2)) {
        net_addr addr;
        uint16_t port = 0;
        int kind = floor_sockaddr_parse(data + 1, size - 1, &addr, &port);
        CHECK(kind >= -1 && kind <= 1);
        if (kind == 1) {
            CHECK(addr.family == 4 || addr.family == 6);
            CHECK(port == (uint16_t)(data[3] << 8 | data[4]));
            static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            CHECK(addr.family == 4 || memcmp(addr.bytes, mapped, 12) != 0);
        }
        return 0;
    }
    if (!(data[0] & 1)) {
        char out[128];
        if (floor_elf_interpreter(data + 1, size - 1, out, sizeof out, &err) == FVM_OK)
            CHECK(memchr(out, 0, sizeof out) != NULL);
        return 0;
    }
    char path[512], root[512];
    size_t n = size - 1 < sizeof path - 1 ? size - 1 : sizeof path - 1;
    memcpy(path, data + 1, n);
    path[n] = 0;
    walk w = {path, 0};
    floor_walk_to(path, visit, &w, &err);
    if (floor_fvm_root(path, root, sizeof root, &err) == FVM_OK) {
        CHECK(!strncmp(path, root, strlen(root)));
        CHECK(strlen(root) < strlen(path));
    }
    return 0;
}
