/*
 * core_conv: Conv (1-D/2-D, groups, dilations, pads, auto_pad) with bias and a fused activation.
 * A 1x1 stride-1 convolution is a single GEMM on the input as is; depthwise convolutions run a
 * direct loop per channel (GEMM would be all overhead); a 3x3 stride-1 one with a constant filter
 * and enough tiles runs Winograd F(2x2, 3x3) (core_winograd.c); everything else is im2col into
 * the run's scratch memory plus GEMM. Also the shared window geometry (core_window.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_gemm.h"
#include "core_tables.h"
#include "core_util.h"
#include "core_window.h"
#include "core_winograd.h"

/* KINFER_CONV_ALGO (read when a model loads) picks the 3x3 stride-1 path: "im2col" never uses
 * Winograd, "winograd" uses it wherever it fits regardless of size, anything else (the default)
 * lets core_winograd_worth decide. For tests and benchmarks that compare the two paths. */
typedef enum conv_algo { CONV_ALGO_AUTO, CONV_ALGO_IM2COL, CONV_ALGO_WINOGRAD } conv_algo;

/* Node state. The Winograd filter transform depends on the weights after the optimizer's
 * Conv+BatchNorm fusion, which runs after init, so the first run that takes the Winograd path
 * builds it (under mu) and publishes it; later runs read it without the lock. It is kept only for
 * the filter it was made from (src), and a failed build falls back to im2col for good. */
typedef struct conv_state {
    conv_algo algo;
    pthread_mutex_t mu;
    _Atomic(core_winograd *) wg;
    const float *src;
    int wg_failed;
} conv_state;

static kinfer_status *conv_init(const op_node *n, void **state)
{
    conv_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "conv state");
    const char *e = getenv("KINFER_CONV_ALGO");
    s->algo = !e ? CONV_ALGO_AUTO : !strcmp(e, "im2col") ? CONV_ALGO_IM2COL
                                  : !strcmp(e, "winograd") ? CONV_ALGO_WINOGRAD : CONV_ALGO_AUTO;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->wg, NULL);
    *state = s;
    return NULL;
}

