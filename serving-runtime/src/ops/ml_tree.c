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
 * Not handled: TreeEnsemble (ai.onnx.ml opset 5), which is a different operator.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"
#include "ml_kernels.h"

enum { MODE_LEQ, MODE_LT, MODE_GTE, MODE_GT, MODE_EQ, MODE_NEQ, MODE_LEAF };
enum { AGG_SUM, AGG_AVERAGE, AGG_MIN, AGG_MAX };

/* Non-leaf: children t/f. Leaf: t = first weight, f = number of weights. */
typedef struct tree_node {
    double thr;
    int32_t feat, t, f;
    uint8_t mode, miss_true;
} tree_node;

typedef struct tree_weight {
    int32_t target;
    double w;
} tree_weight;

typedef struct tree_state {
    int classifier;
    int64_t n_targets; /* classes (classifier) or n_targets (regressor) */
    int32_t n_trees, n_nodes;
    int32_t *roots;
    tree_node *nodes;
    tree_weight *weights;
    double *base;
    size_t n_base;
    ml_post post;
    int agg;
    int64_t max_feature;
    const int64_t *labels_int; /* classifier: exactly one of these */
    const char *const *labels_str;
    int binary_case, all_positive;
    /* Fast path for float inputs when every branch uses one mode (LEQ or LT) and thresholds
     * are floats: 16-byte nodes, float compares, no mode dispatch. NULL when not applicable. */
    struct tree_fnode *fnodes;
    int fast_mode;
    int32_t *depth; /* fast path: edges on each tree's longest root-to-leaf path */
    int has_miss;   /* some node sends missing values to its true branch */
} tree_state;

/* Bit 30 of feat: a missing value goes to t. A leaf points at itself both ways (its weights are
 * in tree_state.nodes), so a walk can take a fixed number of steps without testing for leaves. */
typedef struct tree_fnode {
    float thr;
    int32_t feat, t, f;
} tree_fnode;

#define TREE_FEAT_MISS (1 << 30)
#define TREE_FEAT_MASK (TREE_FEAT_MISS - 1)

