/*
 * Tests of the Winograd F(2x2, 3x3) convolution (src/ops/core_winograd.c) through the public
 * engine API: one-Conv models (with bias, fused Relu, odd sizes, asymmetric and automatic pads,
 * batches, several chunks) run once with KINFER_CONV_ALGO=winograd and once with im2col, and
 * both are checked against a direct convolution in double precision. core_winograd_runs() tells
 * which path each model took, so a silent fallback to im2col fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/engine/onnx_model.h"
#include "../src/ops/core_winograd.h"
#include "onnx_builder.h"

#define F ONNX_DTYPE_FLOAT

typedef struct conv_case {
    int64_t n, c, m, h, w;
    int64_t pads[4];      /* top, left, bottom, right (ONNX order: begins then ends) */
    const char *auto_pad; /* NULL: explicit pads */
    int bias, relu, threads;
} conv_case;

/* Output size and the begin pads the engine will use (auto_pad resolved as ONNX defines it). */
static void geometry(const conv_case *k, int64_t *oh, int64_t *ow, int64_t *pt, int64_t *pl)
{
    if (k->auto_pad) { /* SAME_UPPER or SAME_LOWER: output = input; a total pad of 2 splits 1 + 1 */
        *oh = k->h, *ow = k->w, *pt = *pl = 1;
        return;
    }
    *pt = k->pads[0], *pl = k->pads[1];
    *oh = k->h + k->pads[0] + k->pads[2] - 2;
    *ow = k->w + k->pads[1] + k->pads[3] - 2;
}

static onnx_model *conv_load(const conv_case *k, const float *wt, const float *b, const char *algo)
{
    mb *mb = mb_new(13);
    int64_t xd[4] = {k->n, k->c, k->h, k->w}, wd[4] = {k->m, k->c, 3, 3}, bd[1] = {k->m};
    mb_input(mb, "x", F, 4, xd);
    mb_init_float(mb, "w", 4, wd, wt);
    if (k->bias) mb_init_float(mb, "b", 1, bd, b);
    mb_node *n = mb_add_node(mb, "Conv", k->bias ? "x,w,b" : "x,w", k->relu ? "c" : "y");
    int64_t ks[2] = {3, 3};
    mb_attr_ints(mb, n, "kernel_shape", 2, ks);
    if (k->auto_pad)
        mb_attr_string(mb, n, "auto_pad", k->auto_pad);
    else
        mb_attr_ints(mb, n, "pads", 4, k->pads);
    if (k->relu) mb_add_node(mb, "Relu", "c", "y");
    mb_output(mb, "y", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_options o = {.threads = k->threads};
    onnx_model *m = NULL;
    assert_int_equal(setenv("KINFER_CONV_ALGO", algo, 1), 0);
    kinfer_status *st = onnx_model_load_mem(buf, len, &o, &m);
    unsetenv("KINFER_CONV_ALGO");
    free(buf);
    if (st) fail_msg("load: %s", kinfer_status_msg(st));
    return m;
}

/* Runs k with algo and checks every output against the direct convolution in double, within
 * 1e-5 of the sum of |w x| products (float GEMM rounding, plus Winograd's transforms). Returns
 * the number of Winograd runs it caused. */
static int64_t conv_check(const conv_case *k, const char *algo, unsigned seed)
{
    int64_t oh, ow, pt, pl;
    geometry(k, &oh, &ow, &pt, &pl);
    float *x = mb_rand_floats((size_t)(k->n * k->c * k->h * k->w), seed);
    float *wt = mb_rand_floats((size_t)(k->m * k->c * 9), seed + 1);
    float *b = mb_rand_floats((size_t)k->m, seed + 2);
    onnx_model *m = conv_load(k, wt, b, algo);
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .data = x}, out;
    int64_t d[4] = {k->n, k->c, k->h, k->w};
    memcpy(in.dims, d, sizeof d);
    int64_t before = core_winograd_runs();
    kinfer_status *st = onnx_model_run(m, &in, 1, NULL, &out, 1);
    if (st) fail_msg("run: %s", kinfer_status_msg(st));
    int64_t used = core_winograd_runs() - before;
    assert_int_equal(out.rank, 4);
    assert_int_equal(out.dims[0], k->n);
    assert_int_equal(out.dims[1], k->m);
    assert_int_equal(out.dims[2], oh);
    assert_int_equal(out.dims[3], ow);
    const float *y = out.data;
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t mo = 0; mo < k->m; mo++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = k->bias ? b[mo] : 0.0, mag = fabs(s);
                    for (int64_t ch = 0; ch < k->c; ch++)
                        for (int64_t u = 0; u < 3; u++)
                            for (int64_t v = 0; v < 3; v++) {
                                int64_t ih = i + u - pt, iw = j + v - pl;
                                if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) continue;
                                double p = (double)wt[(mo * k->c + ch) * 9 + u * 3 + v] *
                                           x[((n * k->c + ch) * k->h + ih) * k->w + iw];
                                s += p, mag += fabs(p);
                            }
                    if (k->relu && s < 0) s = 0;
                    double got = y[((n * k->m + mo) * oh + i) * ow + j];
                    if (fabs(got - s) > 1e-5 * mag + 1e-6)
                        fail_msg("%s: y[%lld,%lld,%lld,%lld] = %.7g, direct %.7g", algo,
                                 (long long)n, (long long)mo, (long long)i, (long long)j, got, s);
                }
    onnx_tensor_release(&out);
    onnx_model_free(m);
    free(x), free(wt), free(b);
    return used;
}