static void conv_fini(void *state)
{
    conv_state *s = state;
    if (!s) return;
    core_winograd_free(atomic_load(&s->wg));
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The node's Winograd filter if this run should use it, else NULL (im2col). W must be the model's
 * constant (its storage is the graph's), so one transform serves every run. */
static core_winograd *conv_winograd(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M, int64_t G)
{
    conv_state *s = op_ctx_state(c);
    const op_tensor *wt = op_input(c, 1), *cw = op_node_const_input(op_ctx_node(c), 1);
    if (!s || s->algo == CONV_ALGO_IM2COL || !core_winograd_fits(w, G) || !cw || cw->data != wt->data) return NULL;
    if (s->algo == CONV_ALGO_AUTO && !core_winograd_worth(w, N, C, M)) return NULL;
    core_winograd *wg = atomic_load_explicit(&s->wg, memory_order_acquire);
    if (wg) return s->src == wt->data ? wg : NULL;
    pthread_mutex_lock(&s->mu);
    wg = atomic_load_explicit(&s->wg, memory_order_relaxed);
    if (!wg && !s->wg_failed) {
        kinfer_status *st = core_winograd_create(wt->data, M, C, &wg);
        if (st) { /* out of memory for the transform: im2col still works */
            kinfer_status_free(st);
            s->wg_failed = 1;
            wg = NULL;
        } else {
            s->src = wt->data;
            atomic_store_explicit(&s->wg, wg, memory_order_release);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return wg && s->src == wt->data ? wg : NULL;
}

kinfer_status *core_window_init(op_ctx *c, int nd, const int64_t *in, const int64_t *kernel, int ceil_mode,
                                core_window *w)
{
    const op_node *n = op_ctx_node(c);
    const int64_t *v;
    memset(w, 0, sizeof(*w));
    w->nd = nd;
    for (int i = 0; i < 2; i++) w->k[i] = w->s[i] = w->d[i] = w->in[i] = 1;
    int off = 2 - nd; /* 1-D lives in the w slot */
    for (int i = 0; i < nd; i++) w->in[off + i] = in[i], w->k[off + i] = kernel[i];
    size_t cnt;
    if ((cnt = op_attr_ints(n, "strides", &v)) && cnt != (size_t)nd) return op_error(c, KINFER_EMODEL, "strides length");
    for (size_t i = 0; i < cnt; i++) w->s[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "dilations", &v)) && cnt != (size_t)nd) return op_error(c, KINFER_EMODEL, "dilations length");
    for (size_t i = 0; i < cnt; i++) w->d[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "pads", &v)) && cnt != (size_t)(2 * nd)) return op_error(c, KINFER_EMODEL, "pads length");
    for (int i = 0; i < (int)cnt / 2; i++) w->pb[off + i] = v[i], w->pe[off + i] = v[i + nd];
    for (int i = 0; i < 2; i++)
        if (w->s[i] < 1 || w->d[i] < 1 || w->k[i] < 1 || w->pb[i] < 0 || w->pe[i] < 0)
            return op_error(c, KINFER_EMODEL, "bad kernel/stride/dilation/pad");
    const char *ap = op_attr_string(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (!same && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return op_error(c, KINFER_EMODEL, "auto_pad '%s'", ap);
    for (int i = 0; i < 2; i++) {
        int64_t ek = (w->k[i] - 1) * w->d[i] + 1;
        if (same) {
            int64_t o = (w->in[i] + w->s[i] - 1) / w->s[i];
            int64_t total = (o - 1) * w->s[i] + ek - w->in[i];
            if (total < 0) total = 0;
            w->pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            w->pe[i] = total - w->pb[i];
        } else if (!strcmp(ap, "VALID")) {
            w->pb[i] = w->pe[i] = 0;
        }
        int64_t span = w->in[i] + w->pb[i] + w->pe[i] - ek;
        if (span < 0) return op_error(c, KINFER_ESHAPE, "kernel larger than padded input");
        w->out[i] = (ceil_mode ? (span + w->s[i] - 1) / w->s[i] : span / w->s[i]) + 1;
        /* ceil_mode must not start a window entirely in the end padding */
        if (ceil_mode && (w->out[i] - 1) * w->s[i] >= w->in[i] + w->pb[i]) w->out[i]--;
    }
    return NULL;
}

static kinfer_status *conv_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *wt = op_input(c, 1), *b = op_input(c, 2);
    if (x->dtype != ONNX_DTYPE_FLOAT || wt->dtype != ONNX_DTYPE_FLOAT || (b && b->dtype != ONNX_DTYPE_FLOAT))
        return op_error(c, x->dtype == wt->dtype ? KINFER_EUNSUPPORTED : KINFER_EMODEL, "types (float only)");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    if (x->rank != 3 && x->rank != 4) return op_error(c, KINFER_EUNSUPPORTED, "%d-D convolution", x->rank - 2);
    if (wt->rank != x->rank) return op_error(c, KINFER_ESHAPE, "W rank %d, X rank %d", wt->rank, x->rank);
    int64_t group = op_attr_int(op_ctx_node(c), "group", 1);
    if (group < 1 || x->dims[1] != wt->dims[1] * group || wt->dims[0] % group)
        return op_error(c, KINFER_ESHAPE, "channels: X has %lld, W expects %lld x group %lld", (long long)x->dims[1],
                        (long long)wt->dims[1], (long long)group);
    if (b && (b->rank != 1 || b->dims[0] != wt->dims[0])) return op_error(c, KINFER_ESHAPE, "bias shape");
    const int64_t *ks;
    size_t nk = op_attr_ints(op_ctx_node(c), "kernel_shape", &ks);
    for (size_t i = 0; i < nk && i + 2 < (size_t)wt->rank; i++)
        if (ks[i] != wt->dims[2 + i]) return op_error(c, KINFER_EMODEL, "kernel_shape differs from W");
    core_window w;
    kinfer_status *st = core_window_init(c, x->rank - 2, x->dims + 2, wt->dims + 2, 0, &w);
    if (st) return st;
    int64_t d[4] = {x->dims[0], wt->dims[0], w.out[0], w.out[1]};
    if (x->rank == 3) d[2] = w.out[1];
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

typedef struct dw_job {
    const float *x, *w, *bias;
    float *y;
    float *pad; /* one padded input plane per thread */
    float *acc; /* one padded-width output plane per thread (stride 1) */
    int64_t N, C, plane;
    core_window win;
    core_epilogue ep;
    _Atomic int64_t next; /* the batch's planes ([N][C] is contiguous), taken chunk by chunk */
    int64_t chunk;
    int in_act;          /* the producer's activation, applied to x as planes are copied */
    float in_lo, in_hi;  /* -inf, inf without one */
} dw_job;

/* The next chunk [*b, *e) of planes for the calling thread, 0 when none is left. Threads take
 * chunks as they go, so one the machine delays does not hold up a fixed half of the layer. */
static int dw_take(dw_job *j, int64_t *b, int64_t *e)
{
    int64_t total = j->N * j->C, at = atomic_fetch_add(&j->next, j->chunk);
    if (at >= total) return 0;
    *b = at;
    *e = at + j->chunk < total ? at + j->chunk : total;
    return 1;
}

static inline float dw_clamp(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* n input values into dst, through the producer's activation when there is one. */
static inline void dw_copy_in(float *dst, const float *src, int64_t n, int act, float lo, float hi)
{
    if (!act) memcpy(dst, src, sizeof(float) * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = dw_clamp(src[i], lo, hi);
}

/* 3x3, dilation 1, one channel: y[oh][ow] = bias + the nine taps, summed in the generic loop's
 * order (bias, then kh, kw) so results are bit-identical, clamped, and stored once. Tap kw of
 * output column ow reads t_kw[ow]: for stride 1 the padded row at +0, +1, +2; for stride 2 the
 * row is stored as its even columns then its odd ones (see dw_fill), so the taps are E[ow],
 * O[ow], E[ow + 1] and every load is unit-stride. */
static inline void dw3x3_plane(const float *xp, int64_t PW, int s, const float *k, float bias, float lo, float hi,
                               float *y, int64_t OH, int64_t OW)
{
    int64_t o1 = s == 1 ? 1 : (PW + 1) / 2, o2 = s == 1 ? 2 : 1;
    float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7], k8 = k[8];
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = xp + oh * s * PW, *r1 = r0 + PW, *r2 = r1 + PW;
        float *yr = y + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            float v = bias + k0 * r0[ow];
            v += k1 * r0[ow + o1];
            v += k2 * r0[ow + o2];
            v += k3 * r1[ow];
            v += k4 * r1[ow + o1];
            v += k5 * r1[ow + o2];
            v += k6 * r2[ow];
            v += k7 * r2[ow + o1];
            v += k8 * r2[ow + o2];
            yr[ow] = dw_clamp(v, lo, hi);
        }
    }
}

/* Stride 1, 3x3, small planes (OW < 16): one long loop over the padded-width output, so the
 * vectors stay full, then the valid columns are copied out. */
static inline void dw3x3_wide(const float *xp, int64_t PW, const float *k, float bias, float lo, float hi, float *acc,
                              float *y, int64_t OH, int64_t OW)
{
    int64_t len = (OH - 1) * PW + OW;
    const float *r0 = xp, *r1 = xp + PW, *r2 = xp + 2 * PW;
    float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7], k8 = k[8];
    for (int64_t i = 0; i < len; i++) {
        float v = bias + k0 * r0[i];
        v += k1 * r0[i + 1];
        v += k2 * r0[i + 2];
        v += k3 * r1[i];
        v += k4 * r1[i + 1];
        v += k5 * r1[i + 2];
        v += k6 * r2[i];
        v += k7 * r2[i + 1];
        v += k8 * r2[i + 2];
        acc[i] = dw_clamp(v, lo, hi);
    }
    for (int64_t oh = 0; oh < OH; oh++) memcpy(y + oh * OW, acc + oh * PW, sizeof(float) * (size_t)OW);
}

/* Copies channel x (H x W) into the zero-bordered plane; split != 0 stores each padded row as its
 * even columns followed by its odd ones (the stride-2 3x3 layout). */
