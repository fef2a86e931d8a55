/* policy_match.c - the decision for one name, from a compiled policy blob;
 * the blob's validation; the precedence order shared by every stage.
 *
 * The blob holds one trie per resource type over name components (see
 * policy.h). Matching keeps the set of live trie nodes: a node is live when
 * its pattern prefix matches the components read so far. For each component
 * every live node contributes its literal child of that name (one hash
 * probe), each wildcard child whose glob matches, and itself if it is a "**"
 * node (which matches any number of components). Whenever a node becomes
 * live, its "**" child does too, since "**" also matches zero components.
 * After the last component, the live nodes' rules are the matching rules;
 * precedence picks one. The live set sits in two fixed arrays on the stack
 * (POLICY_MATCH_MAX_STATES entries); the compiler proved the policy never
 * needs more.
 *
 * Everything here runs in the CRT-free runtime: no allocation, only
 * memcpy/memset/memcmp/strlen. Blob structures are read with memcpy, so no
 * alignment or aliasing assumption is made about where the blob lives beyond
 * the 8-byte alignment the validator checks. */
#include "core/policy.h"

#include <string.h>

/* ---- vocabulary --------------------------------------------------------- */

static const char *const type_names[POLICY_TYPE_COUNT] = {
    "file", "key", "object", "process", "net", "service", "screen", "print", "desktop", "memory", "data",
};

static const char *const action_names[] = {"none", "open", "cow", "read", "ask", "hide", "deny"};

const char *policy_type_name(policy_type type)
{
    return (unsigned)type < POLICY_TYPE_COUNT ? type_names[type] : "?";
}

const char *policy_action_name(policy_action action)
{
    return (unsigned)action <= POLICY_ACTION_MAX ? action_names[action] : "?";
}

int policy_type_enforced(policy_type type)
{
    return type == POLICY_TYPE_FILE || type == POLICY_TYPE_KEY || type == POLICY_TYPE_OBJECT ||
           type == POLICY_TYPE_PROCESS || type == POLICY_TYPE_SERVICE || type == POLICY_TYPE_NET ||
           type == POLICY_TYPE_PRINT || type == POLICY_TYPE_SCREEN || type == POLICY_TYPE_DESKTOP;
}

policy_action policy_type_default_action(policy_type type)
{
    /* [screen] and [desktop] name what crosses the box's edge through the
     * window system (capture, clipboard-in, clipboard-out): closed unless a
     * rule opens it. */
    if (type == POLICY_TYPE_SCREEN || type == POLICY_TYPE_DESKTOP)
        return POLICY_ACTION_DENY;
    /* [net]: what no rule names is allowed (runtime/net.c refuses raw sockets by itself).
     * [print]: printing is allowed unless a rule says otherwise (runtime/print.c). */
    return policy_type_enforced(type) && type != POLICY_TYPE_NET && type != POLICY_TYPE_PRINT ? POLICY_ACTION_COW
                                                                                           : POLICY_ACTION_OPEN;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int policy_type_from_name(const char *name, size_t len, policy_type *out)
{
    for (unsigned t = 0; t < POLICY_TYPE_COUNT; t++) {
        const char *candidate = type_names[t];
        size_t i = 0;
        while (i < len && candidate[i] && ascii_lower(name[i]) == candidate[i])
            i++;
        if (i == len && candidate[i] == 0) {
            *out = (policy_type)t;
            return 1;
        }
    }
    return 0;
}

/* ---- precedence ----------------------------------------------------------- */

/* Compares one step: more is better when more_wins, fewer otherwise. */
static int step(uint32_t a, uint32_t b, int more_wins)
{
    if (a == b)
        return 0;
    return ((a > b) == (more_wins != 0)) ? 1 : -1;
}

int policy_rank_compare(const policy_rank *a, const policy_rank *b, policy_tiebreak *decided_by)
{
    struct {
        uint32_t a, b;
        int more_wins;
        policy_tiebreak tie;
    } const steps[] = {
        {(uint32_t)a->scope, (uint32_t)b->scope, 1, POLICY_TIE_SCOPE},
        {a->literal_chars, b->literal_chars, 1, POLICY_TIE_LITERALS},
        {a->globstars, b->globstars, 0, POLICY_TIE_GLOBSTARS},
        {a->stars, b->stars, 0, POLICY_TIE_STARS},
        {a->qmarks, b->qmarks, 0, POLICY_TIE_QMARKS},
        {(uint32_t)a->action, (uint32_t)b->action, 1, POLICY_TIE_ACTION},
        {a->order, b->order, 1, POLICY_TIE_ORDER},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int c = step(steps[i].a, steps[i].b, steps[i].more_wins);
        if (c) {
            if (decided_by)
                *decided_by = steps[i].tie;
            return c;
        }
    }
    if (decided_by)
        *decided_by = POLICY_TIE_NONE;
    return 0;
}

const char *policy_tiebreak_text(policy_tiebreak tie)
{
    switch (tie) {
    case POLICY_TIE_NONE: return "identical";
    case POLICY_TIE_SCOPE: return "narrower program scope";
    case POLICY_TIE_LITERALS: return "more literal characters";
    case POLICY_TIE_GLOBSTARS: return "fewer '**'";
    case POLICY_TIE_STARS: return "fewer '*'";
    case POLICY_TIE_QMARKS: return "fewer '?'";
    case POLICY_TIE_ACTION: return "stricter action";
    case POLICY_TIE_ORDER: return "later in the policy";
    }
    return "?";
}

/* ---- hashing -------------------------------------------------------------- */

uint32_t policy_name_hash(const uint16_t *units, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= ntpath_upcase(NULL, units[i]);
        h *= 16777619u;
    }
    return h;
}

