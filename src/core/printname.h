/* printname.h - what a printer name a program passes to the spooler names,
 * for the [print] rules (runtime/print.c).
 *
 * OpenPrinter takes more than a printer's name: "\\server\printer",
 * "printer, Job 7" (a job), "CUPS:printer, Port" (a port: what the spooler's
 * print processor writes a job to), "\\server, XcvMonitor Local Port" (the
 * port monitor's configuration), a server alone ("\\server" or nothing).
 * printname_parse reads such a name, as the spooler would, into the one name
 * the policy decides on:
 *   - a printer or a job of it: the printer's name, without any "\\server\"
 *     (a program must not reach a denied local printer by naming this
 *     machine as the server, so no server is ever part of the name);
 *   - a port: the print queue it leads to for the ports Wine sends to the
 *     host ("CUPS:Q" and "LPR:Q" are Q), otherwise the port's name as
 *     written ("FILE:", "LPT1:");
 *   - a server or a monitor's configuration: nothing to print on (no name).
 * Names are UTF-16 code units, counted; nothing is allocated. */
#ifndef FVM_CORE_PRINTNAME_H
#define FVM_CORE_PRINTNAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum printname_kind {
    PRINTNAME_INVALID = 0,  /* not a name the spooler accepts: an empty printer, a bad server part */
    PRINTNAME_SERVER,       /* the print server itself (NULL, "", "\\server") */
    PRINTNAME_PRINTER,      /* "printer", "\\server\printer" */
    PRINTNAME_JOB,          /* "printer, Job N" */
    PRINTNAME_PORT,         /* "port, Port" */
    PRINTNAME_XCV           /* "..., XcvMonitor M" / "..., XcvPort P": configuration */
} printname_kind;

typedef struct printname {
    printname_kind kind;
    const uint16_t *name;   /* the name decided on (points into the input) */
    size_t len;             /* its length in code units; 0 for SERVER, XCV, INVALID */
} printname;

/* Reads name[0..len) (name may be NULL when len is 0). Always fills *out. */
void printname_parse(const uint16_t *name, size_t len, printname *out);

/* The name of an audit record for a job: "<printer>, Document: <document>",
 * or "<printer>" when there is no document name
 * (the printer part never holds a comma, so the record's reader, the broker,
 * finds the printer again at the first comma). Cut to cap units; returns
 * the length written. */
size_t printname_audit_name(const uint16_t *printer, size_t printer_len, const uint16_t *document,
                            size_t document_len, uint16_t *out, size_t cap);

/* The printer part of an audit record's name (up to the first comma). */
size_t printname_audit_printer_len(const uint16_t *name, size_t len);

#endif
