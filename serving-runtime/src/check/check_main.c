/*
 * kinfer-onnx-check: runs ONNX backend test directories (model.onnx plus test_data_set_N
 * directories of input_N.pb and output_N.pb, serialized TensorProtos) through kinfer's engine and
 * compares the outputs with rtol 1e-3, atol 1e-7. One line per case: PASS, FAIL with the reason, or
 * SKIP when the model uses something kinfer does not implement (KINFER_EUNSUPPORTED, named). Ends
 * with "N passed, N failed, N skipped" and exits 1 if anything failed.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/onnx_model.h"
#include "../engine/onnx_proto.h"

#define CHECK_RTOL     1e-3
#define CHECK_ATOL     1e-7
#define CHECK_MAX_IO   64
#define CHECK_MAX_FILE (256u << 20)

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

static int read_file(const char *path, void **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && (size_t)n <= CHECK_MAX_FILE && fseek(f, 0, SEEK_SET) == 0) {
            *buf = malloc((size_t)n + 1);
            if (*buf && fread(*buf, 1, (size_t)n, f) == (size_t)n) {
                *len = (size_t)n;
                rc = 0;
            } else {
                free(*buf);
                *buf = NULL;
            }
        }
    }
    fclose(f);
    return rc;
}

/* Loads DIR/input_N.pb (or output_N.pb) for N = 0.. until one is missing. */
static result load_tensors(const char *dir, const char *prefix, onnx_tensor *ts, size_t *n,
                           char *why, size_t wl)
{
    *n = 0;
    for (size_t i = 0; i < CHECK_MAX_IO; i++) {
        char path[8192];
        if (snprintf(path, sizeof path, "%s/%s_%zu.pb", dir, prefix, i) >= (int)sizeof path) break;
        void *buf;
        size_t len;
        if (read_file(path, &buf, &len)) break;
        kinfer_status *st = onnx_proto_tensor_load(buf, len, &ts[i]);
        free(buf);
        if (st) {
            /* Sequences, maps and optionals are not TensorProtos. */
            snprintf(why, wl, "%s_%zu.pb is not a supported tensor (%s)", prefix, i,
                     kinfer_status_msg(st));
            kinfer_status_free(st);
            return R_SKIP;
        }
        *n = i + 1;
    }
    return R_PASS;
}

static int close_enough(double got, double want)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= CHECK_ATOL + CHECK_RTOL * fabs(want);
}

static double elem(const onnx_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ONNX_DTYPE_FLOAT:
        return ((const float *)t->data)[i];
    case ONNX_DTYPE_DOUBLE:
        return ((const double *)t->data)[i];
    case ONNX_DTYPE_INT64:
        return (double)((const int64_t *)t->data)[i];
    case ONNX_DTYPE_INT32:
        return ((const int32_t *)t->data)[i];
    case ONNX_DTYPE_INT16:
        return ((const int16_t *)t->data)[i];
    case ONNX_DTYPE_INT8:
        return ((const int8_t *)t->data)[i];
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_BOOL:
        return ((const uint8_t *)t->data)[i];
    case ONNX_DTYPE_UINT16:
    case ONNX_DTYPE_FLOAT16:
        return ((const uint16_t *)t->data)[i];
    case ONNX_DTYPE_UINT32:
        return ((const uint32_t *)t->data)[i];
    case ONNX_DTYPE_UINT64:
        return (double)((const uint64_t *)t->data)[i];
    default:
        return 0;
    }
}