policy_component_kind policy_component_classify(const uint16_t *c, size_t len)
{
    if (len == 2 && c[0] == '*' && c[1] == '*')
        return POLICY_COMPONENT_GLOBSTAR;
    if (len == 2 && c[0] == '?' && c[1] == '?')
        return POLICY_COMPONENT_LITERAL;
    for (size_t i = 0; i < len; i++)
        if (c[i] == '*' || c[i] == '?')
            return POLICY_COMPONENT_GLOB;
    return POLICY_COMPONENT_LITERAL;
}

uint64_t policy_blob_checksum(const void *blob, size_t len)
{
    const uint8_t *p = blob;
    size_t field = offsetof(policy_blob_header, checksum);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        uint8_t byte = (i >= field && i < field + sizeof(uint64_t)) ? 0 : p[i];
        h ^= byte;
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- reading the blob ---------------------------------------------------------- */

static const uint32_t element_sizes[POLICY_BLOB_SECTION_COUNT] = {
    sizeof(policy_blob_node), sizeof(policy_blob_slot), sizeof(policy_blob_edge), sizeof(uint32_t),
    sizeof(policy_blob_rule), sizeof(policy_blob_slot), sizeof(uint32_t),       sizeof(uint16_t),
    sizeof(char),
};

static const char *const section_names[POLICY_BLOB_SECTION_COUNT] = {
    "nodes", "literal slots", "wildcard edges", "node rules", "rules", "program slots", "scope ids", "units", "text",
};

typedef struct blob {
    const uint8_t *base;
    policy_blob_header h;
} blob;

static void blob_init(blob *b, const policy_view *view)
{
    b->base = view->base;
    memcpy(&b->h, view->base, sizeof b->h);
}

static const uint8_t *element(const blob *b, int section, uint32_t index)
{
    return b->base + b->h.sections[section].offset + (size_t)index * element_sizes[section];
}

static policy_blob_node node_at(const blob *b, uint32_t i)
{
    policy_blob_node n;
    memcpy(&n, element(b, POLICY_BLOB_NODES, i), sizeof n);
    return n;
}

static policy_blob_slot slot_at(const blob *b, int section, uint32_t i)
{
    policy_blob_slot s;
    memcpy(&s, element(b, section, i), sizeof s);
    return s;
}

static policy_blob_edge edge_at(const blob *b, uint32_t i)
{
    policy_blob_edge e;
    memcpy(&e, element(b, POLICY_BLOB_WILDCARDS, i), sizeof e);
    return e;
}

static policy_blob_rule rule_at(const blob *b, uint32_t i)
{
    policy_blob_rule r;
    memcpy(&r, element(b, POLICY_BLOB_RULES, i), sizeof r);
    return r;
}

static uint32_t u32_at(const blob *b, int section, uint32_t i)
{
    uint32_t v;
    memcpy(&v, element(b, section, i), sizeof v);
    return v;
}

static const uint16_t *units_at(const blob *b, uint32_t offset)
{
    return (const uint16_t *)(const void *)element(b, POLICY_BLOB_UNITS, offset);
}

static const char *text_at(const blob *b, uint32_t offset)
{
    return (const char *)element(b, POLICY_BLOB_TEXT, offset);
}

/* ---- validation ------------------------------------------------------------------- */

/* A span [offset, offset+len) inside a section of count elements. */
static int span_ok(uint32_t offset, uint32_t len, uint32_t count)
{
    return (uint64_t)offset + len <= count;
}

static int valid_rule_action(uint8_t a)
{
    return a >= POLICY_ACTION_OPEN && a <= POLICY_ACTION_MAX;
}

static fvm_status validate_header(const uint8_t *p, size_t len, policy_blob_header *h, fvm_error *err)
{
    if (!p)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: no data");
    if (((uintptr_t)p & 7u) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: not 8-byte aligned in memory");
    if (len < sizeof *h)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: %lu bytes, shorter than its header (%lu)",
                             (unsigned long)len, (unsigned long)sizeof *h);
    memcpy(h, p, sizeof *h);
    if (memcmp(h->magic, POLICY_BLOB_MAGIC, sizeof h->magic) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: bad magic (not a compiled policy)");
    if (h->version != POLICY_BLOB_VERSION)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: version %lu, this build reads version %u",
                             (unsigned long)h->version, POLICY_BLOB_VERSION);
    if (h->header_size != sizeof *h)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: header size %lu, expected %lu",
                             (unsigned long)h->header_size, (unsigned long)sizeof *h);
    if (h->total_size != len)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: header says %lu bytes, got %lu (truncated?)",
                             (unsigned long)h->total_size, (unsigned long)len);
    if (policy_blob_checksum(p, len) != h->checksum)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: checksum mismatch (corrupt)");
    if (h->max_states == 0 || h->max_states > POLICY_MATCH_MAX_STATES)
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: live-state bound %lu outside 1..%u",
                             (unsigned long)h->max_states, POLICY_MATCH_MAX_STATES);
    for (int s = 0; s < POLICY_BLOB_SECTION_COUNT; s++) {
        const policy_blob_section *sec = &h->sections[s];
        if (sec->offset % 8 != 0 || sec->offset < sizeof *h ||
            (uint64_t)sec->offset + (uint64_t)sec->count * element_sizes[s] > len)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: section '%s' (offset %lu, %lu elements) "
                                 "is misaligned or outside the blob", section_names[s],
                                 (unsigned long)sec->offset, (unsigned long)sec->count);
    }
    uint32_t nodes = h->sections[POLICY_BLOB_NODES].count;
    for (int t = 0; t < POLICY_TYPE_COUNT; t++) {
        if (h->roots[t] != POLICY_NONE && h->roots[t] >= nodes)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: root of type %s is node %lu of %lu",
                                 type_names[t], (unsigned long)h->roots[t], (unsigned long)nodes);
        if (!valid_rule_action(h->default_actions[t]) || h->default_actions[t] == POLICY_ACTION_ASK)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: bad default action %u for type %s",
                                 (unsigned)h->default_actions[t], type_names[t]);
    }
    return FVM_OK;
}