static inline void dw_fill(const float *x, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t PW, int split,
                           const dw_job *j, float *xp)
{
    float lo = j->in_lo, hi = j->in_hi;
    int64_t half = (PW + 1) / 2;
    for (int64_t h = 0; h < H; h++) {
        const float *src = x + h * W;
        float *row = xp + (h + pt) * PW;
        if (!split) {
            dw_copy_in(row + pl, src, W, j->in_act, lo, hi);
            continue;
        }
        /* input column iw lands at padded column iw + pl: even ones in E, odd ones in O */
        int64_t e0 = pl & 1, o0 = !e0, ne = (W - e0 + 1) / 2, no = (W - o0 + 1) / 2;
        const float *se = src + e0, *so = src + o0;
        float *de = row + (e0 + pl) / 2, *dO = row + half + (o0 + pl) / 2;
        for (int64_t i = 0; i < ne; i++) de[i] = dw_clamp(se[2 * i], lo, hi);
        for (int64_t i = 0; i < no; i++) dO[i] = dw_clamp(so[2 * i], lo, hi);
    }
}

/* ---- 3x3 depthwise with pads of 1, over the flattened plane ----
 * At stride 1, output pixel i = oh * W + ow reads the input at i + dh * W + dw, so a whole plane
 * is one unit-stride vector loop whatever its width: a 7x7 or 14x14 plane (most of MobileNet's
 * depthwise layers) fills whole vectors instead of 7- or 14-wide rows, with no row copies in
 * between. The plane is copied once between zero guards (the rows above and below); a tap that
 * would wrap into the neighbouring row (dw = -1 at ow = 0, dw = +1 at ow = W - 1) is cleared
 * with a bit mask taken from a small periodic table. At stride 2 with even H and W the plane is
 * first split into its four parity quarters q[a][b][r][c] = x[2r + a][2c + b], after which every
 * tap is again a constant offset into one quarter (see dw3x3_flat2). The nine taps are summed in
 * the generic loop's order (bias, then kh, kw), so results match it up to the sign of a zero. */
/* Unaligned 16-float vectors (aligned(4): loads through them may start at any float). */
typedef float dw_vf __attribute__((vector_size(64), aligned(4)));
typedef int32_t dw_vi __attribute__((vector_size(64), aligned(4)));
#define DW_VL 16
#define DW_LD(p) (*(const dw_vf *)(p))
#define DW_AND(p, m) ((dw_vf)(*(const dw_vi *)(p) & (m)))
/* v clamped to [vlo, vhi] with compares and bit selects (C has no vector ?:); NaN passes. */
#define DW_CLAMP(v, vlo, vhi)                                                                                      \
    do {                                                                                                           \
        dw_vi m_ = (v) < (vlo);                                                                                    \
        (v) = (dw_vf)(((dw_vi)(v) & ~m_) | ((dw_vi)(vlo) & m_));                                                   \
        m_ = (v) > (vhi);                                                                                          \
        (v) = (dw_vf)(((dw_vi)(v) & ~m_) | ((dw_vi)(vhi) & m_));                                                   \
    } while (0)
/* Stores v at y[0, left) (a whole vector when left >= DW_VL). */
#define DW_STORE(y, left, v)                                                                                       \
    do {                                                                                                           \
        if ((left) >= DW_VL) *(dw_vf *)(y) = (v);                                                                  \
        else                                                                                                       \
            for (int64_t t_ = 0; t_ < (left); t_++) (y)[t_] = (v)[t_];                                             \
    } while (0)

/* Column masks for width W: ml[j] clears column 0, mr[j] column W - 1 (j taken modulo W); both
 * hold W + DW_VL entries so a vector starting at any column reads them unwrapped. */
static void dw_masks(int64_t W, int32_t *ml, int32_t *mr)
{
    for (int64_t j = 0; j < W + DW_VL; j++) {
        ml[j] = j % W == 0 ? 0 : -1;
        mr[j] = j % W == W - 1 ? 0 : -1;
    }
}

/* Zero guard before a stride-1 plane (at least W + 1, rounded to whole vectors so the plane stays
 * aligned), and the per-thread buffer: guard, plane, guard plus one vector of overrun. */
static int64_t dw_guard(int64_t W) { return (W + 1 + DW_VL - 1) / DW_VL * DW_VL; }
static int64_t dw_flat1_size(int64_t H, int64_t W) { return 2 * dw_guard(W) + H * W + DW_VL; }
/* Stride 2: four quarters of OH x OW, each after a guard of OW + 1. */
static int64_t dw_flat2_quarter(int64_t OH, int64_t OW) { return dw_guard(OW) + (OH * OW + DW_VL - 1) / DW_VL * DW_VL; }
static int64_t dw_flat2_size(int64_t OH, int64_t OW) { return 4 * dw_flat2_quarter(OH, OW) + DW_VL; }

/* Stride 1: g is the plane inside its guards. */
static inline __attribute__((always_inline)) void dw3x3_flat1(const float *g, int64_t W, int64_t n, const float *k,
                                                              float bias, float lo, float hi, const int32_t *ml,
                                                              const int32_t *mr, float *y)
{
    dw_vf zero = {0}, vb = zero + bias, vlo = zero + lo, vhi = zero + hi;
    int64_t col = 0;
    for (int64_t i = 0; i < n; i += DW_VL) {
        dw_vi L = *(const dw_vi *)(ml + col), R = *(const dw_vi *)(mr + col);
        const float *p = g + i;
        dw_vf v = vb + k[0] * DW_AND(p - W - 1, L), u = k[1] * DW_LD(p - W);
        v += k[2] * DW_AND(p - W + 1, R);
        u += k[3] * DW_AND(p - 1, L);
        v += k[4] * DW_LD(p);
        u += k[5] * DW_AND(p + 1, R);
        v += k[6] * DW_AND(p + W - 1, L);
        u += k[7] * DW_LD(p + W);
        v += k[8] * DW_AND(p + W + 1, R);
        v += u;
        DW_CLAMP(v, vlo, vhi);
        DW_STORE(y + i, n - i, v);
        for (col += DW_VL; col >= W; col -= W) continue;
    }
}

