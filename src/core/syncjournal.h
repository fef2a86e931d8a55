/* syncjournal.h - the journal that makes `fvm commit` crash-safe.
 *
 * A commit first decides everything (policy, conflicts, resolutions) and
 * writes the resulting list of steps as one file (cli/commit.c keeps it in
 * <root>\journals, outside the box folder a box program can write),
 * made atomically (written to a temporary name, then renamed). Then it
 * performs the steps in order and appends "done N" after each. Every step
 * is idempotent (it checks whether its effect is already there), so a
 * commit killed anywhere is finished by the next `fvm commit`, which reads
 * the journal, skips the steps marked done and redoes the one in flight.
 * The journal is deleted when the last step is done.
 *
 * Text, UTF-8, one record a line:
 *     FVM-COMMIT-JOURNAL 1
 *     step <TAB> KIND <TAB> PATH [<TAB> PATH2]     (count times)
 *     end <count>
 *     done <n>                                     (appended, 0-based)
 * PATH is a host path in NT form ("\??\C:\dir\file", "\??\UNC\srv\sh\x");
 * PATH2 is the other path a step needs (see the kinds). A line cut short by
 * a crash (no '\n') at the end is ignored; anything else malformed is
 * refused with its line number: the journal is a file on disk, so it is
 * parsed as outside input (fuzz/fuzz_syncjournal.c). Portable C11. */
#ifndef FVM_CORE_SYNCJOURNAL_H
#define FVM_CORE_SYNCJOURNAL_H

#include <stddef.h>

#include "core/error.h"

#define SYNCJOURNAL_MAGIC "FVM-COMMIT-JOURNAL 1"

typedef enum sync_step_kind {
    SYNC_STEP_LAND = 'L',     /* the box copy of PATH replaces (or creates) the host file; then dropped from the box */
    SYNC_STEP_LAND_AS = 'K',  /* the box copy of PATH lands at PATH2 (keep both); then dropped from the box */
    SYNC_STEP_DROP = 'T',     /* the box's version of PATH is thrown away (the host's wins) */
    SYNC_STEP_MKDIR = 'M',    /* the folder PATH is created on the host; its entry dropped */
    SYNC_STEP_DELETE = 'D',   /* the host file PATH is deleted; its tombstone dropped */
    SYNC_STEP_RMDIR = 'R',    /* the host folder PATH is removed if empty; its tombstone dropped */
    SYNC_STEP_REG_KEY = 'k',  /* registry: the key PATH (\REGISTRY\...) is created on the host */
    SYNC_STEP_REG_VALUE = 'v',/* registry: value PATH2 (name) of key PATH is set on the host from registry.dat */
    SYNC_STEP_REG_DELVALUE = 'x', /* registry: value PATH2 of key PATH is deleted on the host */
    SYNC_STEP_REG_DELKEY = 'X',   /* registry: key PATH is deleted on the host (with its subkeys) */
    SYNC_STEP_REG_DROP = 'y',     /* registry: the box's value PATH2 of key PATH is dropped (--theirs: the host's stays) */
    SYNC_STEP_REG_SAVE = 'S'      /* registry: the committed values leave registry.dat, key states updated */
} sync_step_kind;

typedef struct sync_step {
    sync_step_kind kind;
    char *path;
    char *path2;             /* NULL when the kind has none */
    int done;
} sync_step;

typedef struct sync_journal {
    sync_step *steps;
    size_t count, cap;
    size_t done_count;
} sync_journal;

/* 1 when kind is one of sync_step_kind; *needs_path2 tells whether it has PATH2. */
int sync_step_kind_valid(int kind, int *needs_path2);

/* Appends a step (copies the strings). FVM_E_INVALID for a path with a
 * control character or an unknown kind, FVM_E_NOMEM. */
fvm_status sync_journal_add(sync_journal *j, sync_step_kind kind, const char *path, const char *path2,
                            fvm_error *err);

/* The plan as text (malloc'd, *len bytes): the header, the steps, "end". */
fvm_status sync_journal_format(const sync_journal *j, char **text, size_t *len, fvm_error *err);

/* Parses a journal file's content, "done" lines included. */
fvm_status sync_journal_parse(const char *text, size_t len, sync_journal *out, fvm_error *err);

void sync_journal_free(sync_journal *j);

#endif