static fvm_status validate_slots(const blob *b, int section, uint32_t value_limit, fvm_error *err)
{
    uint32_t units = b->h.sections[POLICY_BLOB_UNITS].count;
    for (uint32_t i = 0; i < b->h.sections[section].count; i++) {
        policy_blob_slot s = slot_at(b, section, i);
        if (s.value == POLICY_NONE)
            continue;
        if (s.value >= value_limit || !span_ok(s.name_offset, s.name_len, units))
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: %s entry %lu is out of range",
                                 section_names[section], (unsigned long)i);
    }
    return FVM_OK;
}

static int is_power_of_two(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static fvm_status validate_nodes(const blob *b, fvm_error *err)
{
    const policy_blob_section *s = b->h.sections;
    uint32_t nodes = s[POLICY_BLOB_NODES].count;
    for (uint32_t i = 0; i < nodes; i++) {
        policy_blob_node n = node_at(b, i);
        int ok = (n.literal_slots == 0 || (is_power_of_two(n.literal_slots) &&
                                           span_ok(n.literal_first, n.literal_slots, s[POLICY_BLOB_LITERALS].count))) &&
                 span_ok(n.wildcard_first, n.wildcard_count, s[POLICY_BLOB_WILDCARDS].count) &&
                 (n.globstar == POLICY_NONE || n.globstar < nodes) &&
                 span_ok(n.rules_first, n.rules_count, s[POLICY_BLOB_NODE_RULES].count) &&
                 (n.flags & ~POLICY_NODE_GLOBSTAR) == 0;
        if (!ok)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: node %lu has a reference out of range",
                                 (unsigned long)i);
    }
    fvm_status st = validate_slots(b, POLICY_BLOB_LITERALS, nodes, err);
    if (st != FVM_OK)
        return st;
    for (uint32_t i = 0; i < s[POLICY_BLOB_WILDCARDS].count; i++) {
        policy_blob_edge e = edge_at(b, i);
        if (e.child >= nodes || !span_ok(e.pattern_offset, e.pattern_len, s[POLICY_BLOB_UNITS].count))
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: wildcard edge %lu is out of range",
                                 (unsigned long)i);
    }
    for (uint32_t i = 0; i < s[POLICY_BLOB_NODE_RULES].count; i++)
        if (u32_at(b, POLICY_BLOB_NODE_RULES, i) >= s[POLICY_BLOB_RULES].count)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: node rule %lu names a missing rule",
                                 (unsigned long)i);
    return FVM_OK;
}

