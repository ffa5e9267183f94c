/*
 * ml_encode: the categorical ai.onnx.ml operators: LabelEncoder (opsets 1-4: classes_strings;
 * keys_* and values_* lists; keys_tensor/values_tensor/default_tensor), OneHotEncoder and
 * FeatureVectorizer. Lookups go through a sorted index built at load time (binary search, first
 * occurrence wins for duplicate keys). Not here: CastMap and DictVectorizer, whose inputs are
 * maps, which the engine's tensor-only inputs cannot carry.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"
#include "ml_kernels.h"

/* ---------------------------------------------------------------- a typed value list */

typedef struct enc_list {
    onnx_dtype dt;   /* how it is held: INT64 (any integer type), STRING, FLOAT or DOUBLE */
    onnx_dtype orig; /* the attribute's element type (int16, uint8, ...) */
    size_t n;
    const int64_t *i;
    const char *const *s;
    double *d;     /* FLOAT/DOUBLE, owned */
    int64_t *iown; /* narrower integers widened, owned */
} enc_list;

static int enc_is_int(onnx_dtype dt)
{
    switch (dt) {
    case ONNX_DTYPE_INT8:
    case ONNX_DTYPE_INT16:
    case ONNX_DTYPE_INT32:
    case ONNX_DTYPE_INT64:
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_UINT16:
    case ONNX_DTYPE_UINT32:
    case ONNX_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* Stores v as element k of an integer tensor of type dt. */
static void enc_put_int(void *data, onnx_dtype dt, int64_t k, int64_t v)
{
    switch (dt) {
    case ONNX_DTYPE_INT8:
        ((int8_t *)data)[k] = (int8_t)v;
        break;
    case ONNX_DTYPE_INT16:
        ((int16_t *)data)[k] = (int16_t)v;
        break;
    case ONNX_DTYPE_INT32:
        ((int32_t *)data)[k] = (int32_t)v;
        break;
    case ONNX_DTYPE_UINT8:
        ((uint8_t *)data)[k] = (uint8_t)v;
        break;
    case ONNX_DTYPE_UINT16:
        ((uint16_t *)data)[k] = (uint16_t)v;
        break;
    case ONNX_DTYPE_UINT32:
        ((uint32_t *)data)[k] = (uint32_t)v;
        break;
    default:
        ((int64_t *)data)[k] = v;
        break;
    }
}

static int enc_cmp_key(const enc_list *k, size_t a, size_t b)
{
    switch (k->dt) {
    case ONNX_DTYPE_STRING:
        return strcmp(k->s[a], k->s[b]);
    case ONNX_DTYPE_INT64:
        return k->i[a] < k->i[b] ? -1 : k->i[a] > k->i[b];
    default: {
        double x = k->d[a], y = k->d[b];
        if (isnan(x) || isnan(y)) return isnan(x) - isnan(y); /* NaN sorts last, equal to NaN */
        return x < y ? -1 : x > y;
    }
    }
}

/* Reads list `base` as the tensor attribute `base_tensor` (v4) or the typed lists
 * `base_strings`, `base_int64s`, `base_floats`. */
static kinfer_status *enc_read_list(const op_node *n, const char *base, enc_list *l)
{
    char name[64];
    memset(l, 0, sizeof(*l));
    snprintf(name, sizeof(name), "%s_tensor", base);
    const op_tensor *t = op_attr_tensor(n, name);
    if (t) {
        int64_t cnt = op_tensor_numel(t);
        if (cnt < 0) return op_node_error(n, KINFER_EMODEL, "%s has no shape", name);
        l->n = (size_t)cnt;
        l->dt = l->orig = t->dtype;
        if (t->dtype == ONNX_DTYPE_STRING)
            l->s = t->data;
        else if (t->dtype == ONNX_DTYPE_INT64)
            l->i = t->data;
        else if (enc_is_int(t->dtype)) {
            l->iown = malloc((l->n ? l->n : 1) * sizeof(int64_t));
            if (!l->iown) return op_node_error(n, KINFER_ENOMEM, "%s", name);
            for (size_t k = 0; k < l->n; k++) l->iown[k] = op_tensor_get_int(t, (int64_t)k);
            l->i = l->iown;
            l->dt = ONNX_DTYPE_INT64;
        } else if (t->dtype == ONNX_DTYPE_FLOAT || t->dtype == ONNX_DTYPE_DOUBLE) {
            l->d = malloc((l->n ? l->n : 1) * sizeof(double));
            if (!l->d) return op_node_error(n, KINFER_ENOMEM, "%s", name);
            for (size_t k = 0; k < l->n; k++)
                l->d[k] = t->dtype == ONNX_DTYPE_FLOAT ? ((const float *)t->data)[k]
                                                       : ((const double *)t->data)[k];
        } else {
            return op_node_error(n, KINFER_EUNSUPPORTED, "%s of type %s", name,
                                 onnx_dtype_name(t->dtype));
        }
        return NULL;
    }
    const float *f;
    size_t ns, ni, nf;
    snprintf(name, sizeof(name), "%s_strings", base);
    ns = op_attr_strings(n, name, &l->s);
    snprintf(name, sizeof(name), "%s_int64s", base);
    ni = op_attr_ints(n, name, &l->i);
    snprintf(name, sizeof(name), "%s_floats", base);
    nf = op_attr_floats(n, name, &f);
    if ((ns > 0) + (ni > 0) + (nf > 0) != 1)
        return op_node_error(n, KINFER_EMODEL, "exactly one %s_* list is needed", base);
    if (ns) l->dt = l->orig = ONNX_DTYPE_STRING, l->n = ns;
    if (ni) l->dt = l->orig = ONNX_DTYPE_INT64, l->n = ni;
    if (nf) {
        l->dt = l->orig = ONNX_DTYPE_FLOAT, l->n = nf;
        l->d = malloc(nf * sizeof(double));
        if (!l->d) return op_node_error(n, KINFER_ENOMEM, "%s", name);
        for (size_t k = 0; k < nf; k++) l->d[k] = f[k];
    }
    return NULL;
}

/* ---------------------------------------------------------------- LabelEncoder */

typedef struct enc_state {
    enc_list keys, vals;
    size_t *order; /* key indices sorted by key, stable */
    onnx_dtype in_dt, out_dt;
    int64_t def_i;
    const char *def_s;
    double def_d;
    int v1; /* opset 1: keys are classes_strings, values their positions */
} enc_state;

static void enc_fini(void *p)
{
    enc_state *s = p;
    if (!s) return;
    free(s->keys.d);
    free(s->vals.d);
    free(s->keys.iown);
    free(s->vals.iown);
    free(s->order);
    free(s);
}

static const enc_list *enc_sort_keys; /* qsort has no context argument; init is serialised */

static int enc_order_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = enc_cmp_key(enc_sort_keys, x, y);
    return c ? c : (x > y) - (x < y);
}

static kinfer_status *enc_init(const op_node *n, void **state)
{
    static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;
    kinfer_status *st = NULL;
    enc_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "LabelEncoder state");
    s->def_i = op_attr_int(n, "default_int64", -1);
    s->def_s = op_attr_string(n, "default_string", "_Unused");
    s->def_d = op_attr_float(n, "default_float", -0.0f);
    if (op_node_opset(n) < 2) {
        s->v1 = 1;
        s->keys.n = op_attr_strings(n, "classes_strings", &s->keys.s);
        s->keys.dt = ONNX_DTYPE_STRING;
    } else {
        if ((st = enc_read_list(n, "keys", &s->keys)) ||
            (st = enc_read_list(n, "values", &s->vals)))
            goto out;
        if (s->keys.n != s->vals.n) {
            st = op_node_error(n, KINFER_EMODEL, "%zu keys but %zu values", s->keys.n, s->vals.n);
            goto out;
        }
        s->in_dt = s->keys.orig;
        s->out_dt = s->vals.orig;
        const op_tensor *dt = op_attr_tensor(n, "default_tensor");
        if (dt && op_tensor_numel(dt) >= 1) {
            if (dt->dtype == ONNX_DTYPE_STRING)
                s->def_s = ((const char *const *)dt->data)[0];
            else if (enc_is_int(dt->dtype))
                s->def_i = op_tensor_get_int(dt, 0);
            else
                s->def_d = op_tensor_get_double(dt, 0);
        }
    }
    s->order = malloc((s->keys.n ? s->keys.n : 1) * sizeof(size_t));
    if (!s->order) {
        st = op_node_error(n, KINFER_ENOMEM, "LabelEncoder index");
        goto out;
    }
    for (size_t k = 0; k < s->keys.n; k++) s->order[k] = k;
    pthread_mutex_lock(&sort_lock);
    enc_sort_keys = &s->keys;
    qsort(s->order, s->keys.n, sizeof(size_t), enc_order_cmp);
    pthread_mutex_unlock(&sort_lock);
out:
    if (st)
        enc_fini(s);
    else
        *state = s;
    return st;
}

