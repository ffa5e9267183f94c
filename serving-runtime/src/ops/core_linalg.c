/*
 * core_linalg: MatMul (batched, broadcasting, 1-D operands; with a bias input and activation the
 * optimizer may fuse in) and Gemm, on OpenBLAS through core_sgemm. A batched MatMul against a
 * 2-D right operand becomes one tall GEMM, the shape transformer exports produce.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "core_gemm.h"
#include "core_tables.h"
#include "core_util.h"

void openblas_set_num_threads(int n);

/* By default OpenBLAS runs single-threaded and kinfer splits each GEMM over its own pool (one
 * pool per model, sized to the CPU quota). KINFER_OPENBLAS_THREADS=N instead lets OpenBLAS thread
 * every GEMM itself with N threads: kept only to measure the two against each other. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static int blas_self_threads;
static void blas_setup(void)
{
    const char *e = getenv("KINFER_OPENBLAS_THREADS");
    blas_self_threads = e ? atoi(e) : 0;
    openblas_set_num_threads(blas_self_threads > 0 ? blas_self_threads : 1);
}
void core_blas_init(void)
{
    pthread_once(&blas_once, blas_setup);
}

/* Multiversioned functions stay static: clang 14 (the fuzz build) emits no callable symbol for an
 * exported target_clones function, so other files call the plain wrapper below. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
epilogue_rows(const core_epilogue *ep, float *C, int64_t ldc, int64_t r0, int64_t r1, int64_t c0,
              int64_t c1)
{
    if (!ep || (!ep->bias_col && !ep->bias_row && ep->act == OP_ACT_NONE)) return;
    float lo = ep->act == OP_ACT_RELU ? 0.0f : ep->act == OP_ACT_CLIP ? ep->lo : -INFINITY;
    float hi = ep->act == OP_ACT_CLIP ? ep->hi : INFINITY;
    const float *bc = ep->bias_col;
    /* One pass per row; each branch is a plain loop gcc vectorizes. */
    for (int64_t r = r0; r < r1; r++) {
        float *row = C + r * ldc;
        float br = ep->bias_row ? ep->bias_row[r] : 0.0f;
        if (bc)
            for (int64_t j = c0; j < c1; j++) {
                float v = row[j] + bc[j] + br;
                row[j] = v < lo ? lo : v > hi ? hi : v;
            }
        else
            for (int64_t j = c0; j < c1; j++) {
                float v = row[j] + br;
                row[j] = v < lo ? lo : v > hi ? hi : v;
            }
    }
}

/* ---- small-M GEMM ----
 * With few rows (a transformer's tokens at batch 1, a Linear layer on a small batch), OpenBLAS
 * spends most of its time re-packing the large constant weight matrix on every call. This kernel
 * streams B once per 16-column panel instead: four rows of A at a time accumulate in vector
 * registers, compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (ifunc). */
typedef float core_vf __attribute__((vector_size(64)));

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
small_panel(int64_t M, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
            int64_t ldb, float beta, float *C, int64_t ldc, int64_t j)
{
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *a = A + m * lda;
        core_vf c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        for (int64_t k = 0; k < K; k++) {
            core_vf b;
            memcpy(&b, B + k * ldb + j, sizeof b);
            c0 += b * a[k];
            c1 += b * a[lda + k];
            c2 += b * a[2 * lda + k];
            c3 += b * a[3 * lda + k];
        }
        core_vf *acc[4] = {&c0, &c1, &c2, &c3};
        for (int r = 0; r < 4; r++) {
            core_vf v = *acc[r] * alpha, old;
            float *dst = C + (m + r) * ldc + j;
            if (beta != 0.0f) {
                memcpy(&old, dst, sizeof old);
                v += old * beta;
            }
            memcpy(dst, &v, sizeof v);
        }
    }
    for (; m < M; m++) {
        const float *a = A + m * lda;
        core_vf c0 = {0}, old;
        for (int64_t k = 0; k < K; k++) {
            core_vf b;
            memcpy(&b, B + k * ldb + j, sizeof b);
            c0 += b * a[k];
        }
        c0 *= alpha;
        float *dst = C + m * ldc + j;
        if (beta != 0.0f) {
            memcpy(&old, dst, sizeof old);
            c0 += old * beta;
        }
        memcpy(dst, &c0, sizeof c0);
    }
}