static fvm_status validate_rules(const blob *b, fvm_error *err)
{
    const policy_blob_section *s = b->h.sections;
    uint32_t text = s[POLICY_BLOB_TEXT].count, units = s[POLICY_BLOB_UNITS].count;
    for (uint32_t i = 0; i < s[POLICY_BLOB_RULES].count; i++) {
        policy_blob_rule r = rule_at(b, i);
        int ask_ok = r.action == POLICY_ACTION_ASK
                         ? (valid_rule_action(r.ask_default) && r.ask_default != POLICY_ACTION_ASK)
                         : r.ask_default == 0;
        int ok = r.type < POLICY_TYPE_COUNT && valid_rule_action(r.action) && r.audit <= 1 &&
                 r.scope <= POLICY_SCOPE_PROGRAM && ask_ok &&
                 (r.scope != POLICY_SCOPE_ALL || r.scope_count == 0) &&
                 span_ok(r.scope_first, r.scope_count, s[POLICY_BLOB_SCOPE_IDS].count) &&
                 span_ok(r.scope_name_offset, r.scope_name_len, text) && span_ok(r.text_offset, r.text_len, text) &&
                 span_ok(r.file_offset, r.file_len, text) && span_ok(r.pattern_offset, r.pattern_len, units);
        if (!ok)
            return fvm_error_set(err, FVM_E_INVALID, "policy blob: rule %lu has a field out of range",
                                 (unsigned long)i);
    }
    return validate_slots(b, POLICY_BLOB_PROGRAMS, POLICY_NONE, err);
}

fvm_status policy_blob_open(const void *data, size_t len, policy_view *view, fvm_error *err)
{
    blob b;
    fvm_status st = validate_header(data, len, &b.h, err);
    if (st != FVM_OK)
        return st;
    b.base = data;
    uint32_t prog_slots = b.h.sections[POLICY_BLOB_PROGRAMS].count;
    if (prog_slots != 0 && !is_power_of_two(prog_slots))
        return fvm_error_set(err, FVM_E_INVALID, "policy blob: %lu program slots, not a power of two",
                             (unsigned long)prog_slots);
    if ((st = validate_nodes(&b, err)) != FVM_OK || (st = validate_rules(&b, err)) != FVM_OK)
        return st;
    if (view) {
        view->base = data;
        view->size = len;
    }
    return FVM_OK;
}

fvm_status policy_blob_validate(const void *data, size_t len, fvm_error *err)
{
    return policy_blob_open(data, len, NULL, err);
}

/* ---- the walk ------------------------------------------------------------------------ */

/* Does name[0..n) (any case) equal the upper-cased stored name? */
static int equals_upper(const uint16_t *stored, const uint16_t *name, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (stored[i] != ntpath_upcase(NULL, name[i]))
            return 0;
    return 1;
}

