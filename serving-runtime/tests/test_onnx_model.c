/*
 * Tests of the engine's public API (onnx_model.h): bad models get precise statuses, bad inputs at
 * run time are rejected by name, intermediate buffers are reused, fusions keep results, one model
 * serves several batch sizes and concurrent callers with identical results.
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
#include <unistd.h>

#include "../src/engine/onnx_debug.h"
#include "../src/engine/onnx_model.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_builder.h"

#define F ONNX_DTYPE_FLOAT

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) v[i] = frand(&seed);
}

/* x[N,16] -> MatMul W1[16,32] + b1 -> Relu -> MatMul W2[32,4] + b2 -> Softmax */
static void *mlp_model(size_t *len)
{
    mb *b = mb_new(13);
    int64_t din[2] = {-1, 16}, w1d[2] = {16, 32}, b1d[1] = {32}, w2d[2] = {32, 4}, b2d[1] = {4};
    float w1[16 * 32], b1[32], w2[32 * 4], b2[4];
    fill(w1, 16 * 32, 1), fill(b1, 32, 2), fill(w2, 32 * 4, 3), fill(b2, 4, 4);
    mb_input(b, "x", F, 2, din);
    mb_init_float(b, "W1", 2, w1d, w1);
    mb_init_float(b, "b1", 1, b1d, b1);
    mb_init_float(b, "W2", 2, w2d, w2);
    mb_init_float(b, "b2", 1, b2d, b2);
    mb_add_node(b, "MatMul", "x,W1", "h0");
    mb_add_node(b, "Add", "h0,b1", "h1");
    mb_add_node(b, "Relu", "h1", "h2");
    mb_add_node(b, "MatMul", "h2,W2", "h3");
    mb_add_node(b, "Add", "h3,b2", "h4");
    mb_add_node(b, "Softmax", "h4", "y");
    mb_output(b, "y", F);
    void *buf = mb_pack(b, len);
    mb_free(b);
    return buf;
}

static kinfer_status *load(void *buf, size_t len, int no_opt, onnx_model **m)
{
    onnx_options o = {.threads = 2, .no_optimize = no_opt};
    kinfer_status *st = onnx_model_load_mem(buf, len, &o, m);
    free(buf);
    return st;
}

static kinfer_status *load_mlp(int no_opt, onnx_model **m)
{
    size_t len;
    void *buf = mlp_model(&len);
    return load(buf, len, no_opt, m);
}

static void expect_load_error(void *buf, size_t len, kinfer_err code, const char *needle)
{
    onnx_model *m = (onnx_model *)1;
    kinfer_status *st = load(buf, len, 0, &m);
    assert_non_null(st);
    assert_null(m);
    assert_int_equal(kinfer_status_code(st), code);
    if (!strstr(kinfer_status_msg(st), needle))
        fail_msg("status '%s' lacks '%s'", kinfer_status_msg(st), needle);
    kinfer_status_free(st);
}

static void truncated_model_is_rejected(void **state)
{
    (void)state;
    size_t len;
    void *full = mlp_model(&len);
    int rejected = 0, cuts = 0;
    for (size_t cut = 0; cut < len; cut += 7) {
        onnx_model *m = NULL;
        onnx_options o = {.threads = 1};
        kinfer_status *st = onnx_model_load_mem(full, cut, &o, &m);
        cuts++;
        /* A cut on a field boundary can parse; it must then fail validation, not load a wrong
         * model. */
        if (st) rejected++;
        onnx_model_free(m);
        kinfer_status_free(st);
    }
    free(full);
    assert_int_equal(rejected, cuts);
}