/* One untransposed-A GEMM for the paths that split it over the pool themselves (small M, GEMV). */
typedef struct small_job {
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    const core_epilogue *ep;
} small_job;

/* Runs part over the pool when the GEMM is big enough to pay for waking it, else inline. */
static void small_run(op_ctx *c, void (*part)(void *, int, int), small_job *j)
{
    if (c && op_num_threads(c) > 1 && (double)j->M * (double)j->N * (double)j->K >= 2e5)
        op_parallel(c, part, j);
    else
        part(j, 0, 1);
}

static void small_part(void *arg, int ith, int nth)
{
    const small_job *j = arg;
    int64_t panels = j->N / 16, b, e;
    op_split(panels + (j->N % 16 != 0), ith, nth, &b, &e);
    for (int64_t p = b; p < e; p++) {
        if (p < panels) {
            small_panel(j->M, j->K, j->alpha, j->A, j->lda, j->B, j->ldb, j->beta, j->C, j->ldc,
                        p * 16);
        } else {
            for (int64_t m = 0; m < j->M; m++) /* the last N % 16 columns */
                for (int64_t col = panels * 16; col < j->N; col++) {
                    float s = 0.0f;
                    for (int64_t k = 0; k < j->K; k++)
                        s += j->A[m * j->lda + k] * j->B[k * j->ldb + col];
                    float *dst = j->C + m * j->ldc + col;
                    *dst = j->alpha * s + (j->beta != 0.0f ? j->beta * *dst : 0.0f);
                }
        }
        int64_t c0 = p * 16, c1 = p < panels ? c0 + 16 : j->N;
        core_epilogue_rows(j->ep, j->C, j->ldc, 0, j->M, c0, c1);
    }
}

void core_epilogue_rows(const core_epilogue *ep, float *C, int64_t ldc, int64_t r0, int64_t r1,
                        int64_t c0, int64_t c1)
{
    epilogue_rows(ep, C, ldc, r0, r1, c0, c1);
}

typedef struct gemm_job {
    int ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    const core_epilogue *ep;
    int split_rows;
} gemm_job;

/* C's block [r0, r1) x [c0, c1) = its bias (per row plus per column): the GEMM then runs with
 * beta = 1 on top of it. OpenBLAS would otherwise zero C first (its beta = 0 pass) and the
 * epilogue add the bias in a second pass over C; this way a layer without an activation needs
 * neither. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
bias_fill(const core_epilogue *ep, float *C, int64_t ldc, int64_t r0, int64_t r1, int64_t c0,
          int64_t c1)
{
    const float *bc = ep->bias_col;
    for (int64_t r = r0; r < r1; r++) {
        float *row = C + r * ldc, br = ep->bias_row ? ep->bias_row[r] : 0.0f;
        if (bc)
            for (int64_t j = c0; j < c1; j++) row[j] = bc[j] + br;
        else
            for (int64_t j = c0; j < c1; j++) row[j] = br;
    }
}

/* One thread's block of C: rows [r0, r1), columns [c0, c1). */
static void gemm_block(const gemm_job *j, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    const float *A = j->ta ? j->A + r0 : j->A + r0 * j->lda;
    const float *B = j->tb ? j->B + c0 * j->ldb : j->B + c0;
    const core_epilogue *ep = j->ep;
    core_epilogue act_only;
    float beta = j->beta;
    if (beta == 0.0f && ep && (ep->bias_row || ep->bias_col)) {
        bias_fill(ep, j->C, j->ldc, r0, r1, c0, c1);
        beta = 1.0f;
        act_only = *ep;
        act_only.bias_row = act_only.bias_col = NULL;
        ep = &act_only;
    }
    /* One column past whole 16-column panels (a 7x7 plane's 49 pixels) costs OpenBLAS about five
     * columns' time in its edge kernel; as a GEMV against the A block just packed (still in cache)
     * it costs about one (1280 x 320 by 49, one thread: 434 -> 423 us; 960 x 160: 159 -> 150). */
    int64_t n = c1 - c0, last = !j->ta && !j->tb && n > 16 && n % 16 == 1;
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                (int)(r1 - r0), (int)(n - last), (int)j->K, j->alpha, A, (int)j->lda, B,
                (int)j->ldb, beta, j->C + r0 * j->ldc + c0, (int)j->ldc);
    if (last && beta == 0.0f) /* sgemv scales y by beta; never let it see uninitialized memory */
        for (int64_t r = r0; r < r1; r++) j->C[r * j->ldc + c1 - 1] = 0.0f;
    if (last)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(r1 - r0), (int)j->K, j->alpha, A,
                    (int)j->lda, B + n - 1, (int)j->ldb, beta, j->C + r0 * j->ldc + c1 - 1,
                    (int)j->ldc);
    core_epilogue_rows(ep, j->C, j->ldc, r0, r1, c0, c1);
}

