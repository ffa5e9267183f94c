/*
 * ml_tree: ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1-3, including the
 * *_as_tensor double attributes). At load time the per-node attribute lists become one flat array
 * of nodes whose children are array indices, leaves point at a contiguous run of (target, weight)
 * pairs, and every tree is checked to be acyclic, so a run is a tight loop per (row, tree) with no
 * lookups. Rows are split across the model's thread pool.
 *
 * Scores are accumulated in double and finalized (base values, binary-class handling, post
 * transform) the way onnxruntime does, because that is the reference kinfer is tested against;
 * the comments mark where its behaviour is a convention rather than something the spec says.
 * TreeEnsemble (ai.onnx.ml opset 5) is loaded by ml_tree5.c into the same layout; both are
 * evaluated by ml_tree_run.c.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_kernels.h"
#include "ml_tree.h"

void ml__tree_free(void *p)
{
    tree_state *s = p;
    if (!s) return;
    free(s->roots);
    free(s->nodes);
    free(s->weights);
    free(s->base);
    free(s->fnodes);
    free(s->depth);
    free(s->members);
    free(s);
}

/* (tree id, node id) -> node index, by binary search over a sorted copy. */
typedef struct tree_key {
    int64_t tree, node;
    int32_t idx;
} tree_key;

static int tree_key_cmp(const void *a, const void *b)
{
    const tree_key *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return 0;
}

static int32_t tree_find(const tree_key *keys, int32_t n, int64_t tree, int64_t node)
{
    tree_key k = {tree, node, 0};
    const tree_key *f = bsearch(&k, keys, (size_t)n, sizeof(*keys), tree_key_cmp);
    return f ? f->idx : -1;
}

static kinfer_status *tree_parse_mode(const op_node *n, const char *s, uint8_t *mode)
{
    static const char *const names[] = {"BRANCH_LEQ", "BRANCH_LT",  "BRANCH_GTE", "BRANCH_GT",
                                        "BRANCH_EQ",  "BRANCH_NEQ", "LEAF"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i])) {
            *mode = (uint8_t)i;
            return NULL;
        }
    return op_node_error(n, KINFER_EMODEL, "unknown node mode '%s'", s);
}

/* Rejects cycles (a hostile model would otherwise loop forever at run time): iterative DFS with
 * colours from every root. mark is n_nodes bytes of scratch. */
static kinfer_status *tree_check_acyclic(const op_node *n, const tree_state *s, uint8_t *mark,
                                         int32_t *stack)
{
    memset(mark, 0, (size_t)s->n_nodes);
    for (int32_t r = 0; r < s->n_trees; r++) {
        int32_t sp = 0;
        if (mark[s->roots[r]] == 2) continue;
        stack[sp++] = s->roots[r];
        while (sp) {
            int32_t i = stack[sp - 1];
            const tree_node *nd = &s->nodes[i];
            if (mark[i] == 0) {
                mark[i] = 1;
                if (nd->mode != MODE_LEAF) {
                    for (int k = 0; k < 2; k++) {
                        int32_t c = k ? nd->f : nd->t;
                        if (mark[c] == 1)
                            return op_node_error(n, KINFER_EMODEL, "tree nodes form a cycle");
                        if (mark[c] == 0) stack[sp++] = c;
                    }
                }
            } else {
                mark[i] = 2;
                sp--;
            }
        }
    }
    return NULL;
}

typedef struct tree_attrs {
    const int64_t *treeids, *nodeids, *featureids, *truenodeids, *falsenodeids, *missing;
    const char *const *modes;
    double *values;
    size_t n, n_values, n_modes, n_missing;
    const int64_t *w_tree, *w_node, *w_target;
    double *w_val;
    size_t n_w, n_w_node, n_w_target, n_w_val;
} tree_attrs;