static void corrupt_bytes_never_crash(void **state)
{
    (void)state;
    size_t len;
    void *full = mlp_model(&len);
    unsigned char *buf = malloc(len);
    int loaded = 0, errors = 0;
    for (size_t pos = 0; pos < len; pos += 3) {
        memcpy(buf, full, len);
        buf[pos] ^= 0xA5;
        onnx_model *m = NULL;
        onnx_options o = {.threads = 1};
        kinfer_status *st = onnx_model_load_mem(buf, len, &o, &m);
        if (st) {
            kinfer_err c = kinfer_status_code(st);
            assert_true(c == KINFER_EMODEL || c == KINFER_EUNSUPPORTED || c == KINFER_ESHAPE ||
                        c == KINFER_ETOOBIG || c == KINFER_EINVAL);
            errors++;
        } else {
            loaded++;
        }
        onnx_model_free(m);
        kinfer_status_free(st);
    }
    free(buf);
    free(full);
    assert_true(errors > 0);
    assert_int_equal(loaded + errors, (int)((len + 2) / 3));
}

static void unknown_operator_is_named(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {4};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "FrobnicateV2", "x", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EUNSUPPORTED, "unsupported operator FrobnicateV2");
}

static void unknown_opset_is_rejected(void **state)
{
    (void)state;
    mb *b = mb_new(99);
    int64_t d[1] = {4};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "Relu", "x", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EUNSUPPORTED, "opset 99");
}

static void type_mismatch_names_the_node(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {2};
    int64_t k[2] = {1, 2};
    mb_input(b, "x", F, 1, d);
    mb_init_int64(b, "k", 1, d, k);
    mb_add_node(b, "Add", "x,k", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EMODEL, "node Add_0 (Add): input 1 is int64");
}

static void declared_output_type_is_checked(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {2};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "Relu", "x", "y");
    mb_output(b, "y", ONNX_DTYPE_INT64);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EMODEL, "declared int64 but computes float");
}

static void cycle_is_rejected(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {2};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "Add", "x,b", "a");
    mb_add_node(b, "Relu", "a", "b");
    mb_output(b, "b", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EMODEL, "cycle");
}

static void undefined_input_is_named(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {2};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "Add", "x,ghost", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EMODEL, "input 'ghost' is not defined");
}

static void wrong_arity_is_rejected(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {2};
    mb_input(b, "x", F, 1, d);
    mb_add_node(b, "Relu", "x,x", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    expect_load_error(buf, len, KINFER_EMODEL, "2 inputs, expected 1..1");
}

/* Initializer dims that disagree with its data: rewritten after building, as a hostile file would.
 */
static void bad_initializer_length_is_rejected(void **state)
{
    (void)state;
    const int64_t claims[2] = {5, (int64_t)1 << 40};
    const char *needle[2] = {"raw_data has 16 bytes, dims need 20", "too many elements"};
    for (int k = 0; k < 2; k++) {
        mb *b = mb_new(13);
        int64_t d[1] = {4};
        float w[4] = {0};
        mb_input(b, "x", F, 1, d);
        mb_init_float(b, "w", 1, d, w);
        mb_add_node(b, "Add", "x,w", "y");
        mb_output(b, "y", F);
        size_t len;
        void *buf = mb_pack(b, &len);
        mb_free(b);
        Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
        free(buf);
        mp->graph->initializer[0]->dims[0] = claims[k];
        len = onnx__model_proto__get_packed_size(mp);
        buf = malloc(len);
        onnx__model_proto__pack(mp, buf);
        onnx__model_proto__free_unpacked(mp, NULL);
        expect_load_error(buf, len, k ? KINFER_ETOOBIG : KINFER_EMODEL, needle[k]);
    }
}

static onnx_tensor tensor_f(const char *name, int rank, const int64_t *dims, float *data)
{
    onnx_tensor t = {.name = name, .dtype = F, .rank = rank, .data = data};
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    return t;
}

/* Runs a loaded x[N,16] model on one fixed row; the caller frees y. */
static void run_row(onnx_model *m, onnx_tensor *y)
{
    float x[16];
    fill(x, 16, 9);
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 2, .dims = {1, 16}, .data = x};
    assert_null(onnx_model_run(m, &in, 1, NULL, y, 1));
}

static void assert_same_output(onnx_model *a, onnx_model *b)
{
    onnx_tensor ya, yb;
    run_row(a, &ya);
    run_row(b, &yb);
    assert_int_equal(onnx_tensor_numel(&ya), onnx_tensor_numel(&yb));
    assert_memory_equal(ya.data, yb.data, (size_t)onnx_tensor_numel(&ya) * sizeof(float));
    onnx_tensor_release(&ya);
    onnx_tensor_release(&yb);
}