/* Stride 2: row 2 oh - 1 is odd row oh - 1, 2 oh is even row oh, 2 oh + 1 odd row oh, and the
 * same for columns; q[2a + b] is the quarter of row parity a, column parity b. */
static inline __attribute__((always_inline)) void dw3x3_flat2(float *const q[4], int64_t OW, int64_t n, const float *k,
                                                              float bias, float lo, float hi, const int32_t *ml,
                                                              float *y)
{
    const float *ee = q[0], *eo = q[1], *oe = q[2], *oo = q[3];
    dw_vf zero = {0}, vb = zero + bias, vlo = zero + lo, vhi = zero + hi;
    int64_t col = 0;
    for (int64_t i = 0; i < n; i += DW_VL) {
        dw_vi L = *(const dw_vi *)(ml + col);
        dw_vf v = vb + k[0] * DW_AND(oo + i - OW - 1, L), u = k[1] * DW_LD(oe + i - OW);
        v += k[2] * DW_LD(oo + i - OW);
        u += k[3] * DW_AND(eo + i - 1, L);
        v += k[4] * DW_LD(ee + i);
        u += k[5] * DW_LD(eo + i);
        v += k[6] * DW_AND(oo + i - 1, L);
        u += k[7] * DW_LD(oe + i);
        v += k[8] * DW_LD(oo + i);
        v += u;
        DW_CLAMP(v, vlo, vhi);
        DW_STORE(y + i, n - i, v);
        for (col += DW_VL; col >= OW; col -= OW) continue;
    }
}

/* The plane x (H x W, both even) into its four quarters. */
static inline __attribute__((always_inline)) void dw_quarters(const float *x, int64_t H, int64_t W, float lo, float hi,
                                                              float *const q[4])
{
    int64_t OW = W / 2;
    for (int64_t h = 0; h < H; h++) {
        const float *src = x + h * W;
        float *e = q[2 * (h & 1)] + (h >> 1) * OW, *o = q[2 * (h & 1) + 1] + (h >> 1) * OW;
        for (int64_t c = 0; c < OW; c++) {
            e[c] = dw_clamp(src[2 * c], lo, hi);
            o[c] = dw_clamp(src[2 * c + 1], lo, hi);
        }
    }
}

/* Whether the flat kernels above take this window: 3x3, dilation 1, pads of 1, stride 2 on an
 * even plane, or stride 1 on a plane narrower than 48. Returns the stride, or 0. Wider stride-1
 * planes already fill whole vectors per row, and there the padded-plane loop below measured
 * faster than the flat one with its plane copy and masks (one thread, 144 channels at 56x56:
 * 0.22 against 0.24 ms; 32 at 112x112: 0.17 against 0.22 ms; 192 at 28x28: 0.125 against 0.087). */
static int dw_flat_stride(const core_window *w)
{
    if (w->k[0] != 3 || w->k[1] != 3 || w->d[0] != 1 || w->d[1] != 1 || w->s[0] != w->s[1]) return 0;
    for (int i = 0; i < 2; i++)
        if (w->pb[i] != 1 || w->pe[i] != 1) return 0;
    if (w->s[0] == 1) return w->in[1] < 48;
    return w->s[0] == 2 && w->in[0] % 2 == 0 && w->in[1] % 2 == 0 ? 2 : 0;
}

/* Thread ith's planes [b, e) of the batch through the flat kernels; xp is its buffer. */
/* One region's share of the batch's planes through the flat kernels (dw_flat_stride != 0): its
 * own function so the kernels get the registers to themselves. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dw_flat_rows(void *arg, int ith, int nth)
{
    dw_job *j = arg;
    const core_window *w = &j->win;
    int s = dw_flat_stride(w);
    float *xp = j->pad + ith * j->plane;
    int64_t b, e;
    (void)nth;
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], n = OH * OW;
    float lo = j->ep.act == OP_ACT_RELU ? 0.0f : j->ep.act == OP_ACT_CLIP ? j->ep.lo : -INFINITY;
    float hi = j->ep.act == OP_ACT_CLIP ? j->ep.hi : INFINITY;
    int32_t *ml = (int32_t *)(xp + (s == 1 ? dw_flat1_size(H, W) : dw_flat2_size(OH, OW))), *mr = ml + OW + DW_VL;
    dw_masks(OW, ml, mr);
    float *q[4];
    int64_t qs = dw_flat2_quarter(OH, OW);
    for (int t = 0; t < 4; t++) q[t] = xp + t * qs + dw_guard(OW);
    memset(xp, 0, sizeof(float) * (size_t)(s == 1 ? dw_flat1_size(H, W) : dw_flat2_size(OH, OW)));
    while (dw_take(j, &b, &e))
        for (int64_t p = b; p < e; p++) {
            int64_t ch = p % j->C;
            const float *x = j->x + p * H * W, *k = j->w + ch * 9;
            float *y = j->y + p * n, bias = j->bias ? j->bias[ch] : 0.0f;
            if (s == 1) {
                dw_copy_in(xp + dw_guard(W), x, H * W, j->in_act, j->in_lo, j->in_hi);
                dw3x3_flat1(xp + dw_guard(W), W, n, k, bias, lo, hi, ml, mr, y);
            } else {
                dw_quarters(x, H, W, j->in_lo, j->in_hi, q);
                dw3x3_flat2(q, OW, n, k, bias, lo, hi, ml, y);
            }
        }
}

/* Whether a batch of N is worth splitting by image over nth threads: at least two images each,
 * and no thread left with one image more than the others while they hold only one or two. */
static int conv_by_image(int64_t N, int nth)
{
    return nth > 1 && N >= 2 * nth && (N % nth == 0 || N >= 4 * nth);
}

/* ---- a stem: 3x3, stride 2, pads of 1, few input channels ----
 * A network's first layer (MobileNet's 3 -> 32 at 224x224) is a poor GEMM: K is 27, so im2col
 * writes nine copies of the image for a GEMM that is mostly packing. Here each input channel is
 * split into its four parity quarters once (as in dw3x3_flat2), shared by the threads, and every
 * 16-pixel vector of a quarter is loaded once per tap for four output channels at a time. */
