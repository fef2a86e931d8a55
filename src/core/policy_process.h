/* policy_process.h - the [process] section: which programs may start in a
 * box, and which processes outside it a boxed program may open.
 *
 * A [process] rule names programs by image path (a file pattern:
 * `deny **\powershell.exe`, `cow C:\Tools\**`) or by the SHA-256 of the
 * image file (`deny sha256:<64 hex digits>`). Actions:
 *   cow (the default)  starting the program is allowed, in the box;
 *   deny               starting it fails with access denied, and opening a
 *                      process of the box running it too;
 *   hide               starting it fails as if the file did not exist; a
 *                      process of the box running it cannot be opened;
 *   read               a process OUTSIDE the box running it may be opened
 *                      to query and wait on it, nothing more;
 *   open               a process outside the box running it may be opened
 *                      and acted on (use with care: memory, threads, all);
 *   audit              (flag) every start of a matching program is recorded.
 * Processes outside the box are otherwise invisible to it, and FVM's own
 * programs (the broker, fvm.exe) are never reachable, whatever a rule says.
 *
 * Hash rules are matched as the name "sha256\<hex>", path rules as the
 * image's canonical file name; a hash rule that matches wins over any path
 * rule (a hash names exactly one program, a path any file put there).
 * CRT-free except for what policy_match uses: the runtime links it. */
#ifndef FVM_CORE_POLICY_PROCESS_H
#define FVM_CORE_POLICY_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/policy.h"

#define POLICY_PROCESS_HASH_PREFIX "sha256:"
#define POLICY_PROCESS_HASH_UNITS  71u   /* "sha256\" + 64 hex digits */

/* Does the pattern (as written, variables expanded) name a program by hash? */
int policy_process_is_hash(const uint16_t *in, size_t n);

/* The canonical form of a hash pattern: "sha256\" and 64 lower-case hex
 * digits. Returns the units written (POLICY_PROCESS_HASH_UNITS), or 0 with
 * a message in err (and *bad_at, if not NULL, the offset of the problem in
 * `in`) for a malformed hash: not 64 digits, a non-hex character, a
 * wildcard. */
size_t policy_process_hash_form(const uint16_t *in, size_t n, uint16_t out[POLICY_PROCESS_HASH_UNITS],
                                size_t *bad_at, fvm_error *err);

/* Does the policy hold any hash rule? (Then each start hashes its image.) */
int policy_process_has_hash_rules(const policy_view *view);

/* The decision on starting (or opening) the program whose image has the
 * canonical file name `image` and, when known, the SHA-256 `hash_hex`
 * (64 hex digits, may be NULL). program is the deciding process's image,
 * for program-scoped rules. Returns FVM_OK; a failed match is deny. */
fvm_status policy_process_decide(const policy_view *view, const uint16_t *image, size_t image_len,
                                 const char *hash_hex, const uint16_t *program, size_t program_len,
                                 policy_decision *out);

#endif