/* Index of the first key equal to element k of x, or -1. */
static int64_t enc_find(const enc_state *s, const op_tensor *x, int64_t k)
{
    size_t lo = 0, hi = s->keys.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2, i = s->order[mid];
        int c;
        switch (s->keys.dt) {
        case ONNX_DTYPE_STRING:
            c = strcmp(s->keys.s[i], ((const char *const *)x->data)[k]);
            break;
        case ONNX_DTYPE_INT64: {
            int64_t v = op_tensor_get_int(x, k);
            c = s->keys.i[i] < v ? -1 : s->keys.i[i] > v;
            break;
        }
        default: {
            double v = op_tensor_get_double(x, k), key = s->keys.d[i];
            if (isnan(key) || isnan(v))
                c = isnan(key) - isnan(v);
            else
                c = key < v ? -1 : key > v;
            break;
        }
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->keys.n) return -1;
    size_t i = s->order[lo];
    int eq;
    switch (s->keys.dt) {
    case ONNX_DTYPE_STRING:
        eq = !strcmp(s->keys.s[i], ((const char *const *)x->data)[k]);
        break;
    case ONNX_DTYPE_INT64:
        eq = s->keys.i[i] == op_tensor_get_int(x, k);
        break;
    default: {
        double v = op_tensor_get_double(x, k);
        eq = (isnan(v) && isnan(s->keys.d[i])) || s->keys.d[i] == v;
    }
    }
    return eq ? (int64_t)i : -1;
}