#define STEM_MAX_C 4

typedef struct stem_job {
    const float *x, *w, *bias;
    float *y, *q; /* q: C channels x 4 quarters of dw_flat2_quarter floats */
    const int32_t *ml;
    int64_t C, M, H, W, OH, OW;
    float lo, hi;
    /* by image: x and y are the batch's, q holds one set of quarters per thread */
    int64_t N;
    _Atomic int64_t next;
} stem_job;

static float *stem_quarter(const stem_job *j, int64_t c, int t)
{
    return j->q + (c * 4 + t) * dw_flat2_quarter(j->OH, j->OW) + dw_guard(j->OW);
}

/* Quarters of the image's input rows [b, e) of C * H. */
static void stem_split(void *arg, int ith, int nth)
{
    const stem_job *j = arg;
    int64_t b, e;
    op_split(j->C * j->H, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        int64_t c = r / j->H, h = r % j->H;
        const float *src = j->x + r * j->W;
        float *ev = stem_quarter(j, c, 2 * (int)(h & 1)) + (h >> 1) * j->OW, *od = ev + dw_flat2_quarter(j->OH, j->OW);
        for (int64_t i = 0; i < j->OW; i++) {
            ev[i] = src[2 * i];
            od[i] = src[2 * i + 1];
        }
    }
}

/* gcc contracts the multiply-adds below into FMAs (-std=c11 leaves contraction off), in clones
 * for x86-64-v4 and -v3, which have FMA; clang (the fuzz build) has no optimize attribute. */
#ifdef __clang__
#define STEM_FMA
#else
#define STEM_FMA __attribute__((optimize("fp-contract=fast")))
#endif

/* Output vectors [b, e) of every output channel, four channels per pass over the quarters. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) STEM_FMA
static void stem_rows(void *arg, int ith, int nth)
{
    const stem_job *j = arg;
    int64_t n = j->OH * j->OW, OW = j->OW, b, e;
    op_split((n + DW_VL - 1) / DW_VL, ith, nth, &b, &e);
    dw_vf zero = {0}, vlo = zero + j->lo, vhi = zero + j->hi;
    for (int64_t m0 = 0; m0 < j->M; m0 += 4) {
        float k[4][STEM_MAX_C * 9] = {{0}}, bias[4] = {0};
        int cnt = j->M - m0 < 4 ? (int)(j->M - m0) : 4;
        for (int o = 0; o < cnt; o++) {
            memcpy(k[o], j->w + (m0 + o) * j->C * 9, sizeof(float) * (size_t)(j->C * 9));
            bias[o] = j->bias ? j->bias[m0 + o] : 0.0f;
        }
        for (int64_t v = b; v < e; v++) {
            int64_t i = v * DW_VL;
            dw_vi L = *(const dw_vi *)(j->ml + i % OW);
            dw_vf a0 = zero + bias[0], a1 = zero + bias[1], a2 = zero + bias[2], a3 = zero + bias[3];
            for (int64_t c = 0; c < j->C; c++) {
                const float *ee = stem_quarter(j, c, 0) + i, *eo = stem_quarter(j, c, 1) + i,
                            *oe = stem_quarter(j, c, 2) + i, *oo = stem_quarter(j, c, 3) + i;
                const dw_vf t[9] = {DW_AND(oo - OW - 1, L), DW_LD(oe - OW), DW_LD(oo - OW),
                                    DW_AND(eo - 1, L),      DW_LD(ee),      DW_LD(eo),
                                    DW_AND(oo - 1, L),      DW_LD(oe),      DW_LD(oo)};
                const float *k0 = k[0] + c * 9, *k1 = k[1] + c * 9, *k2 = k[2] + c * 9, *k3 = k[3] + c * 9;
                for (int tap = 0; tap < 9; tap++) {
                    a0 += k0[tap] * t[tap];
                    a1 += k1[tap] * t[tap];
                    a2 += k2[tap] * t[tap];
                    a3 += k3[tap] * t[tap];
                }
            }
            dw_vf *acc[4] = {&a0, &a1, &a2, &a3};
            for (int o = 0; o < cnt; o++) {
                DW_CLAMP(*acc[o], vlo, vhi);
                DW_STORE(j->y + (m0 + o) * n + i, n - i, *acc[o]);
            }
        }
    }
}

/* One image per thread at a time (see conv_img_part), each with its own quarters. */
static void stem_images(void *arg, int ith, int nth)
{
    stem_job *j = arg;
    (void)nth;
    stem_job one = {NULL, j->w, j->bias, NULL, j->q + ith * j->C * 4 * dw_flat2_quarter(j->OH, j->OW), j->ml,
                    j->C, j->M, j->H, j->W, j->OH, j->OW, j->lo, j->hi, 1, 0};
    for (int64_t n; (n = atomic_fetch_add(&j->next, 1)) < j->N;) {
        one.x = j->x + n * j->C * j->H * j->W;
        one.y = j->y + n * j->M * j->OH * j->OW;
        stem_split(&one, 0, 1);
        stem_rows(&one, 0, 1);
    }
}

/* Whether the stem kernel takes this convolution (see dw_flat_stride for the window). */
static int stem_fits(const core_window *w, int64_t C, int64_t G)
{
    return G == 1 && C <= STEM_MAX_C && w->nd == 2 && dw_flat_stride(w) == 2;
}

