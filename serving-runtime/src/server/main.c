/*
 * kinfer-server's entry point: the engine and storage glue behind service_backend, signals, and
 * the `fetch` subcommand (the predictor's init container). Everything else lives in service.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/onnx_model.h"
#include "../storage/storage.h"
#include "config.h"
#include "service.h"
#include "../log/log.h"

/* The model plus contiguous copies of its declarations (service wants arrays). */
typedef struct engine_model {
    onnx_model *m;
    onnx_value_info *in, *out;
} engine_model;

static kinfer_status *engine_load(const char *path, int threads, void **out)
{
    *out = NULL;
    engine_model *em = calloc(1, sizeof(*em));
    if (!em) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    onnx_options o = {.threads = threads};
    kinfer_status *st = onnx_model_load_file(path, &o, &em->m);
    if (st) {
        free(em);
        return st;
    }
    size_t ni = onnx_model_num_inputs(em->m), no = onnx_model_num_outputs(em->m);
    em->in = calloc(ni + 1, sizeof(onnx_value_info));
    em->out = calloc(no + 1, sizeof(onnx_value_info));
    if (!em->in || !em->out) {
        onnx_model_free(em->m);
        free(em->in);
        free(em->out);
        free(em);
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ni; i++) em->in[i] = *onnx_model_input(em->m, i);
    for (size_t i = 0; i < no; i++) em->out[i] = *onnx_model_output(em->m, i);
    *out = em;
    return NULL;
}

static void engine_free(void *model)
{
    engine_model *em = model;
    onnx_model_free(em->m);
    free(em->in);
    free(em->out);
    free(em);
}

static void engine_describe(void *model, infer_model_sig *sig)
{
    engine_model *em = model;
    *sig = (infer_model_sig){em->in, onnx_model_num_inputs(em->m), em->out,
                             onnx_model_num_outputs(em->m)};
}

static kinfer_status *engine_run(void *model, const onnx_tensor *in, size_t ni,
                                 const char *const *names, onnx_tensor *out, size_t no)
{
    return onnx_model_run(((engine_model *)model)->m, in, ni, names, out, no);
}

static void engine_release(void *model, onnx_tensor *t)
{
    (void)model;
    onnx_tensor_release(t);
}

static kinfer_status *storage_glue(const char *uri, const char *dir, const char *sha256)
{
    storage_options o = {.sha256 = sha256, .retries = -1};
    return storage_fetch(uri, dir, &o);
}

static service *the_service;

static void on_signal(int sig)
{
    (void)sig;
    if (the_service) service_request_shutdown(the_service);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "fetch")) return storage_fetch_main(argc, argv);
    server_config cfg;
    int rc = 1;
    kinfer_status *st = server_config_load(&cfg, argc, argv, NULL);
    if (st) {
        kinfer_log_event("error", "bad_config", "%s", kinfer_status_msg(st));
        fprintf(stderr, "kinfer-server: %s (see --help)\n", kinfer_status_msg(st));
        rc = 2;
        goto out;
    }
    if (cfg.help) {
        server_config_usage(stdout);
        rc = 0;
        goto out;
    }
    if (!strcmp(cfg.device, "cuda")) {
        /* The engine is CPU-only so far (a CUDA backend is future work, see docs/server.md).
         * Running on CPU in a pod that asked for a GPU would hide the misconfiguration: refuse
         * instead. */
        kinfer_log_event("error", "bad_config", "--device cuda: this build has no CUDA backend");
        fprintf(stderr, "kinfer-server: --device cuda: this build has no CUDA backend (kinfer's "
                        "engine runs on CPU "
                        "only; GPU support is future work); use --device cpu\n");
        rc = 2;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    static const service_backend be = {engine_load, engine_free,    engine_describe,
                                       engine_run,  engine_release, storage_glue};
    service *s;
    if ((st = service_create(&cfg, &be, &s))) {
        kinfer_log_event("error", "start_failed", "%s", kinfer_status_msg(st));
        goto out;
    }
    the_service = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc = service_run(s);
    the_service = NULL;
    service_destroy(s);
out:
    kinfer_status_free(st);
    server_config_free(&cfg);
    return rc;
}
