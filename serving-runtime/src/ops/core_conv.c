/*
 * core_conv: Conv (1-D/2-D, groups, dilations, pads, auto_pad) with bias and a fused activation.
 * A 1x1 stride-1 convolution is a single GEMM on the input as is; depthwise convolutions and
 * few-channel stems run direct kernels (core_direct.c: a GEMM would be all overhead); a 3x3
 * stride-1 one with a constant filter and enough tiles runs Winograd F(2x2, 3x3)
 * (core_winograd.c); everything else is im2col into the run's scratch memory plus GEMM, one image
 * per thread when the batch has several per thread. Also the shared window geometry
 * (core_window.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_direct.h"
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
    s->algo = !e                       ? CONV_ALGO_AUTO
              : !strcmp(e, "im2col")   ? CONV_ALGO_IM2COL
              : !strcmp(e, "winograd") ? CONV_ALGO_WINOGRAD
                                       : CONV_ALGO_AUTO;
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
static core_winograd *conv_winograd(op_ctx *c, const core_window *w, int64_t N, int64_t C,
                                    int64_t M, int64_t G)
{
    conv_state *s = op_ctx_state(c);
    const op_tensor *wt = op_input(c, 1), *cw = op_node_const_input(op_ctx_node(c), 1);
    if (!s || s->algo == CONV_ALGO_IM2COL || !core_winograd_fits(w, G) || !cw ||
        cw->data != wt->data)
        return NULL;
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

kinfer_status *core_window_init(op_ctx *c, int nd, const int64_t *in, const int64_t *kernel,
                                int ceil_mode, core_window *w)
{
    const op_node *n = op_ctx_node(c);
    const int64_t *v;
    memset(w, 0, sizeof(*w));
    w->nd = nd;
    for (int i = 0; i < 2; i++) w->k[i] = w->s[i] = w->d[i] = w->in[i] = 1;
    int off = 2 - nd; /* 1-D lives in the w slot */
    for (int i = 0; i < nd; i++) w->in[off + i] = in[i], w->k[off + i] = kernel[i];
    size_t cnt;
    if ((cnt = op_attr_ints(n, "strides", &v)) && cnt != (size_t)nd)
        return op_error(c, KINFER_EMODEL, "strides length");
    for (size_t i = 0; i < cnt; i++) w->s[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "dilations", &v)) && cnt != (size_t)nd)
        return op_error(c, KINFER_EMODEL, "dilations length");
    for (size_t i = 0; i < cnt; i++) w->d[off + i] = v[i];
    if ((cnt = op_attr_ints(n, "pads", &v)) && cnt != (size_t)(2 * nd))
        return op_error(c, KINFER_EMODEL, "pads length");
    for (int i = 0; i < (int)cnt / 2; i++) w->pb[off + i] = v[i], w->pe[off + i] = v[i + nd];
    for (int i = 0; i < 2; i++)
        if (w->s[i] < 1 || w->d[i] < 1 || w->k[i] < 1 || w->pb[i] < 0 || w->pe[i] < 0)
            return op_error(c, KINFER_EMODEL, "bad kernel/stride/dilation/pad");
    const char *ap = op_attr_string(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (!same && strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return op_error(c, KINFER_EMODEL, "auto_pad '%s'", ap);
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
    if (x->dtype != ONNX_DTYPE_FLOAT || wt->dtype != ONNX_DTYPE_FLOAT ||
        (b && b->dtype != ONNX_DTYPE_FLOAT))
        return op_error(c, x->dtype == wt->dtype ? KINFER_EUNSUPPORTED : KINFER_EMODEL,
                        "types (float only)");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    if (x->rank != 3 && x->rank != 4)
        return op_error(c, KINFER_EUNSUPPORTED, "%d-D convolution", x->rank - 2);
    if (wt->rank != x->rank)
        return op_error(c, KINFER_ESHAPE, "W rank %d, X rank %d", wt->rank, x->rank);
    int64_t group = op_attr_int(op_ctx_node(c), "group", 1);
    if (group < 1 || x->dims[1] != wt->dims[1] * group || wt->dims[0] % group)
        return op_error(c, KINFER_ESHAPE, "channels: X has %lld, W expects %lld x group %lld",
                        (long long)x->dims[1], (long long)wt->dims[1], (long long)group);
    if (b && (b->rank != 1 || b->dims[0] != wt->dims[0]))
        return op_error(c, KINFER_ESHAPE, "bias shape");
    const int64_t *ks;
    size_t nk = op_attr_ints(op_ctx_node(c), "kernel_shape", &ks);
    for (size_t i = 0; i < nk && i + 2 < (size_t)wt->rank; i++)
        if (ks[i] != wt->dims[2 + i])
            return op_error(c, KINFER_EMODEL, "kernel_shape differs from W");
    core_window w;
    kinfer_status *st = core_window_init(c, x->rank - 2, x->dims + 2, wt->dims + 2, 0, &w);
    if (st) return st;
    int64_t d[4] = {x->dims[0], wt->dims[0], w.out[0], w.out[1]};
    if (x->rank == 3) d[2] = w.out[1];
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
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
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
im2col_part(void *arg, int ith, int nth)
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
            int64_t lo = off < 0 ? (-off + s - 1) / s : 0,
                    hi = W - off <= 0 ? 0 : (W - off + s - 1) / s;
            if (lo > OW) lo = OW;
            if (hi > OW) hi = OW;
            if (hi < lo) hi = lo;
            memset(r, 0, (size_t)lo * sizeof(float));
            if (s == 1 && hi > lo)
                memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof(float));
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
            memcpy(j->y + (i * j->M + m) * j->OHW, j->tmp + m * j->ld + i * j->OHW,
                   sizeof(float) * (size_t)j->OHW);
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

static kinfer_status *conv_batched(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M,
                                   int64_t nb, int direct, const core_epilogue *ep)
{
    const float *x = op_input(c, 0)->data, *wt = op_input(c, 1)->data;
    float *y = op_output(c, 0)->data;
    int64_t HW = w->in[0] * w->in[1], OHW = w->out[0] * w->out[1], K = C * w->k[0] * w->k[1],
            ld = nb * OHW;
    float *col = op_scratch(c, sizeof(float) * (size_t)(K * ld)),
          *tmp = op_scratch(c, sizeof(float) * (size_t)(M * ld));
    if (!col || !tmp) return op_error(c, KINFER_ENOMEM, "im2col buffer");
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, cld = cnt * OHW;
        if (direct) {
            conv_cols_job cj = {x + n0 * C * HW, cnt, C, HW, col, cld};
            op_parallel(c, conv_cols_part, &cj);
        } else {
            for (int64_t i = 0; i < cnt; i++) {
                im2col_job ij = {x + (n0 + i) * C * HW, C, w, col + i * OHW, cld};
                if (K * OHW >= 32768)
                    op_parallel(c, im2col_part, &ij);
                else
                    im2col_part(&ij, 0, 1);
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
            core_sgemm(NULL, 0, 0, Mg, j->OHW, j->ksz, 1.0f, j->wt + g * Mg * j->ksz, j->ksz, xg,
                       j->OHW, 0.0f, j->y + (n * j->M + g * Mg) * j->OHW, j->OHW, &ep);
        }
}

static kinfer_status *conv_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *wt = op_input(c, 1), *b = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    core_window w;
    kinfer_status *st = core_window_init(c, x->rank - 2, x->dims + 2, wt->dims + 2, 0, &w);
    if (st) return st;
    int64_t N = x->dims[0], C = x->dims[1], M = wt->dims[0],
            G = op_attr_int(op_ctx_node(c), "group", 1);
    int64_t Cg = C / G, Mg = M / G, HW = w.in[0] * w.in[1], OHW = w.out[0] * w.out[1],
            KK = w.k[0] * w.k[1];
    core_epilogue ep = {0};
    ep.act = op_node_act(op_ctx_node(c), &ep.lo, &ep.hi);
    const float *bias = b ? b->data : NULL;
    if (G == C && M == C && Cg == 1) return core_depthwise_run(c, &w, N, C, bias, &ep);
    /* the optimizer moves an activation only into a depthwise Conv (see optimize.c) */
    if (op_node_in_act(op_ctx_node(c), NULL, NULL) != OP_ACT_NONE)
        return op_error(c, KINFER_EINTERNAL, "input activation on a non-depthwise convolution");
    if (core_stem_fits(&w, C, G)) return core_stem_run(c, &w, N, C, M, bias, &ep);
    core_winograd *wg = conv_winograd(c, &w, N, C, M, G);
    if (wg) return core_winograd_run(c, wg, x->data, N, &w, bias, &ep, y->data);
    int direct =
        KK == 1 && w.s[0] == 1 && w.s[1] == 1 && !w.pb[0] && !w.pb[1] && !w.pe[0] && !w.pe[1];
    int64_t nb = G == 1 ? conv_batch_images(N, M, C * KK, OHW, direct) : 1;
    if (nb > 1) {
        ep.bias_row = bias;
        return conv_batched(c, &w, N, C, M, nb, direct, &ep);
    }
    int nth = op_num_threads(c);
    if (core_conv_by_image(N, nth)) {
        conv_img_job j = {x->data, wt->data, bias,    y->data, NULL,   &w, N, C,
                          M,       G,        Cg * KK, OHW,     direct, ep, 0};
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
                if (Cg * KK * OHW >= 32768)
                    op_parallel(c, im2col_part, &ij);
                else
                    im2col_part(&ij, 0, 1);
                xg = col;
            }
            ep.bias_row = bias ? bias + g * Mg : NULL;
            core_sgemm(c, 0, 0, Mg, OHW, Cg * KK, 1.0f, (const float *)wt->data + g * Mg * Cg * KK,
                       Cg * KK, xg, OHW, 0.0f, (float *)y->data + (n * M + g * Mg) * OHW, OHW, &ep);
        }
    return NULL;
}

const op_def core_conv_ops[] = {
    {"", "Conv", 1, OP_OPSET_MAX, 2, 3, 1, 1, conv_init, conv_fini, conv_infer, conv_compute},
};
const size_t core_conv_count = sizeof(core_conv_ops) / sizeof(core_conv_ops[0]);
