/*
 * core_winograd: F(2x2, 3x3) convolution (see core_winograd.h). With the usual matrices
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1],
 * an output tile is Y = A^T [ sum_c (G g_mc G^T) .* (B^T d_c B) ] A. Layouts (e = 0..15 is the
 * element of the 4x4 transformed tile):
 *   U [e][M][C]   filter, once per model      V [e][C][T]   input tiles of one chunk
 *   P [e][M][T]   products: P[e] = U[e] V[e], one OpenBLAS GEMM per e
 * The tiles of a run are the (image, tile row, tile column) triples; a chunk is a run of whole
 * tile rows, sized so that V and P stay within WG_SCRATCH_CAP (bounded scratch whatever the
 * batch or image size) while small images still share one GEMM (batch 32 at 7x7 is 512 tiles
 * wide, batch 1 is 16). Threads split the input transform by channel, the GEMMs by e (each GEMM
 * runs whole on one thread, so no operand is packed twice) and the output transform by output
 * channel.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_winograd.h"

#define WG_SCRATCH_CAP ((int64_t)16 << 20) /* bytes of V + P per chunk */
#define WG_MIN_TILES   32                  /* see core_winograd_worth */
#define WG_VL          16                  /* tiles per vector step */

static _Atomic int64_t wg_runs;

int64_t core_winograd_runs(void)
{
    return atomic_load_explicit(&wg_runs, memory_order_relaxed);
}

struct core_winograd {
    int64_t M, C;
    float *u; /* [16][M][C] */
};

int core_winograd_fits(const core_window *w, int64_t group)
{
    return w->nd == 2 && group == 1 && w->k[0] == 3 && w->k[1] == 3 && w->s[0] == 1 &&
           w->s[1] == 1 && w->d[0] == 1 && w->d[1] == 1;
}

/* Tile rows per chunk: as many as fit the cap (at least one), then evened out over the chunks so
 * the last one is not a sliver. */
static int64_t wg_chunk_rows(int64_t rows, int64_t TW, int64_t C, int64_t M)
{
    int64_t per_row = 16 * (C + M) * TW * (int64_t)sizeof(float);
    int64_t chunk = WG_SCRATCH_CAP / per_row;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    int64_t n = (rows + chunk - 1) / chunk;
    return (rows + n - 1) / n;
}

int core_winograd_worth(const core_window *w, int64_t N, int64_t C, int64_t M)
{
    int64_t TH = (w->out[0] + 1) / 2, TW = (w->out[1] + 1) / 2;
    /* Few tiles per GEMM leave OpenBLAS re-packing U[e] (16/9 the size of W) for little work:
     * measured with 512 channels at 7x7, batch 1 (16 tiles) was even with im2col, 14x14 (49
     * tiles) 1.6x faster. Few channels leave the transforms, not the products, as the cost. */
    return C >= 8 && M >= 8 && wg_chunk_rows(N * TH, TW, C, M) * TW >= WG_MIN_TILES;
}

