/* floor_rules.h - the portable part of the floor (runtime/floor.c): which
 * directories get Landlock read rules, the seccomp filter program, and the
 * ELF interpreter of Wine's loader. No system calls here: the runtime makes
 * them; these functions decide, and are unit-tested natively (the filter is
 * even loaded into a real child process by tests/unit/test_floor_rules.c). */
#ifndef FVM_CORE_FLOOR_RULES_H
#define FVM_CORE_FLOOR_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The folder that holds every box and FVM's own files, from the box's real
 * Linux path: <root> for a box at <root>/boxes/<name>, else the box's
 * parent. The floor makes it unreadable, except the box itself. */
fvm_status floor_fvm_root(const char *box, char *root, size_t cap, fvm_error *err);

/* Calls visit(ctx, dir, skip) for each directory from "/" down to the parent
 * of `hidden` (an absolute path without trailing slash), skip being the
 * entry of dir that leads on to hidden: everything else in dir gets a read
 * rule, so all but hidden is readable. Stops at the first visit that does
 * not return FVM_OK and returns its status. */
typedef fvm_status (*floor_visit_fn)(void *ctx, const char *dir, const char *skip);
fvm_status floor_walk_to(const char *hidden, floor_visit_fn visit, void *ctx, fvm_error *err);

/* A classic BPF instruction (struct sock_filter). */
typedef struct floor_bpf_insn {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
} floor_bpf_insn;

#define FLOOR_BPF_MAX 96

/* The seccomp filter for x86_64 (design.md lists what it refuses). Returns
 * the instruction count, 0 if cap is too small. */
size_t floor_seccomp_filter(floor_bpf_insn *out, size_t cap);

/* The filter stacked on a box's Wine server when its policy lets no program
 * use UDP (net_policy_udp_closed): socket(AF_INET or AF_INET6, SOCK_DGRAM)
 * fails with EACCES, everything else is left to the other filters. Returns
 * the instruction count, 0 if cap is too small. */
size_t floor_seccomp_no_inet_datagrams(floor_bpf_insn *out, size_t cap);

/* The filter stacked on a box's Wine server when its policy denies some
 * addresses to every program (net_policy_connect_checks_needed): each
 * connect() is sent to a supervisor (SECCOMP_RET_USER_NOTIF; install it
 * with SECCOMP_FILTER_FLAG_NEW_LISTENER, core/floor_supervise.h), other
 * calls are left to the other filters. Returns the instruction count, 0
 * if cap is too small. */
size_t floor_seccomp_notify_connect(floor_bpf_insn *out, size_t cap);

/* The PT_INTERP path in the first bytes of an ELF64 file. FVM_OK with the
 * path, FVM_E_NOTFOUND for a static binary, FVM_E_INVALID if head is not
 * ELF64 or the headers lie beyond it, FVM_E_RANGE if out is too small. */
fvm_status floor_elf_interpreter(const unsigned char *head, size_t n, char *out, size_t cap, fvm_error *err);

#endif
