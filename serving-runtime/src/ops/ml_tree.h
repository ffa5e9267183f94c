/*
 * ml_tree.h: what the tree-ensemble files share (internal to src/ops): the flat node layout built
 * at load time by ml_tree.c (opsets 1-3) and ml_tree5.c (TreeEnsemble, opset 5), and the
 * evaluation in ml_tree_run.c. Not a public interface: kernels reach the engine through op.h.
 */
#ifndef KINFER_ML_TREE_H
#define KINFER_ML_TREE_H

#include <stdint.h>

#include "ml_common.h"

enum { MODE_LEQ, MODE_LT, MODE_GTE, MODE_GT, MODE_EQ, MODE_NEQ, MODE_LEAF, MODE_MEMBER };
enum { AGG_SUM, AGG_AVERAGE, AGG_MIN, AGG_MAX };

/* Non-leaf: children t/f. Leaf: t = first weight, f = number of weights. MEMBER (opset 5):
 * true when the value is one of members[set_begin, set_begin + set_len). */
typedef struct tree_node {
    double thr;
    int32_t feat, t, f;
    int32_t set_begin, set_len;
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
    int32_t *depth;  /* fast path: edges on each tree's longest root-to-leaf path */
    int has_miss;    /* some node sends missing values to its true branch */
    int thr_float;   /* every threshold is exactly a float (fast path allowed) */
    int v5;          /* TreeEnsemble: output in the input's type, its own finalisation */
    double *members; /* MEMBER sets, see tree_node */
} tree_state;

/* Bit 30 of feat: a missing value goes to t. A leaf points at itself both ways (its weights are
 * in tree_state.nodes), so a walk can take a fixed number of steps without testing for leaves. */
typedef struct tree_fnode {
    float thr;
    int32_t feat, t, f;
} tree_fnode;

#define TREE_FEAT_MISS (1 << 30)
#define TREE_FEAT_MASK (TREE_FEAT_MISS - 1)

/* Frees a tree_state (NULL is a no-op). */
void ml__tree_free(void *p);
/* After the nodes, roots and weights are filled: rejects cycles, finds max_feature's use, and
 * builds the fast float path when it applies. */
kinfer_status *ml__tree_finish(const op_node *n, tree_state *s) __attribute__((warn_unused_result));
kinfer_status *ml__tree_infer(op_ctx *c) __attribute__((warn_unused_result));
kinfer_status *ml__tree_compute(op_ctx *c) __attribute__((warn_unused_result));
/* TreeEnsemble (ai.onnx.ml opset 5): its attributes into a tree_state (ml_tree5.c). */
kinfer_status *ml__tree5_init(const op_node *n, void **state) __attribute__((warn_unused_result));

#endif
