/*
 * core_winograd: 3x3, stride-1, dilation-1, group-1 2-D convolution by Winograd's minimal
 * filtering F(2x2, 3x3). Each 2x2 output tile comes from a 4x4 input tile: the 16 elementwise
 * products of the transformed input and the transformed filter are, summed over input channels,
 * 16 independent GEMMs (OpenBLAS, through core_sgemm_serial) of [M x C] by [C x tiles]. That is
 * 16 multiply-adds per 4 outputs and channel pair instead of 36, so 2.25x fewer than im2col.
 * The filter transform is computed once per model (core_winograd_create) and shared by every run.
 * It does not handle other kernel sizes, strides, dilations or groups; core_conv decides when to
 * use it (core_winograd_worth) and falls back to im2col otherwise.
 */
#ifndef KINFER_CORE_WINOGRAD_H
#define KINFER_CORE_WINOGRAD_H

#include "core_gemm.h"
#include "core_window.h"

typedef struct core_winograd core_winograd; /* the transformed filter of one Conv node */

/* 1 when the window (2-D, 3x3, stride 1, dilation 1) and group 1 suit this kernel. */
int core_winograd_fits(const core_window *w, int64_t group);
/* 1 when Winograd is expected to beat im2col + GEMM for N images of C -> M channels with this
 * window (the measured break-even: enough tiles per GEMM to amortize OpenBLAS's packing). */
int core_winograd_worth(const core_window *w, int64_t N, int64_t C, int64_t M);
/* Transforms W [M, C, 3, 3] (read-only; not kept) into a new core_winograd the caller frees. */
kinfer_status *core_winograd_create(const float *w, int64_t M, int64_t C, core_winograd **out)
    __attribute__((warn_unused_result));
void core_winograd_free(core_winograd *wg);
/* y [N, M, OH, OW] = conv(x [N, C, H, W]) with the window w, then bias (length M or NULL) and
 * ep's activation. Scratch comes from c's arena; KINFER_ENOMEM when it cannot. */
kinfer_status *core_winograd_run(op_ctx *c, const core_winograd *wg, const float *x, int64_t N,
                                 const core_window *w, const float *bias, const core_epilogue *ep,
                                 float *y) __attribute__((warn_unused_result));
/* How many convolutions this process has run through this kernel: lets tests check which path a
 * model took. */
int64_t core_winograd_runs(void);

#endif
