/*
 * ml_tree5: loads ai.onnx.ml TreeEnsemble (opset 5) into the flat layout of ml_tree.h. Interior
 * nodes (nodes_*) keep their indices; leaf l (leaf_*) becomes node n_interior + l with one
 * (target, weight) pair. Set-membership nodes take their sets from membership_values, NaN-
 * delimited, in the order the BRANCH_MEMBER nodes appear in nodes_modes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml_tree.h"

/* A float or double tensor attribute as doubles (malloc'd into *out); count in *n. */
static kinfer_status *t5_doubles(const op_node *n, const char *name, int required, double **out,
                                 size_t *len, int *is_float)
{
    const op_tensor *t = op_attr_tensor(n, name);
    *out = NULL;
    *len = 0;
    if (!t) return required ? op_node_error(n, KINFER_EMODEL, "%s is missing", name) : NULL;
    if (t->dtype != ONNX_DTYPE_FLOAT && t->dtype != ONNX_DTYPE_DOUBLE)
        return op_node_error(n, KINFER_EMODEL, "%s must be float or double, got %s", name,
                             onnx_dtype_name(t->dtype));
    int64_t cnt = op_tensor_numel(t);
    if (cnt < 0) return op_node_error(n, KINFER_EMODEL, "%s has no shape", name);
    *out = malloc(((size_t)cnt + 1) * sizeof(double));
    if (!*out) return op_node_error(n, KINFER_ENOMEM, "%s", name);
    for (int64_t i = 0; i < cnt; i++)
        (*out)[i] = t->dtype == ONNX_DTYPE_FLOAT ? ((const float *)t->data)[i]
                                                 : ((const double *)t->data)[i];
    *len = (size_t)cnt;
    if (is_float) *is_float = t->dtype == ONNX_DTYPE_FLOAT;
    return NULL;
}

/* Maps opset 5's integer enums onto ml_post / the AGG_* values of ml_tree.h. */
static kinfer_status *t5_enums(const op_node *n, tree_state *s)
{
    static const ml_post posts[] = {ML_POST_NONE, ML_POST_SOFTMAX, ML_POST_LOGISTIC,
                                    ML_POST_SOFTMAX_ZERO, ML_POST_PROBIT};
    static const int aggs[] = {AGG_AVERAGE, AGG_SUM, AGG_MIN, AGG_MAX};
    int64_t p = op_attr_int(n, "post_transform", 0), a = op_attr_int(n, "aggregate_function", 1);
    if (p < 0 || p > 4) return op_node_error(n, KINFER_EMODEL, "post_transform %lld", (long long)p);
    if (a < 0 || a > 3)
        return op_node_error(n, KINFER_EMODEL, "aggregate_function %lld", (long long)a);
    s->post = posts[p];
    s->agg = aggs[a];
    s->n_targets = op_attr_int(n, "n_targets", 0);
    if (s->n_targets < 1 || s->n_targets > (1 << 20))
        return op_node_error(n, KINFER_EMODEL, "n_targets %lld", (long long)s->n_targets);
    return NULL;
}

/* Child of interior node i: a leaf (index past the interior nodes) or another interior node. */
static kinfer_status *t5_child(const op_node *n, int64_t id, int64_t leaf, int32_t ni, int32_t nl,
                               int32_t *out)
{
    if (leaf ? (id < 0 || id >= nl) : (id < 0 || id >= ni))
        return op_node_error(n, KINFER_EMODEL, "%s id %lld outside [0, %d)", leaf ? "leaf" : "node",
                             (long long)id, leaf ? nl : ni);
    *out = (int32_t)(leaf ? ni + id : id);
    return NULL;
}

/* Every MEMBER node takes the next NaN-terminated run of membership_values. */
static kinfer_status *t5_members(const op_node *n, tree_state *s, int32_t ni)
{
    size_t nm = 0, pos = 0;
    kinfer_status *st = t5_doubles(n, "membership_values", 0, &s->members, &nm, NULL);
    if (st) return st;
    for (int32_t i = 0; i < ni; i++) {
        tree_node *nd = &s->nodes[i];
        if (nd->mode != MODE_MEMBER) continue;
        nd->set_begin = (int32_t)pos;
        while (pos < nm && !isnan(s->members[pos])) pos++;
        if (pos >= nm)
            return op_node_error(n, KINFER_EMODEL,
                                 "membership_values has no NaN-terminated set for node %d", i);
        nd->set_len = (int32_t)pos - nd->set_begin;
        pos++;
    }
    return NULL;
}

