/*
 * core_spatial: image-shaped kernels besides Conv and pooling: ConvTranspose (1-D/2-D, GEMM +
 * col2im), Resize/Upsample (nearest and n-linear, the common coordinate modes; cubic and
 * tf_crop_and_resize are reported unsupported), InstanceNormalization and LRN. Float only.
 */
#include <math.h>

#include "core_gemm.h"
#include "core_tables.h"
#include "core_util.h"

/* ---- ConvTranspose ---- */
typedef struct ct_geom {
    int64_t in[2], out[2], k[2], s[2], d[2], pb[2], pe[2];
} ct_geom;

static kinfer_status *ct_geometry(op_ctx *c, const op_tensor *x, const op_tensor *w, ct_geom *g)
{
    const op_node *n = op_ctx_node(c);
    int nd = x->rank - 2, off = 2 - nd;
    const int64_t *v;
    size_t cnt;
    for (int i = 0; i < 2; i++) g->in[i] = g->k[i] = g->s[i] = g->d[i] = 1, g->pb[i] = g->pe[i] = 0;
    for (int i = 0; i < nd; i++) g->in[off + i] = x->dims[2 + i], g->k[off + i] = w->dims[2 + i];
    if ((cnt = op_attr_ints(n, "strides", &v)) && cnt != (size_t)nd)
        return op_error(c, KINFER_EMODEL, "strides");
    for (size_t i = 0; i < cnt; i++) g->s[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "dilations", &v)) && cnt != (size_t)nd)
        return op_error(c, KINFER_EMODEL, "dilations");
    for (size_t i = 0; i < cnt; i++) g->d[off + i] = v[i];
    int64_t opad[2] = {0, 0}, oshape[2] = {-1, -1};
    if ((cnt = op_attr_ints(n, "output_padding", &v)) && cnt != (size_t)nd)
        return op_error(c, KINFER_EMODEL, "output_padding");
    for (size_t i = 0; i < cnt; i++) opad[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "pads", &v)) && cnt != (size_t)(2 * nd))
        return op_error(c, KINFER_EMODEL, "pads");
    for (int i = 0; i < (int)cnt / 2; i++) g->pb[off + i] = v[i], g->pe[off + i] = v[i + nd];
    size_t os = op_attr_ints(n, "output_shape", &v);
    if (os >= (size_t)nd)
        for (int i = 0; i < nd; i++) oshape[off + i] = v[os - (size_t)nd + (size_t)i];
    const char *ap = op_attr_string(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    for (int i = 0; i < 2; i++) {
        if (g->s[i] < 1 || g->d[i] < 1 || g->pb[i] < 0 || g->pe[i] < 0)
            return op_error(c, KINFER_EMODEL, "bad attributes");
        int64_t ek = (g->k[i] - 1) * g->d[i] + 1, full = g->s[i] * (g->in[i] - 1) + opad[i] + ek;
        if (i < off)
            oshape[i] = 1;
        else if (same && oshape[i] < 0)
            oshape[i] = g->in[i] * g->s[i];
        if (oshape[i] >= 0 && i >= off) {
            int64_t total = full - oshape[i]; /* negative: output_shape asks for extra rows */
            int upper = strcmp(ap, "SAME_LOWER") != 0;
            g->pb[i] = upper ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
        }
        g->out[i] = full - g->pb[i] - g->pe[i];
        if (g->out[i] < 0) return op_error(c, KINFER_ESHAPE, "negative output size");
    }
    return NULL;
}

static kinfer_status *ct_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *w = op_input(c, 1);
    if (x->dtype != ONNX_DTYPE_FLOAT || w->dtype != ONNX_DTYPE_FLOAT)
        return op_error(c, KINFER_EUNSUPPORTED, "types (float only)");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    if (x->rank != 3 && x->rank != 4)
        return op_error(c, KINFER_EUNSUPPORTED, "%d-D ConvTranspose", x->rank - 2);
    int64_t G = op_attr_int(op_ctx_node(c), "group", 1);
    if (w->rank != x->rank || G < 1 || x->dims[1] != w->dims[0] || x->dims[1] % G)
        return op_error(c, KINFER_ESHAPE, "W shape");
    ct_geom g;
    kinfer_status *st = ct_geometry(c, x, w, &g);
    if (st) return st;
    int64_t d[4] = {x->dims[0], w->dims[1] * G, g.out[0], g.out[1]};
    if (x->rank == 3) d[2] = g.out[1];
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

