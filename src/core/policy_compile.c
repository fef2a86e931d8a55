/* policy_compile.c - rule list -> immutable, position-independent blob (the
 * format is described at the end of policy.h).
 *
 * Each canonical pattern is inserted into the trie of its resource type,
 * one node per component: literal components are keyed by their upper-cased
 * name, globs by their upper-cased pattern, "**" is a node's single
 * globstar child. A rule hangs on the node where its pattern ends; a rule
 * with two patterns (HKCR) becomes two blob rules with the same source line.
 * Rules with the same pattern share every node, so 10,000 rules below
 * C:\Data cost the matcher what one does.
 *
 * Before writing the blob the compiler bounds how many nodes can be live at
 * once (see live_bound below) and refuses a policy above
 * POLICY_MATCH_MAX_STATES: the matcher's fixed-size state arrays are then
 * never too small for a blob it compiled.
 *
 * Not part of the runtime (FVM_RUNTIME): it allocates. */
#include "core/policy.h"

#ifndef FVM_RUNTIME

#include <stdlib.h>
#include <string.h>

/* Longest live-bound profile kept per node (see live_bound). */
#define PROFILE_CAP 64u

typedef struct cnode {
    uint32_t literal_head, literal_count;   /* edges, linked through cedge.next */
    uint32_t glob_head, glob_count;
    uint32_t globstar;
    uint32_t rule_head, rule_count;         /* links, linked through clink.next */
    uint32_t flags;
    uint32_t *profile;                      /* live-bound profile, while computing */
    uint32_t profile_len;
    uint64_t size;                          /* nodes in this subtree */
} cnode;

typedef struct cedge {
    uint32_t next, parent, child;
    uint32_t name_offset, name_len, hash;   /* upper-cased name in the units pool */
    int glob;
} cedge;

typedef struct clink {
    uint32_t next, rule;
} clink;

/* A growable array. */
typedef struct vec {
    void *data;
    size_t count, cap;
} vec;

typedef struct builder {
    vec nodes, edges, links, rules, scope_ids, units, text;
    vec programs;                           /* policy_blob_slot, value = id, in id order */
    uint32_t *edge_map;                     /* (parent, kind, name) -> edge + 1; 0 empty */
    size_t edge_map_slots, edge_map_used;
    uint32_t *program_map;                  /* upper-cased program name -> id + 1 */
    size_t program_map_slots;
    uint32_t roots[POLICY_TYPE_COUNT];
    const char *last_file;                  /* file names are stored once */
    uint32_t last_file_offset, last_file_len;
    int out_of_memory;
} builder;

static void *vec_push(builder *b, vec *v, size_t elem, size_t n)
{
    if (v->count + n > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        while (cap < v->count + n)
            cap *= 2;
        void *grown = realloc(v->data, cap * elem);
        if (!grown) {
            b->out_of_memory = 1;
            return NULL;
        }
        v->data = grown;
        v->cap = cap;
    }
    void *at = (char *)v->data + v->count * elem;
    v->count += n;
    return at;
}

#define NODE(b, i) (((cnode *)(b)->nodes.data)[i])
#define EDGE(b, i) (((cedge *)(b)->edges.data)[i])
#define UNITS(b) ((uint16_t *)(b)->units.data)

static uint32_t new_node(builder *b, uint32_t flags)
{
    cnode *n = vec_push(b, &b->nodes, sizeof(cnode), 1);
    if (!n)
        return POLICY_NONE;
    memset(n, 0, sizeof *n);
    n->literal_head = n->glob_head = n->globstar = n->rule_head = POLICY_NONE;
    n->flags = flags;
    return (uint32_t)(b->nodes.count - 1);
}

/* Appends units upper-cased (upper = 1) or as they are; returns the offset. */
static uint32_t add_units(builder *b, const uint16_t *u, size_t n, int upper)
{
    uint16_t *at = vec_push(b, &b->units, sizeof(uint16_t), n);
    if (!at)
        return 0;
    for (size_t i = 0; i < n; i++)
        at[i] = upper ? ntpath_upcase(NULL, u[i]) : u[i];
    return (uint32_t)(b->units.count - n);
}

