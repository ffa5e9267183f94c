/* Request parsing and response encoding: V2 JSON, the binary extension, V1, and their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/protocol/dtype.h"
#include "../src/protocol/infer_request.h"
#include "../src/protocol/infer_response.h"

static const onnx_value_info ins[] = {
    {.name = "x", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {-1, 2}},
    {.name = "ids", .dtype = ONNX_DTYPE_INT64, .rank = 1, .dims = {-1}},
};
static const onnx_value_info outs[] = {
    {.name = "y", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {-1, 2}},
    {.name = "label", .dtype = ONNX_DTYPE_STRING, .rank = 1, .dims = {-1}},
};
static const infer_model_sig sig = {ins, 2, outs, 2};

static kinfer_status *parse(const char *json, req_arena *a, infer_request *r)
{
    return infer_request_parse_v2(json, strlen(json), -1, &sig, a, r);
}

static void v2_json_nested_and_flat(void **state)
{
    (void)state;
    req_arena *a = req_arena_create(1 << 20);
    infer_request r;
    /* inputs out of model order, nested data, id and parameters */
    kinfer_status *st = parse(
        "{\"id\":\"r1\",\"parameters\":{\"timeout\":250,\"other\":[1]},\"inputs\":["
        "{\"name\":\"ids\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[9007199254740993,-4]},"
        "{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[[1,2.5],[\"NaN\",-3]]}],"
        "\"outputs\":[{\"name\":\"label\"},{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]"
        "}",
        a, &r);
    assert_null(st);
    assert_string_equal(r.id, "r1");
    assert_int_equal(r.timeout_us, 250);
    assert_int_equal(r.n_inputs, 2);
    assert_string_equal(r.inputs[0].name, "x"); /* model order, not request order */
    assert_int_equal(r.inputs[0].rank, 2);
    const float *x = r.inputs[0].data;
    assert_true(x[0] == 1.0f && x[1] == 2.5f && x[2] != x[2] && x[3] == -3.0f);
    const int64_t *ids = r.inputs[1].data;
    assert_true(ids[0] == 9007199254740993LL && ids[1] == -4); /* beyond double precision: exact */
    assert_int_equal(r.n_outputs, 2);
    assert_string_equal(r.output_names[0], "label");
    assert_int_equal(r.output_binary[0], 0);
    assert_int_equal(r.output_binary[1], 1);
    req_arena_destroy(a);
}

static void v2_binary_extension(void **state)
{
    (void)state;
    req_arena *a = req_arena_create(1 << 20);
    char body[512];
    const char *hdr = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":8}},"
                      "{\"name\":\"ids\",\"shape\":[1],\"datatype\":\"INT64\",\"parameters\":{"
                      "\"binary_data_size\":8}}],"
                      "\"parameters\":{\"binary_data_output\":true}}";
    size_t hl = strlen(hdr);
    float xv[2] = {0.25f, -8};
    int64_t idv = 77;
    memcpy(body, hdr, hl);
    memcpy(body + hl + 1, xv, 8); /* +1: data at an odd offset must still come out aligned */
    memmove(body + hl, body + hl + 1, 8);
    memcpy(body + hl + 8, &idv, 8);
    infer_request r;
    kinfer_status *st = infer_request_parse_v2(body, hl + 16, (int64_t)hl, &sig, a, &r);
    assert_null(st);
    assert_int_equal(r.binary_output, 1);
    assert_int_equal((uintptr_t)r.inputs[0].data % 16, 0);
    assert_memory_equal(r.inputs[0].data, xv, 8);
    assert_int_equal(*(int64_t *)r.inputs[1].data, 77);
    /* short, long, and a size that does not fit the shape */
    st = infer_request_parse_v2(body, hl + 15, (int64_t)hl, &sig, a, &r);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "runs past the body"));
    kinfer_status_free(st);
    st = infer_request_parse_v2(body, hl + 17, (int64_t)hl, &sig, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "follow the header"));
    kinfer_status_free(st);
    st = infer_request_parse_v2(body, hl + 16, (int64_t)hl + 20, &sig, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "exceeds the body"));
    kinfer_status_free(st);
    req_arena_destroy(a);
}