kinfer_status *core_winograd_create(const float *w, int64_t M, int64_t C, core_winograd **out)
{
    static const double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
    *out = NULL;
    if (M <= 0 || C <= 0 || M > (INT64_MAX / 64) / C)
        return kinfer_status_new(KINFER_ETOOBIG, "winograd filter");
    core_winograd *wg = calloc(1, sizeof(*wg));
    if (!wg || !(wg->u = malloc(sizeof(float) * (size_t)(16 * M * C)))) {
        free(wg);
        return kinfer_status_new(KINFER_ENOMEM, "winograd filter");
    }
    wg->M = M, wg->C = C;
    for (int64_t m = 0; m < M; m++)
        for (int64_t ch = 0; ch < C; ch++) {
            const float *g = w + (m * C + ch) * 9;
            double t[4][3]; /* G g, in double so U carries no more rounding than W itself */
            for (int i = 0; i < 4; i++)
                for (int k = 0; k < 3; k++)
                    t[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    wg->u[(i * 4 + j) * M * C + m * C + ch] =
                        (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
    *out = wg;
    return NULL;
}

void core_winograd_free(core_winograd *wg)
{
    if (!wg) return;
    free(wg->u);
    free(wg);
}

typedef struct wg_geom {
    int64_t C, M, H, W, OH, OW, pt, pl, TH, TW;
    int64_t RW;        /* length of a split half row, with room for the vector loop's over-reads */
    int64_t r0, r1, T; /* this chunk: tile rows [r0, r1) of N * TH, T = (r1 - r0) * TW tiles */
} wg_geom;

typedef struct wg_job {
    const wg_geom *g;
    const float *x, *u, *bias;
    float *v, *p, *y, *buf; /* buf: per-thread rows, WG_BUF floats each */
    int64_t buf_len;
    float lo, hi;
} wg_job;

/* Padded row ih of one channel, split into its even padded columns E[0..TW] and odd ones
 * O[0..TW] (stored RW apart, zeros after), so tile tw reads E[tw], O[tw], E[tw + 1], O[tw + 1]: all
 * unit-stride, which the transform loop vectorizes. Rows outside the image are zeros. */
static void wg_fill_row(const float *x, const wg_geom *g, int64_t ih, float *e, float *o)
{
    memset(e, 0, sizeof(float) * (size_t)(2 * g->RW));
    if (ih < 0 || ih >= g->H) return;
    /* input column iw is padded column iw + pl: the even ones go to e, the odd ones to o */
    const float *src = x + ih * g->W;
    int64_t ie = g->pl & 1, io = !ie, ne = (g->W - ie + 1) / 2, no = (g->W - io + 1) / 2;
    float *de = e + (ie + g->pl) / 2, *dO = o + (io + g->pl) / 2;
    for (int64_t i = 0; i < ne; i++) de[i] = src[ie + 2 * i];
    for (int64_t i = 0; i < no; i++) dO[i] = src[io + 2 * i];
}

/* 16 tiles at a time in GNU C vectors (gcc -O2 leaves the scalar loop with its 16 output
 * streams unvectorized); each target_clones copy compiles them for its own ISA. Loads may read up
 * to WG_VL floats past the last tile (buffers are sized for it); the tail stores through tmp. */
typedef float wg_vf __attribute__((vector_size(WG_VL * sizeof(float))));
typedef int32_t wg_vi __attribute__((vector_size(WG_VL * sizeof(float))));
/* unaligned, aliasing view for loads and full stores (macros, not functions: a 64-byte vector
 * argument or return value changes the ABI in the non-AVX-512 clones, which gcc warns about) */
typedef float wg_vu __attribute__((vector_size(WG_VL * sizeof(float)), aligned(4), may_alias));
#define WG_LD(p) (*(const wg_vu *)(p))
#define WG_ST(p, v, n)                                                                             \
    do {                                                                                           \
        wg_vf wg_t_ = (v);                                                                         \
        if ((n) >= WG_VL)                                                                          \
            *(wg_vu *)(p) = wg_t_;                                                                 \
        else                                                                                       \
            memcpy((p), &wg_t_, sizeof(float) * (size_t)(n));                                      \
    } while (0)
/* stores a and b interleaved (a0 b0 a1 b1 ...) as 2 WG_VL floats at p */
#define WG_ST_PAIR(p, a, b)                                                                        \
    do {                                                                                           \
        WG_ST((p),                                                                                 \
              __builtin_shufflevector((a), (b), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22,   \
                                      7, 23),                                                      \
              WG_VL);                                                                              \
        WG_ST((p) + WG_VL,                                                                         \
              __builtin_shufflevector((a), (b), 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,  \
                                      30, 15, 31),                                                 \
              WG_VL);                                                                              \
    } while (0)
/* clamp to [lo, hi] as the scalar v < lo ? lo : v > hi ? hi : v does (NaN stays NaN) */
#define WG_CLAMP(v, lo, hi) wg_sel(wg_sel((v), (lo), (v) < (lo)), (hi), (v) > (hi))
#define wg_sel(a, b, m)     ((wg_vf)(((wg_vi)(b) & (m)) | ((wg_vi)(a) & ~(m))))

/* One tile row from its 4 split padded rows (each E then O, RW apart); tile tw's 16 values go to
 * v[e * CT + tw]. */
__attribute__((always_inline)) static inline void wg_input_row(const float *e0, const float *e1,
                                                               const float *e2, const float *e3,
                                                               int64_t RW, int64_t TW, float *v,
                                                               int64_t CT)
{
    const float *o0 = e0 + RW, *o1 = e1 + RW, *o2 = e2 + RW, *o3 = e3 + RW;
    for (int64_t tw = 0; tw < TW; tw += WG_VL) {
        int64_t n = TW - tw;
        /* rows: h[i][k] = (d B)[i][k]; then columns: (B^T h) */
        wg_vf a, b, c, d;
        a = WG_LD(e0 + tw), b = WG_LD(o0 + tw), c = WG_LD(e0 + tw + 1), d = WG_LD(o0 + tw + 1);
        wg_vf h00 = a - c, h01 = b + c, h02 = c - b, h03 = b - d;
        a = WG_LD(e1 + tw), b = WG_LD(o1 + tw), c = WG_LD(e1 + tw + 1), d = WG_LD(o1 + tw + 1);
        wg_vf h10 = a - c, h11 = b + c, h12 = c - b, h13 = b - d;
        a = WG_LD(e2 + tw), b = WG_LD(o2 + tw), c = WG_LD(e2 + tw + 1), d = WG_LD(o2 + tw + 1);
        wg_vf h20 = a - c, h21 = b + c, h22 = c - b, h23 = b - d;
        a = WG_LD(e3 + tw), b = WG_LD(o3 + tw), c = WG_LD(e3 + tw + 1), d = WG_LD(o3 + tw + 1);
        wg_vf h30 = a - c, h31 = b + c, h32 = c - b, h33 = b - d;
        float *t = v + tw;
        WG_ST(t + 0 * CT, h00 - h20, n);
        WG_ST(t + 1 * CT, h01 - h21, n);
        WG_ST(t + 2 * CT, h02 - h22, n);
        WG_ST(t + 3 * CT, h03 - h23, n);
        WG_ST(t + 4 * CT, h10 + h20, n);
        WG_ST(t + 5 * CT, h11 + h21, n);
        WG_ST(t + 6 * CT, h12 + h22, n);
        WG_ST(t + 7 * CT, h13 + h23, n);
        WG_ST(t + 8 * CT, h20 - h10, n);
        WG_ST(t + 9 * CT, h21 - h11, n);
        WG_ST(t + 10 * CT, h22 - h12, n);
        WG_ST(t + 11 * CT, h23 - h13, n);
        WG_ST(t + 12 * CT, h10 - h30, n);
        WG_ST(t + 13 * CT, h11 - h31, n);
        WG_ST(t + 14 * CT, h12 - h32, n);
        WG_ST(t + 15 * CT, h13 - h33, n);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
wg_input_part(void *arg, int ith, int nth)
{
    const wg_job *j = arg;
    const wg_geom *g = j->g;
    int64_t cb, ce, TW = g->TW, CT = g->C * g->T, RW = g->RW;
    float *buf = j->buf + ith * j->buf_len, *row[4]; /* 4 padded rows, each E then O */
    op_split(g->C, ith, nth, &cb, &ce);
    for (int64_t ch = cb; ch < ce; ch++)
        for (int64_t r = g->r0; r < g->r1; r++) {
            int64_t n = r / g->TH, th = r % g->TH;
            const float *x = j->x + (n * g->C + ch) * g->H * g->W;
            if (r > g->r0 && th > 0) { /* tile rows overlap by two input rows: keep those */
                float *t0 = row[0], *t1 = row[1];
                row[0] = row[2], row[1] = row[3], row[2] = t0, row[3] = t1;
                for (int i = 2; i < 4; i++)
                    wg_fill_row(x, g, 2 * th + i - g->pt, row[i], row[i] + RW);
            } else {
                for (int i = 0; i < 4; i++) {
                    row[i] = buf + i * 2 * RW;
                    wg_fill_row(x, g, 2 * th + i - g->pt, row[i], row[i] + RW);
                }
            }
            wg_input_row(row[0], row[1], row[2], row[3], RW, TW,
                         j->v + ch * g->T + (r - g->r0) * TW, CT);
        }
}

static void wg_gemm_part(void *arg, int ith, int nth)
{
    const wg_job *j = arg;
    const wg_geom *g = j->g;
    int64_t eb, ee;
    op_split(16, ith, nth, &eb, &ee);
    for (int64_t e = eb; e < ee; e++)
        core_sgemm_serial(0, 0, g->M, g->T, g->C, 1.0f, j->u + e * g->M * g->C, g->C,
                          j->v + e * g->C * g->T, g->T, 0.0f, j->p + e * g->M * g->T, g->T);
}

/* One tile row of one output channel: the products at p[e * MT + tw] (readable WG_VL floats past
 * the row's end) become two output rows top and bot (2 * TW + 2 * WG_VL floats each). */
__attribute__((always_inline)) static inline void wg_output_row(const float *p, int64_t MT,
                                                                int64_t TW, float bias, float flo,
                                                                float fhi, float *top, float *bot)
{
    wg_vf b = (wg_vf){0} + bias, lo = (wg_vf){0} + flo, hi = (wg_vf){0} + fhi;
    for (int64_t tw = 0; tw < TW; tw += WG_VL) {
        const float *q = p + tw;
        /* columns: s0 = rows 0 + 1 + 2, s1 = rows 1 - 2 - 3; then the same across */
        wg_vf p4 = WG_LD(q + 4 * MT), p5 = WG_LD(q + 5 * MT), p6 = WG_LD(q + 6 * MT),
              p7 = WG_LD(q + 7 * MT);
        wg_vf p8 = WG_LD(q + 8 * MT), p9 = WG_LD(q + 9 * MT), p10 = WG_LD(q + 10 * MT),
              p11 = WG_LD(q + 11 * MT);
        wg_vf s00 = WG_LD(q) + p4 + p8, s01 = WG_LD(q + MT) + p5 + p9,
              s02 = WG_LD(q + 2 * MT) + p6 + p10, s03 = WG_LD(q + 3 * MT) + p7 + p11;
        wg_vf s10 = p4 - p8 - WG_LD(q + 12 * MT), s11 = p5 - p9 - WG_LD(q + 13 * MT),
              s12 = p6 - p10 - WG_LD(q + 14 * MT), s13 = p7 - p11 - WG_LD(q + 15 * MT);
        wg_vf r00 = s00 + s01 + s02 + b, r01 = s01 - s02 - s03 + b, r10 = s10 + s11 + s12 + b,
              r11 = s11 - s12 - s13 + b;
        wg_vf y00 = WG_CLAMP(r00, lo, hi), y01 = WG_CLAMP(r01, lo, hi), y10 = WG_CLAMP(r10, lo, hi),
              y11 = WG_CLAMP(r11, lo, hi);
        /* interleave: output columns 2 tw and 2 tw + 1 */
        WG_ST_PAIR(top + 2 * tw, y00, y01);
        WG_ST_PAIR(bot + 2 * tw, y10, y11);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
wg_output_part(void *arg, int ith, int nth)
{
    const wg_job *j = arg;
    const wg_geom *g = j->g;
    int64_t mb, me, TW = g->TW, MT = g->M * g->T;
    float *top = j->buf + ith * j->buf_len,
          *bot = top + 4 * g->RW; /* the tile row's two output rows */
    float lo = j->lo, hi = j->hi;
    op_split(g->M, ith, nth, &mb, &me);
    for (int64_t m = mb; m < me; m++) {
        float b = j->bias ? j->bias[m] : 0.0f;
        for (int64_t r = g->r0; r < g->r1; r++) {
            int64_t n = r / g->TH, th = r % g->TH;
            wg_output_row(j->p + m * g->T + (r - g->r0) * TW, MT, TW, b, lo, hi, top, bot);
            float *y = j->y + ((n * g->M + m) * g->OH + 2 * th) * g->OW;
            memcpy(y, top, sizeof(float) * (size_t)g->OW);
            if (2 * th + 1 < g->OH) memcpy(y + g->OW, bot, sizeof(float) * (size_t)g->OW);
        }
    }
}

kinfer_status *core_winograd_run(op_ctx *c, const core_winograd *wg, const float *x, int64_t N,
                                 const core_window *w, const float *bias, const core_epilogue *ep,
                                 float *y)
{
    wg_geom g = {.C = wg->C,
                 .M = wg->M,
                 .H = w->in[0],
                 .W = w->in[1],
                 .OH = w->out[0],
                 .OW = w->out[1],
                 .pt = w->pb[0],
                 .pl = w->pb[1]};
    g.TH = (g.OH + 1) / 2, g.TW = (g.OW + 1) / 2;
    int64_t rows = N * g.TH, chunk = wg_chunk_rows(rows, g.TW, g.C, g.M);
    int nth = op_num_threads(c);
    g.RW = (g.TW + WG_VL - 1) / WG_VL * WG_VL + WG_VL;
    /* per thread: the input transform's 4 split rows (2 RW each), or the output transform's 2
     * rows (2 RW - 2 WG_VL each at most) */
    int64_t buf_len = 8 * g.RW;
    float *v = op_scratch(c, sizeof(float) * (size_t)(16 * g.C * chunk * g.TW));
    float *p = op_scratch(c, sizeof(float) * (size_t)(16 * g.M * chunk * g.TW + WG_VL));
    float *buf = op_scratch(c, sizeof(float) * (size_t)(buf_len * nth));
    if (!v || !p || !buf) return op_error(c, KINFER_ENOMEM, "winograd buffers");
    atomic_fetch_add_explicit(&wg_runs, 1, memory_order_relaxed);
    wg_job j = {&g, x, wg->u, bias, v, p, y, buf, buf_len, -INFINITY, INFINITY};
    if (ep && ep->act == OP_ACT_RELU) j.lo = 0.0f;
    if (ep && ep->act == OP_ACT_CLIP) j.lo = ep->lo, j.hi = ep->hi;
    for (g.r0 = 0; g.r0 < rows; g.r0 = g.r1) {
        g.r1 = g.r0 + chunk < rows ? g.r0 + chunk : rows;
        g.T = (g.r1 - g.r0) * g.TW;
        op_parallel(c, wg_input_part, &j);
        op_parallel(c, wg_gemm_part, &j);
        op_parallel(c, wg_output_part, &j);
    }
    return NULL;
}
