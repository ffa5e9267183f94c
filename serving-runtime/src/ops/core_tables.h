/* core_tables: the per-file op_def tables that ops_core.c concatenates into the default domain. */
#ifndef KINFER_CORE_TABLES_H
#define KINFER_CORE_TABLES_H

#include <stddef.h>

#include "../engine/op.h"

#define CORE_TABLES(X)                                                                             \
    X(unary)                                                                                       \
    X(binary)                                                                                      \
    X(linalg)                                                                                      \
    X(conv)                                                                                        \
    X(pool)                                                                                        \
    X(nn)                                                                                          \
    X(shape)                                                                                       \
    X(reduce)                                                                                      \
    X(gather)                                                                                      \
    X(misc)                                                                                        \
    X(scatter)                                                                                     \
    X(spatial)                                                                                     \
    X(loss)

#define CORE_TABLE_DECL(t)                                                                         \
    extern const op_def core_##t##_ops[];                                                          \
    extern const size_t core_##t##_count;
CORE_TABLES(CORE_TABLE_DECL)
#undef CORE_TABLE_DECL

#endif