/* Every case through both paths; the forced Winograd run must really be Winograd. */
static void check_both(const conv_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(conv_check(&cases[i], "winograd", 11 + (unsigned)i), 1);
        assert_int_equal(conv_check(&cases[i], "im2col", 11 + (unsigned)i), 0);
    }
}

/* Even and odd output sizes (a last tile row or column half outside), 1x1 and 1xN outputs, no
 * padding, asymmetric padding, padding wider than the kernel reaches. */
static void winograd_matches_direct_on_edges(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {1, 3, 5, 8, 8, {1, 1, 1, 1}, NULL, 1, 0, 1},  {1, 4, 7, 7, 9, {1, 1, 1, 1}, NULL, 0, 0, 1},
        {1, 5, 6, 5, 6, {0, 0, 0, 0}, NULL, 1, 0, 1},  {1, 2, 3, 3, 3, {0, 0, 0, 0}, NULL, 1, 1, 1},
        {1, 2, 3, 3, 11, {0, 0, 0, 0}, NULL, 1, 0, 1}, {1, 3, 4, 6, 7, {0, 2, 1, 0}, NULL, 1, 1, 1},
        {1, 3, 4, 4, 5, {3, 2, 2, 3}, NULL, 1, 0, 1},  {1, 2, 1, 9, 4, {1, 0, 0, 1}, NULL, 0, 1, 1},
    };
    check_both(cases, sizeof cases / sizeof cases[0]);
}

/* Batches, two threads (channels and GEMMs split across the pool), fused Relu, auto_pad. */
static void winograd_matches_direct_on_batches(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {3, 6, 9, 10, 13, {1, 1, 1, 1}, NULL, 1, 1, 2},
        {2, 16, 17, 15, 15, {1, 1, 1, 1}, NULL, 1, 0, 2},
        {4, 5, 8, 7, 7, {0, 0, 0, 0}, "SAME_UPPER", 1, 1, 2},
        {2, 5, 8, 6, 9, {0, 0, 0, 0}, "SAME_LOWER", 0, 0, 1},
    };
    check_both(cases, sizeof cases / sizeof cases[0]);
}

/* Large enough that the tiles do not fit one chunk of scratch: 3 images of 11 tile rows split
 * into chunks of 17 rows, so a chunk starts in the middle of the second image. */
static void winograd_matches_direct_across_chunks(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {3, 96, 96, 22, 100, {1, 1, 1, 1}, NULL, 1, 1, 2},
    };
    check_both(cases, sizeof cases / sizeof cases[0]);
}

/* Without KINFER_CONV_ALGO the size decides: a wide layer takes Winograd, one with few tiles or
 * few channels stays with im2col; the results match the direct convolution either way. */
static void auto_choice_depends_on_size(void **state)
{
    (void)state;
    conv_case wide = {1, 32, 32, 28, 28, {1, 1, 1, 1}, NULL, 1, 1, 2};
    conv_case few_tiles = {1, 64, 64, 7, 7, {1, 1, 1, 1}, NULL, 1, 1, 2};
    conv_case few_channels = {1, 3, 16, 32, 32, {1, 1, 1, 1}, NULL, 1, 0, 1};
    assert_int_equal(conv_check(&wide, "", 3), 1);
    assert_int_equal(conv_check(&few_tiles, "", 4), 0);
    assert_int_equal(conv_check(&few_channels, "", 5), 0);
}

/* The weights the first run transforms are the fused ones: Conv + BatchNormalization + Relu
 * through Winograd equals the unfused graph (BatchNormalization then Relu after an im2col Conv). */