/* Glob over one component: '*' any run of units, '?' exactly one. The
 * classic backtracking to the last '*' is enough (a later '*' subsumes the
 * choices of an earlier one): O(pattern x name) at worst. */
static int glob_matches(const uint16_t *pattern, size_t pn, const uint16_t *name, size_t nn)
{
    size_t p = 0, n = 0, star = (size_t)-1, resume = 0;
    while (n < nn) {
        if (p < pn && pattern[p] == '*') {
            star = p++;
            resume = n;
        } else if (p < pn && (pattern[p] == '?' || pattern[p] == ntpath_upcase(NULL, name[n]))) {
            p++;
            n++;
        } else if (star != (size_t)-1) {
            p = star + 1;
            n = ++resume;
        } else {
            return 0;
        }
    }
    while (p < pn && pattern[p] == '*')
        p++;
    return p == pn;
}

typedef struct state_set {
    uint32_t nodes[POLICY_MATCH_MAX_STATES];
    size_t count;
    int overflow;
} state_set;

static void add_one(state_set *set, uint32_t node)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->nodes[i] == node)
            return;
    if (set->count == POLICY_MATCH_MAX_STATES) {
        set->overflow = 1;
        return;
    }
    set->nodes[set->count++] = node;
}

/* A node becomes live, and with it its "**" child (zero components). */
static void add_live(const blob *b, state_set *set, uint32_t node)
{
    add_one(set, node);
    uint32_t globstar = node_at(b, node).globstar;
    if (globstar != POLICY_NONE)
        add_one(set, globstar);
}

static uint32_t find_literal(const blob *b, const policy_blob_node *n, const uint16_t *name, size_t len, uint32_t hash)
{
    if (n->literal_slots == 0)
        return POLICY_NONE;
    uint32_t mask = n->literal_slots - 1;
    for (uint32_t probe = 0, i = hash & mask; probe < n->literal_slots; probe++, i = (i + 1) & mask) {
        policy_blob_slot s = slot_at(b, POLICY_BLOB_LITERALS, n->literal_first + i);
        if (s.value == POLICY_NONE)
            return POLICY_NONE;
        if (s.hash == hash && s.name_len == len && equals_upper(units_at(b, s.name_offset), name, len))
            return s.value;
    }
    return POLICY_NONE;
}

/* Steps every live node over one component. */
static void step_component(const blob *b, const state_set *live, state_set *next, const uint16_t *c, size_t len)
{
    uint32_t hash = policy_name_hash(c, len);
    next->count = 0;
    next->overflow = live->overflow;
    for (size_t k = 0; k < live->count; k++) {
        policy_blob_node n = node_at(b, live->nodes[k]);
        if (n.flags & POLICY_NODE_GLOBSTAR)
            add_one(next, live->nodes[k]);
        uint32_t child = find_literal(b, &n, c, len, hash);
        if (child != POLICY_NONE)
            add_live(b, next, child);
        for (uint32_t w = 0; w < n.wildcard_count; w++) {
            policy_blob_edge e = edge_at(b, n.wildcard_first + w);
            if (glob_matches(units_at(b, e.pattern_offset), e.pattern_len, c, len))
                add_live(b, next, e.child);
        }
    }
}

/* The live nodes after the whole name. FVM_E_RANGE on overflow. */
static fvm_status walk(const blob *b, policy_type type, const uint16_t *name, size_t len, state_set *live)
{
    state_set next;
    live->count = 0;
    live->overflow = 0;
    uint32_t root = b->h.roots[type];
    if (root == POLICY_NONE)
        return FVM_OK;
    add_live(b, live, root);
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < len && name[end] != '\\')
            end++;
        step_component(b, live, &next, name + start, end - start);
        memcpy(live->nodes, next.nodes, next.count * sizeof next.nodes[0]);
        live->count = next.count;
        live->overflow = next.overflow;
        if (live->count == 0 || end == len)
            break;
        start = end + 1;
    }
    return live->overflow ? FVM_E_RANGE : FVM_OK;
}

/* ---- programs and scopes ------------------------------------------------------------------- */

