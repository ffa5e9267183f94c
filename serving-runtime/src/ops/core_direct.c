/*
 * core_direct: convolutions computed directly rather than as GEMMs, which Conv (core_conv.c)
 * picks: depthwise (group = channels = output channels), where a GEMM would be all overhead, and
 * stems (3x3, stride 2, pads of 1, at most 4 input channels), where K = 9 C is too small for
 * OpenBLAS to pay for its packing. The 3x3 pad-1 kernels work on the flattened plane with column
 * masks; the rest on a zero-padded plane. Bias and Relu/Clip are applied before the one store.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core_direct.h"

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
    int in_act;         /* the producer's activation, applied to x as planes are copied */
    float in_lo, in_hi; /* -inf, inf without one */
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

static inline float dw_clamp(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* n input values into dst, through the producer's activation when there is one. */
static inline void dw_copy_in(float *dst, const float *src, int64_t n, int act, float lo, float hi)
{
    if (!act)
        memcpy(dst, src, sizeof(float) * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = dw_clamp(src[i], lo, hi);
}

/* 3x3, dilation 1, one channel: y[oh][ow] = bias + the nine taps, summed in the generic loop's
 * order (bias, then kh, kw) so results are bit-identical, clamped, and stored once. Tap kw of
 * output column ow reads t_kw[ow]: for stride 1 the padded row at +0, +1, +2; for stride 2 the
 * row is stored as its even columns then its odd ones (see dw_fill), so the taps are E[ow],
 * O[ow], E[ow + 1] and every load is unit-stride. */
static inline void dw3x3_plane(const float *xp, int64_t PW, int s, const float *k, float bias,
                               float lo, float hi, float *y, int64_t OH, int64_t OW)
{
    int64_t o1 = s == 1 ? 1 : (PW + 1) / 2, o2 = s == 1 ? 2 : 1;
    float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7],
          k8 = k[8];
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
static inline void dw3x3_wide(const float *xp, int64_t PW, const float *k, float bias, float lo,
                              float hi, float *acc, float *y, int64_t OH, int64_t OW)
{
    int64_t len = (OH - 1) * PW + OW;
    const float *r0 = xp, *r1 = xp + PW, *r2 = xp + 2 * PW;
    float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7],
          k8 = k[8];
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
    for (int64_t oh = 0; oh < OH; oh++)
        memcpy(y + oh * OW, acc + oh * PW, sizeof(float) * (size_t)OW);
}

/* Copies channel x (H x W) into the zero-bordered plane; split != 0 stores each padded row as its
 * even columns followed by its odd ones (the stride-2 3x3 layout). */
static inline void dw_fill(const float *x, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t PW,
                           int split, const dw_job *j, float *xp)
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
#define DW_VL        16
#define DW_LD(p)     (*(const dw_vf *)(p))
#define DW_AND(p, m) ((dw_vf)(*(const dw_vi *)(p) & (m)))
/* v clamped to [vlo, vhi] with compares and bit selects (C has no vector ?:); NaN passes. */
#define DW_CLAMP(v, vlo, vhi)                                                                      \
    do {                                                                                           \
        dw_vi m_ = (v) < (vlo);                                                                    \
        (v) = (dw_vf)(((dw_vi)(v) & ~m_) | ((dw_vi)(vlo)&m_));                                     \
        m_ = (v) > (vhi);                                                                          \
        (v) = (dw_vf)(((dw_vi)(v) & ~m_) | ((dw_vi)(vhi)&m_));                                     \
    } while (0)
/* Stores v at y[0, left) (a whole vector when left >= DW_VL). */
#define DW_STORE(y, left, v)                                                                       \
    do {                                                                                           \
        if ((left) >= DW_VL)                                                                       \
            *(dw_vf *)(y) = (v);                                                                   \
        else                                                                                       \
            for (int64_t t_ = 0; t_ < (left); t_++) (y)[t_] = (v)[t_];                             \
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
static int64_t dw_guard(int64_t W)
{
    return (W + 1 + DW_VL - 1) / DW_VL * DW_VL;
}
static int64_t dw_flat1_size(int64_t H, int64_t W)
{
    return 2 * dw_guard(W) + H * W + DW_VL;
}
/* Stride 2: four quarters of OH x OW, each after a guard of OW + 1. */
static int64_t dw_flat2_quarter(int64_t OH, int64_t OW)
{
    return dw_guard(OW) + (OH * OW + DW_VL - 1) / DW_VL * DW_VL;
}
static int64_t dw_flat2_size(int64_t OH, int64_t OW)
{
    return 4 * dw_flat2_quarter(OH, OW) + DW_VL;
}

/* Stride 1: g is the plane inside its guards. */
static inline __attribute__((always_inline)) void dw3x3_flat1(const float *g, int64_t W, int64_t n,
                                                              const float *k, float bias, float lo,
                                                              float hi, const int32_t *ml,
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
static inline __attribute__((always_inline)) void dw3x3_flat2(float *const q[4], int64_t OW,
                                                              int64_t n, const float *k, float bias,
                                                              float lo, float hi, const int32_t *ml,
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
static inline __attribute__((always_inline)) void dw_quarters(const float *x, int64_t H, int64_t W,
                                                              float lo, float hi, float *const q[4])
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
    if (w->k[0] != 3 || w->k[1] != 3 || w->d[0] != 1 || w->d[1] != 1 || w->s[0] != w->s[1])
        return 0;
    for (int i = 0; i < 2; i++)
        if (w->pb[i] != 1 || w->pe[i] != 1) return 0;
    if (w->s[0] == 1) return w->in[1] < 48;
    return w->s[0] == 2 && w->in[0] % 2 == 0 && w->in[1] % 2 == 0 ? 2 : 0;
}

/* Thread ith's planes [b, e) of the batch through the flat kernels; xp is its buffer. */
/* One region's share of the batch's planes through the flat kernels (dw_flat_stride != 0): its
 * own function so the kernels get the registers to themselves. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
dw_flat_rows(void *arg, int ith, int nth)
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
    int32_t *ml = (int32_t *)(xp + (s == 1 ? dw_flat1_size(H, W) : dw_flat2_size(OH, OW))),
            *mr = ml + OW + DW_VL;
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

int core_conv_by_image(int64_t N, int nth)
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
        float *ev = stem_quarter(j, c, 2 * (int)(h & 1)) + (h >> 1) * j->OW,
              *od = ev + dw_flat2_quarter(j->OH, j->OW);
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
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) STEM_FMA static void
stem_rows(void *arg, int ith, int nth)
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
            dw_vf a0 = zero + bias[0], a1 = zero + bias[1], a2 = zero + bias[2],
                  a3 = zero + bias[3];
            for (int64_t c = 0; c < j->C; c++) {
                const float *ee = stem_quarter(j, c, 0) + i, *eo = stem_quarter(j, c, 1) + i,
                            *oe = stem_quarter(j, c, 2) + i, *oo = stem_quarter(j, c, 3) + i;
                const dw_vf t[9] = {DW_AND(oo - OW - 1, L), DW_LD(oe - OW), DW_LD(oo - OW),
                                    DW_AND(eo - 1, L),      DW_LD(ee),      DW_LD(eo),
                                    DW_AND(oo - 1, L),      DW_LD(oe),      DW_LD(oo)};
                const float *k0 = k[0] + c * 9, *k1 = k[1] + c * 9, *k2 = k[2] + c * 9,
                            *k3 = k[3] + c * 9;
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
    stem_job one = {
        NULL,  j->w,  j->bias, NULL,  j->q + ith * j->C * 4 * dw_flat2_quarter(j->OH, j->OW),
        j->ml, j->C,  j->M,    j->H,  j->W,
        j->OH, j->OW, j->lo,   j->hi, 1,
        0};
    for (int64_t n; (n = atomic_fetch_add(&j->next, 1)) < j->N;) {
        one.x = j->x + n * j->C * j->H * j->W;
        one.y = j->y + n * j->M * j->OH * j->OW;
        stem_split(&one, 0, 1);
        stem_rows(&one, 0, 1);
    }
}

int core_stem_fits(const core_window *w, int64_t C, int64_t G)
{
    return G == 1 && C <= STEM_MAX_C && w->nd == 2 && dw_flat_stride(w) == 2;
}

kinfer_status *core_stem_run(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M,
                             const float *bias, const core_epilogue *ep)
{
    int64_t qs = dw_flat2_quarter(w->out[0], w->out[1]), OW = w->out[1];
    stem_job j = {NULL,
                  op_input(c, 1)->data,
                  bias,
                  NULL,
                  NULL,
                  NULL,
                  C,
                  M,
                  w->in[0],
                  w->in[1],
                  w->out[0],
                  OW,
                  ep->act == OP_ACT_RELU   ? 0.0f
                  : ep->act == OP_ACT_CLIP ? ep->lo
                                           : -INFINITY,
                  ep->act == OP_ACT_CLIP ? ep->hi : INFINITY,
                  0,
                  0};
    int nth = op_num_threads(c), by_image = core_conv_by_image(N, nth);
    int64_t sets = by_image ? nth : 1;
    j.q = op_scratch(c, sizeof(float) * (size_t)(sets * C * 4 * qs + DW_VL));
    int32_t *ml = op_scratch(c, sizeof(int32_t) * (size_t)(2 * (OW + DW_VL)));
    if (!j.q || !ml) return op_error(c, KINFER_ENOMEM, "stem buffer");
    dw_masks(OW, ml, ml + OW + DW_VL);
    j.ml = ml;
    /* the guards and the slack after each quarter stay zero; the quarters are rewritten per image
     */
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
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
depthwise_rows(void *arg, int ith, int nth)
{
    dw_job *j = arg;
    const core_window *w = &j->win;
    int64_t b, e, H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], KH = w->k[0],
                  KW = w->k[1];
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
                if (OW >= 16)
                    dw3x3_plane(xp, PW, 1, k, bias, lo, hi, y, OH, OW);
                else
                    dw3x3_wide(xp, PW, k, bias, lo, hi, j->acc + ith * j->plane, y, OH, OW);
                continue;
            }
            if (w->s[0] == 1 && w->s[1] == 1) {
                /* Stride 1: accumulate over a padded-width output (OH x PW) so every tap is one
                 * long unit-stride loop, then compact the valid OW columns. */
                float *yp = j->acc + ith * j->plane;
                int64_t len = (OH - 1) * PW + OW;
                for (int64_t i = 0; i < len; i++) yp[i] = bias;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        float wv = k[kh * KW + kw];
                        const float *xs = xp + kh * w->d[0] * PW + kw * w->d[1];
                        for (int64_t i = 0; i < len; i++) yp[i] += wv * xs[i];
                    }
                for (int64_t oh = 0; oh < OH; oh++)
                    memcpy(y + oh * OW, yp + oh * PW, sizeof(float) * (size_t)OW);
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

kinfer_status *core_depthwise_run(op_ctx *c, const core_window *w, int64_t N, int64_t C,
                                  const float *bias, const core_epilogue *ep)
{
    int64_t plane = (w->in[0] + w->pb[0] + w->pe[0]) * (w->in[1] + w->pb[1] + w->pe[1]);
    int fs = dw_flat_stride(w); /* the flat kernels' buffer, then their column masks */
    int64_t flat = fs == 1   ? dw_flat1_size(w->in[0], w->in[1])
                   : fs == 2 ? dw_flat2_size(w->out[0], w->out[1])
                             : 0;
    flat += fs ? 2 * (w->out[1] + DW_VL) : 0;
    if (flat > plane) plane = flat;
    plane = (plane + 15) & ~(int64_t)15;
    float *pad = op_scratch(c, sizeof(float) * (size_t)(plane * op_num_threads(c)));
    float *acc = op_scratch(c, sizeof(float) * (size_t)(plane * op_num_threads(c)));
    if (!pad || !acc) return op_error(c, KINFER_ENOMEM, "depthwise buffer");
    /* about eight chunks per thread: small enough to even out, few enough to cost nothing */
    int64_t chunk = N * C / (8 * op_num_threads(c));
    dw_job j = {op_input(c, 0)->data,
                op_input(c, 1)->data,
                bias,
                op_output(c, 0)->data,
                pad,
                acc,
                N,
                C,
                plane,
                *w,
                *ep,
                0,
                chunk > 0 ? chunk : 1,
                0,
                -INFINITY,
                INFINITY};
    float lo, hi;
    if (op_node_in_act(op_ctx_node(c), &lo, &hi) != OP_ACT_NONE)
        j.in_act = 1, j.in_lo = lo, j.in_hi = hi;
    op_parallel(c, fs ? dw_flat_rows : depthwise_rows, &j);
    return NULL;
}