kinfer_status *ml__tree5_init(const op_node *n, void **state)
{
    kinfer_status *st = NULL;
    const int64_t *feat, *tid, *fid, *tleaf, *fleaf, *miss, *ltarget, *roots;
    double *splits = NULL, *lw = NULL;
    size_t n_splits, n_lw;
    tree_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "TreeEnsemble state");
    s->v5 = 1;
    if ((st = t5_enums(n, s))) goto out;
    size_t ni = op_attr_ints(n, "nodes_featureids", &feat);
    size_t n_t = op_attr_ints(n, "nodes_truenodeids", &tid);
    size_t n_f = op_attr_ints(n, "nodes_falsenodeids", &fid);
    size_t n_tl = op_attr_ints(n, "nodes_trueleafs", &tleaf);
    size_t n_fl = op_attr_ints(n, "nodes_falseleafs", &fleaf);
    size_t n_miss = op_attr_ints(n, "nodes_missing_value_tracks_true", &miss);
    size_t nl = op_attr_ints(n, "leaf_targetids", &ltarget);
    size_t nr = op_attr_ints(n, "tree_roots", &roots);
    const op_tensor *mt = op_attr_tensor(n, "nodes_modes");
    if ((st = t5_doubles(n, "nodes_splits", 1, &splits, &n_splits, &s->thr_float)) ||
        (st = t5_doubles(n, "leaf_weights", 1, &lw, &n_lw, NULL)))
        goto out;
    if (!mt ||
        (mt->dtype != ONNX_DTYPE_UINT8 && mt->dtype != ONNX_DTYPE_INT64 &&
         mt->dtype != ONNX_DTYPE_INT32) ||
        op_tensor_numel(mt) != (int64_t)ni) {
        st = op_node_error(n, KINFER_EMODEL, "nodes_modes must be a uint8 tensor of %zu modes", ni);
        goto out;
    }
    if (!ni || !nl || !nr || ni > INT32_MAX / 4 || nl > INT32_MAX / 4 || n_t != ni || n_f != ni ||
        n_tl != ni || n_fl != ni || n_splits != ni || (n_miss && n_miss != ni) || n_lw != nl) {
        st = op_node_error(n, KINFER_EMODEL,
                           "nodes_* (%zu) or leaf_* (%zu) attributes are empty or differ in "
                           "length, or tree_roots is empty",
                           ni, nl);
        goto out;
    }
    s->n_nodes = (int32_t)(ni + nl);
    s->n_trees = (int32_t)nr;
    s->nodes = calloc((size_t)s->n_nodes, sizeof(*s->nodes));
    s->weights = malloc(nl * sizeof(*s->weights));
    s->roots = malloc(nr * sizeof(int32_t));
    if (!s->nodes || !s->weights || !s->roots) {
        st = op_node_error(n, KINFER_ENOMEM, "TreeEnsemble of %d nodes", s->n_nodes);
        goto out;
    }
    s->max_feature = -1;
    for (size_t i = 0; i < ni; i++) {
        tree_node *nd = &s->nodes[i];
        int64_t m = op_tensor_get_int(mt, (int64_t)i);
        if (m < 0 || m > 6) {
            st = op_node_error(n, KINFER_EMODEL, "node %zu: mode %lld", i, (long long)m);
            goto out;
        }
        nd->mode = m == 6 ? MODE_MEMBER : (uint8_t)m; /* 0..5 are LEQ..NEQ in both numberings */
        if (feat[i] < 0 || feat[i] > INT32_MAX) {
            st =
                op_node_error(n, KINFER_EMODEL, "node %zu: feature id %lld", i, (long long)feat[i]);
            goto out;
        }
        nd->feat = (int32_t)feat[i];
        if (nd->feat > s->max_feature) s->max_feature = nd->feat;
        nd->thr = splits[i];
        nd->miss_true = n_miss && miss[i] == 1;
        if ((st = t5_child(n, tid[i], tleaf[i], (int32_t)ni, (int32_t)nl, &nd->t)) ||
            (st = t5_child(n, fid[i], fleaf[i], (int32_t)ni, (int32_t)nl, &nd->f)))
            goto out;
        if (nd->t == (int32_t)i || nd->f == (int32_t)i) {
            st = op_node_error(n, KINFER_EMODEL, "node %zu is its own child", i);
            goto out;
        }
    }
    for (size_t l = 0; l < nl; l++) {
        if (ltarget[l] < 0 || ltarget[l] >= s->n_targets) {
            st = op_node_error(n, KINFER_EMODEL, "leaf %zu: target %lld outside [0, %lld)", l,
                               (long long)ltarget[l], (long long)s->n_targets);
            goto out;
        }
        s->weights[l] = (tree_weight){(int32_t)ltarget[l], lw[l]};
        s->nodes[ni + l] = (tree_node){.mode = MODE_LEAF, .t = (int32_t)l, .f = 1};
    }
    for (size_t r = 0; r < nr; r++) {
        int64_t i = roots[r];
        if (i < 0 || (size_t)i >= ni) {
            st = op_node_error(n, KINFER_EMODEL, "tree root %lld outside [0, %zu)", (long long)i,
                               ni);
            goto out;
        }
        /* A one-leaf tree is written as a root whose two branches are the same leaf. */
        s->roots[r] = tleaf[i] && fleaf[i] && tid[i] == fid[i] ? s->nodes[i].t : (int32_t)i;
    }
    if ((st = t5_members(n, s, (int32_t)ni))) goto out;
    st = ml__tree_finish(n, s);
out:
    free(splits);
    free(lw);
    if (st)
        ml__tree_free(s);
    else
        *state = s;
    return st;
}
