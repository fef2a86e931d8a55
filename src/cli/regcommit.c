/* regcommit.c - the registry part of fvm commit (placeholder until the
 * registry commit lands: reports nothing to do). */
#include "cli/cli.h"

int sync_commit_registry(const box *b, const struct sync_policy *policy, BOOL dry_run, BOOL ours, BOOL theirs,
                         BOOL interactive, unsigned *conflicts, unsigned *refused, unsigned *planned)
{
    return 0;
}