static kinfer_status *ct_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *w = op_input(c, 1), *b = op_input(c, 2);
    float *y = op_output(c, 0)->data;
    ct_geom g;
    kinfer_status *st = ct_geometry(c, x, w, &g);
    if (st) return st;
    int64_t N = x->dims[0], C = x->dims[1], G = op_attr_int(op_ctx_node(c), "group", 1), Cg = C / G,
            Mg = w->dims[1];
    int64_t M = Mg * G, HW = g.in[0] * g.in[1], OHW = g.out[0] * g.out[1], KK = g.k[0] * g.k[1];
    float *col = op_scratch(c, sizeof(float) * (size_t)(Mg * KK * HW));
    if (!col) return op_error(c, KINFER_ENOMEM, "col buffer");
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++) {
            /* col[Mg*KK, HW] = W_g^T (W_g is [Cg, Mg*KK]) x X_g [Cg, HW] */
            core_sgemm(c, 1, 0, Mg * KK, HW, Cg, 1.0f, (const float *)w->data + gi * Cg * Mg * KK,
                       Mg * KK, (const float *)x->data + (n * C + gi * Cg) * HW, HW, 0.0f, col, HW,
                       NULL);
            float *yg = y + (n * M + gi * Mg) * OHW;
            for (int64_t m = 0; m < Mg; m++) {
                float bias = b ? ((const float *)b->data)[gi * Mg + m] : 0.0f;
                for (int64_t i = 0; i < OHW; i++) yg[m * OHW + i] = bias;
                for (int64_t kh = 0; kh < g.k[0]; kh++)
                    for (int64_t kw = 0; kw < g.k[1]; kw++) {
                        const float *cr = col + ((m * g.k[0] + kh) * g.k[1] + kw) * HW;
                        for (int64_t ih = 0; ih < g.in[0]; ih++) {
                            int64_t oh = ih * g.s[0] - g.pb[0] + kh * g.d[0];
                            if (oh < 0 || oh >= g.out[0]) continue;
                            for (int64_t iw = 0; iw < g.in[1]; iw++) {
                                int64_t ow = iw * g.s[1] - g.pb[1] + kw * g.d[1];
                                if (ow >= 0 && ow < g.out[1])
                                    yg[m * OHW + oh * g.out[1] + ow] += cr[ih * g.in[1] + iw];
                            }
                        }
                    }
            }
        }
    return NULL;
}

/* ---- Resize / Upsample ---- */
typedef struct rs_spec {
    int64_t out[ONNX_MAX_RANK];
    double scale[ONNX_MAX_RANK], len[ONNX_MAX_RANK];
} rs_spec;

/* 1 = not computable yet (load time), 0 = ok, -1 = bad. */
static int rs_plan(op_ctx *c, const op_tensor *x, rs_spec *sp)
{
    const op_node *n = op_ctx_node(c);
    int opset = op_node_opset(n), up = !strcmp(op_node_op_type(n), "Upsample");
    const op_tensor *scales = NULL, *sizes = NULL;
    const float *sattr = NULL;
    size_t nsattr = 0;
    if (up && opset < 9)
        nsattr = op_attr_floats(n, "scales", &sattr);
    else if (up || opset < 11)
        scales = op_input(c, 1);
    else
        scales = op_input(c, 2), sizes = op_input(c, 3);
    if (scales && !scales->data) return 1;
    if (sizes && !sizes->data) return 1;
    if (!op_shapes_known(c)) return 1;
    if (sizes && op_tensor_numel(sizes) > 0) {
        if (op_tensor_numel(sizes) != x->rank) return -1;
        for (int i = 0; i < x->rank; i++) {
            sp->out[i] = op_tensor_get_int(sizes, i);
            if (sp->out[i] < 0) return -1;
            sp->scale[i] = x->dims[i] ? (double)sp->out[i] / (double)x->dims[i] : 1.0;
            sp->len[i] = (double)sp->out[i];
        }
        return 0;
    }
    int64_t ns = scales ? op_tensor_numel(scales) : (int64_t)nsattr;
    if (ns != x->rank) return -1;
    for (int i = 0; i < x->rank; i++) {
        double s = scales ? op_tensor_get_double(scales, i) : sattr[i];
        if (!(s > 0)) return -1;
        sp->scale[i] = s;
        sp->out[i] = (int64_t)floor((double)x->dims[i] * s);
        sp->len[i] = (double)x->dims[i] * s;
    }
    return 0;
}

