/*
 * Tests of Conv's GEMM paths (src/ops/core_conv.c) against a direct convolution in double:
 * several images per GEMM (late layers at batch > 1: 1x1 and strided 3x3, with the output
 * copied back per image, across more than one chunk of images), and the one-GEMM-per-image path
 * beside them, and depthwise convolutions over a batch. The bias is added before the GEMM
 * (core_sgemm's bias fill), so a bias-only layer and a layer with a fused Relu are both covered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/engine/onnx_model.h"
#include "onnx_builder.h"

#define F ONNX_DTYPE_FLOAT

typedef struct conv_case {
    int64_t n, c, m, h, w, k, s, pad;
    int relu, threads;
    int64_t group; /* 0 means 1 */
} conv_case;

static void conv_check(const conv_case *k, unsigned seed)
{
    int64_t oh = (k->h + 2 * k->pad - k->k) / k->s + 1, ow = (k->w + 2 * k->pad - k->k) / k->s + 1,
            kk = k->k * k->k;
    int64_t g = k->group ? k->group : 1, cg = k->c / g, mg = k->m / g;
    float *x = mb_rand_floats((size_t)(k->n * k->c * k->h * k->w), seed);
    float *wt = mb_rand_floats((size_t)(k->m * cg * kk), seed + 1),
          *b = mb_rand_floats((size_t)k->m, seed + 2);
    mb *mb = mb_new(13);
    int64_t xd[4] = {-1, k->c, k->h, k->w}, wd[4] = {k->m, cg, k->k, k->k}, bd[1] = {k->m};
    int64_t pads[4] = {k->pad, k->pad, k->pad, k->pad}, st[2] = {k->s, k->s};
    mb_input(mb, "x", F, 4, xd);
    mb_init_float(mb, "w", 4, wd, wt);
    mb_init_float(mb, "b", 1, bd, b);
    mb_node *n = mb_add_node(mb, "Conv", "x,w,b", k->relu ? "c" : "y");
    mb_attr_ints(mb, n, "pads", 4, pads);
    mb_attr_ints(mb, n, "strides", 2, st);
    if (g > 1) mb_attr_int(mb, n, "group", g);
    if (k->relu) mb_add_node(mb, "Relu", "c", "y");
    mb_output(mb, "y", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_options o = {.threads = k->threads};
    onnx_model *m = NULL;
    kinfer_status *s = onnx_model_load_mem(buf, len, &o, &m);
    free(buf);
    if (s) fail_msg("load: %s", kinfer_status_msg(s));
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .data = x}, out;
    int64_t d[4] = {k->n, k->c, k->h, k->w};
    memcpy(in.dims, d, sizeof d);
    if ((s = onnx_model_run(m, &in, 1, NULL, &out, 1))) fail_msg("run: %s", kinfer_status_msg(s));
    assert_int_equal(out.dims[0], k->n);
    assert_int_equal(out.dims[1], k->m);
    assert_int_equal(out.dims[2], oh);
    assert_int_equal(out.dims[3], ow);
    const float *y = out.data;
    for (int64_t i = 0; i < k->n; i++)
        for (int64_t mo = 0; mo < k->m; mo++)
            for (int64_t r = 0; r < oh; r++)
                for (int64_t q = 0; q < ow; q++) {
                    double sum = b[mo], mag = fabs(sum);
                    for (int64_t cl = 0; cl < cg; cl++)
                        for (int64_t u = 0; u < k->k; u++)
                            for (int64_t v = 0; v < k->k; v++) {
                                int64_t ih = r * k->s + u - k->pad, iw = q * k->s + v - k->pad,
                                        ch = mo / mg * cg + cl;
                                if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) continue;
                                double p = (double)wt[(mo * cg + cl) * kk + u * k->k + v] *
                                           x[((i * k->c + ch) * k->h + ih) * k->w + iw];
                                sum += p, mag += fabs(p);
                            }
                    if (k->relu && sum < 0) sum = 0;
                    double got = y[((i * k->m + mo) * oh + r) * ow + q];
                    if (fabs(got - sum) > 1e-5 * mag + 1e-6)
                        fail_msg("y[%lld,%lld,%lld,%lld] = %.7g, direct %.7g", (long long)i,
                                 (long long)mo, (long long)r, (long long)q, got, sum);
                }
    onnx_tensor_release(&out);
    onnx_model_free(m);
    free(x), free(wt), free(b);
}

