/*
 * libFuzzer target for model storage's parsers of untrusted text: the model URI parser, the
 * object-key path check, the S3 ListObjectsV2 / <Error> extractor and the GCS JSON listing
 * parser. The first byte picks the parser; the rest is its input (not NUL-terminated for the
 * listing parsers, which take a length). Besides sanitizer reports it checks invariants: an
 * accepted path has no "..", "." or empty component and is relative; parsed listings respect
 * their key cap and never hold empty keys; a truncated S3 page always carries a token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/storage/storage_list.h"
#include "../src/storage/storage_uri.h"

static void check_relpath_invariant(const char *p)
{
    if (!*p || p[0] == '/') abort();
    const char *s = p;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) abort();
        if (!slash) break;
        s = slash + 1;
    }
}

static void check_page(const storage_list_page *p, size_t max, int s3)
{
    if (p->n_keys > max) abort();
    for (size_t i = 0; i < p->n_keys; i++)
        if (!p->keys[i] || !*p->keys[i]) abort();
    if (s3 && p->truncated && (!p->next_token || !*p->next_token)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] % 5;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *str = malloc(n + 1); /* NUL-terminated copy for the string APIs */
    if (!str) return 0;
    memcpy(str, in, n);
    str[n] = '\0';
    /* The listing parsers get an exact-size heap copy so ASan sees any read past the end. */
    char *exact = malloc(n ? n : 1);
    if (!exact) {
        free(str);
        return 0;
    }
    memcpy(exact, in, n);

    switch (mode) {
    case 0: {
        storage_uri u;
        kinfer_status *st = storage_uri_parse(str, &u);
        if (!st) {
            if ((u.scheme == STORAGE_SCHEME_S3 || u.scheme == STORAGE_SCHEME_GS) &&
                (!u.bucket || !u.key))
                abort();
            if (u.scheme == STORAGE_SCHEME_PVC && *u.key) check_relpath_invariant(u.key);
            storage_uri_clear(&u);
        } else if (!*kinfer_status_msg(st)) {
            abort(); /* every rejection says why */
        }
        kinfer_status_free(st);
        break;
    }
    case 1: {
        const char *why = NULL;
        if (storage_relpath_check(str, &why) == 0)
            check_relpath_invariant(str);
        else if (!why)
            abort();
        break;
    }
    case 2:
    case 3: {
        storage_list_page p;
        size_t max = 64;
        kinfer_status *st = mode == 2 ? storage_list_parse_s3(exact, n, max, &p)
                                      : storage_list_parse_gcs(exact, n, max, &p);
        if (!st)
            check_page(&p, max, mode == 2);
        else if (p.keys || p.n_keys || p.next_token)
            abort(); /* left empty on error */
        storage_list_page_clear(&p);
        kinfer_status_free(st);
        break;
    }
    case 4: {
        char code[32], msg[64];
        int rc = storage_list_s3_error(exact, n, code, sizeof(code), msg, sizeof(msg));
        if (strnlen(code, sizeof(code)) == sizeof(code) || strnlen(msg, sizeof(msg)) == sizeof(msg))
            abort();
        if (rc && *code) abort();
        break;
    }
    }
    free(exact);
    free(str);
    return 0;
}
