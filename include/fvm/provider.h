/* fvm/provider.h - the decision provider protocol (FVMASK/1).
 *
 * A policy rule with the action `ask(timeout=2s, default=deny)` hands the
 * decision to an external program, the decision provider, which listens on a
 * named pipe. A boxed process connects for each decision, writes one request
 * line and reads one reply line. If no provider listens, or it does not reply
 * within the rule's timeout (connection included), the rule's default
 * applies. The provider is an ordinary program: FVM never waits for it longer
 * than the policy says.
 *
 * Pipe: \\.\pipe\fvm-decision-provider, or the name in the box's box.ini
 * ([box] provider=NAME gives \\.\pipe\NAME).
 *
 * Request, UTF-8, one line, fields separated by TAB (a TAB or newline in a
 * field is sent as a space):
 *     FVMASK/1 <TAB> box <TAB> pid <TAB> image <TAB> type <TAB> op <TAB> name <LF>
 *   type: file, key, object, ...; op: open, create, write, query, ...;
 *   name: the canonical name the policy matched (e.g. \??\C:\Data\x.txt).
 * Reply, one line:
 *     allow | deny | hide | read | open  <LF>
 *   allow means copy-on-write (what a box does without a rule); the others
 *   are the policy actions of the same name. Anything else counts as no
 *   reply (the default applies).
 */
#ifndef FVM_PROVIDER_H
#define FVM_PROVIDER_H

#define FVM_PROVIDER_PROTOCOL    "FVMASK/1"
#define FVM_PROVIDER_PIPE_PREFIX "\\\\.\\pipe\\"
#define FVM_PROVIDER_DEFAULT     "fvm-decision-provider"
#define FVM_PROVIDER_MAX_LINE    8192

#endif