static kinfer_status *rs_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    const char *mode = op_attr_string(n, "mode", "nearest");
    const char *ct = op_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "bilinear"))
        return op_error(c, KINFER_EUNSUPPORTED, "mode '%s'", mode);
    if (!strcmp(ct, "tf_crop_and_resize"))
        return op_error(c, KINFER_EUNSUPPORTED, "coordinate_transformation_mode '%s'", ct);
    if (!core_is_numeric(x->dtype)) return op_error(c, KINFER_EUNSUPPORTED, "type");
    rs_spec sp;
    int rc = rs_plan(c, x, &sp);
    if (rc < 0) return op_error(c, KINFER_EMODEL, "scales/sizes do not match the input rank");
    if (rc > 0) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    op_set_output(c, 0, x->dtype, x->rank, sp.out);
    return NULL;
}

/* out is the resized length before flooring (in * scale) when scales were given, as in ONNX's
 * reference: it matters for align_corners and pytorch_half_pixel. */
static double rs_coord(const char *ct, int legacy, double xo, double s, int64_t in, double out)
{
    if (legacy || !strcmp(ct, "asymmetric")) return xo / s;
    if (!strcmp(ct, "align_corners")) return out == 1 ? 0 : xo * (double)(in - 1) / (out - 1);
    if (!strcmp(ct, "pytorch_half_pixel")) return out > 1 ? (xo + 0.5) / s - 0.5 : 0;
    if (!strcmp(ct, "tf_half_pixel_for_nn")) return (xo + 0.5) / s;
    return (xo + 0.5) / s - 0.5; /* half_pixel */
}

static kinfer_status *rs_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    rs_spec sp;
    if (rs_plan(c, x, &sp)) return op_error(c, KINFER_EMODEL, "scales/sizes");
    int legacy = !strcmp(op_node_op_type(n), "Upsample") || op_node_opset(n) < 11;
    const char *ct = op_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = op_attr_string(n, "nearest_mode", "round_prefer_floor");
    int linear = strcmp(op_attr_string(n, "mode", "nearest"), "nearest") != 0;
    int r = x->rank;
    int64_t tot = 0;
    for (int d = 0; d < r; d++) tot += y->dims[d];
    /* Per output coordinate of each dim: source index pair and weight. */
    int64_t *i0 = op_scratch(c, sizeof(int64_t) * (size_t)(tot + 1)),
            *i1 = op_scratch(c, sizeof(int64_t) * (size_t)(tot + 1));
    double *wt = op_scratch(c, sizeof(double) * (size_t)(tot + 1));
    if (!i0 || !i1 || !wt) return op_error(c, KINFER_ENOMEM, "resize");
    int64_t base[ONNX_MAX_RANK], b = 0;
    for (int d = 0; d < r; d++) {
        base[d] = b;
        int64_t in = x->dims[d];
        for (int64_t o = 0; o < y->dims[d]; o++) {
            double xi = rs_coord(ct, legacy, (double)o, sp.scale[d], in, sp.len[d]);
            if (linear) {
                if (xi < 0) xi = 0;
                if (xi > (double)(in - 1)) xi = (double)(in - 1);
                int64_t f = (int64_t)floor(xi);
                i0[b] = f, i1[b] = f + 1 < in ? f + 1 : in - 1, wt[b] = xi - (double)f;
            } else {
                double f = floor(xi), v;
                if (legacy || !strcmp(nm, "floor"))
                    v = f;
                else if (!strcmp(nm, "ceil"))
                    v = ceil(xi);
                else if (xi - f == 0.5)
                    v = !strcmp(nm, "round_prefer_ceil") ? f + 1 : f;
                else
                    v = round(xi);
                int64_t k = (int64_t)v;
                i0[b] = i1[b] = k < 0 ? 0 : k >= in ? in - 1 : k, wt[b] = 0;
            }
            b++;
        }
    }
    int64_t xs[ONNX_MAX_RANK], s = 1, ny = op_tensor_numel(y);
    for (int d = r - 1; d >= 0; d--) xs[d] = s, s *= x->dims[d];
    int corners = 1;
    int interp[ONNX_MAX_RANK], ni = 0;
    for (int d = 0; d < r && linear; d++)
        if (x->dims[d] != y->dims[d] || sp.scale[d] != 1.0) interp[ni++] = d, corners *= 2;
    for (int64_t i = 0; i < ny; i++) {
        int64_t idx[ONNX_MAX_RANK], rem = i;
        for (int d = r - 1; d >= 0; d--) idx[d] = rem % y->dims[d], rem /= y->dims[d];
        double acc = 0;
        for (int cmask = 0; cmask < corners; cmask++) {
            double w = 1;
            int64_t off = 0;
            for (int d = 0, k = 0; d < r; d++) {
                int64_t q = base[d] + idx[d], src = i0[q];
                if (k < ni && interp[k] == d) {
                    int hi = (cmask >> k) & 1;
                    src = hi ? i1[q] : i0[q];
                    w *= hi ? wt[q] : 1 - wt[q];
                    k++;
                }
                off += src * xs[d];
            }
            if (w != 0) acc += w * op_tensor_get_double(x, off);
        }
        core_store_double(
            y, i,
            x->dtype == ONNX_DTYPE_FLOAT || x->dtype == ONNX_DTYPE_DOUBLE ? acc : nearbyint(acc));
    }
    return NULL;
}