/* Few pixels, many channels, batch > 1: the images share one GEMM (1x1 takes the copy path,
 * strided 3x3 and 1x1 stride 2 the im2col one). */
static void images_share_a_gemm(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {4, 64, 96, 5, 5, 1, 1, 0, 0, 2, 1},
        {3, 48, 40, 7, 6, 1, 1, 0, 1, 1, 1},
        {3, 32, 48, 7, 7, 3, 2, 1, 1, 2, 1},
        {5, 40, 64, 9, 9, 1, 2, 0, 0, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 30 + (unsigned)i);
}

/* So many input channels that 16 MiB of columns (2308 rows of 144 pixels per image) holds only
 * 12 of the 30 images: three chunks of 10. */
static void images_split_into_chunks(void **state)
{
    (void)state;
    conv_case k = {30, 256, 4, 24, 24, 3, 2, 1, 1, 2, 1};
    conv_check(&k, 40);
}

/* Large planes (and batch 1) keep one GEMM per image. */
static void large_planes_run_per_image(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {2, 4, 8, 20, 20, 1, 1, 0, 1, 2, 1},
        {1, 8, 16, 12, 12, 3, 2, 1, 0, 1, 1},
        {2, 3, 8, 17, 17, 5, 2, 2, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 50 + (unsigned)i);
}

/* Depthwise (group = channels) over a batch: the batch's planes are split across the threads in
 * one go, so a thread's range starts and ends in the middle of an image. Strides 1 and 2, 3x3
 * (the specialized loops, small and large planes) and 5x5 (the generic one). */
static void depthwise_batches(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {5, 7, 7, 9, 11, 3, 1, 1, 1, 2, 7},  {3, 5, 5, 20, 18, 3, 1, 1, 0, 2, 5},
        {3, 6, 6, 13, 12, 3, 2, 1, 1, 2, 6}, {2, 3, 3, 9, 9, 5, 1, 2, 0, 2, 3},
        {2, 4, 4, 11, 10, 5, 2, 2, 1, 1, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 60 + (unsigned)i);
}

/* The flat 3x3 kernels (pads of 1): stride 1 at widths below, at and above a vector (1, 7, 16,
 * 17, 40) and planes whose length is not a multiple of 16, so the column masks wrap at every
 * phase; stride 2 on even planes (their four quarters, down to 2x2), and on odd ones, which stay
 * on the padded-plane path. One and two threads, with and without Relu. */
static void depthwise_flat_planes(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {2, 5, 5, 7, 7, 3, 1, 1, 1, 2, 5},   {1, 4, 4, 14, 14, 3, 1, 1, 0, 1, 4},
        {3, 3, 3, 5, 1, 3, 1, 1, 0, 2, 3},   {1, 3, 3, 1, 17, 3, 1, 1, 1, 2, 3},
        {2, 3, 3, 16, 16, 3, 1, 1, 0, 2, 3}, {1, 2, 2, 23, 40, 3, 1, 1, 1, 1, 2},
        {2, 5, 5, 14, 14, 3, 2, 1, 1, 2, 5}, {3, 3, 3, 2, 2, 3, 2, 1, 0, 2, 3},
        {1, 4, 4, 8, 34, 3, 2, 1, 1, 1, 4},  {2, 3, 3, 36, 6, 3, 2, 1, 0, 2, 3},
        {2, 3, 3, 7, 9, 3, 2, 1, 1, 2, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 70 + (unsigned)i);
}

