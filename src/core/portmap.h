/* portmap.h - a box's loopback port space (`net = isolated`, issue 11):
 * which real host port stands for each port a boxed server bound.
 *
 * A boxed server that binds a loopback or wildcard address with a fixed
 * port P (127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080) is given another,
 * real port R; the map says (tcp, IPv4, 8080) -> R. A boxed client of the
 * same box that connects to a loopback address on P is sent to R, and the
 * server's getsockname is told P again. Nothing outside the box reads the
 * map, so the host and other boxes never reach the box's P: two boxes can
 * each run a server on P at once. A published port (box.ini `publish =
 * 18080:8080`) makes R the given host port, so host clients reach the box's
 * server there (as `docker run -p`).
 *
 * The map lives in one fixed-size structure (struct portmap) that the
 * box's broker owns and writes, in a section every process of the box maps
 * read-only: lookups on the connect path are a scan of memory, no message.
 * Writers are the broker alone, under its lock, with a sequence counter
 * (odd while it writes) so readers see whole entries; readers copy and
 * retry. Claims and releases reach the broker as fixed-size messages on
 * its control pipe (portmap_request); it takes the process id from the
 * pipe, not from the message.
 *
 * Also here: the `publish` setting's parser (outside input: box.ini and
 * the command line), with the column of each problem.
 *
 * CRT-free (memcpy/memset only), no allocation: fvm.dll links it. */
#ifndef FVM_CORE_PORTMAP_H
#define FVM_CORE_PORTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PORTMAP_MAX         256   /* bound ports per box */
#define PORTMAP_PUBLISH_MAX 32    /* published ports per box */
#define PORTMAP_MAGIC       0x31504d46u   /* "FMP1" */

/* proto: the numbers of net_proto (core/netrules.h) */
enum { PORTMAP_TCP = 1, PORTMAP_UDP = 2 };
/* flags: the socket was bound with SO_REUSEADDR. Several sockets of the
 * box that all say so share one box port, as on the host they would share
 * the port: the later ones bind the first one's real port (the host's
 * own rules then decide, e.g. Linux lets UDP sockets share it, and
 * refuses a second TCP bind of a listening port, as it does outside). */
#define PORTMAP_SHARED 1u

typedef struct portmap_entry {
    uint16_t vport;    /* the port the program bound (and sees) */
    uint16_t real;     /* the host port it really has; 0 while being bound */
    uint8_t proto;     /* PORTMAP_TCP / PORTMAP_UDP */
    uint8_t family;    /* 4 or 6 (IPv4-mapped IPv6 counts as 4) */
    uint16_t flags;    /* PORTMAP_SHARED */
    uint32_t pid;      /* the process that bound it (the broker's word) */
} portmap_entry;

typedef struct portmap_publish {
    uint16_t host;     /* host port */
    uint16_t box;      /* the box's port */
    uint8_t proto;     /* PORTMAP_TCP / PORTMAP_UDP */
    uint8_t reserved[3];
} portmap_publish;

typedef struct portmap {
    uint32_t magic;
    volatile uint32_t seq;    /* odd while the broker writes */
    uint32_t count;
    uint32_t publish_count;
    portmap_publish publish[PORTMAP_PUBLISH_MAX];
    portmap_entry entries[PORTMAP_MAX];
} portmap;

void portmap_init(portmap *m);

/* ---- readers (any process of the box; consistent copies) ---- */

/* The real port for a virtual one, 0 if none (or still being bound). */
uint16_t portmap_real_of(const portmap *m, uint8_t proto, uint8_t family, uint16_t vport);
/* The virtual port for a real one, 0 if none. */
uint16_t portmap_virtual_of(const portmap *m, uint8_t proto, uint8_t family, uint16_t real);
/* The host port a box port is published on, 0 if none. */
uint16_t portmap_published(const portmap *m, uint8_t proto, uint16_t vport);
/* A consistent copy of every entry and published port; counts written. */
size_t portmap_snapshot(const portmap *m, portmap_entry *entries, size_t cap, portmap_publish *publish,
                        size_t publish_cap, size_t *publish_count);

