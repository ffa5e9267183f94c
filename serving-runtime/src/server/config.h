/*
 * kinfer-server's configuration: flags, KINFER_* environment variables and a YAML file, merged as
 * flags > environment > file > defaults. Every setting has all three spellings: --max-batch-size,
 * KINFER_MAX_BATCH_SIZE, and in the file max-batch-size / max_batch_size / maxBatchSize. It only
 * parses and validates; nothing here opens sockets or models.
 */
#ifndef KINFER_SERVER_CONFIG_H
#define KINFER_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/status.h"

#define CONFIG_MAX_PREFERRED 16

typedef struct server_config {
    char *model_dir, *model_uri, *model_sha256, *model_name, *model_version, *host, *config_file;
    char *revision; /* NULL or "": no Kinfer-Revision header */
    char *device;   /* "cpu" (default) or "cuda"; main() refuses cuda in a build without a CUDA
                       backend */
    int port;
    int max_batch_size;
    int64_t max_queue_delay_us;
    int preferred[CONFIG_MAX_PREFERRED];
    int n_preferred;
    int max_queue_size;
    int instances;
    int threads;
    int64_t inline_max_us;
    int64_t max_body_bytes;
    int64_t request_timeout_ms;
    int grace_period_s;
    int help;
} server_config;

/* Fills cfg (owned by the caller: server_config_free, also after an error). envp NULL: environ.
 * EINVAL names the flag, variable or file key and what is wrong with it. */
kinfer_status *server_config_load(server_config *cfg, int argc, char **argv, char **envp)
    __attribute__((warn_unused_result));
void server_config_free(server_config *cfg);
void server_config_usage(FILE *f);

#endif