/* A stem (3x3, stride 2, pads of 1, even planes, up to 4 input channels) runs its own kernel:
 * output channels in groups of four (and a remainder), planes whose quarters are not whole
 * vectors, one and two threads, and a batch of five split by image. Five input channels go to
 * im2col. */
static void stem_planes(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {1, 3, 32, 36, 34, 3, 2, 1, 1, 2, 1}, {2, 1, 5, 8, 8, 3, 2, 1, 0, 1, 1},
        {1, 4, 6, 2, 2, 3, 2, 1, 1, 2, 1},    {2, 2, 7, 10, 40, 3, 2, 1, 0, 2, 1},
        {1, 5, 8, 12, 12, 3, 2, 1, 1, 2, 1},  {5, 3, 9, 10, 12, 3, 2, 1, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 85 + (unsigned)i);
}

/* Batches of at least two images per thread go one image per thread (im2col, 1x1 and grouped),
 * with an odd batch that leaves the threads unequal shares; two images on two threads do not. */
static void batches_split_by_image(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {4, 3, 8, 17, 17, 3, 1, 1, 1, 2, 1},
        {6, 8, 16, 20, 20, 1, 1, 0, 0, 2, 1},
        {8, 4, 6, 9, 9, 3, 2, 1, 1, 2, 2},
        {9, 5, 7, 11, 10, 3, 1, 1, 0, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_check(&cases[i], 95 + (unsigned)i);
}

/* x -> 1x1 Conv + Clip(lo, hi) -> depthwise k x k Conv (stride s, pads pad): the optimizer moves
 * the Clip into the depthwise Conv's input; the padding must stay zero even when lo > 0. With
 * also_output the clipped value is a graph output too, and nothing moves. */
static void clip_then_depthwise(int64_t n, int64_t ch, int64_t h, int64_t w, int64_t k, int64_t s,
                                int64_t pad, float lo, float hi, int also_output, int threads,
                                unsigned seed)
{
    int64_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1, hw = h * w;
    float *x = mb_rand_floats((size_t)(n * ch * hw), seed),
          *w1 = mb_rand_floats((size_t)(ch * ch), seed + 1),
          *b1 = mb_rand_floats((size_t)ch, seed + 2),
          *w2 = mb_rand_floats((size_t)(ch * k * k), seed + 3),
          *b2 = mb_rand_floats((size_t)ch, seed + 4);
    for (int64_t i = 0; i < ch * ch; i++) w1[i] *= 4.0f; /* spread the values beyond [lo, hi] */
    mb *mb = mb_new(13);
    int64_t xd[4] = {-1, ch, h, w}, w1d[4] = {ch, ch, 1, 1}, w2d[4] = {ch, 1, k, k}, bd[1] = {ch},
            sd[1] = {0};
    int64_t pads[4] = {pad, pad, pad, pad}, st[2] = {s, s};
    mb_input(mb, "x", F, 4, xd);
    mb_init_float(mb, "w1", 4, w1d, w1);
    mb_init_float(mb, "b1", 1, bd, b1);
    mb_init_float(mb, "w2", 4, w2d, w2);
    mb_init_float(mb, "b2", 1, bd, b2);
    mb_init_float(mb, "lo", 0, sd, &lo);
    mb_init_float(mb, "hi", 0, sd, &hi);
    mb_add_node(mb, "Conv", "x,w1,b1", "c");
    mb_add_node(mb, "Clip", "c,lo,hi", "t");
    mb_node *d = mb_add_node(mb, "Conv", "t,w2,b2", "y");
    mb_attr_ints(mb, d, "pads", 4, pads);
    mb_attr_ints(mb, d, "strides", 2, st);
    mb_attr_int(mb, d, "group", ch);
    mb_output(mb, "y", F);
    if (also_output) mb_output(mb, "t", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_options o = {.threads = threads};
    onnx_model *m = NULL;
    kinfer_status *st_ = onnx_model_load_mem(buf, len, &o, &m);
    free(buf);
    if (st_) fail_msg("load: %s", kinfer_status_msg(st_));
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .dims = {n, ch, h, w}, .data = x}, out[2];
    if ((st_ = onnx_model_run(m, &in, 1, NULL, out, also_output ? 2 : 1)))
        fail_msg("run: %s", kinfer_status_msg(st_));
    double *t = malloc(sizeof(double) * (size_t)(n * ch * hw));
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t p = 0; p < hw; p++) {
                double v = b1[c];
                for (int64_t q = 0; q < ch; q++)
                    v += (double)w1[c * ch + q] * x[(i * ch + q) * hw + p];
                t[(i * ch + c) * hw + p] = v < lo ? lo : v > hi ? hi : v;
            }
    const float *y = out[0].data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t r = 0; r < oh; r++)
                for (int64_t q = 0; q < ow; q++) {
                    double sum = b2[c], mag = fabs(sum);
                    for (int64_t u = 0; u < k; u++)
                        for (int64_t v = 0; v < k; v++) {
                            int64_t ih = r * s + u - pad, iw = q * s + v - pad;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                            double pr = (double)w2[(c * k + u) * k + v] *
                                        t[((i * ch + c) * h + ih) * w + iw];
                            sum += pr, mag += fabs(pr);
                        }
                    double got = y[((i * ch + c) * oh + r) * ow + q];
                    if (fabs(got - sum) > 1e-5 * mag + 1e-5)
                        fail_msg("y[%lld,%lld,%lld,%lld] = %.7g, want %.7g", (long long)i,
                                 (long long)c, (long long)r, (long long)q, got, sum);
                }
    if (also_output) {
        const float *tv = out[1].data;
        for (int64_t i = 0; i < n * ch * hw; i++)
            if (fabs(tv[i] - t[i]) > 1e-4 * (fabs(t[i]) + 1.0))
                fail_msg("t[%lld] = %.7g, want %.7g", (long long)i, tv[i], t[i]);
        onnx_tensor_release(&out[1]);
    }
    onnx_tensor_release(&out[0]);
    onnx_model_free(m);
    free(t), free(x), free(w1), free(b1), free(w2), free(b2);
}

