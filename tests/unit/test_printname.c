/* test_printname.c - printer names as the spooler reads them
 * (core/printname.c): printers, jobs, ports, servers, monitor configuration,
 * the names a program could use to reach a printer by another spelling, and
 * the audit record's name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/printname.h"

static size_t units(const char *s, uint16_t *out)
{
    size_t n = 0;
    for (; s[n]; n++)
        out[n] = (uint16_t)(unsigned char)s[n];
    return n;
}

static void expect(const char *name, printname_kind kind, const char *decided)
{
    uint16_t in[512];
    size_t n = units(name, in);
    printname pn;
    printname_parse(in, n, &pn);
    assert_int_equal(pn.kind, kind);
    char got[512];
    for (size_t i = 0; i < pn.len; i++)
        got[i] = (char)pn.name[i];
    got[pn.len] = 0;
    assert_string_equal(got, decided);
}

static void printers(void **state)
{
    (void)state;
    expect("FVM_PDF", PRINTNAME_PRINTER, "FVM_PDF");
    expect("  My Printer  ", PRINTNAME_PRINTER, "My Printer");
    expect("\\\\host\\FVM_PDF", PRINTNAME_PRINTER, "FVM_PDF");   /* the server is never part of the name */
    expect("\\\\localhost\\Office Laser", PRINTNAME_PRINTER, "Office Laser");
}

static void jobs_and_ports(void **state)
{
    (void)state;
    expect("FVM_PDF, Job 12", PRINTNAME_JOB, "FVM_PDF");
    expect("FVM_PDF,Job 1", PRINTNAME_JOB, "FVM_PDF");
    expect("\\\\host\\FVM_PDF, Job 3", PRINTNAME_JOB, "FVM_PDF");
    expect("CUPS:FVM_PDF, Port", PRINTNAME_PORT, "FVM_PDF");   /* a port: the queue it leads to */
    expect("cups:FVM_PDF,port", PRINTNAME_PORT, "FVM_PDF");
    expect("LPR:queue, Port", PRINTNAME_PORT, "queue");
    expect("FILE:, Port", PRINTNAME_PORT, "FILE:");
    expect("LPT1:, Port", PRINTNAME_PORT, "LPT1:");
}

static void servers_and_configuration(void **state)
{
    (void)state;
    uint16_t none[1];
    printname pn;
    printname_parse(NULL, 0, &pn);
    assert_int_equal(pn.kind, PRINTNAME_SERVER);
    none[0] = 0;
    printname_parse(none, 1, &pn);
    assert_int_equal(pn.kind, PRINTNAME_SERVER);
    expect("\\\\host", PRINTNAME_SERVER, "");
    expect(",XcvMonitor Local Port", PRINTNAME_XCV, "");
    expect("\\\\host, XcvPort CUPS:FVM_PDF", PRINTNAME_XCV, "");
}

static void invalid(void **state)
{
    (void)state;
    expect("FVM_PDF, Other", PRINTNAME_INVALID, "");
    expect("FVM_PDF, Job", PRINTNAME_INVALID, "");
    expect(", Job 3", PRINTNAME_INVALID, "");
    expect("\\\\\\x", PRINTNAME_INVALID, "");
    expect("\\\\host, Port", PRINTNAME_INVALID, "");
    expect("CUPS:, Port", PRINTNAME_INVALID, "");
    expect("\\\\host\\", PRINTNAME_INVALID, "");
}

static void embedded_nul_ends_the_name(void **state)
{
    (void)state;
    uint16_t in[16];
    size_t n = units("FVM_PDF?x", in);
    in[7] = 0;
    printname pn;
    printname_parse(in, n, &pn);
    assert_int_equal(pn.kind, PRINTNAME_PRINTER);
    assert_int_equal(pn.len, 7);
}

static void audit_name(void **state)
{
    (void)state;
    uint16_t printer[32], doc[32], out[128];
    size_t pl = units("FVM_PDF", printer), dl = units("Report, final", doc);
    size_t n = printname_audit_name(printer, pl, doc, dl, out, 128);
    char got[128];
    for (size_t i = 0; i < n; i++)
        got[i] = (char)out[i];
    got[n] = 0;
    assert_string_equal(got, "FVM_PDF, Document: Report, final");
    assert_int_equal(printname_audit_printer_len(out, n), 7);
    /* Cut to the room given, never past it. */
    assert_int_equal(printname_audit_name(printer, pl, doc, dl, out, 5), 5);
    /* A comma in a printer's name (none reaches here from the parser) cannot
     * move where the reader finds the printer. */
    pl = units("A,B", printer);
    n = printname_audit_name(printer, pl, doc, 0, out, 128);
    assert_int_equal(n, 3);   /* no document: the printer alone */
    assert_int_equal(printname_audit_printer_len(out, n), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(printers),
        cmocka_unit_test(jobs_and_ports),
        cmocka_unit_test(servers_and_configuration),
        cmocka_unit_test(invalid),
        cmocka_unit_test(embedded_nul_ends_the_name),
        cmocka_unit_test(audit_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