static kinfer_status *stem_run(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M, const float *bias,
                               const core_epilogue *ep)
{
    int64_t qs = dw_flat2_quarter(w->out[0], w->out[1]), OW = w->out[1];
    stem_job j = {NULL, op_input(c, 1)->data, bias, NULL, NULL, NULL,
                  C, M, w->in[0], w->in[1], w->out[0], OW,
                  ep->act == OP_ACT_RELU ? 0.0f : ep->act == OP_ACT_CLIP ? ep->lo : -INFINITY,
                  ep->act == OP_ACT_CLIP ? ep->hi : INFINITY, 0, 0};
    int nth = op_num_threads(c), by_image = conv_by_image(N, nth);
    int64_t sets = by_image ? nth : 1;
    j.q = op_scratch(c, sizeof(float) * (size_t)(sets * C * 4 * qs + DW_VL));
    int32_t *ml = op_scratch(c, sizeof(int32_t) * (size_t)(2 * (OW + DW_VL)));
    if (!j.q || !ml) return op_error(c, KINFER_ENOMEM, "stem buffer");
    dw_masks(OW, ml, ml + OW + DW_VL);
    j.ml = ml;
    /* the guards and the slack after each quarter stay zero; the quarters are rewritten per image */
    memset(j.q, 0, sizeof(float) * (size_t)(sets * C * 4 * qs + DW_VL));
    if (by_image) {
        j.x = op_input(c, 0)->data;
        j.y = op_output(c, 0)->data;
        j.N = N;
        op_parallel(c, stem_images, &j);
        return NULL;
    }
    for (int64_t n = 0; n < N; n++) {
        j.x = (const float *)op_input(c, 0)->data + n * C * w->in[0] * w->in[1];
        j.y = (float *)op_output(c, 0)->data + n * M * w->out[0] * OW;
        op_parallel(c, stem_split, &j);
        op_parallel(c, stem_rows, &j);
    }
    return NULL;
}

/* Depthwise: each channel is copied into a zero-padded plane once, so the inner loops run without
 * bounds checks. 3x3 kernels with dilation 1 and stride 1 or 2 (all of MobileNet's) take the
 * specialized paths above; the rest accumulate tap by tap. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void depthwise_rows(void *arg, int ith, int nth)
{
    dw_job *j = arg;
    const core_window *w = &j->win;
    int64_t b, e, H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], KH = w->k[0], KW = w->k[1];
    int64_t PH = H + w->pb[0] + w->pe[0], PW = W + w->pb[1] + w->pe[1];
    float *xp = j->pad + ith * j->plane;
    float lo = j->ep.act == OP_ACT_RELU ? 0.0f : j->ep.act == OP_ACT_CLIP ? j->ep.lo : -INFINITY;
    float hi = j->ep.act == OP_ACT_CLIP ? j->ep.hi : INFINITY;
    int k3 = KH == 3 && KW == 3 && w->d[0] == 1 && w->d[1] == 1;
    int s = w->s[0] == w->s[1] && (w->s[0] == 1 || w->s[0] == 2) ? (int)w->s[0] : 0;
    int split = k3 && s == 2;
    (void)nth;
    memset(xp, 0, sizeof(float) * (size_t)(PH * PW));
    while (dw_take(j, &b, &e))
        for (int64_t p = b; p < e; p++) {
            int64_t ch = p % j->C;
            const float *x = j->x + p * H * W, *k = j->w + ch * KH * KW;
            float *y = j->y + p * OH * OW;
            dw_fill(x, H, W, w->pb[0], w->pb[1], PW, split, j, xp);
            float bias = j->bias ? j->bias[ch] : 0.0f;
            if (k3 && s == 2) {
                dw3x3_plane(xp, PW, 2, k, bias, lo, hi, y, OH, OW);
                continue;
            }
            if (k3 && s == 1) {
                if (OW >= 16) dw3x3_plane(xp, PW, 1, k, bias, lo, hi, y, OH, OW);
                else dw3x3_wide(xp, PW, k, bias, lo, hi, j->acc + ith * j->plane, y, OH, OW);
                continue;
            }
            if (w->s[0] == 1 && w->s[1] == 1) {
                /* Stride 1: accumulate over a padded-width output (OH x PW) so every tap is one long
                 * unit-stride loop, then compact the valid OW columns. */
                float *yp = j->acc + ith * j->plane;
                int64_t len = (OH - 1) * PW + OW;
                for (int64_t i = 0; i < len; i++) yp[i] = bias;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        float wv = k[kh * KW + kw];
                        const float *xs = xp + kh * w->d[0] * PW + kw * w->d[1];
                        for (int64_t i = 0; i < len; i++) yp[i] += wv * xs[i];
                    }
                for (int64_t oh = 0; oh < OH; oh++) memcpy(y + oh * OW, yp + oh * PW, sizeof(float) * (size_t)OW);
            } else {
                for (int64_t oh = 0; oh < OH; oh++) {
                    float *yr = y + oh * OW;
                    for (int64_t ow = 0; ow < OW; ow++) yr[ow] = bias;
                    for (int64_t kh = 0; kh < KH; kh++) {
                        const float *xr = xp + (oh * w->s[0] + kh * w->d[0]) * PW;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            float wv = k[kh * KW + kw];
                            const float *xs = xr + kw * w->d[1];
                            for (int64_t ow = 0; ow < OW; ow++) yr[ow] += wv * xs[ow * w->s[1]];
                        }
                    }
                }
            }
            core_epilogue ep = j->ep;
            ep.bias_col = ep.bias_row = NULL;
            core_epilogue_rows(&ep, y, OH * OW, 0, 1, 0, OH * OW);
        }
}

typedef struct im2col_job {
    const float *x;
    int64_t C;
    const core_window *w;
    float *col;
    int64_t ld; /* col's row stride: OH * OW, or more when several images sit side by side */
} im2col_job;