static kinfer_status *tree_read_attrs(const op_node *n, int cls, tree_attrs *a)
{
    kinfer_status *st;
    const char *pfx = cls ? "class" : "target";
    char name[64];
    a->n = op_attr_ints(n, "nodes_treeids", &a->treeids);
    size_t n_nodeids = op_attr_ints(n, "nodes_nodeids", &a->nodeids);
    size_t n_feat = op_attr_ints(n, "nodes_featureids", &a->featureids);
    size_t n_true = op_attr_ints(n, "nodes_truenodeids", &a->truenodeids);
    size_t n_false = op_attr_ints(n, "nodes_falsenodeids", &a->falsenodeids);
    a->n_missing = op_attr_ints(n, "nodes_missing_value_tracks_true", &a->missing);
    a->n_modes = op_attr_strings(n, "nodes_modes", &a->modes);
    if ((st = ml__attr_doubles(n, "nodes_values", &a->values, &a->n_values))) return st;
    snprintf(name, sizeof(name), "%s_treeids", pfx);
    a->n_w = op_attr_ints(n, name, &a->w_tree);
    snprintf(name, sizeof(name), "%s_nodeids", pfx);
    a->n_w_node = op_attr_ints(n, name, &a->w_node);
    snprintf(name, sizeof(name), "%s_ids", pfx);
    a->n_w_target = op_attr_ints(n, name, &a->w_target);
    snprintf(name, sizeof(name), "%s_weights", pfx);
    if ((st = ml__attr_doubles(n, name, &a->w_val, &a->n_w_val))) return st;
    if (a->n == 0) return op_node_error(n, KINFER_EMODEL, "no nodes");
    if (a->n > INT32_MAX / 2 || a->n_w > INT32_MAX / 2)
        return op_node_error(n, KINFER_ETOOBIG, "%zu nodes, %zu weights", a->n, a->n_w);
    if (n_nodeids != a->n || n_feat != a->n || n_true != a->n || n_false != a->n ||
        a->n_modes != a->n || a->n_values != a->n || (a->n_missing && a->n_missing != a->n))
        return op_node_error(n, KINFER_EMODEL, "nodes_* attributes differ in length (%zu tree ids)",
                             a->n);
    if (a->n_w_node != a->n_w || a->n_w_target != a->n_w || a->n_w_val != a->n_w)
        return op_node_error(n, KINFER_EMODEL, "%s_* attributes differ in length", pfx);
    return NULL;
}

static kinfer_status *tree_build(const op_node *n, tree_state *s, const tree_attrs *a)
{
    kinfer_status *st = NULL;
    int32_t nn = (int32_t)a->n;
    tree_key *keys = malloc((size_t)nn * sizeof(*keys));
    int32_t *count = calloc((size_t)nn + 1, sizeof(int32_t));
    s->nodes = calloc((size_t)nn, sizeof(*s->nodes));
    s->roots = malloc((size_t)nn * sizeof(int32_t));
    s->weights = malloc((a->n_w ? a->n_w : 1) * sizeof(*s->weights));
    if (!keys || !count || !s->nodes || !s->roots || !s->weights) {
        st = op_node_error(n, KINFER_ENOMEM, "tree state for %d nodes", nn);
        goto out;
    }
    s->n_nodes = nn;
    for (int32_t i = 0; i < nn; i++) keys[i] = (tree_key){a->treeids[i], a->nodeids[i], i};
    qsort(keys, (size_t)nn, sizeof(*keys), tree_key_cmp);
    for (int32_t i = 1; i < nn; i++)
        if (!tree_key_cmp(&keys[i - 1], &keys[i])) {
            st = op_node_error(n, KINFER_EMODEL, "node %lld of tree %lld is defined twice",
                               (long long)keys[i].node, (long long)keys[i].tree);
            goto out;
        }
    s->max_feature = -1;
    for (int32_t i = 0; i < nn; i++) {
        tree_node *nd = &s->nodes[i];
        if ((st = tree_parse_mode(n, a->modes[i], &nd->mode))) goto out;
        nd->thr = a->values[i];
        nd->miss_true = a->n_missing && a->missing[i] == 1;
        /* Like onnxruntime, a tree's root is its first node in attribute order. */
        if (i == 0 || a->treeids[i] != a->treeids[i - 1]) s->roots[s->n_trees++] = i;
        if (nd->mode == MODE_LEAF) continue;
        if (a->featureids[i] < 0 || a->featureids[i] > INT32_MAX) {
            st = op_node_error(n, KINFER_EMODEL, "node %d: feature id %lld", i,
                               (long long)a->featureids[i]);
            goto out;
        }
        nd->feat = (int32_t)a->featureids[i];
        if (nd->feat > s->max_feature) s->max_feature = nd->feat;
        nd->t = tree_find(keys, nn, a->treeids[i], a->truenodeids[i]);
        nd->f = tree_find(keys, nn, a->treeids[i], a->falsenodeids[i]);
        if (nd->t < 0 || nd->f < 0 || nd->t == i || nd->f == i) {
            st = op_node_error(n, KINFER_EMODEL,
                               "node %lld of tree %lld: child %lld/%lld is "
                               "missing or itself",
                               (long long)a->nodeids[i], (long long)a->treeids[i],
                               (long long)a->truenodeids[i], (long long)a->falsenodeids[i]);
            goto out;
        }
    }
    /* Weights grouped by node: count, prefix-sum, fill (order within a node kept). */
    for (size_t k = 0; k < a->n_w; k++) {
        int32_t i = tree_find(keys, nn, a->w_tree[k], a->w_node[k]);
        if (i < 0) {
            st =
                op_node_error(n, KINFER_EMODEL, "weight %zu names a missing node %lld of tree %lld",
                              k, (long long)a->w_node[k], (long long)a->w_tree[k]);
            goto out;
        }
        if (a->w_target[k] < 0 || a->w_target[k] >= s->n_targets) {
            st = op_node_error(n, KINFER_EMODEL,
                               "weight %zu: target/class id %lld outside [0, %lld)", k,
                               (long long)a->w_target[k], (long long)s->n_targets);
            goto out;
        }
        count[i + 1]++;
    }
    for (int32_t i = 0; i < nn; i++) count[i + 1] += count[i];
    for (int32_t i = 0; i < nn; i++)
        if (s->nodes[i].mode == MODE_LEAF) {
            s->nodes[i].t = count[i];
            s->nodes[i].f = count[i + 1] - count[i];
        }
    for (size_t k = 0; k < a->n_w; k++) {
        int32_t i = tree_find(keys, nn, a->w_tree[k], a->w_node[k]);
        s->weights[count[i]++] = (tree_weight){(int32_t)a->w_target[k], a->w_val[k]};
    }
out:
    free(keys);
    free(count);
    return st;
}