static void v2_binary_bytes(void **state)
{
    (void)state;
    static const onnx_value_info sin[] = {
        {.name = "s", .dtype = ONNX_DTYPE_STRING, .rank = 1, .dims = {-1}}};
    infer_model_sig ssig = {sin, 1, outs, 2};
    req_arena *a = req_arena_create(1 << 20);
    const char *hdr = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\","
                      "\"parameters\":{\"binary_data_size\":11}}]}";
    char body[256];
    size_t hl = strlen(hdr);
    memcpy(body, hdr, hl);
    memcpy(body + hl, "\x02\0\0\0hi\x01\0\0\0!", 11);
    infer_request r;
    assert_null(infer_request_parse_v2(body, hl + 11, (int64_t)hl, &ssig, a, &r));
    assert_string_equal(((char **)r.inputs[0].data)[0], "hi");
    assert_string_equal(((char **)r.inputs[0].data)[1], "!");
    memcpy(body + hl, "\x09\0\0\0hi\x01\0\0\0!", 11); /* length past the data */
    kinfer_status *st = infer_request_parse_v2(body, hl + 11, (int64_t)hl, &ssig, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "overruns"));
    kinfer_status_free(st);
    req_arena_destroy(a);
}

static void v2_errors_are_precise(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        kinfer_err code;
        const char *fragment;
    } cases[] = {
        {"{\"inputs\":[", KINFER_EINVAL, "malformed JSON"},
        {"{\"inputs\":[]} x", KINFER_EINVAL, "trailing data"},
        {"{\"inputs\":[]}", KINFER_EINVAL, "missing input \"x\""},
        {"{\"inputs\":[{\"name\":\"z\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}",
         KINFER_EINVAL, "unknown input"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP64\",\"data\":[1,2]}]}",
         KINFER_EDTYPE, "expects FP32"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
         KINFER_ESHAPE, "dimension 1"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,-2],\"datatype\":\"FP32\",\"data\":[]}]}",
         KINFER_ESHAPE, "non-negative"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
         KINFER_ESHAPE, "has 3"},
        {"{\"inputs\":[{\"name\":\"ids\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1.5]}]}",
         KINFER_EINVAL, "not a INT64"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]},"
         "{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
         KINFER_EINVAL, "given twice"},
        {"{\"id\":5,\"inputs\":[]}", KINFER_EINVAL, "\"id\" must be a string"},
        {"{\"inputs\":[],\"parameters\":{\"binary_data_output\":1}}", KINFER_EINVAL,
         "must be a boolean"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]},"
         "{\"name\":\"ids\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1]}],"
         "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"classification\":2}}]}",
         KINFER_EUNSUPPORTED, "classification"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[4294967296,4294967296],\"datatype\":\"FP32\","
         "\"data\":[]}]}",
         KINFER_ETOOBIG, "too large"},
    };
    req_arena *a = req_arena_create(1 << 20);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        infer_request r;
        kinfer_status *st = parse(cases[i].json, a, &r);
        if (kinfer_status_code(st) != cases[i].code ||
            !strstr(kinfer_status_msg(st), cases[i].fragment))
            fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, kinfer_status_code(st),
                     kinfer_status_msg(st), cases[i].code, cases[i].fragment);
        assert_null(r.inputs); /* nothing half-parsed is left behind */
        kinfer_status_free(st);
    }
    req_arena_destroy(a);
}

static void v2_integer_ranges(void **state)
{
    (void)state;
    static const onnx_value_info u8[] = {
        {.name = "b", .dtype = ONNX_DTYPE_UINT8, .rank = 1, .dims = {-1}}};
    infer_model_sig s8 = {u8, 1, outs, 2};
    req_arena *a = req_arena_create(1 << 16);
    infer_request r;
    const char *ok =
        "{\"inputs\":[{\"name\":\"b\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":[0,255]}]}";
    assert_null(infer_request_parse_v2(ok, strlen(ok), -1, &s8, a, &r));
    assert_int_equal(((uint8_t *)r.inputs[0].data)[1], 255);
    const char *bad =
        "{\"inputs\":[{\"name\":\"b\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":[0,256]}]}";
    kinfer_status *st = infer_request_parse_v2(bad, strlen(bad), -1, &s8, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "out of range"));
    kinfer_status_free(st);
    req_arena_destroy(a);
}

