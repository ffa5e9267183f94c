/*
 * AWS Signature Version 4. The steps follow the S3 "Authenticating Requests (AWS Signature
 * Version 4)" documentation: canonical request -> string to sign -> HMAC chain of the date,
 * region, service and "aws4_request" -> signature. See sigv4.h.
 */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "../common/pbuf.h"

#define CANON_MAX (64 * 1024)

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    hex_encode(md, sizeof(md), out);
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int olen = 0;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
                &olen) &&
                   olen == 32
               ? 0
               : -1;
}

char *sigv4_uri_encode(const char *s, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = digits[*p >> 4];
            *o++ = digits[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

typedef struct canon_header {
    char name[64];
    const char *value;
} canon_header;

static int header_cmp(const void *a, const void *b)
{
    return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

/* Value with leading/trailing spaces trimmed and inner runs of spaces collapsed. */
static int add_trimmed(pbuf *b, const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    int pending_space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = 1;
            continue;
        }
        if (pending_space && pbuf_add(b, " ", 1)) return -1;
        pending_space = 0;
        if (pbuf_add(b, v, 1)) return -1;
    }
    return 0;
}

static int valid_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z') return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i])) return 0;
    return 1;
}

kinfer_status *sigv4_sign(const sigv4_input *in, sigv4_output *out)
{
    kinfer_status *st = NULL;
    canon_header hs[SIGV4_MAX_HEADERS];
    pbuf creq, signed_names, sts, auth;
    pbuf_init(&creq, 0, CANON_MAX);
    pbuf_init(&signed_names, 0, 4096);
    pbuf_init(&sts, 0, 4096);
    pbuf_init(&auth, 0, 4096);
    memset(out, 0, sizeof(*out));

    if (!valid_date(in->amz_date)) {
        st = kinfer_status_new(KINFER_EINVAL, "sigv4: x-amz-date '%s' is not YYYYMMDDTHHMMSSZ",
                               in->amz_date ? in->amz_date : "(null)");
        goto out;
    }
    if (in->n_headers > SIGV4_MAX_HEADERS) {
        st = kinfer_status_new(KINFER_EINVAL, "sigv4: %zu headers to sign (max %d)", in->n_headers,
                               SIGV4_MAX_HEADERS);
        goto out;
    }
    for (size_t i = 0; i < in->n_headers; i++) {
        size_t n = strlen(in->headers[i].name);
        if (n == 0 || n >= sizeof(hs[i].name)) {
            st = kinfer_status_new(KINFER_EINVAL, "sigv4: header name of %zu bytes", n);
            goto out;
        }
        for (size_t j = 0; j <= n; j++)
            hs[i].name[j] = (char)tolower((unsigned char)in->headers[i].name[j]);
        hs[i].value = in->headers[i].value;
    }
    qsort(hs, in->n_headers, sizeof(hs[0]), header_cmp);

    int bad =
        pbuf_printf(&creq, "%s\n%s\n%s\n", in->method, in->canonical_uri, in->canonical_query);
    for (size_t i = 0; i < in->n_headers; i++) {
        bad |= pbuf_printf(&creq, "%s:", hs[i].name);
        bad |= add_trimmed(&creq, hs[i].value);
        bad |= pbuf_add(&creq, "\n", 1);
        bad |= pbuf_printf(&signed_names, "%s%s", i ? ";" : "", hs[i].name);
    }
    bad |= pbuf_printf(&creq, "\n%s\n%s", pbuf_data(&signed_names) ? pbuf_data(&signed_names) : "",
                       in->payload_hash);

    char creq_hash[65], date[9], scope[256];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    if (snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, in->region, in->service) >=
        (int)sizeof(scope)) {
        st = kinfer_status_new(KINFER_EINVAL, "sigv4: region/service too long");
        goto out;
    }
    if (!bad) sigv4_sha256_hex(pbuf_data(&creq), creq.len, creq_hash);
    bad |= bad ? -1
               : pbuf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, creq_hash);
    if (bad) {
        st = kinfer_status_new(
            KINFER_ENOMEM, "sigv4: canonical request over %d bytes or out of memory", CANON_MAX);
        goto out;
    }

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    unsigned char k[32], sig[32];
    pbuf secret;
    pbuf_init(&secret, 0, 1024);
    if (pbuf_printf(&secret, "AWS4%s", in->secret_key) ||
        hmac(pbuf_data(&secret), secret.len, date, k) || hmac(k, 32, in->region, k) ||
        hmac(k, 32, in->service, k) || hmac(k, 32, "aws4_request", k) ||
        hmac(k, 32, pbuf_data(&sts), sig)) {
        pbuf_free(&secret);
        st = kinfer_status_new(KINFER_EINTERNAL,
                               "sigv4: HMAC-SHA256 failed (or secret key over 1 KiB)");
        goto out;
    }
    pbuf_free(&secret);
    hex_encode(sig, 32, out->signature);
    if (pbuf_printf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
                    in->access_key, scope, pbuf_data(&signed_names), out->signature)) {
        st = kinfer_status_new(KINFER_ENOMEM, "sigv4: out of memory");
        goto out;
    }
    out->canonical_request = pbuf_take(&creq);
    out->string_to_sign = pbuf_take(&sts);
    out->authorization = pbuf_take(&auth);
    if (!out->canonical_request || !out->string_to_sign || !out->authorization) {
        sigv4_output_free(out);
        st = kinfer_status_new(KINFER_ENOMEM, "sigv4: out of memory");
    }
out:
    pbuf_free(&creq);
    pbuf_free(&signed_names);
    pbuf_free(&sts);
    pbuf_free(&auth);
    return st;
}

void sigv4_output_free(sigv4_output *out)
{
    if (!out) return;
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->authorization);
    out->canonical_request = out->string_to_sign = out->authorization = NULL;
}