static kinfer_status *enc_infer(op_ctx *c)
{
    const enc_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    onnx_dtype out;
    if (s->v1) {
        if (x->dtype != ONNX_DTYPE_STRING && x->dtype != ONNX_DTYPE_INT64)
            return op_error(c, KINFER_EDTYPE, "input X must be string or int64, got %s",
                            onnx_dtype_name(x->dtype));
        out = x->dtype == ONNX_DTYPE_STRING ? ONNX_DTYPE_INT64 : ONNX_DTYPE_STRING;
    } else {
        if (x->dtype != s->in_dt)
            return op_error(c, KINFER_EDTYPE, "input X is %s but the keys are %s",
                            onnx_dtype_name(x->dtype), onnx_dtype_name(s->in_dt));
        out = s->out_dt;
    }
    op_set_output(c, 0, out, op_shapes_known(c) ? x->rank : -1, x->dims);
    return NULL;
}

static kinfer_status *enc_compute(op_ctx *c)
{
    const enc_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t n = op_tensor_numel(x);
    for (int64_t k = 0; k < n; k++) {
        if (s->v1 && x->dtype == ONNX_DTYPE_INT64) {
            int64_t v = ((const int64_t *)x->data)[k];
            ((const char **)y->data)[k] =
                v >= 0 && (uint64_t)v < s->keys.n ? s->keys.s[v] : s->def_s;
            continue;
        }
        int64_t i = enc_find(s, x, k);
        if (s->v1) {
            ((int64_t *)y->data)[k] = i >= 0 ? i : s->def_i;
            continue;
        }
        switch (s->out_dt) {
        case ONNX_DTYPE_STRING:
            ((const char **)y->data)[k] = i >= 0 ? s->vals.s[i] : s->def_s;
            break;
        case ONNX_DTYPE_DOUBLE:
            ((double *)y->data)[k] = i >= 0 ? s->vals.d[i] : s->def_d;
            break;
        case ONNX_DTYPE_FLOAT:
            ((float *)y->data)[k] = ml__to_float(i >= 0 ? s->vals.d[i] : s->def_d);
            break;
        default: /* integers of any width */
            enc_put_int(y->data, s->out_dt, k, i >= 0 ? s->vals.i[i] : s->def_i);
            break;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- OneHotEncoder */

static kinfer_status *ohe_init(const op_node *n, void **state)
{
    const int64_t *ci;
    const char *const *cs;
    size_t ni = op_attr_ints(n, "cats_int64s", &ci), ns = op_attr_strings(n, "cats_strings", &cs);
    (void)state;
    if ((ni == 0) == (ns == 0))
        return op_node_error(n, KINFER_EMODEL, "exactly one of cats_int64s and cats_strings");
    return NULL;
}

static kinfer_status *ohe_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    const int64_t *ci;
    const char *const *cs;
    size_t ni = op_attr_ints(n, "cats_int64s", &ci), ns = op_attr_strings(n, "cats_strings", &cs);
    if (ns ? x->dtype != ONNX_DTYPE_STRING : !ml__is_feature_type(x->dtype))
        return op_error(c, KINFER_EDTYPE, "input X of type %s does not match the %s categories",
                        onnx_dtype_name(x->dtype), ns ? "string" : "integer");
    int64_t dims[ONNX_MAX_RANK];
    if (op_shapes_known(c) && x->rank >= ONNX_MAX_RANK)
        return op_error(c, KINFER_EUNSUPPORTED, "output rank above %d", ONNX_MAX_RANK);
    if (x->rank >= 0 && x->rank < ONNX_MAX_RANK) {
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        dims[x->rank] = (int64_t)(ns ? ns : ni);
    }
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, op_shapes_known(c) ? x->rank + 1 : -1, dims);
    return NULL;
}

static kinfer_status *ohe_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    float *y = op_output(c, 0)->data;
    const int64_t *ci;
    const char *const *cs;
    size_t ni = op_attr_ints(n, "cats_int64s", &ci), ns = op_attr_strings(n, "cats_strings", &cs);
    size_t k = ns ? ns : ni;
    int zeros = op_attr_int(n, "zeros", 1) != 0;
    int64_t total = op_tensor_numel(x);
    memset(y, 0, (size_t)total * k * sizeof(float));
    for (int64_t e = 0; e < total; e++) {
        size_t j = 0;
        if (ns) {
            const char *v = ((const char *const *)x->data)[e];
            while (j < k && strcmp(cs[j], v)) j++;
        } else if (x->dtype == ONNX_DTYPE_INT64 || x->dtype == ONNX_DTYPE_INT32) {
            int64_t v = op_tensor_get_int(x, e);
            while (j < k && ci[j] != v) j++;
        } else {
            /* Floats are truncated to integers; NaN, infinities and values beyond int64 match
             * no category (converting them would be undefined behaviour). */
            double dv = op_tensor_get_double(x, e);
            if (dv >= -9.2e18 && dv <= 9.2e18)
                while (j < k && ci[j] != (int64_t)dv) j++;
            else
                j = k;
        }
        if (j < k)
            y[(size_t)e * k + j] = 1.0f;
        else if (!zeros)
            return op_error(c, KINFER_EINVAL, "element %lld is not one of the %zu categories",
                            (long long)e, k);
    }
    return NULL;
}