static uint32_t add_text(builder *b, const char *s, size_t n)
{
    char *at = vec_push(b, &b->text, 1, n);
    if (!at)
        return 0;
    memcpy(at, s, n);
    return (uint32_t)(b->text.count - n);
}

static int equals_stored(const builder *b, uint32_t offset, const uint16_t *name, size_t n)
{
    const uint16_t *stored = UNITS(b) + offset;
    for (size_t i = 0; i < n; i++)
        if (stored[i] != ntpath_upcase(NULL, name[i]))
            return 0;
    return 1;
}

static size_t edge_slot(uint32_t parent, int glob, uint32_t hash, size_t slots)
{
    uint32_t h = hash ^ (parent * 0x9E3779B1u) ^ (glob ? 0x85EBCA6Bu : 0);
    h ^= h >> 16;
    return h & (slots - 1);
}

static int grow_edge_map(builder *b)
{
    size_t slots = b->edge_map_slots ? b->edge_map_slots * 2 : 1024;
    uint32_t *map = calloc(slots, sizeof *map);
    if (!map) {
        b->out_of_memory = 1;
        return 0;
    }
    for (size_t e = 0; e < b->edges.count; e++) {
        const cedge *edge = &EDGE(b, e);
        size_t i = edge_slot(edge->parent, edge->glob, edge->hash, slots);
        while (map[i])
            i = (i + 1) & (slots - 1);
        map[i] = (uint32_t)e + 1;
    }
    free(b->edge_map);
    b->edge_map = map;
    b->edge_map_slots = slots;
    return 1;
}

/* The child of parent for one pattern component, made when missing. */
static uint32_t child_for(builder *b, uint32_t parent, const uint16_t *c, size_t n)
{
    policy_component_kind kind = policy_component_classify(c, n);
    if (kind == POLICY_COMPONENT_GLOBSTAR) {
        if (NODE(b, parent).flags & POLICY_NODE_GLOBSTAR) /* "**\**" is "**" */
            return parent;
        if (NODE(b, parent).globstar == POLICY_NONE) {
            uint32_t g = new_node(b, POLICY_NODE_GLOBSTAR);
            if (g == POLICY_NONE)
                return POLICY_NONE;
            NODE(b, parent).globstar = g;
        }
        return NODE(b, parent).globstar;
    }
    int glob = kind == POLICY_COMPONENT_GLOB;
    uint32_t hash = policy_name_hash(c, n);
    if ((b->edge_map_used + 1) * 2 > b->edge_map_slots && !grow_edge_map(b))
        return POLICY_NONE;
    size_t i = edge_slot(parent, glob, hash, b->edge_map_slots);
    for (; b->edge_map[i]; i = (i + 1) & (b->edge_map_slots - 1)) {
        const cedge *e = &EDGE(b, b->edge_map[i] - 1);
        if (e->parent == parent && e->glob == glob && e->hash == hash && e->name_len == n &&
            equals_stored(b, e->name_offset, c, n))
            return e->child;
    }
    uint32_t child = new_node(b, 0);
    uint32_t name_offset = add_units(b, c, n, 1);
    cedge *e = vec_push(b, &b->edges, sizeof(cedge), 1);
    if (child == POLICY_NONE || !e)
        return POLICY_NONE;
    uint32_t index = (uint32_t)(b->edges.count - 1);
    cnode *p = &NODE(b, parent);
    e->parent = parent;
    e->child = child;
    e->name_offset = name_offset;
    e->name_len = (uint32_t)n;
    e->hash = hash;
    e->glob = glob;
    if (glob) {
        e->next = p->glob_head;
        p->glob_head = index;
        p->glob_count++;
    } else {
        e->next = p->literal_head;
        p->literal_head = index;
        p->literal_count++;
    }
    b->edge_map[i] = index + 1;
    b->edge_map_used++;
    return child;
}

/* Walks (and grows) the type's trie along the pattern; returns the last node. */
static uint32_t insert_pattern(builder *b, policy_type type, const uint16_t *u, size_t len)
{
    if (b->roots[type] == POLICY_NONE && (b->roots[type] = new_node(b, 0)) == POLICY_NONE)
        return POLICY_NONE;
    uint32_t node = b->roots[type];
    for (size_t start = 0;;) {
        size_t end = start;
        while (end < len && u[end] != '\\')
            end++;
        node = child_for(b, node, u + start, end - start);
        if (node == POLICY_NONE || end == len)
            return node;
        start = end + 1;
    }
}

