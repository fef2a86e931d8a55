/* resolvemsg.h - host names a boxed program resolves through its broker.
 *
 * A box's programs run in a network namespace of their own with nothing in
 * it (runtime/floor_ns.c): Winsock's sockets are made by Wine's server, in
 * the host's network, so they work; but a raw socket a program makes itself
 * (UDP too, which Landlock has no rule for) reaches nothing, and neither do
 * the DNS lookups of the C library that ws2_32's getaddrinfo calls in the
 * program's process. So the runtime's getaddrinfo asks the box's broker,
 * which resolves in the host's network (after the policy's [net] name rules
 * for the asking program) and answers with the list; the runtime lays the
 * list out as Winsock's ADDRINFOA block.
 *
 * Request (runtime -> broker), little-endian:
 *   "FVMRSV01"                        8
 *   int32 flags, family, socktype, protocol   (the hints; 0 when none)
 *   uint16 node_len (1..255), service_len (0..63)
 *   uint32 reserved = 0
 *   node, service                     printable ASCII, no terminator
 * Reply (broker -> runtime):
 *   uint32 version = 1, int32 error (a Winsock code; 0: found)
 *   uint16 count (0..RESOLVE_MAX_ENTRIES), canon_len (0..255)
 *   canon                             printable ASCII
 *   count x { int32 flags, family, socktype, protocol;
 *             uint32 addr_len (16 for AF_INET, 28 for AF_INET6);
 *             uint8 addr[28] (a SOCKADDR_IN or SOCKADDR_IN6, its family
 *             field the entry's) }
 * Reverse lookups (getnameinfo, gethostbyaddr) the same way:
 *   request "FVMRNI01", int32 flags (getnameinfo's NI_*), uint32 addr_len,
 *           uint8 addr[28] (as in a reply entry)      44 bytes
 *   reply   uint32 version = 1, int32 error, uint16 host_len (0..255),
 *           uint16 serv_len (0..63), host, serv       printable ASCII
 * Both sides decode what they receive as outside input: the broker's
 * request comes from a boxed program, and the runtime trusts no size or
 * family of a reply it did not check. CRT-free (fvm.dll links it). */
#ifndef FVM_CORE_RESOLVEMSG_H
#define FVM_CORE_RESOLVEMSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RESOLVE_REQUEST_MAGIC "FVMRSV01"
#define RESOLVE_REQUEST_HEADER 32
#define RESOLVE_NODE_MAX 255
#define RESOLVE_SERVICE_MAX 63
#define RESOLVE_REQUEST_MAX (RESOLVE_REQUEST_HEADER + RESOLVE_NODE_MAX + RESOLVE_SERVICE_MAX)
#define RESOLVE_MAX_ENTRIES 32
#define RESOLVE_ENTRY_SIZE 48
#define RESOLVE_REPLY_HEADER 12
#define RESOLVE_REPLY_MAX (RESOLVE_REPLY_HEADER + 255 + RESOLVE_MAX_ENTRIES * RESOLVE_ENTRY_SIZE)
#define RESOLVE_VERSION 1

/* Winsock's family numbers (AF_INET6 is 23 on Windows, not Linux's 10). */
#define RESOLVE_AF_UNSPEC 0
#define RESOLVE_AF_INET 2
#define RESOLVE_AF_INET6 23

typedef struct resolve_request {
    int32_t flags, family, socktype, protocol;
    char node[RESOLVE_NODE_MAX + 1];        /* NUL-terminated copies */
    char service[RESOLVE_SERVICE_MAX + 1];
    size_t node_len, service_len;
} resolve_request;

typedef struct resolve_entry {
    int32_t flags, family, socktype, protocol;
    uint32_t addr_len;
    uint8_t addr[28];
} resolve_entry;

typedef struct resolve_reply {
    int32_t error;
    uint32_t count;
    char canon[256];   /* NUL-terminated */
    size_t canon_len;
    resolve_entry entries[RESOLVE_MAX_ENTRIES];
} resolve_reply;

/* 1 when buf starts like a request. */
int resolve_is_request(const uint8_t *buf, size_t len);

/* Writes the request into out (cap >= RESOLVE_REQUEST_MAX is always
 * enough); returns its size, 0 when a field is out of range (an empty or
 * overlong node, a long service, a character that is not printable ASCII). */
size_t resolve_request_encode(const resolve_request *r, uint8_t *out, size_t cap);
/* FVM_E_INVALID, naming the offset, for anything malformed. */
fvm_status resolve_request_decode(const uint8_t *buf, size_t len, resolve_request *out, fvm_error *err);

/* Writes the reply (cap >= RESOLVE_REPLY_MAX is always enough); 0 when an
 * entry or the canonical name is out of range. */
size_t resolve_reply_encode(const resolve_reply *r, uint8_t *out, size_t cap);
fvm_status resolve_reply_decode(const uint8_t *buf, size_t len, resolve_reply *out, fvm_error *err);

/* Checks one entry (family, length, the address's own family field). */
int resolve_entry_valid(const resolve_entry *e);

/* ---- reverse lookups ---- */
#define RESOLVE_REVERSE_MAGIC "FVMRNI01"
#define RESOLVE_REVERSE_SIZE 44
#define RESOLVE_NAMES_HEADER 12
#define RESOLVE_NAMES_MAX (RESOLVE_NAMES_HEADER + 255 + RESOLVE_SERVICE_MAX)

typedef struct resolve_reverse {
    int32_t flags;
    uint32_t addr_len;   /* 16 (IPv4) or 28 (IPv6) */
    uint8_t addr[28];
} resolve_reverse;

typedef struct resolve_names {
    int32_t error;
    char host[256];      /* NUL-terminated */
    char serv[RESOLVE_SERVICE_MAX + 1];
    size_t host_len, serv_len;
} resolve_names;

int resolve_is_reverse(const uint8_t *buf, size_t len);
/* RESOLVE_REVERSE_SIZE, or 0 for an address that is not IPv4 or IPv6. */
size_t resolve_reverse_encode(const resolve_reverse *r, uint8_t *out, size_t cap);
fvm_status resolve_reverse_decode(const uint8_t *buf, size_t len, resolve_reverse *out, fvm_error *err);
size_t resolve_names_encode(const resolve_names *r, uint8_t *out, size_t cap);
fvm_status resolve_names_decode(const uint8_t *buf, size_t len, resolve_names *out, fvm_error *err);

/* ---- the ADDRINFOA list the program gets ----
 * Winsock's x64 layout: int flags, family, socktype, protocol; size_t
 * addrlen; char *canonname; sockaddr *addr; addrinfo *next (48 bytes),
 * then each entry's address (32 bytes apiece), then the canonical name
 * (on the first entry only, as the C library gives it). One block, as
 * Wine's getaddrinfo returns it and its freeaddrinfo frees it. */
#define RESOLVE_ADDRINFO_SIZE 48
/* The block's size for a reply with count >= 1 entries. */
size_t resolve_layout_size(const resolve_reply *r);
/* Fills block (resolve_layout_size bytes, 8-aligned) whose address, as
 * the program will see it, is base (the block's own address in a process;
 * what the pointers in it are made from). */
void resolve_layout(const resolve_reply *r, void *block, uint64_t base);

#endif