/* ---- the writer (the broker) ---- */

/* Takes vport for pid, real not known yet (0). FVM_E_EXISTS when the port
 * is taken in the box (alive(taken pid, ctx) says whether its owner still
 * runs; an entry of a process that ended is dropped and the claim
 * succeeds; alive may be NULL: every owner counts as alive), FVM_E_RANGE
 * when the map is full, FVM_E_INVALID for port 0 or an unknown proto or
 * family. */
fvm_status portmap_claim(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid,
                         int (*alive)(uint32_t pid, void *ctx), void *ctx, fvm_error *err);
/* The same with flags: a PORTMAP_SHARED claim on a port whose entries are
 * all shared and bound joins them (*join: their real port, to bind too;
 * 0 for a port nobody had). Any other claim on a taken port: FVM_E_EXISTS
 * (a shared port being bound still: FVM_E_EXISTS too). */
fvm_status portmap_claim_flags(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid, uint16_t flags,
                               int (*alive)(uint32_t pid, void *ctx), void *ctx, uint16_t *join, fvm_error *err);
/* The claim of pid got its real port. FVM_E_NOTFOUND when pid holds no
 * such claim; FVM_E_EXISTS when another entry has that real port already
 * (unless both are shared entries of the same box port). */
fvm_status portmap_bound(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint16_t real, uint32_t pid,
                         fvm_error *err);
/* pid gives vport up; 1 if an entry went. */
int portmap_release(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid);
/* Every entry of pid goes (the process ended); how many went. */
size_t portmap_forget_pid(portmap *m, uint32_t pid);
/* Replaces the published ports (count <= PORTMAP_PUBLISH_MAX). */
void portmap_set_publish(portmap *m, const portmap_publish *list, size_t count);

/* ---- the publish setting ----
 * "HOST:BOX[/tcp|/udp]", several separated by ',' or spaces; "" or "none"
 * for none. Ports 1..65535; tcp when no protocol is named. A host port or
 * a box port published twice for the same protocol is refused. Errors name
 * the 1-based column: "column 7: bad port '99999'". */
fvm_status portmap_publish_parse(const char *text, size_t len, portmap_publish *out, size_t cap, size_t *count,
                                 fvm_error *err);
/* The list back in that syntax ("18080:8080,5353:53/udp"; "none" when empty). */
size_t portmap_publish_format(const portmap_publish *list, size_t count, char *out, size_t cap);

/* ---- the control-pipe request (runtime -> broker) ----
 *   "FVMPRT01"  uint32 op   uint8 proto, family   uint16 vport, real, flags
 * reply: portmap_reply (status, and for CLAIM the real port to bind: the
 * published host port, or 0 for any free port). */
#define PORTMAP_REQUEST_MAGIC "FVMPRT01"
#define PORTMAP_REQUEST_SIZE  20
enum { PORTMAP_OP_CLAIM = 1, PORTMAP_OP_BOUND = 2, PORTMAP_OP_RELEASE = 3 };
/* reply status */
enum {
    PORTMAP_OK = 0,
    PORTMAP_IN_USE = 1,      /* the port is taken in this box (WSAEADDRINUSE) */
    PORTMAP_FULL = 2,        /* the map is full */
    PORTMAP_REFUSED = 3      /* not an isolated box, not a member, malformed */
};

typedef struct portmap_request {
    uint32_t op;
    uint8_t proto, family;
    uint16_t vport, real;
    uint16_t flags;    /* CLAIM: PORTMAP_SHARED; other bits refused */
} portmap_request;

typedef struct portmap_reply {
    uint32_t status;
    uint16_t real;     /* CLAIM: the port to bind (0: any) */
    uint16_t reserved;
} portmap_reply;

size_t portmap_request_encode(const portmap_request *r, uint8_t *out, size_t cap);
int portmap_is_request(const uint8_t *buf, size_t len);
/* FVM_E_INVALID for a wrong size or magic, an unknown op, proto or family,
 * or port 0 where a port is needed. */
fvm_status portmap_request_decode(const uint8_t *buf, size_t len, portmap_request *out, fvm_error *err);

#endif
