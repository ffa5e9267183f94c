/*
 * core_gemm: the one place the CPU kernels call BLAS. core_sgemm splits C's rows (or columns when
 * there are few rows) across the model's thread pool, with OpenBLAS itself single-threaded so the
 * two never oversubscribe the container's CPUs, and applies an epilogue (bias per column, fused
 * Relu/Clip) to each block while it is still in cache.
 */
#ifndef KINFER_CORE_GEMM_H
#define KINFER_CORE_GEMM_H

#include "../engine/op.h"

typedef struct core_epilogue {
    const float *bias_col; /* length N, added to every row; or NULL */
    const float *bias_row; /* length M, added to every column; or NULL */
    op_act act;
    float lo, hi;
} core_epilogue;

/* C[M,N] = alpha * op(A) op(B) + beta * C (row-major), then the epilogue. c == NULL runs it on
 * the calling thread only (for kernels that split independent GEMMs across the pool, one image
 * per thread at a time). */
void core_sgemm(op_ctx *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc, const core_epilogue *ep);
/* The same GEMM on the calling thread only, with no epilogue: for kernels that already split
 * independent GEMMs across the pool (core_winograd's 16 per tile set). */
void core_sgemm_serial(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc);
/* Applies the epilogue to rows [r0, r1) of C. */
void core_epilogue_rows(const core_epilogue *ep, float *C, int64_t ldc, int64_t r0, int64_t r1,
                        int64_t c0, int64_t c1);
/* Limits OpenBLAS to one thread (once per process). */
void core_blas_init(void);

#endif
