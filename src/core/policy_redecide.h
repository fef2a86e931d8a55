/* policy_redecide.h - the broker decides again what a boxed process's audit
 * record of a [net] or [process] decision claims (issue 17.7).
 *
 * A record arrives from the box as a claim: "I did OP on NAME, the policy
 * said DECISION by RULE". File, key and the other plain-name types are
 * decided again with policy_match on the name (broker/policy.c). Socket
 * operations and process starts are not a plain name match, so the runtime
 * sends their target too (core/brokermsg.h), and this file decides it again
 * with the same matchers the runtime uses (core/policy_net.h,
 * core/policy_process.h), for the sender's image as the broker sees it.
 *
 * The outcome of one claim:
 *   REDECIDE_CONFIRMED   the broker's decision and rule are the claimed ones
 *   REDECIDE_FORGED      they are not: *broker holds the broker's decision
 *                        word and rule label, which the log records instead,
 *                        flagged, with the claim kept beside it
 *   REDECIDE_SENDERS_WORD the broker cannot decide this one again (FVM's
 *                        own refusals that depend on the target process or
 *                        image file, a hash rule, a host name only the sender
 *                        resolved): logged as the sender's word, marked so
 *   REDECIDE_REFUSED     a claim the runtime never makes (an allow for an
 *                        operation that is only ever refused, a target that
 *                        does not match the name or does not parse): dropped
 *
 * Targets (what brokermsg.h says the runtime sends):
 *   [net]      "out:|in:|accept:" PROTO ":" ADDR [":" PORT] ["|" HOST]
 *              "name:" HOST   (resolving a host name; the target is the name)
 *              "family:" N    (a socket of an address family no rule names)
 *   [process]  start: the image's canonical file name (the name is the
 *              command line); open: the name is the image
 * CRT-free (memcmp, memset, strlen), no allocation: the caller passes the
 * scratch array for the program's [net] rules. */
#ifndef FVM_CORE_POLICY_REDECIDE_H
#define FVM_CORE_POLICY_REDECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/policy_net.h"

typedef enum redecide_result {
    REDECIDE_CONFIRMED = 0,
    REDECIDE_FORGED,
    REDECIDE_SENDERS_WORD,
    REDECIDE_REFUSED
} redecide_result;

/* What the record claims (UTF-8, not NUL-terminated; target may be empty). */
typedef struct redecide_claim {
    uint32_t type;                  /* policy_type */
    const char *op;
    size_t op_len;
    const char *decision;
    size_t decision_len;
    const char *rule;
    size_t rule_len;
    const char *name;
    size_t name_len;
    const char *target;
    size_t target_len;
} redecide_claim;

#define REDECIDE_RULE_MAX 300

/* The broker's own decision, when it has one (FORGED, and CONFIRMED). */
typedef struct redecide_outcome {
    char decision[16];              /* "open", "deny", ... NUL-terminated */
    char rule[REDECIDE_RULE_MAX];   /* policy_decision_label(), NUL-terminated */
    const char *why;                /* a short reason for SENDERS_WORD and REFUSED (static text) */
} redecide_outcome;

/* Does this file decide records of this type? ([net] and [process].) */
int policy_redecide_handles(uint32_t type);

/* Decides the claim again for the program (its image path, UTF-16; only
 * the file name counts for program-scoped rules). net_scratch/net_cap: room
 * for the program's [net] rules (when there are more, the claim is the
 * sender's word). */
redecide_result policy_redecide(const policy_view *view, const redecide_claim *claim, const uint16_t *program,
                                size_t program_len, net_policy_rule *net_scratch, size_t net_cap,
                                redecide_outcome *out);

/* Parses a [net] target of a socket operation into q (host points into the
 * text). Returns 1 when it is one; *head_len is the length of the part
 * before "|" (which must equal the record's name). For the fuzzer and the
 * tests as well. */
int policy_redecide_net_target(const char *text, size_t len, net_query *q, size_t *head_len);

#endif
