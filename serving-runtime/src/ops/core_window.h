/*
 * core_window: the sliding-window geometry that Conv and the pools share (kernel, strides, pads,
 * dilations, auto_pad, ceil_mode), for 1-D and 2-D windows (1-D is treated as height 1).
 */
#ifndef KINFER_CORE_WINDOW_H
#define KINFER_CORE_WINDOW_H

#include "../engine/op.h"

typedef struct core_window {
    int nd;                   /* spatial dims: 1 or 2 */
    int64_t k[2], s[2], d[2]; /* kernel, stride, dilation (h, w) */
    int64_t pb[2], pe[2];     /* pads at the beginning / end */
    int64_t in[2], out[2];    /* spatial sizes */
} core_window;

/* Reads the window from the node's attributes for input spatial dims in[0..nd), kernel kernel[].
 * Returns a status for unsupported or inconsistent attributes. */
kinfer_status *core_window_init(op_ctx *c, int nd, const int64_t *in, const int64_t *kernel,
                                int ceil_mode, core_window *w) __attribute__((warn_unused_result));

#endif