/* ---------------------------------------------------------------- FeatureVectorizer */

static kinfer_status *fv_infer(op_ctx *c)
{
    const int64_t *dims;
    size_t nd = op_attr_ints(op_ctx_node(c), "inputdimensions", &dims);
    int ni = op_num_inputs(c);
    int64_t rows = -1, width = 0;
    if (nd != (size_t)ni)
        return op_error(c, KINFER_EMODEL, "%zu inputdimensions for %d inputs", nd, ni);
    for (int i = 0; i < ni; i++) {
        const op_tensor *x = op_input(c, i);
        int64_t r, cols;
        kinfer_status *st;
        if (!x) return op_error(c, KINFER_EMODEL, "input %d is absent", i);
        if (!ml__is_feature_type(x->dtype))
            return op_error(c, KINFER_EDTYPE, "input %d has type %s", i, onnx_dtype_name(x->dtype));
        if ((st = ml__rows_cols(c, x, &r, &cols))) return st;
        if (dims[i] < 0) return op_error(c, KINFER_EMODEL, "inputdimensions[%d] < 0", i);
        if (r >= 0 && rows >= 0 && r != rows)
            return op_error(c, KINFER_ESHAPE, "input %d has %lld rows, input 0 %lld", i,
                            (long long)r, (long long)rows);
        if (r >= 0) rows = r;
        width += dims[i];
    }
    int64_t od[2] = {rows, width};
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, op_shapes_known(c) ? 2 : -1, od);
    return NULL;
}

static kinfer_status *fv_compute(op_ctx *c)
{
    const int64_t *dims;
    op_attr_ints(op_ctx_node(c), "inputdimensions", &dims);
    op_tensor *y = op_output(c, 0);
    int64_t rows = y->dims[0], width = y->dims[1], off = 0;
    float *out = y->data;
    memset(out, 0, (size_t)(rows * width) * sizeof(float));
    for (int i = 0; i < op_num_inputs(c); i++) {
        const op_tensor *x = op_input(c, i);
        int64_t r, cols;
        kinfer_status *st = ml__rows_cols(c, x, &r, &cols);
        if (st) return st;
        /* Like onnxruntime: a narrower input is zero-padded, a wider one truncated. */
        int64_t take = cols < dims[i] ? cols : dims[i];
        for (int64_t row = 0; row < rows; row++)
            ml__read_float(x, row * cols, take, out + row * width + off);
        off += dims[i];
    }
    return NULL;
}

const op_def ml__encode_defs[ML_ENCODE_DEFS] = {
    {"ai.onnx.ml", "LabelEncoder", 1, 4, 1, 1, 1, 1, enc_init, enc_fini, enc_infer, enc_compute},
    {"ai.onnx.ml", "OneHotEncoder", 1, OP_OPSET_MAX, 1, 1, 1, 1, ohe_init, NULL, ohe_infer,
     ohe_compute},
    {"ai.onnx.ml", "FeatureVectorizer", 1, OP_OPSET_MAX, 1, 4096, 1, 1, NULL, NULL, fv_infer,
     fv_compute},
};
