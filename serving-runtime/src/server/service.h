/*
 * The served model and its HTTP routes: /v2 (Open Inference Protocol), /v1 (KServe V1), health,
 * and /metrics. It owns the model's life: fetch (when a URI is given), load and warm-up on a
 * loader thread while the port already answers liveness; readiness turns true only after the
 * warm-up batch. On SIGTERM it stops taking inference, finishes every queued and running request,
 * writes their responses and returns, or gives up after the grace period. The engine is reached
 * only through service_backend, so everything here links and is tested without it.
 */
#ifndef KINFER_SERVICE_H
#define KINFER_SERVICE_H

#include "../batcher/batcher.h"
#include "../common/status.h"
#include "../protocol/infer_request.h"
#include "config.h"

/* The engine as the server uses it (onnx_model.h behind function pointers). */
typedef struct service_backend {
    kinfer_status *(*load)(const char *path, int threads, void **model);
    void (*free)(void *model);
    /* Fills sig with arrays owned by the model. */
    void (*describe)(void *model, infer_model_sig *sig);
    kinfer_status *(*run)(void *model, const onnx_tensor *inputs, size_t n_inputs,
                          const char *const *output_names, onnx_tensor *outputs, size_t n_outputs);
    void (*release)(void *model, onnx_tensor *t);
    /* Fetches uri into dir (storage); NULL: --model-uri is refused. */
    kinfer_status *(*fetch)(const char *uri, const char *dir, const char *sha256);
} service_backend;

typedef struct service service;

/* cfg and be must outlive the service. Binds the port. */
kinfer_status *service_create(const server_config *cfg, const service_backend *be, service **out)
    __attribute__((warn_unused_result));
/* Serves until shutdown completes; returns the process exit code (0 after a clean drain, 1 when
 * the model failed to load or the grace period ran out). */
int service_run(service *s);
/* Async-signal-safe: begins the graceful shutdown. */
void service_request_shutdown(service *s);
void service_destroy(service *s);

#endif
