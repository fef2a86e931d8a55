/* policy.c - the broker compiles the box's policy once per box start,
 * keeps the blob for its own decisions (the audit writer decides again what
 * a record claims was decided) and hands a copy to publish.c, which puts it
 * in the section the box's processes map read-only (runtime/policy.c). The
 * broker never decides from the published copy: a program stepping around
 * the hooks could write that one. */
#include "broker/broker.h"

#include <string.h>

#include "common/boxcfg.h"
#include "common/policyload.h"
#include "core/policy.h"
#include "core/printname.h"
#include "core/policy_redecide.h"

#include <stdlib.h>

static policy_view g_view;
static BOOL g_have_view;

const struct policy_view *broker_policy_view(void)
{
    return g_have_view ? &g_view : NULL;
}

BOOL broker_policy_publish(const wchar_t *box_path)
{
    wchar_t path[FVM_PATH_MAX];
    char why[512];
    void *blob = NULL;
    size_t len = 0;
    if (fvm_policy_box_path(box_path, path, FVM_PATH_MAX) != FVM_OK ||
        fvm_policy_compile_file(path, &blob, &len, NULL, NULL, why, sizeof why) != FVM_OK)
        return FALSE;
    fvm_error err;
    g_have_view = policy_blob_open(blob, len, &g_view, &err) == FVM_OK;   /* the blob stays: the box's lifetime */
    return g_have_view && broker_publish_start(box_path, blob, len);
}

static const char *action_word(policy_action a)
{
    switch (a) {
    case POLICY_ACTION_OPEN: return "open";
    case POLICY_ACTION_COW: return "cow";
    case POLICY_ACTION_READ: return "read";
    case POLICY_ACTION_ASK: return "ask";
    case POLICY_ACTION_HIDE: return "hide";
    case POLICY_ACTION_DENY: return "deny";
    default: return "none";
    }
}

static BOOL policy_gives(uint32_t type, const char *name, const wchar_t *image, const char *decision,
                        const char *rule);

BOOL broker_policy_confirms(uint32_t type, const char *name, const wchar_t *image, const char *decision,
                            const char *rule, BOOL *decided_again)
{
    *decided_again = policy_gives(type, name, image, decision, rule);
    /* A refusal the policy does not give is taken as claimed: FVM's own
     * refusals (desktop.c, the name gate) are audited as denies whatever
     * the policy says, and a claimed refusal cannot make anything look
     * allowed (its rule label stays the sender's word, and the record says
     * so: "decided":"sender"). */
    return *decided_again || !strcmp(decision, "deny");
}

static BOOL policy_gives(uint32_t type, const char *name, const wchar_t *image, const char *decision,
                        const char *rule)
{
    /* Network and process decisions are not a plain name match: see
     * broker_policy_redecide. */
    if (policy_redecide_handles(type) || !g_have_view)
        return FALSE;
    static __thread wchar_t wide[FVM_PATH_MAX * 4];
    int len = MultiByteToWideChar(CP_UTF8, 0, name, -1, wide, FVM_PATH_MAX * 4);
    if (len <= 1)
        return FALSE;
    size_t decided = (size_t)len - 1;
    /* A print record is named "<printer>, Document: <document>": the
     * policy decided on the printer (runtime/print.c). */
    if (type == POLICY_TYPE_PRINT)
        decided = printname_audit_printer_len((const uint16_t *)wide, decided);
    policy_decision d;
    if (policy_match(&g_view, (policy_type)type, (const uint16_t *)wide, decided, (const uint16_t *)image,
                     wcslen(image), &d) != FVM_OK || !d.audit)
        return FALSE;   /* a rule that does not audit never made this record */
    char label[300];
    policy_decision_label(&d, label, sizeof label);
    if (strcmp(label, rule))
        return FALSE;
    /* An "ask" rule's record carries the answer (the provider's, or the
     * rule's default): any action but ask itself. */
    if (d.action == POLICY_ACTION_ASK)
        return strcmp(decision, "ask") != 0;
    return !strcmp(decision, action_word(d.action));
}

#define NET_RULES_CHECKED 256   /* the runtime loads up to 128 (runtime/net.c) */

redecide_result broker_policy_redecide(const brokermsg_audit *msg, const wchar_t *image, redecide_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (!g_have_view) {
        out->why = "the broker has no view of the policy";
        return REDECIDE_SENDERS_WORD;
    }
    redecide_claim c = {msg->type,          msg->op.text,   msg->op.len,   msg->decision.text, msg->decision.len,
                        msg->rule.text,     msg->rule.len,  msg->name.text, msg->name.len,     msg->target.text,
                        msg->target.len};
    net_policy_rule *rules = malloc(NET_RULES_CHECKED * sizeof *rules);
    if (!rules) {
        out->why = "out of memory";
        return REDECIDE_SENDERS_WORD;
    }
    redecide_result r = policy_redecide(&g_view, &c, (const uint16_t *)image, wcslen(image), rules, NET_RULES_CHECKED,
                                        out);
    free(rules);
    return r;
}