/* Split by row of the column matrix (input channel, kh, kw) across the pool: at 2 threads a
 * serial im2col would idle the other core while it runs, and a split by channel alone gives one
 * thread two of a 3-channel image's channels. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void im2col_part(void *arg, int ith, int nth)
{
    const im2col_job *j = arg;
    const core_window *w = j->w;
    const float *x = j->x;
    float *col = j->col;
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], rb, re;
    op_split(j->C * w->k[0] * w->k[1], ith, nth, &rb, &re);
    for (int64_t rr = rb; rr < re; rr++) {
        int64_t ch = rr / (w->k[0] * w->k[1]), kh = rr / w->k[1] % w->k[0], kw = rr % w->k[1];
        float *row = col + rr * j->ld;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t ih = oh * w->s[0] - w->pb[0] + kh * w->d[0];
            float *r = row + oh * OW;
            if (ih < 0 || ih >= H) {
                memset(r, 0, (size_t)OW * sizeof(float));
                continue;
            }
            const float *xr = x + (ch * H + ih) * W;
            /* iw = ow * s + off is inside the row for ow in [lo, hi): a zero head, a
             * branch-free copy (one memcpy at stride 1), a zero tail */
            int64_t s = w->s[1], off = kw * w->d[1] - w->pb[1];
            int64_t lo = off < 0 ? (-off + s - 1) / s : 0, hi = W - off <= 0 ? 0 : (W - off + s - 1) / s;
            if (lo > OW) lo = OW;
            if (hi > OW) hi = OW;
            if (hi < lo) hi = lo;
            memset(r, 0, (size_t)lo * sizeof(float));
            if (s == 1 && hi > lo) memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof(float));
            else if (s == 2) /* a constant stride gcc vectorizes (even-lane permutes) */
                for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[2 * ow + off];
            else
                for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * s + off];
            memset(r + hi, 0, (size_t)(OW - hi) * sizeof(float));
        }
    }
}

/* ---- several images per GEMM ----
 * OpenBLAS packs the weights again on every call, so one GEMM per image pays for the weights N
 * times. Where the weights outweigh an image's columns (late layers: few pixels, many channels),
 * nb images' im2col columns go side by side into one [K, nb * OHW] matrix, one GEMM writes
 * [M, nb * OHW], and a copy puts each image's block in its place in [N, M, OHW]. */
#define CONV_BATCH_CAP ((int64_t)16 << 20) /* bytes of columns + GEMM output per chunk */

typedef struct conv_cols_job {
    const float *x; /* the chunk's first image */
    int64_t nb, C, HW;
    float *col;
    int64_t ld;
} conv_cols_job;

/* A 1x1 stride-1 unpadded convolution's "im2col" is the image itself: one copy per channel. */
static void conv_cols_part(void *arg, int ith, int nth)
{
    const conv_cols_job *j = arg;
    int64_t b, e;
    op_split(j->nb * j->C, ith, nth, &b, &e);
    for (int64_t k = b; k < e; k++) {
        int64_t i = k / j->C, ch = k % j->C;
        memcpy(j->col + ch * j->ld + i * j->HW, j->x + k * j->HW, sizeof(float) * (size_t)j->HW);
    }
}

typedef struct conv_scatter_job {
    const float *tmp;
    float *y; /* the chunk's first image */
    int64_t nb, M, OHW, ld;
} conv_scatter_job;

static void conv_scatter_part(void *arg, int ith, int nth)
{
    const conv_scatter_job *j = arg;
    int64_t b, e;
    op_split(j->M, ith, nth, &b, &e);
    for (int64_t i = 0; i < j->nb; i++)
        for (int64_t m = b; m < e; m++)
            memcpy(j->y + (i * j->M + m) * j->OHW, j->tmp + m * j->ld + i * j->OHW, sizeof(float) * (size_t)j->OHW);
}

/* Images per GEMM for a group-1 convolution of N images (1: one GEMM per image). */
static int64_t conv_batch_images(int64_t N, int64_t M, int64_t K, int64_t OHW, int direct)
{
    /* extra traffic per image: the output copy (and for a 1x1 convolution the input copy, which
     * im2col does anyway otherwise) against the weights' packing saved */
    double extra = (double)OHW * (double)(direct ? K + M : M);
    if (N < 2 || extra >= (double)M * (double)K) return 1;
    int64_t nb = CONV_BATCH_CAP / ((K + M) * OHW * (int64_t)sizeof(float));
    if (nb > N) nb = N;
    if (nb < 2) return 1;
    return (N + (N + nb - 1) / nb - 1) / ((N + nb - 1) / nb); /* evened out over the chunks */
}

static kinfer_status *conv_batched(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M, int64_t nb,
                                   int direct, const core_epilogue *ep)
{
    const float *x = op_input(c, 0)->data, *wt = op_input(c, 1)->data;
    float *y = op_output(c, 0)->data;
    int64_t HW = w->in[0] * w->in[1], OHW = w->out[0] * w->out[1], K = C * w->k[0] * w->k[1], ld = nb * OHW;
    float *col = op_scratch(c, sizeof(float) * (size_t)(K * ld)), *tmp = op_scratch(c, sizeof(float) * (size_t)(M * ld));
    if (!col || !tmp) return op_error(c, KINFER_ENOMEM, "im2col buffer");
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, cld = cnt * OHW;
        if (direct) {
            conv_cols_job cj = {x + n0 * C * HW, cnt, C, HW, col, cld};
            op_parallel(c, conv_cols_part, &cj);
        } else {
            for (int64_t i = 0; i < cnt; i++) {
                im2col_job ij = {x + (n0 + i) * C * HW, C, w, col + i * OHW, cld};
                if (K * OHW >= 32768) op_parallel(c, im2col_part, &ij);
                else im2col_part(&ij, 0, 1);
            }
        }
        core_sgemm(c, 0, 0, M, cld, K, 1.0f, wt, K, col, cld, 0.0f, tmp, cld, ep);
        conv_scatter_job sj = {tmp, y + n0 * M * OHW, cnt, M, OHW, cld};
        op_parallel(c, conv_scatter_part, &sj);
    }
    return NULL;
}

/* ---- one image per thread ----
 * With a batch of several images per thread, each thread takes whole images (im2col into its own
 * buffer, then a single-threaded GEMM with the bias and activation) from a shared counter: one
 * parallel region per layer instead of one or two per image, no operand packed twice (a GEMM
 * split across threads packs its unsplit operand once per thread), and a thread that the machine
 * delays holds up only the images it has taken instead of half of every GEMM. */
typedef struct conv_img_job {
    const float *x, *wt, *bias;
    float *y, *col; /* col: one im2col buffer of ksz * OHW floats per thread */
    const core_window *w;
    int64_t N, C, M, G, ksz, OHW;
    int direct;
    core_epilogue ep;
    _Atomic int64_t next;
} conv_img_job;