/* ---- InstanceNormalization, LRN ---- */
static kinfer_status *fl_infer(op_ctx *c)
{
    if (op_input(c, 0)->dtype != ONNX_DTYPE_FLOAT)
        return op_error(c, KINFER_EUNSUPPORTED, "type (float only)");
    return op_infer_like(c, 0, 0);
}

static kinfer_status *in_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const float *sc = op_input(c, 1)->data, *bi = op_input(c, 2)->data, *xd = x->data;
    float *y = op_output(c, 0)->data;
    float eps = op_attr_float(op_ctx_node(c), "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], S = core_prod(x->dims, 2, x->rank);
    if (op_tensor_numel(op_input(c, 1)) != C || op_tensor_numel(op_input(c, 2)) != C)
        return op_error(c, KINFER_ESHAPE, "scale/B must have C values");
    for (int64_t p = 0; p < N * C; p++) {
        const float *v = xd + p * S;
        double m = 0, var = 0;
        for (int64_t i = 0; i < S; i++) m += v[i];
        m /= (double)(S ? S : 1);
        for (int64_t i = 0; i < S; i++) var += (v[i] - m) * (v[i] - m);
        var /= (double)(S ? S : 1);
        double a = sc[p % C] / sqrt(var + eps);
        for (int64_t i = 0; i < S; i++) y[p * S + i] = (float)((v[i] - m) * a + bi[p % C]);
    }
    return NULL;
}

static kinfer_status *lrn_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const op_node *n = op_ctx_node(c);
    const float *xd = x->data;
    float *y = op_output(c, 0)->data;
    double alpha = op_attr_float(n, "alpha", 1e-4f), beta = op_attr_float(n, "beta", 0.75f),
           bias = op_attr_float(n, "bias", 1.0f);
    int64_t size = op_attr_int(n, "size", 1), N = x->dims[0], C = x->dims[1],
            S = core_prod(x->dims, 2, x->rank);
    int64_t lo = (size - 1) / 2, hi = (size - 1) - lo;
    for (int64_t b = 0; b < N; b++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t i = 0; i < S; i++) {
                double sq = 0;
                for (int64_t k = ch - lo; k <= ch + hi; k++)
                    if (k >= 0 && k < C)
                        sq += (double)xd[(b * C + k) * S + i] * xd[(b * C + k) * S + i];
                y[(b * C + ch) * S + i] =
                    (float)(xd[(b * C + ch) * S + i] / pow(bias + alpha / (double)size * sq, beta));
            }
    return NULL;
}

const op_def core_spatial_ops[] = {
    {"", "ConvTranspose", 1, OP_OPSET_MAX, 2, 3, 1, 1, NULL, NULL, ct_infer, ct_compute},
    {"", "Resize", 10, OP_OPSET_MAX, 1, 4, 1, 1, NULL, NULL, rs_infer, rs_compute},
    {"", "Upsample", 7, 9, 1, 2, 1, 1, NULL, NULL, rs_infer, rs_compute},
    {"", "InstanceNormalization", 6, OP_OPSET_MAX, 3, 3, 1, 1, NULL, NULL, fl_infer, in_compute},
    {"", "LRN", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, fl_infer, lrn_compute},
};
const size_t core_spatial_count = sizeof(core_spatial_ops) / sizeof(core_spatial_ops[0]);