/* Longest root-to-leaf path (in edges) of tree r; -1 beyond TREE_MAX_LOCKSTEP. The trees are
 * acyclic (checked), so the explicit stack of (node, depth) pairs is bounded by 2 * n_nodes. */
#define TREE_MAX_LOCKSTEP 48

static int32_t tree_depth(const tree_state *s, int32_t root, int32_t *stack)
{
    int32_t sp = 0, best = 0;
    stack[sp++] = root;
    stack[sp++] = 0;
    while (sp) {
        int32_t d = stack[--sp], i = stack[--sp];
        const tree_node *nd = &s->nodes[i];
        if (d > best) best = d;
        if (best > TREE_MAX_LOCKSTEP) return -1;
        if (nd->mode == MODE_LEAF) continue;
        stack[sp++] = nd->t;
        stack[sp++] = d + 1;
        stack[sp++] = nd->f;
        stack[sp++] = d + 1;
    }
    return best;
}

static kinfer_status *tree_build_fast(const op_node *n, tree_state *s)
{
    int mode = -1;
    if (!s->thr_float || s->max_feature >= TREE_FEAT_MISS) return NULL;
    for (int32_t i = 0; i < s->n_nodes; i++) {
        int m = s->nodes[i].mode;
        if (m == MODE_LEAF) continue;
        if (mode < 0) mode = m;
        if (m != mode || (m != MODE_LEQ && m != MODE_LT)) return NULL;
    }
    int32_t *stack = malloc(((size_t)s->n_nodes * 4 + 4) * sizeof(int32_t));
    s->fnodes = malloc((size_t)s->n_nodes * sizeof(*s->fnodes));
    s->depth = malloc((size_t)s->n_trees * sizeof(int32_t));
    if (!stack || !s->fnodes || !s->depth) {
        free(stack);
        return op_node_error(n, KINFER_ENOMEM, "tree fast path");
    }
    for (int32_t i = 0; i < s->n_nodes; i++) {
        const tree_node *nd = &s->nodes[i];
        tree_fnode *f = &s->fnodes[i];
        if (nd->mode == MODE_LEAF) {
            *f = (tree_fnode){0.0f, 0, i, i};
            continue;
        }
        s->has_miss |= nd->miss_true;
        /* The threshold came from a float attribute, so the float copy is exact. */
        *f = (tree_fnode){(float)nd->thr, nd->feat | (nd->miss_true ? TREE_FEAT_MISS : 0), nd->t,
                          nd->f};
    }
    for (int32_t r = 0; r < s->n_trees; r++) s->depth[r] = tree_depth(s, s->roots[r], stack);
    free(stack);
    s->fast_mode = mode < 0 ? MODE_LEQ : mode;
    return NULL;
}