static void winograd_uses_fused_weights(void **state)
{
    (void)state;
    onnx_model *ms[2];
    int64_t xd[4] = {2, 8, 12, 12}, wd[4] = {8, 8, 3, 3}, cd[1] = {8}, pads[4] = {1, 1, 1, 1};
    float *wt = mb_rand_floats(8 * 8 * 9, 21), *sc = mb_rand_floats(8, 22),
          *bi = mb_rand_floats(8, 23);
    float *mu = mb_rand_floats(8, 24), *var = mb_rand_floats(8, 25);
    for (int i = 0; i < 8; i++) var[i] = fabsf(var[i]) + 0.5f;
    for (int k = 0; k < 2; k++) {
        mb *b = mb_new(13);
        mb_input(b, "x", F, 4, xd);
        mb_init_float(b, "w", 4, wd, wt);
        mb_init_float(b, "s", 1, cd, sc);
        mb_init_float(b, "bi", 1, cd, bi);
        mb_init_float(b, "mu", 1, cd, mu);
        mb_init_float(b, "var", 1, cd, var);
        mb_node *c = mb_add_node(b, "Conv", "x,w", "c");
        mb_attr_ints(b, c, "pads", 4, pads);
        mb_add_node(b, "BatchNormalization", "c,s,bi,mu,var", "n");
        mb_add_node(b, "Relu", "n", "y");
        mb_output(b, "y", F);
        size_t len;
        void *buf = mb_pack(b, &len);
        mb_free(b);
        onnx_options o = {.threads = 2, .no_optimize = k};
        assert_int_equal(setenv("KINFER_CONV_ALGO", k ? "im2col" : "winograd", 1), 0);
        kinfer_status *st = onnx_model_load_mem(buf, len, &o, &ms[k]);
        unsetenv("KINFER_CONV_ALGO");
        free(buf);
        assert_null(st);
    }
    float *x = mb_rand_floats(2 * 8 * 144, 26);
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .data = x}, out[2];
    memcpy(in.dims, xd, sizeof xd);
    for (int k = 0; k < 2; k++) {
        int64_t before = core_winograd_runs();
        /* twice: the second run reuses the transform the first one built */
        for (int r = 0; r < 2; r++) {
            assert_null(onnx_model_run(ms[k], &in, 1, NULL, &out[k], 1));
            if (!r) onnx_tensor_release(&out[k]);
        }
        assert_int_equal(core_winograd_runs() - before, k ? 0 : 2);
    }
    int positive = 0;
    for (int64_t i = 0; i < 2 * 8 * 144; i++) {
        float a = ((float *)out[0].data)[i], b = ((float *)out[1].data)[i];
        assert_true(fabsf(a - b) <= 1e-4f * (1.0f + fabsf(b)));
        positive += a > 0;
    }
    assert_true(positive > 0);
    for (int k = 0; k < 2; k++) onnx_tensor_release(&out[k]), onnx_model_free(ms[k]);
    free(x), free(wt), free(sc), free(bi), free(mu), free(var);
}

typedef struct race_arg {
    onnx_model *m;
    const onnx_tensor *in;
    const float *want;
    int64_t n;
    int bad;
} race_arg;

static void *race_main(void *v)
{
    race_arg *a = v;
    for (int r = 0; r < 5; r++) {
        onnx_tensor out;
        kinfer_status *st = onnx_model_run(a->m, a->in, 1, NULL, &out, 1);
        if (st) {
            kinfer_status_free(st);
            a->bad++;
            continue;
        }
        if (memcmp(out.data, a->want, sizeof(float) * (size_t)a->n)) a->bad++;
        onnx_tensor_release(&out);
    }
    return NULL;
}

/* Four threads run a freshly loaded model at once, so their first runs race to build the filter
 * transform: one builds it, the others wait on the lock or find it published, and every output
 * is bit-identical to a run of a second, separately loaded model. */
static void concurrent_first_runs_share_the_transform(void **state)
{
    (void)state;
    conv_case k = {2, 16, 24, 20, 20, {1, 1, 1, 1}, NULL, 1, 1, 2};
    float *x = mb_rand_floats(2 * 16 * 400, 71), *wt = mb_rand_floats(24 * 16 * 9, 72),
          *b = mb_rand_floats(24, 73);
    onnx_model *ref = conv_load(&k, wt, b, "winograd"), *m = conv_load(&k, wt, b, "winograd");
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .dims = {2, 16, 20, 20}, .data = x}, want;
    assert_null(onnx_model_run(ref, &in, 1, NULL, &want, 1));
    int64_t before = core_winograd_runs();
    race_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (race_arg){m, &in, want.data, onnx_tensor_numel(&want), 0};
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    assert_int_equal(core_winograd_runs() - before, 20);
    onnx_tensor_release(&want);
    onnx_model_free(m);
    onnx_model_free(ref);
    free(x), free(wt), free(b);
}

int test_core_winograd_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(winograd_matches_direct_on_edges),
        cmocka_unit_test(winograd_matches_direct_on_batches),
        cmocka_unit_test(winograd_matches_direct_across_chunks),
        cmocka_unit_test(auto_choice_depends_on_size),
        cmocka_unit_test(winograd_uses_fused_weights),
        cmocka_unit_test(concurrent_first_runs_share_the_transform),
    };
    return cmocka_run_group_tests_name("core_winograd", tests, NULL, NULL);
}
