/* audit.c - the box's single audit writer (see broker.h). Filled in below
 * once the log writer (common/auditlog.c) is wired. */
#include "broker/broker.h"

BOOL broker_audit_start(const wchar_t *box_path, const wchar_t *box_name)
{
    return TRUE;
}

void broker_audit_write(const brokermsg_audit *msg)
{
}