static void gemm_part(void *arg, int ith, int nth)
{
    const gemm_job *j = arg;
    int64_t b, e;
    if (j->split_rows) {
        op_split(j->M, ith, nth, &b, &e);
        if (b < e) gemm_block(j, b, e, 0, j->N);
    } else {
        /* Split columns at the multiples of 16 nearest the even shares, which keeps BLAS panels
         * aligned: whole 16-column blocks dealt out by count gave one thread 112 of a 14x14
         * plane's 196 columns and the other 84. */
        b = ith == 0 ? 0 : (j->N * ith / nth + 8) / 16 * 16;
        e = ith == nth - 1 ? j->N : (j->N * (ith + 1) / nth + 8) / 16 * 16;
        if (e > j->N) e = j->N;
        if (b < e) gemm_block(j, 0, j->M, b, e);
    }
}

/* ---- GEMV ----
 * A Linear layer at batch 1 (Gemm with transB, the classifier of a CNN): one or two rows against
 * a large constant [N, K] weight. cblas_sgemv streams the weight once; sgemm would first copy it
 * into its packed layout. Threads split the weight's rows. */
static void gemv_part(void *arg, int ith, int nth)
{
    const small_job *j = arg;
    int64_t b, e;
    op_split(j->N, ith, nth, &b, &e);
    if (b >= e) return;
    for (int64_t r = 0; r < j->M; r++)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(e - b), (int)j->K, j->alpha,
                    j->B + b * j->ldb, (int)j->ldb, j->A + r * j->lda, 1, j->beta,
                    j->C + r * j->ldc + b, 1);
    core_epilogue_rows(j->ep, j->C, j->ldc, 0, j->M, b, e);
}

void core_sgemm_serial(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc)
{
    core_blas_init();
    if (M <= 0 || N <= 0) return;
    if (K == 0) {
        for (int64_t r = 0; r < M; r++)
            for (int64_t j = 0; j < N; j++) C[r * ldc + j] = beta ? beta * C[r * ldc + j] : 0.0f;
        return;
    }
    gemm_job j = {trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, NULL, 1};
    gemm_part(&j, 0, 1);
}

