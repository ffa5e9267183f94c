/*
 * core_direct: direct convolution kernels (depthwise, few-channel stems) for Conv. See
 * core_direct.c for what each covers; core_conv.c decides which path a convolution takes.
 */
#ifndef KINFER_CORE_DIRECT_H
#define KINFER_CORE_DIRECT_H

#include "../engine/op.h"
#include "core_gemm.h"
#include "core_window.h"

/* Depthwise Conv (group = C = M, W [C, 1, kh, kw]) of the node's input 0 (N images) into its
 * output 0, with bias (or NULL) and ep's activation, and the producer's activation that the
 * optimizer moved onto input 0 (op_node_in_act). Scratch comes from the run's arena. */
kinfer_status *core_depthwise_run(op_ctx *c, const core_window *w, int64_t N, int64_t C,
                                  const float *bias, const core_epilogue *ep)
    __attribute__((warn_unused_result));
/* Whether the stem kernel takes a convolution: group 1, at most 4 input channels, 3x3, dilation
 * 1, pads of 1, stride 2, even H and W. */
int core_stem_fits(const core_window *w, int64_t C, int64_t G);
/* The stem kernel on the node's input 0 (N images, C channels) into output 0 (M channels). */
kinfer_status *core_stem_run(op_ctx *c, const core_window *w, int64_t N, int64_t C, int64_t M,
                             const float *bias, const core_epilogue *ep)
    __attribute__((warn_unused_result));
/* Whether a batch of N is split by image over nth threads: at least two images each, and no
 * thread left with one image more than the others while they hold only one or two. */
int core_conv_by_image(int64_t N, int nth);

#endif