/* The loader cuts initializers out of the model's bytes itself: a graph given as two `graph`
 * fields (which protobuf merges) must load as the one graph, initializers from both halves. */
static void two_graph_fields_merge(void **state)
{
    (void)state;
    size_t len;
    void *full = mlp_model(&len);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, full);
    assert_non_null(mp);
    Onnx__GraphProto *g = mp->graph;
    assert_int_equal(g->n_initializer, 4);
    Onnx__GraphProto tail = ONNX__GRAPH_PROTO__INIT;
    tail.n_initializer = 2;
    tail.initializer = g->initializer + 2;
    g->n_initializer = 2; /* the first half keeps W1, b1 and everything else */
    size_t la = onnx__model_proto__get_packed_size(mp),
           lt = onnx__graph_proto__get_packed_size(&tail);
    unsigned char *two = malloc(la + lt + 16);
    onnx__model_proto__pack(mp, two);
    size_t n = la;
    two[n++] = 0x3A; /* field 7 (graph), length-delimited */
    for (size_t v = lt;; v >>= 7) {
        two[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    onnx__graph_proto__pack(&tail, two + n);
    n += lt;
    g->n_initializer = 4;
    onnx__model_proto__free_unpacked(mp, NULL);
    onnx_model *a = NULL, *b = NULL;
    assert_null(load(full, len, 0, &a));
    assert_null(load(two, n, 0, &b));
    assert_same_output(a, b);
    onnx_model_free(a);
    onnx_model_free(b);
}

static void bad_framing_is_named(void **state)
{
    (void)state;
    unsigned char cut[] = {0x3A, 0x05, 0x01}; /* graph field claims 5 bytes, has 1 */
    unsigned char *b = malloc(sizeof cut);
    memcpy(b, cut, sizeof cut);
    expect_load_error(b, sizeof cut, KINFER_EMODEL, "field 7 of ModelProto is truncated");
    unsigned char group[] = {0x3A, 0x02, 0x0B, 0x0C}; /* a group (wire type 3) inside the graph */
    b = malloc(sizeof group);
    memcpy(b, group, sizeof group);
    expect_load_error(b, sizeof group, KINFER_EMODEL, "field 1 of GraphProto has wire type 3");
    /* opset_import {version: 13}, then a graph whose initializer 0 holds a string cut short */
    unsigned char bad_init[] = {0x42, 0x02, 0x10, 0x0D, 0x3A, 0x03, 0x2A, 0x01, 0x0A};
    b = malloc(sizeof bad_init);
    memcpy(b, bad_init, sizeof bad_init);
    expect_load_error(b, sizeof bad_init, KINFER_EMODEL,
                      "initializer 0 is not a valid TensorProto");
}

/* load_file maps the file and drops each initializer's pages once converted: the weights (here
 * 1 MB, many pages) must still be the file's, as load_mem reads them. */
static void file_load_matches_memory_load(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t din[2] = {-1, 16}, wd[2] = {16, 16384}, w2d[2] = {16384, 4};
    float *w = mb_rand_floats(16 * 16384, 5), *w2 = mb_rand_floats(16384 * 4, 6);
    mb_input(b, "x", F, 2, din);
    mb_init_float(b, "W", 2, wd, w);
    mb_init_float(b, "W2", 2, w2d, w2);
    mb_add_node(b, "MatMul", "x,W", "h");
    mb_add_node(b, "MatMul", "h,W2", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    free(w);
    free(w2);
    char path[] = "/tmp/kinfer-model-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    onnx_model *a = NULL, *f = NULL;
    onnx_options o = {.threads = 1};
    assert_null(onnx_model_load_file(path, &o, &f));
    unlink(path);
    assert_null(load(buf, len, 0, &a));
    assert_same_output(a, f);
    onnx_model_free(a);
    onnx_model_free(f);
}

static void run_rejects_wrong_inputs(void **state)
{
    (void)state;
    onnx_model *m;
    assert_null(load_mlp(0, &m));
    float x[2 * 17] = {0};
    onnx_tensor out[1];
    int64_t bad_dim[2] = {2, 17}, ok[2] = {2, 16}, r3[3] = {1, 2, 16};
    onnx_tensor in = tensor_f("x", 2, bad_dim, x);
    kinfer_status *st = onnx_model_run(m, &in, 1, NULL, out, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_ESHAPE);
    assert_non_null(strstr(kinfer_status_msg(st), "input 'x': dim 1 is 17"));
    kinfer_status_free(st);
    in = tensor_f("x", 3, r3, x);
    st = onnx_model_run(m, &in, 1, NULL, out, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_ESHAPE);
    kinfer_status_free(st);
    in = tensor_f("x", 2, ok, x);
    in.dtype = ONNX_DTYPE_DOUBLE;
    st = onnx_model_run(m, &in, 1, NULL, out, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_EDTYPE);
    assert_non_null(strstr(kinfer_status_msg(st), "input 'x'"));
    kinfer_status_free(st);
    in = tensor_f("nope", 2, ok, x);
    st = onnx_model_run(m, &in, 1, NULL, out, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
    st = onnx_model_run(m, NULL, 0, NULL, out, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "input 'x' is missing"));
    kinfer_status_free(st);
    onnx_model_free(m);
}

static void describe_reports_symbolic_batch(void **state)
{
    (void)state;
    onnx_model *m;
    assert_null(load_mlp(0, &m));
    assert_int_equal(onnx_model_num_inputs(m), 1);
    const onnx_value_info *vi = onnx_model_input(m, 0);
    assert_string_equal(vi->name, "x");
    assert_int_equal(vi->rank, 2);
    assert_int_equal(vi->dims[0], -1);
    assert_string_equal(vi->dim_params[0], "N");
    assert_int_equal(vi->dims[1], 16);
    assert_int_equal(onnx_model_output(m, 0)->dtype, F);
    assert_null(onnx_model_input(m, 1));
    onnx_model_free(m);
}

/* The same model, optimized (MatMul+Add+Relu fused) or not, any batch size: same numbers. */
static void fusion_and_batches_agree(void **state)
{
    (void)state;
    onnx_model *opt, *ref;
    assert_null(load_mlp(0, &opt));
    assert_null(load_mlp(1, &ref));
    assert_true(onnx_model_nodes_removed(opt) >= 3); /* two Adds and a Relu fused */
    assert_int_equal(onnx_model_plan_size(ref), 6);
    for (int64_t n = 1; n <= 9; n += 4) {
        float *x = malloc(sizeof(float) * (size_t)n * 16);
        fill(x, (size_t)n * 16, (unsigned)n);
        int64_t d[2] = {n, 16};
        onnx_tensor in = tensor_f("x", 2, d, x), a, b;
        assert_null(onnx_model_run(opt, &in, 1, NULL, &a, 1));
        assert_null(onnx_model_run(ref, &in, 1, NULL, &b, 1));
        assert_int_equal(a.rank, 2);
        assert_int_equal(a.dims[0], n);
        assert_int_equal(a.dims[1], 4);
        for (int64_t i = 0; i < n * 4; i++)
            assert_float_equal(((float *)a.data)[i], ((float *)b.data)[i], 1e-5);
        float s = 0;
        for (int i = 0; i < 4; i++) s += ((float *)a.data)[i];
        assert_float_equal(s, 1.0f, 1e-5);
        onnx_tensor_release(&a);
        onnx_tensor_release(&b);
        free(x);
    }
    onnx_model_free(opt);
    onnx_model_free(ref);
}

/* Conv -> BatchNormalization -> Relu fuses into one Conv with the same output. */
static void conv_bn_relu_fuses(void **state)
{
    (void)state;
    void *bufs[2];
    size_t len;
    for (int k = 0; k < 2; k++) {
        mb *b = mb_new(13);
        int64_t xd[4] = {-1, 3, 8, 8}, wd[4] = {4, 3, 3, 3}, cd[1] = {4};
        float w[4 * 27], s[4], bi[4], mu[4], var[4];
        fill(w, 108, 9), fill(s, 4, 10), fill(bi, 4, 11), fill(mu, 4, 12), fill(var, 4, 13);
        for (int i = 0; i < 4; i++) var[i] = fabsf(var[i]) + 0.5f;
        mb_input(b, "x", F, 4, xd);
        mb_init_float(b, "w", 4, wd, w);
        mb_init_float(b, "s", 1, cd, s);
        mb_init_float(b, "bi", 1, cd, bi);
        mb_init_float(b, "mu", 1, cd, mu);
        mb_init_float(b, "var", 1, cd, var);
        mb_node *c = mb_add_node(b, "Conv", "x,w", "c");
        int64_t pads[4] = {1, 1, 1, 1};
        mb_attr_ints(b, c, "pads", 4, pads);
        mb_add_node(b, "BatchNormalization", "c,s,bi,mu,var", "n");
        mb_add_node(b, "Relu", "n", "y");
        mb_output(b, "y", F);
        bufs[k] = mb_pack(b, &len);
        mb_free(b);
    }
    onnx_model *opt, *ref;
    assert_null(load(bufs[0], len, 0, &opt));
    assert_null(load(bufs[1], len, 1, &ref));
    assert_int_equal(onnx_model_plan_size(opt), 1);
    assert_int_equal(onnx_model_plan_size(ref), 3);
    float x[2 * 3 * 64];
    fill(x, sizeof x / sizeof x[0], 5);
    int64_t d[4] = {2, 3, 8, 8};
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 4, .data = x}, a, b;
    memcpy(in.dims, d, sizeof d);
    assert_null(onnx_model_run(opt, &in, 1, NULL, &a, 1));
    assert_null(onnx_model_run(ref, &in, 1, NULL, &b, 1));
    assert_int_equal(onnx_tensor_numel(&a), 2 * 4 * 64);
    int positive = 0;
    for (int64_t i = 0; i < onnx_tensor_numel(&a); i++) {
        assert_float_equal(((float *)a.data)[i], ((float *)b.data)[i], 1e-4);
        positive += ((float *)a.data)[i] > 0;
    }
    assert_true(positive > 0);
    onnx_tensor_release(&a);
    onnx_tensor_release(&b);
    onnx_model_free(opt);
    onnx_model_free(ref);
}

/* A chain of 24 elementwise nodes: with liveness only ~2 buffers are live at any time. */
static void intermediate_buffers_are_reused(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[2] = {-1, 256};
    mb_input(b, "x", F, 2, d);
    char in[32] = "x", out[32];
    for (int i = 0; i < 24; i++) {
        snprintf(out, sizeof out, "t%d", i);
        mb_add_node(b, i % 2 ? "Relu" : "Neg", in, i == 23 ? "y" : out);
        snprintf(in, sizeof in, "%s", out);
    }
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    onnx_model *m;
    assert_null(load(buf, len, 1, &m));
    float *x = calloc(64 * 256, sizeof(float));
    int64_t xd[2] = {64, 256};
    onnx_tensor tin = tensor_f("x", 2, xd, x), y;
    onnx_run_stats st;
    for (int run = 0; run < 2; run++) {
        assert_null(onnx_model_run(m, &tin, 1, NULL, &y, 1));
        onnx_tensor_release(&y);
        onnx_model_last_run_stats(m, &st);
        assert_int_equal(st.intermediate_bytes, 23 * 64 * 256 * sizeof(float));
        assert_true(st.arena_peak <= 2 * 64 * 256 * sizeof(float));
        if (run == 1)
            assert_int_equal(st.arena_overflow, 0); /* warm run: no malloc for intermediates */
    }
    free(x);
    onnx_model_free(m);
}

/* Reshape and Flatten hand on their input's storage instead of copying it. */
static void reshapes_alias_their_input(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[2] = {-1, 8}, sd[1] = {3}, shape[3] = {0, 2, 4};
    mb_input(b, "x", F, 2, d);
    mb_init_int64(b, "shape", 1, sd, shape);
    mb_add_node(b, "Neg", "x", "n");
    mb_add_node(b, "Reshape", "n,shape", "r");
    mb_add_node(b, "Relu", "r", "a");
    mb_add_node(b, "Flatten", "a", "f");
    mb_add_node(b, "Neg", "f", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    onnx_model *m;
    assert_null(load(buf, len, 1, &m));
    float x[3 * 8];
    for (int i = 0; i < 24; i++) x[i] = (float)(i - 12);
    int64_t xd[2] = {3, 8};
    onnx_tensor in = tensor_f("x", 2, xd, x), y;
    assert_null(onnx_model_run(m, &in, 1, NULL, &y, 1));
    assert_int_equal(y.rank, 2);
    assert_int_equal(y.dims[0], 3);
    assert_int_equal(y.dims[1], 8);
    for (int i = 0; i < 24; i++)
        assert_float_equal(((float *)y.data)[i], x[i] < 0 ? x[i] : 0.0f, 0);
    onnx_tensor_release(&y);
    onnx_run_stats st;
    onnx_model_last_run_stats(m, &st);
    /* Only the two Neg/Relu results are real buffers (each 128 bytes, 64-byte aligned). */
    assert_int_equal(st.intermediate_bytes, 2 * 128);
    onnx_model_free(m);
}

/* A shape computed at run time that would overflow or exhaust memory is an error, not a
 * wrapped-around small buffer. */
static void huge_runtime_shape_is_refused(void **state)
{
    (void)state;
    mb *b = mb_new(13);
    int64_t d[1] = {1}, sd[1] = {2}, shape[2] = {(int64_t)1 << 32, (int64_t)1 << 32};
    mb_input(b, "x", F, 1, d);
    mb_init_int64(b, "shape", 1, sd, shape);
    mb_add_node(b, "Expand", "x,shape", "e");
    mb_add_node(b, "Neg", "e", "y");
    mb_output(b, "y", F);
    size_t len;
    void *buf = mb_pack(b, &len);
    mb_free(b);
    onnx_model *m;
    assert_null(load(buf, len, 0, &m));
    float x[1] = {1};
    onnx_tensor in = tensor_f("x", 1, d, x), y;
    kinfer_status *st = onnx_model_run(m, &in, 1, NULL, &y, 1);
    assert_int_equal(kinfer_status_code(st), KINFER_ETOOBIG);
    assert_non_null(strstr(kinfer_status_msg(st), "node Expand_0 (Expand)"));
    kinfer_status_free(st);
    onnx_model_free(m);
}

typedef struct conc_arg {
    onnx_model *m;
    const float *x;
    float (*want)[16 * 4]; /* want[n - 1]: the outputs of a batch of the first n rows, run alone */
    int ok;
} conc_arg;

static void *conc_main(void *v)
{
    conc_arg *a = v;
    a->ok = 1;
    for (int it = 0; it < 40; it++) {
        int64_t n = 1 + it % 16;
        int64_t d[2] = {n, 16};
        onnx_tensor in = tensor_f("x", 2, d, (float *)a->x), y;
        kinfer_status *st = onnx_model_run(a->m, &in, 1, NULL, &y, 1);
        if (st || y.dims[0] != n || memcmp(y.data, a->want[n - 1], (size_t)n * 4 * sizeof(float)))
            a->ok = 0;
        kinfer_status_free(st);
        onnx_tensor_release(&y);
    }
    return NULL;
}

static void concurrent_runs_agree(void **state)
{
    (void)state;
    onnx_model *m;
    assert_null(load_mlp(0, &m));
    float x[16 * 16];
    fill(x, 256, 77);
    int64_t d[2] = {16, 16};
    /* Each batch size's outputs, run on one thread: concurrent runs of the same batch must match
     * them bit for bit. (Across batch sizes they need not: GEMM kernels block differently for
     * different row counts, and OpenBLAS picks them by CPU.) */
    static float want[16][16 * 4];
    for (int64_t n = 1; n <= 16; n++) {
        d[0] = n;
        onnx_tensor in = tensor_f("x", 2, d, x), y;
        assert_null(onnx_model_run(m, &in, 1, NULL, &y, 1));
        memcpy(want[n - 1], y.data, (size_t)n * 4 * sizeof(float));
        onnx_tensor_release(&y);
    }
    conc_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (conc_arg){m, x, want, 0};
        assert_int_equal(pthread_create(&th[i], NULL, conc_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].ok);
    }
    onnx_model_free(m);
}

static void external_data_is_confined(void **state)
{
    (void)state;
    char dir[] = "/tmp/kinfer-ext-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/w.bin", dir);
    float w[4] = {1, 2, 3, 4};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(w, sizeof w, 1, f), 1);
    fclose(f);
    for (int bad = 0; bad < 2; bad++) {
        mb *b = mb_new(13);
        int64_t d[1] = {4};
        mb_input(b, "x", F, 1, d);
        mb_init_float(b, "w", 1, d, w);
        mb_add_node(b, "Add", "x,w", "y");
        mb_output(b, "y", F);
        size_t len;
        void *buf = mb_pack(b, &len);
        mb_free(b);
        /* Rewrite the initializer as external data with the engine's own generated code. */
        Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
        free(buf);
        Onnx__TensorProto *t = mp->graph->initializer[0];
        t->has_raw_data = 0;
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT, *ep = &e;
        e.key = "location";
        e.value = bad ? "../w.bin" : "w.bin";
        t->n_external_data = 1;
        t->external_data = &ep;
        len = onnx__model_proto__get_packed_size(mp);
        buf = malloc(len);
        onnx__model_proto__pack(mp, buf);
        t->n_external_data = 0;
        t->external_data = NULL;
        onnx__model_proto__free_unpacked(mp, NULL);
        onnx_options o = {.threads = 1, .external_data_dir = dir};
        onnx_model *m = NULL;
        kinfer_status *st = onnx_model_load_mem(buf, len, &o, &m);
        free(buf);
        if (bad) {
            assert_int_equal(kinfer_status_code(st), KINFER_EMODEL);
            assert_non_null(strstr(kinfer_status_msg(st), "leaves the model directory"));
        } else {
            assert_null(st);
            float x[4] = {0};
            onnx_tensor in = {.name = "x", .dtype = F, .rank = 1, .dims = {4}, .data = x}, y;
            assert_null(onnx_model_run(m, &in, 1, NULL, &y, 1));
            assert_float_equal(((float *)y.data)[3], 4.0f, 0);
            onnx_tensor_release(&y);
        }
        kinfer_status_free(st);
        onnx_model_free(m);
    }
    unlink(path);
    rmdir(dir);
}