static void conv_img_part(void *arg, int ith, int nth)
{
    conv_img_job *j = arg;
    (void)nth;
    int64_t Cg = j->C / j->G, Mg = j->M / j->G, HW = j->w->in[0] * j->w->in[1];
    float *col = j->col ? j->col + ith * j->ksz * j->OHW : NULL;
    core_epilogue ep = j->ep;
    for (int64_t n; (n = atomic_fetch_add(&j->next, 1)) < j->N;)
        for (int64_t g = 0; g < j->G; g++) {
            const float *xg = j->x + (n * j->C + g * Cg) * HW;
            if (!j->direct) {
                im2col_job ij = {xg, Cg, j->w, col, j->OHW};
                im2col_part(&ij, 0, 1);
                xg = col;
            }
            ep.bias_row = j->bias ? j->bias + g * Mg : NULL;
            core_sgemm(NULL, 0, 0, Mg, j->OHW, j->ksz, 1.0f, j->wt + g * Mg * j->ksz, j->ksz, xg, j->OHW, 0.0f,
                       j->y + (n * j->M + g * Mg) * j->OHW, j->OHW, &ep);
        }
}

static kinfer_status *conv_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *wt = op_input(c, 1), *b = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    core_window w;
    kinfer_status *st = core_window_init(c, x->rank - 2, x->dims + 2, wt->dims + 2, 0, &w);
    if (st) return st;
    int64_t N = x->dims[0], C = x->dims[1], M = wt->dims[0], G = op_attr_int(op_ctx_node(c), "group", 1);
    int64_t Cg = C / G, Mg = M / G, HW = w.in[0] * w.in[1], OHW = w.out[0] * w.out[1], KK = w.k[0] * w.k[1];
    core_epilogue ep = {0};
    ep.act = op_node_act(op_ctx_node(c), &ep.lo, &ep.hi);
    const float *bias = b ? b->data : NULL;
    if (G == C && M == C && Cg == 1) {
        int64_t plane = (w.in[0] + w.pb[0] + w.pe[0]) * (w.in[1] + w.pb[1] + w.pe[1]);
        int fs = dw_flat_stride(&w); /* the flat kernels' buffer, then their column masks */
        int64_t flat = fs == 1 ? dw_flat1_size(w.in[0], w.in[1]) : fs == 2 ? dw_flat2_size(w.out[0], w.out[1]) : 0;
        flat += fs ? 2 * (w.out[1] + DW_VL) : 0;
        if (flat > plane) plane = flat;
        plane = (plane + 15) & ~(int64_t)15;
        float *pad = op_scratch(c, sizeof(float) * (size_t)(plane * op_num_threads(c)));
        float *acc = op_scratch(c, sizeof(float) * (size_t)(plane * op_num_threads(c)));
        if (!pad || !acc) return op_error(c, KINFER_ENOMEM, "depthwise buffer");
        /* about eight chunks per thread: small enough to even out, few enough to cost nothing */
        int64_t chunk = N * C / (8 * op_num_threads(c));
        dw_job j = {x->data, wt->data, bias, y->data, pad, acc, N, C, plane, w, ep, 0, chunk > 0 ? chunk : 1,
                    0, -INFINITY, INFINITY};
        float lo, hi;
        if (op_node_in_act(op_ctx_node(c), &lo, &hi) != OP_ACT_NONE) j.in_act = 1, j.in_lo = lo, j.in_hi = hi;
        op_parallel(c, fs ? dw_flat_rows : depthwise_rows, &j);
        return NULL;
    }
    /* the optimizer moves an activation only into a depthwise Conv (see optimize.c) */
    if (op_node_in_act(op_ctx_node(c), NULL, NULL) != OP_ACT_NONE)
        return op_error(c, KINFER_EINTERNAL, "input activation on a non-depthwise convolution");
    if (stem_fits(&w, C, G)) return stem_run(c, &w, N, C, M, bias, &ep);
    core_winograd *wg = conv_winograd(c, &w, N, C, M, G);
    if (wg) return core_winograd_run(c, wg, x->data, N, &w, bias, &ep, y->data);
    int direct = KK == 1 && w.s[0] == 1 && w.s[1] == 1 && !w.pb[0] && !w.pb[1] && !w.pe[0] && !w.pe[1];
    int64_t nb = G == 1 ? conv_batch_images(N, M, C * KK, OHW, direct) : 1;
    if (nb > 1) {
        ep.bias_row = bias;
        return conv_batched(c, &w, N, C, M, nb, direct, &ep);
    }
    int nth = op_num_threads(c);
    if (conv_by_image(N, nth)) {
        conv_img_job j = {x->data, wt->data, bias, y->data, NULL, &w, N, C, M, G, Cg * KK, OHW, direct, ep, 0};
        if (!direct && !(j.col = op_scratch(c, (size_t)(nth * Cg * KK * OHW) * sizeof(float))))
            return op_error(c, KINFER_ENOMEM, "im2col buffer");
        op_parallel(c, conv_img_part, &j);
        return NULL;
    }
    float *col = NULL;
    if (!direct && !(col = op_scratch(c, (size_t)(Cg * KK * OHW) * sizeof(float))))
        return op_error(c, KINFER_ENOMEM, "im2col buffer");
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = (const float *)x->data + (n * C + g * Cg) * HW;
            if (!direct) {
                im2col_job ij = {xg, Cg, &w, col, OHW};
                if (Cg * KK * OHW >= 32768) op_parallel(c, im2col_part, &ij);
                else im2col_part(&ij, 0, 1);
                xg = col;
            }
            ep.bias_row = bias ? bias + g * Mg : NULL;
            core_sgemm(c, 0, 0, Mg, OHW, Cg * KK, 1.0f, (const float *)wt->data + g * Mg * Cg * KK, Cg * KK, xg, OHW,
                       0.0f, (float *)y->data + (n * M + g * Mg) * OHW, OHW, &ep);
        }
    return NULL;
}

const op_def core_conv_ops[] = {
    {"", "Conv", 1, OP_OPSET_MAX, 2, 3, 1, 1, conv_init, conv_fini, conv_infer, conv_compute},
};
const size_t core_conv_count = sizeof(core_conv_ops) / sizeof(core_conv_ops[0]);
