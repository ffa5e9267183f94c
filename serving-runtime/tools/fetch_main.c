/*
 * kinfer-fetch: the `kinfer-server fetch` subcommand as its own small binary (no engine, no
 * HTTP server), for init containers that want a small image and for testing storage alone.
 * `kinfer-fetch URI DIR [options]` == `kinfer-server fetch URI DIR [options]`.
 */
#include <stdlib.h>
#include <string.h>

#include "../src/storage/storage.h"

int main(int argc, char **argv)
{
    /* storage_fetch_main expects argv[1] == "fetch"; accept it either way. */
    if (argc > 1 && !strcmp(argv[1], "fetch")) return storage_fetch_main(argc, argv);
    char **av = calloc((size_t)argc + 2, sizeof(*av));
    if (!av) return 1;
    av[0] = argv[0];
    av[1] = "fetch";
    for (int i = 1; i < argc; i++) av[i + 1] = argv[i];
    int rc = storage_fetch_main(argc + 1, av);
    free(av);
    return rc;
}
