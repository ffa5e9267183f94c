/*
 * ml_tree_run: evaluation of the tree ensembles built by ml_tree.c / ml_tree5.c: the per-node
 * walk (any mode, double compares), the fast float walk (one mode, 16 rows in lockstep), score
 * aggregation, and the finalisation rules of each operator version. Rows are claimed in blocks
 * by the model's threads.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_tree.h"

kinfer_status *ml__tree_infer(op_ctx *c)
{
    const tree_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    kinfer_status *st;
    int64_t rows, cols;
    if (s->v5 && x->dtype != ONNX_DTYPE_FLOAT && x->dtype != ONNX_DTYPE_DOUBLE)
        return op_error(c, KINFER_EDTYPE, "input X has type %s; float or double expected",
                        onnx_dtype_name(x->dtype));
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
        op_set_output(c, 0, s->v5 ? x->dtype : ONNX_DTYPE_FLOAT, known ? 2 : -1, yd);
    }
    return NULL;
}

/* Opset-5 set membership: the sets are short lists, scanned in order. */
static int tree_member(const tree_state *s, const tree_node *nd, double v)
{
    for (int32_t k = 0; k < nd->set_len; k++)
        if (s->members[nd->set_begin + k] == v) return 1;
    return 0;
}

static inline int32_t tree_leaf(const tree_state *s, int32_t i, const double *x)
{
    const tree_node *nodes = s->nodes;
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
        case MODE_MEMBER:
            go = tree_member(s, nd, v);
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
        for (int j = 0; j < n; j++) fs[j] = ml__to_float(two[j]);
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
    for (int j = 0; j < n; j++) fs[j] = has[j] ? ml__to_float(sc[j]) : 0.0f;
    tree_write_scores(s, fs, n, wac, z, k);
    return label;
}

/* TreeEnsemble (opset 5), as ONNX's reference implementation: SUM/AVERAGE start from 0, MIN
 * from the largest and MAX from the lowest finite value of the output type, no base values;
 * then the post transform over the row. */
static void tree_v5_finalize(const tree_state *s, const double *sc, const uint8_t *has, float *fs,
                             op_tensor *y, int64_t row)
{
    int64_t k = s->n_targets;
    int dbl = y->dtype == ONNX_DTYPE_DOUBLE;
    for (int64_t j = 0; j < k; j++) {
        double v = sc[j];
        if (!has[j] && s->agg == AGG_MIN)
            v = dbl ? DBL_MAX : FLT_MAX;
        else if (!has[j] && s->agg == AGG_MAX)
            v = dbl ? -DBL_MAX : -FLT_MAX;
        else if (s->agg == AGG_AVERAGE)
            v /= s->n_trees;
        if (dbl && s->post == ML_POST_NONE) ((double *)y->data)[row * k + j] = v;
        fs[j] = ml__to_float(v);
    }
    if (dbl && s->post == ML_POST_NONE) return;
    ml__post_row(s->post, fs, k);
    for (int64_t j = 0; j < k; j++) {
        if (dbl)
            ((double *)y->data)[row * k + j] = fs[j];
        else
            ((float *)y->data)[row * k + j] = fs[j];
    }
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
        y[0] = s->post == ML_POST_PROBIT ? ml__probit(ml__to_float(v)) : ml__to_float(v);
        return;
    }
    /* onnxruntime writes a target that no leaf scored as 0, base value or not. */
    int use_base = s->n_base == (size_t)k;
    for (int64_t j = 0; j < k; j++) {
        double v = sc[j];
        if (s->agg == AGG_AVERAGE) v /= s->n_trees;
        fs[j] = has[j] ? ml__to_float(v + (use_base ? s->base[j] : 0)) : 0.0f;
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
                    const tree_node *leaf = &s->nodes[tree_leaf(s, s->roots[t], xd + r * cols)];
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
                if (s->v5)
                    tree_v5_finalize(s, sc + r * kk, has + r * kk, fs, j->y, row);
                else
                    tree_reg_finalize(s, sc + r * kk, has + r * kk, fs,
                                      (float *)j->y->data + row * k);
            }
        }
    }
}

kinfer_status *ml__tree_compute(op_ctx *c)
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
    /* Many targets (up to 2^20) shrink the block too: scores are block x targets doubles. */
    while (j.block > 1 && j.block * kk * (int64_t)(sizeof(double) + 1) > (4 << 20)) j.block /= 2;
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