static result compare(const onnx_tensor *got, const onnx_tensor *want, size_t k, char *why,
                      size_t wl)
{
    if (got->dtype != want->dtype) {
        snprintf(why, wl, "output %zu: dtype %s, expected %s", k, onnx_dtype_name(got->dtype),
                 onnx_dtype_name(want->dtype));
        return R_FAIL;
    }
    int same = got->rank == want->rank;
    for (int d = 0; same && d < got->rank; d++) same = got->dims[d] == want->dims[d];
    if (!same) {
        char g[128] = "", w[128] = "";
        for (int d = 0; d < got->rank; d++)
            snprintf(g + strlen(g), sizeof g - strlen(g), "%lld,", (long long)got->dims[d]);
        for (int d = 0; d < want->rank; d++)
            snprintf(w + strlen(w), sizeof w - strlen(w), "%lld,", (long long)want->dims[d]);
        snprintf(why, wl, "output %zu: shape [%s], expected [%s]", k, g, w);
        return R_FAIL;
    }
    int64_t n = onnx_tensor_numel(want);
    for (int64_t i = 0; i < n; i++) {
        if (want->dtype == ONNX_DTYPE_STRING) {
            if (strcmp(((char **)got->data)[i], ((char **)want->data)[i])) {
                snprintf(why, wl, "output %zu[%lld]: '%s', expected '%s'", k, (long long)i,
                         ((char **)got->data)[i], ((char **)want->data)[i]);
                return R_FAIL;
            }
            continue;
        }
        double g = elem(got, i), w = elem(want, i);
        int ok = (want->dtype == ONNX_DTYPE_FLOAT || want->dtype == ONNX_DTYPE_DOUBLE)
                     ? close_enough(g, w)
                     : g == w;
        if (!ok) {
            snprintf(why, wl, "output %zu[%lld]: %.9g, expected %.9g", k, (long long)i, g, w);
            return R_FAIL;
        }
    }
    return R_PASS;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static result run_set(onnx_model *m, const char *set, char *why, size_t wl)
{
    onnx_tensor in[CHECK_MAX_IO] = {0}, want[CHECK_MAX_IO] = {0}, got[CHECK_MAX_IO] = {0};
    size_t n_in = 0, n_want = 0;
    result r = load_tensors(set, "input", in, &n_in, why, wl);
    if (r == R_PASS) r = load_tensors(set, "output", want, &n_want, why, wl);
    if (r != R_PASS) goto out;
    if (n_in != onnx_model_num_inputs(m) || n_want != onnx_model_num_outputs(m)) {
        snprintf(why, wl, "%zu inputs/%zu outputs in the data, model has %zu/%zu", n_in, n_want,
                 onnx_model_num_inputs(m), onnx_model_num_outputs(m));
        r = R_FAIL;
        goto out;
    }
    for (size_t i = 0; i < n_in; i++) in[i].name = onnx_model_input(m, i)->name;
    kinfer_status *st = onnx_model_run(m, in, n_in, NULL, got, n_want);
    if (st) {
        snprintf(why, wl, "%s", kinfer_status_msg(st));
        r = kinfer_status_code(st) == KINFER_EUNSUPPORTED ? R_SKIP : R_FAIL;
        kinfer_status_free(st);
        goto out;
    }
    for (size_t k = 0; k < n_want && r == R_PASS; k++) r = compare(&got[k], &want[k], k, why, wl);
out:
    for (size_t i = 0; i < CHECK_MAX_IO; i++) {
        in[i].name = NULL;
        onnx_tensor_release(&in[i]);
        onnx_tensor_release(&want[i]);
        onnx_tensor_release(&got[i]);
    }
    return r;
}

static result run_case(const char *dir, char *why, size_t wl)
{
    char path[8192];
    if (snprintf(path, sizeof path, "%s/model.onnx", dir) >= (int)sizeof path) {
        snprintf(why, wl, "path too long");
        return R_FAIL;
    }
    onnx_model *m = NULL;
    kinfer_status *st = onnx_model_load_file(path, NULL, &m);
    if (st) {
        const char *msg = kinfer_status_msg(st), *u = strstr(msg, "unsupported operator");
        snprintf(why, wl, "%s", u ? u : msg);
        result r = kinfer_status_code(st) == KINFER_EUNSUPPORTED ? R_SKIP : R_FAIL;
        kinfer_status_free(st);
        return r;
    }
    result r = R_PASS;
    DIR *d = opendir(dir);
    char *sets[256];
    size_t n_sets = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n_sets < 256)
        if (!strncmp(e->d_name, "test_data_set_", 14)) sets[n_sets++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(sets, n_sets, sizeof(char *), name_cmp);
    if (!n_sets) {
        snprintf(why, wl, "no test_data_set_* directory");
        r = R_FAIL;
    }
    for (size_t i = 0; i < n_sets; i++) {
        if (r == R_PASS) {
            if (snprintf(path, sizeof path, "%s/%s", dir, sets[i]) >= (int)sizeof path) {
                snprintf(why, wl, "path too long");
                r = R_FAIL;
            } else {
                r = run_set(m, path, why, wl);
            }
        }
        free(sets[i]);
    }
    onnx_model_free(m);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kinfer-onnx-check DIR...\n");
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int a = 1; a < argc; a++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", argv[a]);
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/') dir[--l] = 0;
        const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
        char why[1024] = "";
        switch (run_case(dir, why, sizeof why)) {
        case R_PASS:
            printf("PASS %s\n", name);
            passed++;
            break;
        case R_FAIL:
            printf("FAIL %s: %s\n", name, why);
            failed++;
            break;
        case R_SKIP:
            printf("SKIP %s: %s\n", name, why);
            skipped++;
            break;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