void core_sgemm(op_ctx *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc, const core_epilogue *ep)
{
    core_blas_init();
    if (M <= 0 || N <= 0) return;
    if (K == 0) { /* BLAS leaves C alone when K = 0; ONNX wants beta*C */
        for (int64_t r = 0; r < M; r++)
            for (int64_t j = 0; j < N; j++) C[r * ldc + j] = beta ? beta * C[r * ldc + j] : 0.0f;
        core_epilogue_rows(ep, C, ldc, 0, M, 0, N);
        return;
    }
    /* N >= 2048 (a conv projecting onto 16 or 24 channels over a large plane) stays with OpenBLAS,
     * whose B packing is amortized there (MobileNetV2's 96->24 and 144->24 at 56x56, one thread:
     * 0.17 and 0.26 ms against 0.20 and 0.30 here), unless K is as small as 32 (its 32->16 at
     * 112x112: 0.18 ms here against 0.20), where the packing is most of OpenBLAS's work. */
    if (!trans_a && !trans_b && M <= 24 && N >= 64 && (N < 2048 || K <= 32) && K >= 16) {
        small_job sj = {M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, ep};
        small_run(c, small_part, &sj);
        return;
    }
    if (!trans_a && trans_b && M <= 2 && N >= 64 && K >= 64) {
        small_job gj = {M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, ep};
        small_run(c, gemv_part, &gj);
        return;
    }
    gemm_job j = {trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, ep, 1};
    int nth = blas_self_threads > 0 || !c ? 1 : op_num_threads(c);
    double flops = (double)M * (double)N * (double)K;
    if (nth <= 1 || flops < 2e5) {
        gemm_part(&j, 0, 1);
        return;
    }
    /* Each thread's cblas_sgemm packs its own copy of the operand it does not split: all of B
     * (K x N) when C's rows are split, all of A (M x K) when its columns are. Split so that the
     * smaller one is duplicated (a 1x1 convolution's weights early in a CNN, not its
     * activations), as long as every thread still gets a fair share. */
    j.split_rows = N < 16 * nth || (M >= 4 * nth && M >= N);
    op_parallel(c, gemm_part, &j);
}

/* ---- MatMul ---- */
static kinfer_status *matmul_infer(op_ctx *c)
{
    const op_tensor *a = op_input(c, 0), *b = op_input(c, 1);
    if (a->dtype != b->dtype)
        return op_error(c, KINFER_EMODEL, "A is %s, B is %s", onnx_dtype_name(a->dtype),
                        onnx_dtype_name(b->dtype));
    if (!core_is_numeric(a->dtype))
        return op_error(c, KINFER_EUNSUPPORTED, "type %s", onnx_dtype_name(a->dtype));
    if (a->rank < 0 || b->rank < 0) return op_set_output(c, 0, a->dtype, -1, NULL), NULL;
    if (a->rank == 0 || b->rank == 0) return op_error(c, KINFER_ESHAPE, "MatMul of a scalar");
    int ra = a->rank < 2 ? 2 : a->rank, rb = b->rank < 2 ? 2 : b->rank, r = ra > rb ? ra : rb;
    int64_t da[ONNX_MAX_RANK], db[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    for (int i = 0; i < r; i++) da[i] = db[i] = 1;
    memcpy(da + (r - a->rank) - (a->rank == 1), a->dims, (size_t)a->rank * 8);
    if (b->rank == 1)
        db[r - 2] = b->dims[0], db[r - 1] = 1;
    else
        memcpy(db + r - b->rank, b->dims, (size_t)b->rank * 8);
    if (a->rank == 1) da[r - 2] = 1, da[r - 1] = a->dims[0];
    int64_t K = da[r - 1];
    if (K >= 0 && db[r - 2] >= 0 && K != db[r - 2])
        return op_error(c, KINFER_ESHAPE, "A has %lld columns, B has %lld rows", (long long)K,
                        (long long)db[r - 2]);
    for (int i = 0; i < r - 2; i++) {
        if (da[i] != db[i] && da[i] != 1 && db[i] != 1 && da[i] >= 0 && db[i] >= 0)
            return op_error(c, KINFER_ESHAPE, "batch dims %lld and %lld", (long long)da[i],
                            (long long)db[i]);
        d[i] = da[i] == 1 ? db[i] : da[i];
    }
    int n = r - 2;
    if (a->rank != 1) d[n++] = da[r - 2];
    if (b->rank != 1) d[n++] = db[r - 1];
    op_set_output(c, 0, a->dtype, n, d);
    return NULL;
}

typedef struct mm_geom {
    int r;
    int64_t M, N, K, batch, da[ONNX_MAX_RANK], db[ONNX_MAX_RANK];
} mm_geom;

static void mm_geometry(const op_tensor *a, const op_tensor *b, mm_geom *g)
{
    int ra = a->rank < 2 ? 2 : a->rank, rb = b->rank < 2 ? 2 : b->rank, r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) g->da[i] = g->db[i] = 1;
    if (a->rank == 1)
        g->da[r - 1] = a->dims[0];
    else
        memcpy(g->da + r - a->rank, a->dims, (size_t)a->rank * 8);
    if (b->rank == 1)
        g->db[r - 2] = b->dims[0];
    else
        memcpy(g->db + r - b->rank, b->dims, (size_t)b->rank * 8);
    g->r = r;
    g->M = g->da[r - 2];
    g->K = g->da[r - 1];
    g->N = g->db[r - 1];
    g->batch = 1;
    for (int i = 0; i < r - 2; i++) g->batch *= g->da[i] > g->db[i] ? g->da[i] : g->db[i];
}