static void base_name(const uint16_t **program, size_t *len)
{
    const uint16_t *p = *program;
    size_t start = 0;
    for (size_t i = 0; i < *len; i++)
        if (p[i] == '\\' || p[i] == '/')
            start = i + 1;
    *program = p + start;
    *len -= start;
}

static uint32_t program_id(const blob *b, const uint16_t *program, size_t len)
{
    uint32_t slots = b->h.sections[POLICY_BLOB_PROGRAMS].count;
    if (!program || slots == 0)
        return POLICY_NONE;
    base_name(&program, &len);
    uint32_t hash = policy_name_hash(program, len), mask = slots - 1;
    for (uint32_t probe = 0, i = hash & mask; probe < slots; probe++, i = (i + 1) & mask) {
        policy_blob_slot s = slot_at(b, POLICY_BLOB_PROGRAMS, i);
        if (s.value == POLICY_NONE)
            return POLICY_NONE;
        if (s.hash == hash && s.name_len == len && equals_upper(units_at(b, s.name_offset), program, len))
            return s.value;
    }
    return POLICY_NONE;
}

static int scope_includes(const blob *b, const policy_blob_rule *r, uint32_t program)
{
    if (r->scope == POLICY_SCOPE_ALL)
        return 1;
    if (program == POLICY_NONE)
        return 0;
    uint32_t lo = 0, hi = r->scope_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t id = u32_at(b, POLICY_BLOB_SCOPE_IDS, r->scope_first + mid);
        if (id == program)
            return 1;
        if (id < program)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static policy_rank rank_of(const policy_blob_rule *r)
{
    policy_rank k;
    k.scope = (policy_scope_kind)r->scope;
    k.literal_chars = r->literal_chars;
    k.globstars = r->globstars;
    k.stars = r->stars;
    k.qmarks = r->qmarks;
    k.action = (policy_action)r->action;
    k.order = r->order;
    return k;
}

/* ---- decisions -------------------------------------------------------------------------------- */

static void set_default(policy_decision *out, policy_action action)
{
    memset(out, 0, sizeof *out);
    out->action = action;
    out->is_default = 1;
    out->rule = POLICY_NO_RULE;
    out->file = "";
}

static void set_from_rule(const blob *b, const policy_blob_rule *r, uint32_t index, policy_decision *out)
{
    memset(out, 0, sizeof *out);
    out->action = (policy_action)r->action;
    out->audit = r->audit;
    out->rule = index;
    out->ask_timeout_ms = r->ask_timeout_ms;
    out->ask_default = (policy_action)r->ask_default;
    out->file = text_at(b, r->file_offset);
    out->file_len = r->file_len;
    out->line = r->line;
    out->column = r->column;
}

fvm_status policy_match(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                        const uint16_t *program, size_t program_len, policy_decision *out)
{
    if ((unsigned)type >= POLICY_TYPE_COUNT || !name || len == 0) {
        set_default(out, POLICY_ACTION_DENY);
        return FVM_E_INVALID;
    }
    blob b;
    blob_init(&b, view);
    state_set live;
    if (walk(&b, type, name, len, &live) != FVM_OK) {
        set_default(out, POLICY_ACTION_DENY);
        return FVM_E_RANGE;
    }
    uint32_t program_index = program ? program_id(&b, program, program_len) : POLICY_NONE;
    uint32_t best = POLICY_NONE;
    policy_rank best_rank;
    memset(&best_rank, 0, sizeof best_rank);
    for (size_t k = 0; k < live.count; k++) {
        policy_blob_node n = node_at(&b, live.nodes[k]);
        for (uint32_t i = 0; i < n.rules_count; i++) {
            uint32_t index = u32_at(&b, POLICY_BLOB_NODE_RULES, n.rules_first + i);
            policy_blob_rule r = rule_at(&b, index);
            if (r.type != (uint8_t)type || !scope_includes(&b, &r, program_index))
                continue;
            policy_rank rank = rank_of(&r);
            if (best == POLICY_NONE || policy_rank_compare(&rank, &best_rank, NULL) > 0) {
                best = index;
                best_rank = rank;
            }
        }
    }
    if (best == POLICY_NONE) {
        set_default(out, (policy_action)b.h.default_actions[type]);
        return FVM_OK;
    }
    policy_blob_rule r = rule_at(&b, best);
    set_from_rule(&b, &r, best, out);
    return FVM_OK;
}

fvm_status policy_match_each(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                             policy_match_fn fn, void *ctx)
{
    if ((unsigned)type >= POLICY_TYPE_COUNT || !name || len == 0)
        return FVM_E_INVALID;
    blob b;
    blob_init(&b, view);
    state_set live;
    fvm_status st = walk(&b, type, name, len, &live);
    if (st != FVM_OK)
        return st;
    for (size_t k = 0; k < live.count; k++) {
        policy_blob_node n = node_at(&b, live.nodes[k]);
        for (uint32_t i = 0; i < n.rules_count; i++) {
            uint32_t index = u32_at(&b, POLICY_BLOB_NODE_RULES, n.rules_first + i);
            if (rule_at(&b, index).type == (uint8_t)type)
                fn(ctx, index);
        }
    }
    return FVM_OK;
}

size_t policy_view_rule_count(const policy_view *view)
{
    blob b;
    blob_init(&b, view);
    return b.h.sections[POLICY_BLOB_RULES].count;
}

uint32_t policy_view_possible(const policy_view *view, policy_type type)
{
    blob b;
    blob_init(&b, view);
    if ((unsigned)type >= POLICY_TYPE_COUNT)
        return 0;
    uint32_t possible = 1u << b.h.default_actions[type];
    for (uint32_t i = 0; i < b.h.sections[POLICY_BLOB_RULES].count; i++) {
        policy_blob_rule r = rule_at(&b, i);
        if (r.type != (uint8_t)type)
            continue;
        possible |= 1u << r.action;
        if (r.action == POLICY_ACTION_ASK)
            possible |= (2u << POLICY_ACTION_MAX) - 1;
        if (r.audit)
            possible |= POLICY_POSSIBLE_AUDIT;
    }
    return possible;
}

fvm_status policy_view_rule(const policy_view *view, uint32_t index, policy_rule_info *out)
{
    blob b;
    blob_init(&b, view);
    if (index >= b.h.sections[POLICY_BLOB_RULES].count)
        return FVM_E_NOTFOUND;
    policy_blob_rule r = rule_at(&b, index);
    memset(out, 0, sizeof *out);
    out->type = (policy_type)r.type;
    out->action = (policy_action)r.action;
    out->audit = r.audit;
    out->ask_timeout_ms = r.ask_timeout_ms;
    out->ask_default = (policy_action)r.ask_default;
    out->rank = rank_of(&r);
    out->scope_name = text_at(&b, r.scope_name_offset);
    out->scope_name_len = r.scope_name_len;
    out->text = text_at(&b, r.text_offset);
    out->text_len = r.text_len;
    out->file = text_at(&b, r.file_offset);
    out->file_len = r.file_len;
    out->line = r.line;
    out->column = r.column;
    out->pattern = units_at(&b, r.pattern_offset);
    out->pattern_len = r.pattern_len;
    return FVM_OK;
}

int policy_rule_applies(const policy_view *view, uint32_t index, const uint16_t *program, size_t program_len)
{
    blob b;
    blob_init(&b, view);
    if (index >= b.h.sections[POLICY_BLOB_RULES].count)
        return 0;
    policy_blob_rule r = rule_at(&b, index);
    return scope_includes(&b, &r, program ? program_id(&b, program, program_len) : POLICY_NONE);
}

/* Appends to a bounded buffer, counting what would have been written. */
typedef struct sink {
    char *out;
    size_t cap, len;
} sink;

static void sink_put(sink *s, const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++, s->len++)
        if (s->len + 1 < s->cap)
            s->out[s->len] = text[i];
}

size_t policy_decision_label(const policy_decision *d, char *out, size_t cap)
{
    sink s = {out, cap, 0};
    if (d->is_default || d->rule == POLICY_NO_RULE) {
        sink_put(&s, "default", 7);
    } else {
        char digits[12];
        size_t n = 0;
        uint32_t line = d->line;
        do {
            digits[sizeof digits - 1 - n++] = (char)('0' + line % 10);
            line /= 10;
        } while (line && n < sizeof digits);
        sink_put(&s, d->file, d->file_len);
        sink_put(&s, ":", 1);
        sink_put(&s, digits + sizeof digits - n, n);
    }
    if (cap)
        out[s.len < cap ? s.len : cap - 1] = 0;
    return s.len;
}