static void clip_moves_into_depthwise(void **state)
{
    (void)state;
    clip_then_depthwise(2, 6, 9, 11, 3, 1, 1, 0.0f, 6.0f, 0, 2, 110);  /* flat stride 1 */
    clip_then_depthwise(1, 5, 12, 14, 3, 2, 1, 0.5f, 2.0f, 0, 2, 111); /* quarters, lo > 0 */
    clip_then_depthwise(1, 3, 6, 50, 3, 1, 1, 0.25f, 6.0f, 0, 1, 112); /* padded plane, wide */
    clip_then_depthwise(2, 4, 9, 9, 3, 2, 1, 0.0f, 1.0f, 0, 2, 113); /* odd plane: padded, split */
    clip_then_depthwise(1, 4, 8, 8, 5, 1, 2, 0.5f, 6.0f, 0, 2, 114); /* 5x5: the generic loops */
    clip_then_depthwise(1, 4, 8, 8, 3, 1, 1, 0.5f, 6.0f, 1, 2, 115); /* t is an output: no move */
}

int test_core_conv_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(depthwise_batches),
        cmocka_unit_test(depthwise_flat_planes),
        cmocka_unit_test(stem_planes),
        cmocka_unit_test(batches_split_by_image),
        cmocka_unit_test(clip_moves_into_depthwise),
        cmocka_unit_test(images_share_a_gemm),
        cmocka_unit_test(images_split_into_chunks),
        cmocka_unit_test(large_planes_run_per_image),
    };
    return cmocka_run_group_tests_name("core_conv", tests, NULL, NULL);
}
