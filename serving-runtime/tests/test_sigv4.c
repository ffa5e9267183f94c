/*
 * SigV4 against AWS's published examples: the S3 "GET Object" and "GET Bucket (List Objects)"
 * examples of the S3 Signature Version 4 documentation (examplebucket, AKIAIOSFODNN7EXAMPLE,
 * 20130524T000000Z), and get-vanilla of the AWS SigV4 test suite (AKIDEXAMPLE, 20150830T123600Z).
 * The expected canonical request, string to sign and signatures are copied from those pages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../src/storage/sigv4.h"

#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void s3_get_object_example(void **state)
{
    (void)state;
    sigv4_header hs[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                         {"Range", "bytes=0-9"},
                         {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
                         {"x-amz-date", "20130524T000000Z"}};
    sigv4_input in = {.method = "GET",
                      .canonical_uri = "/test.txt",
                      .canonical_query = "",
                      .headers = hs,
                      .n_headers = 4,
                      .payload_hash = SIGV4_EMPTY_SHA256,
                      .amz_date = "20130524T000000Z",
                      .region = "us-east-1",
                      .service = "s3",
                      .access_key = "AKIAIOSFODNN7EXAMPLE",
                      .secret_key = S3_SECRET};
    sigv4_output out;
    kinfer_status *st = sigv4_sign(&in, &out);
    assert_null(st);
    assert_string_equal(
        out.canonical_request,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(out.string_to_sign,
                        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    assert_string_equal(out.signature,
                        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_string_equal(
        out.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    sigv4_output_free(&out);
}

static void s3_list_objects_example(void **state)
{
    (void)state;
    /* Header order scrambled on purpose: the signer must sort. */
    sigv4_header hs[] = {{"x-amz-date", "20130524T000000Z"},
                         {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
                         {"host", "examplebucket.s3.amazonaws.com"}};
    sigv4_input in = {.method = "GET",
                      .canonical_uri = "/",
                      .canonical_query = "max-keys=2&prefix=J",
                      .headers = hs,
                      .n_headers = 3,
                      .payload_hash = SIGV4_EMPTY_SHA256,
                      .amz_date = "20130524T000000Z",
                      .region = "us-east-1",
                      .service = "s3",
                      .access_key = "AKIAIOSFODNN7EXAMPLE",
                      .secret_key = S3_SECRET};
    sigv4_output out;
    assert_null(sigv4_sign(&in, &out));
    assert_string_equal(
        out.canonical_request,
        "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(out.signature,
                        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    sigv4_output_free(&out);
}

static void aws_suite_get_vanilla(void **state)
{
    (void)state;
    sigv4_header hs[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    sigv4_input in = {.method = "GET",
                      .canonical_uri = "/",
                      .canonical_query = "",
                      .headers = hs,
                      .n_headers = 2,
                      .payload_hash = SIGV4_EMPTY_SHA256,
                      .amz_date = "20150830T123600Z",
                      .region = "us-east-1",
                      .service = "service",
                      .access_key = "AKIDEXAMPLE",
                      .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    sigv4_output out;
    assert_null(sigv4_sign(&in, &out));
    assert_string_equal(out.signature,
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_non_null(strstr(out.authorization,
                           "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"));
    sigv4_output_free(&out);
}

static void header_values_trimmed_and_collapsed(void **state)
{
    (void)state;
    sigv4_header hs[] = {
        {"host", "h"}, {"x-amz-date", "20130524T000000Z"}, {"My-Header", "  a   b  c "}};
    sigv4_input in = {.method = "GET",
                      .canonical_uri = "/",
                      .canonical_query = "",
                      .headers = hs,
                      .n_headers = 3,
                      .payload_hash = "UNSIGNED-PAYLOAD",
                      .amz_date = "20130524T000000Z",
                      .region = "r",
                      .service = "s3",
                      .access_key = "k",
                      .secret_key = "s"};
    sigv4_output out;
    assert_null(sigv4_sign(&in, &out));
    assert_non_null(strstr(out.canonical_request, "\nmy-header:a b c\n"));
    assert_non_null(strstr(out.canonical_request, "\nhost;my-header;x-amz-date\nUNSIGNED-PAYLOAD"));
    sigv4_output_free(&out);
}

static void bad_date_and_too_many_headers_rejected(void **state)
{
    (void)state;
    sigv4_header hs[SIGV4_MAX_HEADERS + 1];
    for (int i = 0; i <= SIGV4_MAX_HEADERS; i++) hs[i] = (sigv4_header){"h", "v"};
    sigv4_input in = {.method = "GET",
                      .canonical_uri = "/",
                      .canonical_query = "",
                      .headers = hs,
                      .n_headers = 1,
                      .payload_hash = "UNSIGNED-PAYLOAD",
                      .amz_date = "2013-05-24",
                      .region = "r",
                      .service = "s3",
                      .access_key = "k",
                      .secret_key = "s"};
    sigv4_output out;
    kinfer_status *st = sigv4_sign(&in, &out);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "YYYYMMDDTHHMMSSZ"));
    kinfer_status_free(st);
    in.amz_date = "20130524T000000Z";
    in.n_headers = SIGV4_MAX_HEADERS + 1;
    st = sigv4_sign(&in, &out);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
    assert_null(out.authorization);
}

static void uri_encoding(void **state)
{
    (void)state;
    char *e = sigv4_uri_encode("a b/c~d_e.f-g+h=i&j%k\xc3\xa9", 1);
    assert_string_equal(e, "a%20b/c~d_e.f-g%2Bh%3Di%26j%25k%C3%A9");
    free(e);
    e = sigv4_uri_encode("dir/x", 0);
    assert_string_equal(e, "dir%2Fx");
    free(e);
    char hex[65];
    sigv4_sha256_hex("", 0, hex);
    assert_string_equal(hex, SIGV4_EMPTY_SHA256);
}

int test_sigv4_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s3_get_object_example),
        cmocka_unit_test(s3_list_objects_example),
        cmocka_unit_test(aws_suite_get_vanilla),
        cmocka_unit_test(header_values_trimmed_and_collapsed),
        cmocka_unit_test(bad_date_and_too_many_headers_rejected),
        cmocka_unit_test(uri_encoding),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
