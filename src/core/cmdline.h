/* cmdline.h - splitting a Windows command line the way the C runtime does.
 *
 * `fvm run PROGRAM ARGS...` hands the child the user's command line from
 * PROGRAM on, byte for byte, instead of re-quoting parsed arguments: quoting
 * is lossy (cmd /c "a > b" would not survive), so we only need to know where
 * each argument starts and what it says. Works on UTF-16 code units. */
#ifndef FVM_CORE_CMDLINE_H
#define FVM_CORE_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cmdline_token {
    size_t start;     /* offset of the token's first code unit in the line */
    size_t end;       /* offset just past the token */
} cmdline_token;

/* Finds the next argument at or after *pos; returns 0 at the end of the line.
 * If value is non-NULL the unquoted argument is written there (at most
 * value_cap-1 units, always terminated). The first argument of a command line
 * (the program) follows different rules: see cmdline_next_program. */
int cmdline_next(const uint16_t *line, size_t *pos, cmdline_token *tok,
                 uint16_t *value, size_t value_cap);

/* The program name: quotes delimit it, backslashes are literal. */
int cmdline_next_program(const uint16_t *line, size_t *pos, cmdline_token *tok,
                         uint16_t *value, size_t value_cap);

#endif