static int64_t batch_offset(const int64_t *dims, int r, int64_t bi, const int64_t *od, int64_t mat)
{
    int64_t off = 0, s = mat;
    for (int i = r - 3; i >= 0; i--) {
        int64_t idx = bi % od[i];
        bi /= od[i];
        if (dims[i] != 1) off += idx * s;
        s *= dims[i];
    }
    return off;
}

/* Many small independent products (attention's Q·K^T and P·V per head): one thread per batch
 * slice beats splitting each small GEMM. */
typedef struct bmm_job {
    const float *a, *b;
    float *y;
    const mm_geom *g;
    const int64_t *od;
    const core_epilogue *ep;
} bmm_job;

static void bmm_part(void *arg, int ith, int nth)
{
    const bmm_job *j = arg;
    const mm_geom *g = j->g;
    int64_t b, e, M = g->M, N = g->N, K = g->K;
    op_split(g->batch, ith, nth, &b, &e);
    for (int64_t bi = b; bi < e; bi++) {
        int64_t oa = batch_offset(g->da, g->r, bi, j->od, M * K),
                ob = batch_offset(g->db, g->r, bi, j->od, K * N);
        float *y = j->y + bi * M * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                    j->a + oa, (int)K, j->b + ob, (int)N, 0.0f, y, (int)N);
        core_epilogue_rows(j->ep, y, N, 0, M, 0, N);
    }
}

static kinfer_status *matmul_compute(op_ctx *c)
{
    const op_tensor *a = op_input(c, 0), *b = op_input(c, 1), *bias = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    mm_geom g;
    mm_geometry(a, b, &g);
    int64_t od[ONNX_MAX_RANK], M = g.M, N = g.N, K = g.K;
    for (int i = 0; i < g.r - 2; i++) od[i] = g.da[i] > g.db[i] ? g.da[i] : g.db[i];
    core_epilogue ep = {0};
    ep.act = op_node_act(op_ctx_node(c), &ep.lo, &ep.hi);
    ep.bias_col = bias ? bias->data : NULL;
    int b_shared = 1;
    for (int i = 0; i < g.r - 2; i++) b_shared &= g.db[i] == 1;
    if (a->dtype == ONNX_DTYPE_FLOAT && b_shared) {
        /* Every batch multiplies the same B: one GEMM with batch*M rows. */
        core_sgemm(c, 0, 0, g.batch * M, N, K, 1.0f, a->data, K, b->data, N, 0.0f, y->data, N, &ep);
        return NULL;
    }
    if (a->dtype == ONNX_DTYPE_FLOAT && g.batch >= op_num_threads(c) && op_num_threads(c) > 1 &&
        K > 0) {
        core_blas_init();
        bmm_job j = {a->data, b->data, y->data, &g, od, &ep};
        op_parallel(c, bmm_part, &j);
        return NULL;
    }
    for (int64_t bi = 0; bi < g.batch; bi++) {
        int64_t oa = batch_offset(g.da, g.r, bi, od, M * K),
                ob = batch_offset(g.db, g.r, bi, od, K * N);
        if (a->dtype == ONNX_DTYPE_FLOAT) {
            core_sgemm(c, 0, 0, M, N, K, 1.0f, (const float *)a->data + oa, K,
                       (const float *)b->data + ob, N, 0.0f, (float *)y->data + bi * M * N, N, &ep);
        } else if (a->dtype == ONNX_DTYPE_DOUBLE) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0,
                        (const double *)a->data + oa, (int)K, (const double *)b->data + ob, (int)N,
                        0.0, (double *)y->data + bi * M * N, (int)N);
        } else {
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += op_tensor_get_int(a, oa + i * K + k) *
                             op_tensor_get_int(b, ob + k * N + j);
                    core_store_double(y, bi * M * N + i * N + j, (double)s);
                }
        }
    }
    return NULL;
}