kinfer_status *ml__tree_finish(const op_node *n, tree_state *s)
{
    kinfer_status *st;
    uint8_t *mark = malloc((size_t)s->n_nodes + 1);
    int32_t *stack = malloc(((size_t)s->n_nodes * 2 + 2) * sizeof(int32_t));
    if (!mark || !stack) {
        free(mark);
        free(stack);
        return op_node_error(n, KINFER_ENOMEM, "tree check for %d nodes", s->n_nodes);
    }
    st = tree_check_acyclic(n, s, mark, stack);
    free(mark);
    free(stack);
    return st ? st : tree_build_fast(n, s);
}

static kinfer_status *tree_init(const op_node *n, void **state, int cls)
{
    kinfer_status *st = NULL;
    tree_attrs a;
    memset(&a, 0, sizeof(a));
    tree_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "tree state");
    s->classifier = cls;
    if ((st = ml__parse_post(n, &s->post))) goto out;
    if (cls) {
        const int64_t *li;
        const char *const *ls;
        size_t ni = op_attr_ints(n, "classlabels_int64s", &li);
        size_t ns = op_attr_strings(n, "classlabels_strings", &ls);
        if ((ni == 0) == (ns == 0)) {
            st = op_node_error(
                n, KINFER_EMODEL,
                "exactly one of classlabels_int64s and classlabels_strings is needed");
            goto out;
        }
        s->labels_int = ni ? li : NULL;
        s->labels_str = ns ? ls : NULL;
        s->n_targets = (int64_t)(ni ? ni : ns);
    } else {
        s->n_targets = op_attr_int(n, "n_targets", 1);
        if (s->n_targets < 1 || s->n_targets > (1 << 20)) {
            st = op_node_error(n, KINFER_EMODEL, "n_targets %lld", (long long)s->n_targets);
            goto out;
        }
        const char *agg = op_attr_string(n, "aggregate_function", "SUM");
        if (!strcmp(agg, "SUM"))
            s->agg = AGG_SUM;
        else if (!strcmp(agg, "AVERAGE"))
            s->agg = AGG_AVERAGE;
        else if (!strcmp(agg, "MIN"))
            s->agg = AGG_MIN;
        else if (!strcmp(agg, "MAX"))
            s->agg = AGG_MAX;
        else {
            st = op_node_error(n, KINFER_EMODEL, "unknown aggregate_function '%s'", agg);
            goto out;
        }
    }
    if ((st = ml__attr_doubles(n, "base_values", &s->base, &s->n_base))) goto out;
    if ((st = tree_read_attrs(n, cls, &a))) goto out;
    if ((st = tree_build(n, s, &a))) goto out;
    if (cls) {
        int first = -1, one_class = 1;
        s->all_positive = 1;
        for (size_t k = 0; k < a.n_w; k++) {
            if (a.w_val[k] < 0) s->all_positive = 0;
            if (first < 0)
                first = (int)a.w_target[k];
            else if (a.w_target[k] != first)
                one_class = 0;
        }
        s->binary_case = s->n_targets == 2 && first >= 0 && one_class;
    }
    /* Thresholds from the float nodes_values are exactly representable as floats. */
    s->thr_float = !op_attr_has(n, "nodes_values_as_tensor");
    if ((st = ml__tree_finish(n, s))) goto out;
out:
    free(a.values);
    free(a.w_val);
    if (st)
        ml__tree_free(s);
    else
        *state = s;
    return st;
}

static kinfer_status *tree_cls_init(const op_node *n, void **state)
{
    return tree_init(n, state, 1);
}
static kinfer_status *tree_reg_init(const op_node *n, void **state)
{
    return tree_init(n, state, 0);
}

const op_def ml__tree_defs[ML_TREE_DEFS] = {
    {"ai.onnx.ml", "TreeEnsembleClassifier", 1, 3, 1, 1, 1, 2, tree_cls_init, ml__tree_free,
     ml__tree_infer, ml__tree_compute},
    {"ai.onnx.ml", "TreeEnsembleRegressor", 1, 3, 1, 1, 1, 1, tree_reg_init, ml__tree_free,
     ml__tree_infer, ml__tree_compute},
    {"ai.onnx.ml", "TreeEnsemble", 5, OP_OPSET_MAX, 1, 1, 1, 1, ml__tree5_init, ml__tree_free,
     ml__tree_infer, ml__tree_compute},
};