static void tree_fini(void *p)
{
    tree_state *s = p;
    if (!s) return;
    free(s->roots);
    free(s->nodes);
    free(s->weights);
    free(s->base);
    free(s->fnodes);
    free(s->depth);
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
    uint8_t *mark = malloc((size_t)nn);
    int32_t *stack = malloc(((size_t)nn * 2 + 1) * sizeof(int32_t));
    s->nodes = calloc((size_t)nn, sizeof(*s->nodes));
    s->roots = malloc((size_t)nn * sizeof(int32_t));
    s->weights = malloc((a->n_w ? a->n_w : 1) * sizeof(*s->weights));
    if (!keys || !count || !mark || !stack || !s->nodes || !s->roots || !s->weights) {
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
    st = tree_check_acyclic(n, s, mark, stack);
out:
    free(keys);
    free(count);
    free(mark);
    free(stack);
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
    if (op_attr_has(n, "nodes_values_as_tensor") || s->max_feature >= TREE_FEAT_MISS) return NULL;
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
    if ((st = tree_build_fast(n, s))) goto out;
out:
    free(a.values);
    free(a.w_val);
    if (st)
        tree_fini(s);
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

static kinfer_status *tree_infer(op_ctx *c)
{
    const tree_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    kinfer_status *st;
    int64_t rows, cols;
    if (!ml__is_feature_type(x->dtype))
        return op_error(c, KINFER_EDTYPE,
                        "input X has type %s; float, double, int64 or int32 "
                        "expected",
                        onnx_dtype_name(x->dtype));
    if ((st = ml__rows_cols(c, x, &rows, &cols))) return st;
    if (cols >= 0 && s->max_feature >= cols)
        return op_error(c, KINFER_ESHAPE,
                        "input X has %lld features but the trees read feature "
                        "%lld",
                        (long long)cols, (long long)s->max_feature);
    int known = op_shapes_known(c);
    if (s->classifier) {
        int64_t yd[1] = {rows}, zd[2] = {rows, s->n_targets};
        onnx_dtype lt = s->labels_str ? ONNX_DTYPE_STRING : ONNX_DTYPE_INT64;
        op_set_output(c, 0, lt, known ? 1 : -1, yd);
        if (op_output(c, 1)) op_set_output(c, 1, ONNX_DTYPE_FLOAT, known ? 2 : -1, zd);
    } else {
        int64_t yd[2] = {rows, s->n_targets};
        op_set_output(c, 0, ONNX_DTYPE_FLOAT, known ? 2 : -1, yd);
    }
    return NULL;
}

static inline int32_t tree_leaf(const tree_node *nodes, int32_t i, const double *x)
{
    for (;;) {
        const tree_node *nd = &nodes[i];
        int go;
        double v = x[nd->feat];
        switch (nd->mode) {
        case MODE_LEQ:
            go = v <= nd->thr;
            break;
        case MODE_LT:
            go = v < nd->thr;
            break;
        case MODE_GTE:
            go = v >= nd->thr;
            break;
        case MODE_GT:
            go = v > nd->thr;
            break;
        case MODE_EQ:
            go = v == nd->thr;
            break;
        case MODE_NEQ:
            go = v != nd->thr;
            break;
        default:
            return i;
        }
        if (!go && nd->miss_true && isnan(v)) go = 1;
        i = go ? nd->t : nd->f;
    }
}

/* onnxruntime's write_scores: n >= 2 scores get the post transform; a single score becomes two
 * columns according to how the label was chosen (wac, "write additional scores"). */
static void tree_write_scores(const tree_state *s, float *sc, int n, int wac, float *z, int64_t zn)
{
    float out[2];
    const float *src = sc;
    int cnt = n;
    if (n >= 2) {
        ml__post_row(s->post, sc, n);
    } else if (s->post == ML_POST_PROBIT) {
        out[0] = ml__probit(sc[0]);
        src = out;
    } else if (wac == 0 || wac == 1) {
        out[0] = 1.0f - sc[0], out[1] = sc[0], src = out, cnt = 2;
    } else if (wac == 2 || wac == 3) {
        if (s->post == ML_POST_LOGISTIC)
            out[0] = ml__logistic(-sc[0]), out[1] = ml__logistic(sc[0]);
        else
            out[0] = -sc[0], out[1] = sc[0];
        src = out, cnt = 2;
    }
    for (int64_t j = 0; j < zn; j++) z[j] = j < cnt ? src[j] : 0.0f;
}

/* The binary label rule: all-positive weights compare with 0.5, mixed ones with 0. */
static int64_t tree_binary_label(const tree_state *s, const double *sc, const uint8_t *has, int n,
                                 int *wac)
{
    double pos = n == 2 && has[1] ? sc[1] : has[0] ? sc[0] : 0;
    if (s->binary_case) {
        if (s->all_positive) {
            *wac = pos > 0.5 ? 0 : 1;
            return pos > 0.5 ? 1 : 0;
        }
        *wac = pos > 0 ? 2 : 3;
        return pos > 0 ? 1 : 0;
    }
    return pos > 0 ? 1 : 0;
}

/* Classifier finalization of one row; returns the label's class index. */
static int64_t tree_cls_finalize(const tree_state *s, double *sc, uint8_t *has, float *fs, float *z)
{
    int64_t k = s->n_targets, label = 0;
    int n = (int)(k > 2 ? k : 2), wac = -1;
    if (k == 1) { /* a single class: onnxruntime's one-output path */
        double p = sc[0];
        double two[2] = {0, 0};
        uint8_t h2[2] = {1, 0};
        if (s->n_base == 2) {
            two[1] = p + s->base[1], two[0] = -two[1], h2[1] = 1, n = 2;
        } else {
            two[0] = p + (s->n_base == 1 ? s->base[0] : 0), n = 1;
        }
        label = tree_binary_label(s, two, h2, n, &wac);
        for (int j = 0; j < n; j++) fs[j] = (float)two[j];
        tree_write_scores(s, fs, n, wac, z, k);
        return label < k ? label : 0;
    }
    if (k > 2) {
        for (size_t j = 0; j < s->n_base && (int64_t)j < k; j++) {
            sc[j] = has[j] ? sc[j] + s->base[j] : s->base[j];
            has[j] = 1;
        }
        int64_t best = -1;
        for (int64_t j = 0; j < k; j++)
            if (has[j] && (best < 0 || sc[j] > sc[best])) best = j;
        label = best < 0 ? 0 : best;
    } else {
        if (s->n_base == 2) {
            if (has[1]) {
                /* onnxruntime reads base_values[1] only and mirrors class 1 into class 0. */
                sc[1] = s->base[1] + sc[0];
                sc[0] = -sc[1];
            } else {
                sc[1] += s->base[1];
                sc[0] += s->base[0];
            }
        } else if (s->n_base == 1) {
            sc[0] += s->base[0];
            if (!has[1]) n = 1;
        } else if (s->n_base == 0) {
            wac = 3;
            if (!has[1]) n = 1;
        }
        label = tree_binary_label(s, sc, has, n, &wac);
    }
    /* As in onnxruntime, a class that no leaf scored is written as 0 (before the transform). */
    for (int j = 0; j < n; j++) fs[j] = has[j] ? (float)sc[j] : 0.0f;
    tree_write_scores(s, fs, n, wac, z, k);
    return label;
}

static void tree_reg_finalize(const tree_state *s, double *sc, const uint8_t *has, float *fs,
                              float *y)
{
    int64_t k = s->n_targets;
    if (k == 1) {
        double origin = s->n_base == 1 ? s->base[0] : 0, v = sc[0];
        if (s->agg == AGG_AVERAGE) v /= s->n_trees;
        if ((s->agg == AGG_MIN || s->agg == AGG_MAX) && !has[0]) v = 0;
        v += origin;
        y[0] = s->post == ML_POST_PROBIT ? ml__probit((float)v) : (float)v;
        return;
    }
    /* onnxruntime writes a target that no leaf scored as 0, base value or not. */
    int use_base = s->n_base == (size_t)k;
    for (int64_t j = 0; j < k; j++) {
        double v = sc[j];
        if (s->agg == AGG_AVERAGE) v /= s->n_trees;
        fs[j] = has[j] ? (float)(v + (use_base ? s->base[j] : 0)) : 0.0f;
    }
    ml__post_row(s->post, fs, k);
    memcpy(y, fs, (size_t)k * sizeof(float));
}

/* Rows are processed in blocks, trees outer and rows inner, so that one tree's nodes stay in
 * cache while the block's rows walk it. */
#define TREE_BLOCK 64

typedef struct tree_job {
    const tree_state *s;
    const op_tensor *x;
    op_tensor *y, *z;
    int64_t rows, cols, block;
    _Atomic int64_t next; /* first row of the next unclaimed block */
    char *scratch;        /* per worker: scores, converted rows, floats, has-flags */
    size_t stride;
} tree_job;

/* Walks TREE_GROUP rows (or fewer) through one tree in lockstep: the rows' walks are independent
 * chains of loads, so interleaving them hides the memory latency that a single walk waits on. */
#define TREE_GROUP 16

/* MISS is 0 or 1: without missing-value tracks the NaN test compiles away. */
#define TREE_STEP(CMP, MISS)                                                                       \
    do {                                                                                           \
        const tree_fnode *nd = &nodes[idx[q]];                                                     \
        float v = x[q * cols + (nd->feat & TREE_FEAT_MASK)];                                       \
        int go = (v CMP nd->thr) | (MISS & (nd->feat >> 30) & isnan(v));                           \
        idx[q] = go ? nd->t : nd->f;                                                               \
    } while (0)

#define TREE_WALK(NAME, CMP, MISS)                                                                 \
    static void NAME(const tree_fnode *nodes, int32_t root, int32_t depth, const float *x,         \
                     int64_t cols, int g, int32_t *idx)                                            \
    {                                                                                              \
        for (int q = 0; q < g; q++) idx[q] = root;                                                 \
        if (g == TREE_GROUP) {                                                                     \
            for (int32_t d = 0; d < depth; d++)                                                    \
                for (int q = 0; q < TREE_GROUP; q++) TREE_STEP(CMP, MISS);                         \
        } else {                                                                                   \
            for (int32_t d = 0; d < depth; d++)                                                    \
                for (int q = 0; q < g; q++) TREE_STEP(CMP, MISS);                                  \
        }                                                                                          \
    }

TREE_WALK(tree_walk_leq, <=, 1)
TREE_WALK(tree_walk_lt, <, 1)
TREE_WALK(tree_walk_leq_nomiss, <=, 0)
TREE_WALK(tree_walk_lt_nomiss, <, 0)

typedef void (*tree_walk_fn)(const tree_fnode *, int32_t, int32_t, const float *, int64_t, int,
                             int32_t *);

/* A deep tree (depth unknown or above TREE_MAX_LOCKSTEP): walk each row until its leaf. */
static int32_t tree_leaf_fast(const tree_state *s, int32_t i, const float *x)
{
    for (;;) {
        const tree_fnode *nd = &s->fnodes[i];
        if (s->nodes[i].mode == MODE_LEAF) return i;
        float v = x[nd->feat & TREE_FEAT_MASK];
        int go =
            (s->fast_mode == MODE_LT ? v < nd->thr : v <= nd->thr) | ((nd->feat >> 30) & isnan(v));
        i = go ? nd->t : nd->f;
    }
}

static inline void tree_accumulate(const tree_state *s, int32_t first, int32_t count, double *sc,
                                   uint8_t *has)
{
    const tree_weight *w = s->weights + first;
    for (int32_t q = 0; q < count; q++) {
        int32_t c = w[q].target;
        double v = w[q].w;
        if (s->agg == AGG_MIN)
            sc[c] = !has[c] || v < sc[c] ? v : sc[c];
        else if (s->agg == AGG_MAX)
            sc[c] = !has[c] || v > sc[c] ? v : sc[c];
        else
            sc[c] += v;
        has[c] = 1;
    }
}

static void tree_rows(void *arg, int ith, int nth)
{
    tree_job *j = arg;
    const tree_state *s = j->s;
    int64_t k = s->n_targets, kk = k > 2 ? k : 2, cols = j->cols;
    (void)nth;
    char *mem = j->scratch + (size_t)ith * j->stride;
    double *sc = (double *)mem;      /* block x kk */
    double *xd = sc + j->block * kk; /* block x cols (generic path) */
    float *fs =
        (float *)(xd + (s->fnodes && j->x->dtype == ONNX_DTYPE_FLOAT ? 0 : j->block * cols));
    uint8_t *has = (uint8_t *)(fs + kk); /* block x kk */
    int fast = s->fnodes && j->x->dtype == ONNX_DTYPE_FLOAT;
    /* Blocks are claimed dynamically: on a busy machine a descheduled worker does not hold up
     * a fixed share of the rows. */
    for (;;) {
        int64_t r0 = atomic_fetch_add(&j->next, j->block);
        if (r0 >= j->rows) break;
        int64_t nb = j->rows - r0 < j->block ? j->rows - r0 : j->block;
        memset(sc, 0, (size_t)(nb * kk) * sizeof(double));
        memset(has, 0, (size_t)(nb * kk));
        if (fast) {
            const float *xf = (const float *)j->x->data + r0 * cols;
            int32_t idx[TREE_GROUP];
            tree_walk_fn walk = s->fast_mode == MODE_LT
                                    ? (s->has_miss ? tree_walk_lt : tree_walk_lt_nomiss)
                                    : (s->has_miss ? tree_walk_leq : tree_walk_leq_nomiss);
            for (int32_t t = 0; t < s->n_trees; t++)
                for (int64_t r = 0; r < nb; r += TREE_GROUP) {
                    int g = (int)(nb - r < TREE_GROUP ? nb - r : TREE_GROUP);
                    if (s->depth[t] < 0)
                        for (int q = 0; q < g; q++)
                            idx[q] = tree_leaf_fast(s, s->roots[t], xf + (r + q) * cols);
                    else
                        walk(s->fnodes, s->roots[t], s->depth[t], xf + r * cols, cols, g, idx);
                    for (int q = 0; q < g; q++) {
                        const tree_node *leaf = &s->nodes[idx[q]];
                        tree_accumulate(s, leaf->t, leaf->f, sc + (r + q) * kk, has + (r + q) * kk);
                    }
                }
        } else {
            ml__read_double(j->x, r0 * cols, nb * cols, xd);
            for (int32_t t = 0; t < s->n_trees; t++)
                for (int64_t r = 0; r < nb; r++) {
                    const tree_node *leaf =
                        &s->nodes[tree_leaf(s->nodes, s->roots[t], xd + r * cols)];
                    tree_accumulate(s, leaf->t, leaf->f, sc + r * kk, has + r * kk);
                }
        }
        for (int64_t r = 0; r < nb; r++) {
            int64_t row = r0 + r;
            if (s->classifier) {
                float *z = j->z ? (float *)j->z->data + row * k : NULL;
                float zbuf[2];
                int64_t label = tree_cls_finalize(s, sc + r * kk, has + r * kk, fs,
                                                  z ? z : (k <= 2 ? zbuf : fs));
                if (s->labels_str)
                    ((const char **)j->y->data)[row] = s->labels_str[label];
                else
                    ((int64_t *)j->y->data)[row] = s->labels_int[label];
            } else {
                tree_reg_finalize(s, sc + r * kk, has + r * kk, fs, (float *)j->y->data + row * k);
            }
        }
    }
}

static kinfer_status *tree_compute(op_ctx *c)
{
    const tree_state *s = op_ctx_state(c);
    tree_job j = {.s = s,
                  .x = op_input(c, 0),
                  .y = op_output(c, 0),
                  .z = s->classifier ? op_output(c, 1) : NULL};
    kinfer_status *st = ml__rows_cols(c, j.x, &j.rows, &j.cols);
    if (st) return st;
    int64_t kk = s->n_targets > 2 ? s->n_targets : 2;
    /* About four blocks per thread (for balance) of 16..TREE_BLOCK rows, and the generic path's
     * converted block under ~256 KiB however wide the rows are. */
    int nth = op_num_threads(c);
    j.block = TREE_BLOCK;
    while (j.block > TREE_GROUP && j.block * 4 * (nth > 0 ? nth : 1) > j.rows) j.block /= 2;
    while (j.block > 1 && j.block * j.cols * (int64_t)sizeof(double) > (256 << 10)) j.block /= 2;
    j.stride = ((size_t)(j.block * kk) * (sizeof(double) + 1) +
                (size_t)(j.block * j.cols) * sizeof(double) + (size_t)kk * sizeof(float) + 63) &
               ~(size_t)63;
    atomic_init(&j.next, 0);
    j.scratch = op_scratch(c, j.stride * (size_t)(nth > 0 ? nth : 1));
    if (!j.scratch) return op_error(c, KINFER_ENOMEM, "tree scratch");
    /* Waking the pool costs about as much as ~8k tree walks; below that one thread wins. */
    if (j.rows < 2 || j.rows * s->n_trees < 8192)
        tree_rows(&j, 0, 1);
    else
        op_parallel(c, tree_rows, &j);
    return NULL;
}

const op_def ml__tree_defs[ML_TREE_DEFS] = {
    {"ai.onnx.ml", "TreeEnsembleClassifier", 1, 3, 1, 1, 1, 2, tree_cls_init, tree_fini, tree_infer,
     tree_compute},
    {"ai.onnx.ml", "TreeEnsembleRegressor", 1, 3, 1, 1, 1, 1, tree_reg_init, tree_fini, tree_infer,
     tree_compute},
};
