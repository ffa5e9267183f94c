/*
 * ops_core: the default-domain op table, concatenated once from the per-file tables in
 * core_*.c (listed in core_tables.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "core_tables.h"
#include "ops_core.h"

#define CORE_MAX_OPS 512
static op_def table[CORE_MAX_OPS];
static size_t table_len;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
#define CORE_TABLE_COPY(t)                                                                         \
    for (size_t i = 0; i < core_##t##_count && table_len < CORE_MAX_OPS; i++)                      \
        table[table_len++] = core_##t##_ops[i];
    CORE_TABLES(CORE_TABLE_COPY)
#undef CORE_TABLE_COPY
}

const op_def *ops_core_table(size_t *n)
{
    pthread_once(&table_once, table_build);
    *n = table_len;
    return table;
}