static void arena_cap_is_enforced(void **state)
{
    (void)state;
    req_arena *a = req_arena_create(256);
    infer_request r;
    char json[4096];
    int n = snprintf(
        json, sizeof(json),
        "{\"inputs\":[{\"name\":\"ids\",\"shape\":[100],\"datatype\":\"INT64\",\"data\":[");
    for (int i = 0; i < 100; i++)
        n += snprintf(json + n, sizeof(json) - (size_t)n, i ? ",%d" : "%d", i);
    snprintf(json + n, sizeof(json) - (size_t)n, "]}]}");
    kinfer_status *st = parse(json, a, &r);
    assert_int_equal(kinfer_status_code(st), KINFER_ETOOBIG);
    kinfer_status_free(st);
    req_arena_destroy(a);
}

static void v1_rows_and_named(void **state)
{
    (void)state;
    static const onnx_value_info one[] = {
        {.name = "x", .dtype = ONNX_DTYPE_FLOAT, .rank = 3, .dims = {-1, 2, 2}}};
    infer_model_sig s1 = {one, 1, outs, 2};
    req_arena *a = req_arena_create(1 << 16);
    infer_request r;
    const char *rows = "{\"instances\":[[[1,2],[3,4]],[[5,6],[7,8]]]}";
    assert_null(infer_request_parse_v1(rows, strlen(rows), &s1, a, &r));
    assert_int_equal(r.inputs[0].rank, 3);
    assert_int_equal(r.inputs[0].dims[0], 2);
    assert_true(((float *)r.inputs[0].data)[7] == 8.0f);
    const char *ragged = "{\"instances\":[[[1,2],[3,4]],[[5,6],[7]]]}";
    kinfer_status *st = infer_request_parse_v1(ragged, strlen(ragged), &s1, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "different shapes"));
    kinfer_status_free(st);
    const char *named = "{\"instances\":[{\"x\":[1,2],\"ids\":3},{\"x\":[4,5],\"ids\":6}]}";
    assert_null(infer_request_parse_v1(named, strlen(named), &sig, a, &r));
    assert_int_equal(r.inputs[1].rank, 1);
    assert_int_equal(((int64_t *)r.inputs[1].data)[1], 6);
    const char *extra = "{\"instances\":[{\"x\":[1,2],\"ids\":3,\"q\":1}]}";
    st = infer_request_parse_v1(extra, strlen(extra), &sig, a, &r);
    assert_non_null(strstr(kinfer_status_msg(st), "unknown input \"q\""));
    kinfer_status_free(st);
    req_arena_destroy(a);
}

static void response_v2_json_and_binary(void **state)
{
    (void)state;
    float y[4] = {1, 0.5f, -2, 3e38f};
    const char *labels[2] = {"cat", "d\"og"};
    onnx_tensor t[2] = {
        {.name = "y", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {2, 2}, .data = y},
        {.name = "label",
         .dtype = ONNX_DTYPE_STRING,
         .rank = 1,
         .dims = {2},
         .data = (void *)labels},
    };
    pbuf b;
    pbuf_init(&b, 0, 1 << 20);
    size_t jl = 99;
    assert_null(infer_response_encode_v2(&b, "m", "1", "id\n", t, NULL, 2, &jl));
    assert_int_equal(jl, 0);
    pbuf_addc(&b, 0);
    assert_string_equal(
        pbuf_data(&b),
        "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"id\\n\",\"outputs\":["
        "{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[1.0,0.5,-2.0,3.00000001e+"
        "38]},"
        "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"cat\",\"d\\\"og\"]}]"
        "}");
    pbuf_reset(&b);
    int bin[2] = {1, 1};
    assert_null(infer_response_encode_v2(&b, "m", "1", NULL, t, bin, 2, &jl));
    assert_int_equal(b.len, jl + 16 + 4 + 3 + 4 + 4);
    assert_memory_equal(pbuf_data(&b) + jl, y, 16);
    assert_memory_equal(pbuf_data(&b) + jl + 16, "\x03\0\0\0cat\x04\0\0\0d\"og", 15);
    assert_non_null(strstr(pbuf_data(&b), "\"binary_data_size\":16"));
    pbuf_reset(&b);
    assert_null(infer_response_encode_v1(&b, t, 1));
    pbuf_addc(&b, 0);
    assert_string_equal(pbuf_data(&b), "{\"predictions\":[[1.0,0.5],[-2.0,3.00000001e+38]]}");
    pbuf_free(&b);
    pbuf_init(&b, 0, 16); /* over the cap: a status, not a truncated body */
    kinfer_status *st = infer_response_encode_v2(&b, "m", "1", NULL, t, NULL, 2, &jl);
    assert_int_equal(kinfer_status_code(st), KINFER_ETOOBIG);
    kinfer_status_free(st);
    pbuf_free(&b);
}