/* ---- Gemm ---- */
static kinfer_status *gemm_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *a = op_input(c, 0), *b = op_input(c, 1), *cc = op_input(c, 2);
    if (a->dtype != ONNX_DTYPE_FLOAT || b->dtype != ONNX_DTYPE_FLOAT ||
        (cc && cc->dtype != ONNX_DTYPE_FLOAT))
        return op_error(c, a->dtype == b->dtype ? KINFER_EUNSUPPORTED : KINFER_EMODEL,
                        "types %s/%s (float only)", onnx_dtype_name(a->dtype),
                        onnx_dtype_name(b->dtype));
    if (op_node_opset(n) < 7 && op_attr_int(n, "broadcast", 0) == 0 && op_attr_has(n, "broadcast"))
        return op_error(c, KINFER_EUNSUPPORTED, "broadcast=0");
    if (a->rank < 0 || b->rank < 0) return op_set_output(c, 0, ONNX_DTYPE_FLOAT, 2, NULL), NULL;
    if (a->rank != 2 || b->rank != 2) return op_error(c, KINFER_ESHAPE, "A and B must be 2-D");
    int ta = (int)op_attr_int(n, "transA", 0), tb = (int)op_attr_int(n, "transB", 0);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t K2 = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K >= 0 && K2 >= 0 && K != K2)
        return op_error(c, KINFER_ESHAPE, "inner dims %lld vs %lld", (long long)K, (long long)K2);
    int64_t d[2] = {M, N};
    if (cc && cc->rank > 2) return op_error(c, KINFER_ESHAPE, "C rank %d", cc->rank);
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, 2, d);
    return NULL;
}

static kinfer_status *gemm_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *a = op_input(c, 0), *b = op_input(c, 1), *cc = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    int ta = (int)op_attr_int(n, "transA", 0), tb = (int)op_attr_int(n, "transB", 0);
    float alpha = op_attr_float(n, "alpha", 1.0f), beta = op_attr_float(n, "beta", 1.0f);
    int64_t M = y->dims[0], N = y->dims[1], K = ta ? a->dims[0] : a->dims[1];
    float *Y = y->data;
    core_epilogue ep = {0};
    ep.act = op_node_act(n, &ep.lo, &ep.hi);
    float gb = 0.0f;
    if (cc && beta != 0.0f) {
        int64_t sc[2];
        int64_t cr = cc->rank, c0 = cr == 2 ? cc->dims[0] : 1, c1 = cr >= 1 ? cc->dims[cr - 1] : 1;
        if ((c0 != 1 && c0 != M) || (c1 != 1 && c1 != N))
            return op_error(c, KINFER_ESHAPE, "C [%lld,%lld] does not broadcast to [%lld,%lld]",
                            (long long)c0, (long long)c1, (long long)M, (long long)N);
        if (beta == 1.0f && c0 == 1 && c1 == N) {
            ep.bias_col = cc->data; /* the common Linear layer: bias in the epilogue */
        } else {
            sc[0] = c0 == 1 ? 0 : c1;
            sc[1] = c1 == 1 ? 0 : 1;
            const float *C = cc->data;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) Y[i * N + j] = beta * C[i * sc[0] + j * sc[1]];
            gb = 1.0f;
        }
    }
    core_sgemm(c, ta, tb, M, N, K, alpha, a->data, a->dims[1], b->data, b->dims[1], gb, Y, N, &ep);
    return NULL;
}

const op_def core_linalg_ops[] = {
    {"", "MatMul", 1, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, matmul_infer, matmul_compute},
    {"", "Gemm", 7, OP_OPSET_MAX, 2, 3, 1, 1, NULL, NULL, gemm_infer, gemm_compute},
};
const size_t core_linalg_count = sizeof(core_linalg_ops) / sizeof(core_linalg_ops[0]);