int test_onnx_model_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(truncated_model_is_rejected),
        cmocka_unit_test(corrupt_bytes_never_crash),
        cmocka_unit_test(two_graph_fields_merge),
        cmocka_unit_test(bad_framing_is_named),
        cmocka_unit_test(file_load_matches_memory_load),
        cmocka_unit_test(unknown_operator_is_named),
        cmocka_unit_test(unknown_opset_is_rejected),
        cmocka_unit_test(type_mismatch_names_the_node),
        cmocka_unit_test(declared_output_type_is_checked),
        cmocka_unit_test(cycle_is_rejected),
        cmocka_unit_test(undefined_input_is_named),
        cmocka_unit_test(wrong_arity_is_rejected),
        cmocka_unit_test(bad_initializer_length_is_rejected),
        cmocka_unit_test(run_rejects_wrong_inputs),
        cmocka_unit_test(describe_reports_symbolic_batch),
        cmocka_unit_test(fusion_and_batches_agree),
        cmocka_unit_test(conv_bn_relu_fuses),
        cmocka_unit_test(intermediate_buffers_are_reused),
        cmocka_unit_test(reshapes_alias_their_input),
        cmocka_unit_test(huge_runtime_shape_is_refused),
        cmocka_unit_test(concurrent_runs_agree),
        cmocka_unit_test(external_data_is_confined),
    };
    return cmocka_run_group_tests_name("onnx_model", tests, NULL, NULL);
}