static void response_v2_zipmap_keys_with_and_without_binary(void **state)
{
    (void)state;
    float probs[4] = {0.25f, 0.75f, 1, 0};
    int64_t keys[2] = {3, 7};
    onnx_tensor k = {.dtype = ONNX_DTYPE_INT64, .rank = 1, .dims = {2}, .data = keys};
    onnx_tensor t = {.name = "p",
                     .kind = ONNX_VALUE_SEQ_MAP,
                     .dtype = ONNX_DTYPE_FLOAT,
                     .rank = 2,
                     .dims = {2, 2},
                     .data = probs,
                     .keys = &k};
    pbuf b;
    pbuf_init(&b, 0, 1 << 20);
    size_t jl = 99;
    assert_null(infer_response_encode_v2(&b, "m", "1", NULL, &t, NULL, 1, &jl));
    pbuf_addc(&b, 0);
    assert_string_equal(pbuf_data(&b),
                        "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":["
                        "{\"name\":\"p\",\"datatype\":\"FP32\",\"shape\":[2,2],"
                        "\"parameters\":{\"keys\":[3,7]},\"data\":[0.25,0.75,1.0,0.0]}]}");
    /* Binary: the keys and the binary size share one parameters object (a second "parameters"
     * member would make most JSON parsers drop the keys). */
    pbuf_reset(&b);
    int bin[1] = {1};
    assert_null(infer_response_encode_v2(&b, "m", "1", NULL, &t, bin, 1, &jl));
    assert_int_equal(b.len, jl + sizeof(probs));
    char *json = strndup(pbuf_data(&b), jl);
    assert_non_null(strstr(json, "\"parameters\":{\"keys\":[3,7],\"binary_data_size\":16}}"));
    assert_null(strstr(strstr(json, "\"parameters\"") + 1, "\"parameters\""));
    free(json);
    pbuf_free(&b);
}

static void fp16_round_trip(void **state)
{
    (void)state;
    float vals[] = {0, 1, -2.5f, 65504, 6.1035156e-05f, 5.9604645e-08f};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        assert_true(proto_float_from_half(proto_half_from_float(vals[i])) == vals[i]);
    assert_int_equal(proto_half_from_float(1e6f), 0x7c00);
    assert_int_equal(proto_dtype_from_name("FP32", 4), ONNX_DTYPE_FLOAT);
    assert_int_equal(proto_dtype_from_name("fp32", 4), ONNX_DTYPE_UNDEFINED);
}

int test_infer_request_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v2_json_nested_and_flat),
        cmocka_unit_test(v2_binary_extension),
        cmocka_unit_test(v2_binary_bytes),
        cmocka_unit_test(v2_errors_are_precise),
        cmocka_unit_test(v2_integer_ranges),
        cmocka_unit_test(arena_cap_is_enforced),
        cmocka_unit_test(v1_rows_and_named),
        cmocka_unit_test(response_v2_json_and_binary),
        cmocka_unit_test(fp16_round_trip),
        cmocka_unit_test(response_v2_zipmap_keys_with_and_without_binary),
    };
    return cmocka_run_group_tests_name("infer_request", tests, NULL, NULL);
}