/* ---- programs ---- */

static uint32_t find_or_add_program(builder *b, const char *name)
{
    size_t n8 = strlen(name), bad;
    uint16_t units[256];
    size_t n = policy_utf8_to_utf16(name, n8, units, sizeof units / sizeof units[0], &bad);
    if (n == (size_t)-1)
        n = 0; /* the parser only lets valid names through */
    uint32_t hash = policy_name_hash(units, n);
    if ((b->programs.count + 1) * 2 > b->program_map_slots) {
        size_t slots = b->program_map_slots ? b->program_map_slots * 2 : 64;
        uint32_t *map = calloc(slots, sizeof *map);
        if (!map) {
            b->out_of_memory = 1;
            return POLICY_NONE;
        }
        for (size_t id = 0; id < b->programs.count; id++) {
            const policy_blob_slot *s = (const policy_blob_slot *)b->programs.data + id;
            size_t i = s->hash & (slots - 1);
            while (map[i])
                i = (i + 1) & (slots - 1);
            map[i] = (uint32_t)id + 1;
        }
        free(b->program_map);
        b->program_map = map;
        b->program_map_slots = slots;
    }
    size_t i = hash & (b->program_map_slots - 1);
    for (; b->program_map[i]; i = (i + 1) & (b->program_map_slots - 1)) {
        const policy_blob_slot *s = (const policy_blob_slot *)b->programs.data + (b->program_map[i] - 1);
        if (s->hash == hash && s->name_len == n && equals_stored(b, s->name_offset, units, n))
            return s->value;
    }
    uint32_t offset = add_units(b, units, n, 1);
    policy_blob_slot *s = vec_push(b, &b->programs, sizeof *s, 1);
    if (!s)
        return POLICY_NONE;
    s->hash = hash;
    s->name_offset = offset;
    s->name_len = (uint32_t)n;
    s->value = (uint32_t)(b->programs.count - 1);
    b->program_map[i] = s->value + 1;
    return s->value;
}

static const policy_group *group_named(const policy *p, const char *name)
{
    for (size_t i = 0; i < policy_group_count(p); i++) {
        const policy_group *g = policy_group_at(p, i);
        size_t k = 0;
        while (g->name[k] && name[k] && (g->name[k] | 0x20) == (name[k] | 0x20))
            k++;
        if (g->name[k] == 0 && name[k] == 0)
            return g;
    }
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted, unique program ids of a rule's scope, appended to scope_ids. */
static void add_scope(builder *b, const policy *p, const policy_rule *r, policy_blob_rule *out)
{
    out->scope_first = (uint32_t)b->scope_ids.count;
    out->scope_count = 0;
    if (r->scope == POLICY_SCOPE_PROGRAM) {
        uint32_t *id = vec_push(b, &b->scope_ids, sizeof(uint32_t), 1);
        if (id) {
            *id = find_or_add_program(b, r->scope_name);
            out->scope_count = 1;
        }
    } else if (r->scope == POLICY_SCOPE_GROUP) {
        const policy_group *g = group_named(p, r->scope_name);
        for (size_t i = 0; g && i < g->program_count; i++) {
            uint32_t program = find_or_add_program(b, g->programs[i]);
            uint32_t *id = vec_push(b, &b->scope_ids, sizeof(uint32_t), 1);
            if (!id)
                return;
            *id = program;
        }
        uint32_t *ids = (uint32_t *)b->scope_ids.data + out->scope_first;
        size_t n = b->scope_ids.count - out->scope_first, unique = 0;
        qsort(ids, n, sizeof *ids, compare_ids);
        for (size_t i = 0; i < n; i++)
            if (unique == 0 || ids[unique - 1] != ids[i])
                ids[unique++] = ids[i];
        b->scope_ids.count = out->scope_first + unique;
        out->scope_count = (uint32_t)unique;
    }
}

/* ---- rules ---- */

static void add_rule(builder *b, const policy *p, const policy_rule *r, const policy_pattern *pat)
{
    policy_blob_rule br;
    memset(&br, 0, sizeof br);
    br.type = (uint8_t)r->type;
    br.action = (uint8_t)r->action;
    br.audit = r->audit ? 1 : 0;
    br.scope = (uint8_t)r->scope;
    if (r->action == POLICY_ACTION_ASK) {
        br.ask_default = (uint8_t)r->ask_default;
        br.ask_timeout_ms = r->ask_timeout_ms;
    }
    br.order = r->order;
    br.literal_chars = pat->literal_chars;
    br.globstars = pat->globstars;
    br.stars = pat->stars;
    br.qmarks = pat->qmarks;
    add_scope(b, p, r, &br);
    if (r->scope_name) {
        br.scope_name_len = (uint32_t)strlen(r->scope_name);
        br.scope_name_offset = add_text(b, r->scope_name, br.scope_name_len);
    }
    br.text_len = (uint32_t)strlen(r->text);
    br.text_offset = add_text(b, r->text, br.text_len);
    if (r->file != b->last_file) {
        b->last_file = r->file;
        b->last_file_len = (uint32_t)strlen(r->file);
        b->last_file_offset = add_text(b, r->file, b->last_file_len);
    }
    br.file_offset = b->last_file_offset;
    br.file_len = b->last_file_len;
    br.line = r->line;
    br.column = r->column;
    br.pattern_len = (uint32_t)pat->len;
    br.pattern_offset = add_units(b, pat->units, pat->len, 0);

    uint32_t node = insert_pattern(b, r->type, pat->units, pat->len);
    policy_blob_rule *slot = vec_push(b, &b->rules, sizeof br, 1);
    clink *link = vec_push(b, &b->links, sizeof *link, 1);
    if (node == POLICY_NONE || !slot || !link)
        return;
    *slot = br;
    link->rule = (uint32_t)(b->rules.count - 1);
    link->next = NODE(b, node).rule_head;
    NODE(b, node).rule_head = (uint32_t)(b->links.count - 1);
    NODE(b, node).rule_count++;
}

/* ---- the live-state bound ----
 *
 * profile[j] bounds the number of nodes of a subtree that are live j
 * components after the subtree's root became live (the last entry bounds
 * every later j too). For a node entered once:
 *   profile[0] = 1 + globstar child's profile[0]           (zero components)
 *   profile[j] = max over literal children of child[j-1]   (one name matches
 *                                                           one literal child)
 *              + sum over glob children of child[j-1]      (any may match)
 *              + globstar child's profile[j]
 * A "**" node stays live and enters its children again at every step:
 *   profile[j] = 1 + sum over k < j of C[k],  C[k] = max literal child[k]
 *                                                  + sum of glob child[k]
 * Every value is also capped by the subtree's node count (a live set holds
 * distinct nodes). The root's largest entry bounds the matcher's live set. */

static uint32_t profile_at(const cnode *n, size_t j)
{
    return n->profile[j < n->profile_len ? j : n->profile_len - 1];
}

static uint32_t clamp(uint64_t v, uint64_t cap)
{
    if (v > cap)
        v = cap;
    return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v;
}

/* One child step: max over literal children + sum over glob children of
 * their profile at k. */
static uint64_t children_at(builder *b, const cnode *n, size_t k)
{
    uint64_t max_literal = 0, globs = 0;
    for (uint32_t e = n->literal_head; e != POLICY_NONE; e = EDGE(b, e).next) {
        uint32_t v = profile_at(&NODE(b, EDGE(b, e).child), k);
        if (v > max_literal)
            max_literal = v;
    }
    for (uint32_t e = n->glob_head; e != POLICY_NONE; e = EDGE(b, e).next)
        globs += profile_at(&NODE(b, EDGE(b, e).child), k);
    return max_literal + globs;
}

static int compute_profile(builder *b, uint32_t index)
{
    cnode *n = &NODE(b, index);
    size_t children_len = 1;
    n->size = 1;
    for (int list = 0; list < 2; list++) {
        for (uint32_t e = list ? n->glob_head : n->literal_head; e != POLICY_NONE; e = EDGE(b, e).next) {
            const cnode *c = &NODE(b, EDGE(b, e).child);
            n->size += c->size;
            if (c->profile_len > children_len)
                children_len = c->profile_len;
        }
    }
    const cnode *g = n->globstar != POLICY_NONE ? &NODE(b, n->globstar) : NULL;
    if (g)
        n->size += g->size;
    size_t need = children_len + 1;
    if (g && g->profile_len > need)
        need = g->profile_len;
    size_t len = need < PROFILE_CAP ? need : PROFILE_CAP;
    uint64_t values[PROFILE_CAP + 1];
    if (n->flags & POLICY_NODE_GLOBSTAR) {
        uint64_t sum = 0;
        values[0] = 1;
        for (size_t j = 1; j < need; j++) {
            sum += children_at(b, n, j - 1);
            values[j] = 1 + sum;
        }
        /* Children alive without end (they hold a "**") keep adding. */
        if (children_at(b, n, children_len - 1) > 0)
            values[need - 1] = n->size;
    } else {
        values[0] = 1 + (g ? profile_at(g, 0) : 0);
        for (size_t j = 1; j < need; j++)
            values[j] = children_at(b, n, j - 1) + (g ? profile_at(g, j) : 0);
    }
    /* Fold everything past the cap into the last entry. */
    for (size_t j = len; j < need; j++)
        if (values[j] > values[len - 1])
            values[len - 1] = values[j];
    n->profile = malloc(len * sizeof *n->profile);
    if (!n->profile) {
        b->out_of_memory = 1;
        return 0;
    }
    for (size_t j = 0; j < len; j++)
        n->profile[j] = clamp(values[j], n->size);
    n->profile_len = (uint32_t)len;
    return 1;
}

/* Children are always made after their parent, so walking the nodes from
 * the last to the first sees every child before its parent. */
static uint32_t live_bound(builder *b, policy_type *worst_type)
{
    uint32_t worst = 1;
    for (size_t i = b->nodes.count; i-- > 0;) {
        if (!compute_profile(b, (uint32_t)i))
            return 0;
        cnode *n = &NODE(b, i);
        for (int list = 0; list < 3; list++) {
            uint32_t e = list == 0 ? n->literal_head : list == 1 ? n->glob_head : POLICY_NONE;
            for (; e != POLICY_NONE; e = EDGE(b, e).next) {
                cnode *c = &NODE(b, EDGE(b, e).child);
                free(c->profile);
                c->profile = NULL;
            }
        }
        if (n->globstar != POLICY_NONE && n->globstar != i) {
            free(NODE(b, n->globstar).profile);
            NODE(b, n->globstar).profile = NULL;
        }
    }
    for (int t = 0; t < POLICY_TYPE_COUNT; t++) {
        if (b->roots[t] == POLICY_NONE)
            continue;
        const cnode *root = &NODE(b, b->roots[t]);
        for (uint32_t j = 0; j < root->profile_len; j++) {
            if (root->profile[j] > worst) {
                worst = root->profile[j];
                *worst_type = (policy_type)t;
            }
        }
    }
    return worst;
}

/* ---- writing the blob ---- */

static size_t align8(size_t x)
{
    return (x + 7) & ~(size_t)7;
}

static uint32_t slots_for(size_t count)
{
    if (count == 0)
        return 0;
    uint32_t slots = 2;
    while (slots < count * 2)
        slots *= 2;
    return slots;
}

static void put_slot(uint8_t *table, uint32_t slots, const policy_blob_slot *s)
{
    uint32_t i = s->hash & (slots - 1);
    for (;; i = (i + 1) & (slots - 1)) {
        policy_blob_slot existing;
        memcpy(&existing, table + (size_t)i * sizeof existing, sizeof existing);
        if (existing.value == POLICY_NONE)
            break;
    }
    memcpy(table + (size_t)i * sizeof *s, s, sizeof *s);
}

static void fill_empty_slots(uint8_t *table, size_t count)
{
    policy_blob_slot empty = {0, 0, 0, POLICY_NONE};
    for (size_t i = 0; i < count; i++)
        memcpy(table + i * sizeof empty, &empty, sizeof empty);
}

static fvm_status write_blob(builder *b, uint32_t max_states, void **out, size_t *out_len, fvm_error *err)
{
    size_t counts[POLICY_BLOB_SECTION_COUNT] = {0};
    static const size_t sizes[POLICY_BLOB_SECTION_COUNT] = {
        sizeof(policy_blob_node), sizeof(policy_blob_slot), sizeof(policy_blob_edge), sizeof(uint32_t),
        sizeof(policy_blob_rule), sizeof(policy_blob_slot), sizeof(uint32_t),       sizeof(uint16_t),
        1,
    };
    counts[POLICY_BLOB_NODES] = b->nodes.count;
    for (size_t i = 0; i < b->nodes.count; i++) {
        counts[POLICY_BLOB_LITERALS] += slots_for(NODE(b, i).literal_count);
        counts[POLICY_BLOB_WILDCARDS] += NODE(b, i).glob_count;
        counts[POLICY_BLOB_NODE_RULES] += NODE(b, i).rule_count;
    }
    counts[POLICY_BLOB_RULES] = b->rules.count;
    counts[POLICY_BLOB_PROGRAMS] = slots_for(b->programs.count);
    counts[POLICY_BLOB_SCOPE_IDS] = b->scope_ids.count;
    counts[POLICY_BLOB_UNITS] = b->units.count;
    counts[POLICY_BLOB_TEXT] = b->text.count;

    policy_blob_header h;
    memset(&h, 0, sizeof h);
    size_t offset = align8(sizeof h);
    for (int s = 0; s < POLICY_BLOB_SECTION_COUNT; s++) {
        if (counts[s] > 0xFFFFFFFFu / sizes[s])
            return fvm_error_set(err, FVM_E_RANGE, "policy too large to compile");
        h.sections[s].offset = (uint32_t)offset;
        h.sections[s].count = (uint32_t)counts[s];
        offset = align8(offset + counts[s] * sizes[s]);
        if (offset > 0xFFFFFFFFu)
            return fvm_error_set(err, FVM_E_RANGE, "policy too large to compile (over 4 GB)");
    }
    uint8_t *blob = calloc(1, offset);
    if (!blob)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory compiling the policy");
    memcpy(h.magic, POLICY_BLOB_MAGIC, sizeof h.magic);
    h.version = POLICY_BLOB_VERSION;
    h.header_size = sizeof h;
    h.total_size = (uint32_t)offset;
    h.max_states = max_states;
    for (int t = 0; t < POLICY_TYPE_COUNT; t++) {
        h.roots[t] = b->roots[t];
        h.default_actions[t] = (uint8_t)policy_type_default_action((policy_type)t);
    }

    uint8_t *literals = blob + h.sections[POLICY_BLOB_LITERALS].offset;
    uint8_t *wildcards = blob + h.sections[POLICY_BLOB_WILDCARDS].offset;
    uint8_t *node_rules = blob + h.sections[POLICY_BLOB_NODE_RULES].offset;
    fill_empty_slots(literals, counts[POLICY_BLOB_LITERALS]);
    uint32_t literal_next = 0, wildcard_next = 0, rule_next = 0;
    for (size_t i = 0; i < b->nodes.count; i++) {
        const cnode *n = &NODE(b, i);
        policy_blob_node bn;
        memset(&bn, 0, sizeof bn);
        bn.literal_first = literal_next;
        bn.literal_slots = slots_for(n->literal_count);
        for (uint32_t e = n->literal_head; e != POLICY_NONE; e = EDGE(b, e).next) {
            const cedge *edge = &EDGE(b, e);
            policy_blob_slot s = {edge->hash, edge->name_offset, edge->name_len, edge->child};
            put_slot(literals + (size_t)literal_next * sizeof s, bn.literal_slots, &s);
        }
        literal_next += bn.literal_slots;
        bn.wildcard_first = wildcard_next;
        bn.wildcard_count = n->glob_count;
        for (uint32_t e = n->glob_head; e != POLICY_NONE; e = EDGE(b, e).next) {
            policy_blob_edge be = {EDGE(b, e).name_offset, EDGE(b, e).name_len, EDGE(b, e).child};
            memcpy(wildcards + (size_t)wildcard_next++ * sizeof be, &be, sizeof be);
        }
        bn.globstar = n->globstar;
        bn.rules_first = rule_next;
        bn.rules_count = n->rule_count;
        for (uint32_t l = n->rule_head; l != POLICY_NONE; l = ((clink *)b->links.data)[l].next) {
            uint32_t rule = ((clink *)b->links.data)[l].rule;
            memcpy(node_rules + (size_t)rule_next++ * sizeof rule, &rule, sizeof rule);
        }
        bn.flags = n->flags;
        memcpy(blob + h.sections[POLICY_BLOB_NODES].offset + i * sizeof bn, &bn, sizeof bn);
    }
    if (b->rules.count)
        memcpy(blob + h.sections[POLICY_BLOB_RULES].offset, b->rules.data, b->rules.count * sizeof(policy_blob_rule));
    uint8_t *programs = blob + h.sections[POLICY_BLOB_PROGRAMS].offset;
    fill_empty_slots(programs, counts[POLICY_BLOB_PROGRAMS]);
    for (size_t i = 0; i < b->programs.count; i++)
        put_slot(programs, (uint32_t)counts[POLICY_BLOB_PROGRAMS], (const policy_blob_slot *)b->programs.data + i);
    if (b->scope_ids.count)
        memcpy(blob + h.sections[POLICY_BLOB_SCOPE_IDS].offset, b->scope_ids.data, b->scope_ids.count * 4);
    if (b->units.count)
        memcpy(blob + h.sections[POLICY_BLOB_UNITS].offset, b->units.data, b->units.count * 2);
    if (b->text.count)
        memcpy(blob + h.sections[POLICY_BLOB_TEXT].offset, b->text.data, b->text.count);
    memcpy(blob, &h, sizeof h);
    h.checksum = policy_blob_checksum(blob, offset);
    memcpy(blob, &h, sizeof h);
    *out = blob;
    *out_len = offset;
    return FVM_OK;
}

static void builder_free(builder *b)
{
    for (size_t i = 0; i < b->nodes.count; i++)
        free(NODE(b, i).profile);
    free(b->nodes.data);
    free(b->edges.data);
    free(b->links.data);
    free(b->rules.data);
    free(b->scope_ids.data);
    free(b->units.data);
    free(b->text.data);
    free(b->programs.data);
    free(b->edge_map);
    free(b->program_map);
}

fvm_status policy_compile(const policy *p, void **blob, size_t *blob_len, fvm_error *err)
{
    *blob = NULL;
    *blob_len = 0;
    builder b;
    memset(&b, 0, sizeof b);
    for (int t = 0; t < POLICY_TYPE_COUNT; t++)
        b.roots[t] = POLICY_NONE;
    fvm_status st = FVM_OK;
    for (size_t i = 0; i < policy_rule_count(p) && !b.out_of_memory; i++) {
        const policy_rule *r = policy_rule_at(p, i);
        for (size_t k = 0; k < r->pattern_count; k++)
            add_rule(&b, p, r, &r->patterns[k]);
    }
    if (b.nodes.count > 0xFFFFFFF0u || b.rules.count > 0xFFFFFFF0u)
        st = fvm_error_set(err, FVM_E_RANGE, "policy too large to compile");
    policy_type worst_type = POLICY_TYPE_FILE;
    uint32_t bound = 1;
    if (st == FVM_OK && !b.out_of_memory)
        bound = live_bound(&b, &worst_type);
    if (st == FVM_OK && b.out_of_memory)
        st = fvm_error_set(err, FVM_E_NOMEM, "out of memory compiling the policy");
    if (st == FVM_OK && bound > POLICY_MATCH_MAX_STATES)
        st = fvm_error_set(err, FVM_E_RANGE, "the [%s] rules are too many overlapping wildcards: up to %lu patterns "
                           "could be alive at once for one name (limit %u); merge glob rules that share a folder "
                           "or use fewer '**'", policy_type_name(worst_type), (unsigned long)bound,
                           POLICY_MATCH_MAX_STATES);
    if (st == FVM_OK)
        st = write_blob(&b, bound, blob, blob_len, err);
    builder_free(&b);
    return st;
}

void policy_blob_free(void *blob)
{
    free(blob);
}

#else
typedef int policy_compile_not_in_runtime;
#endif
