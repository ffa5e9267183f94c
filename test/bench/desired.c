/*
 * kinfer-desired: InferenceServices (JSON lines on stdin) -> the children reconcile_desired()
 * computes for them (JSON lines on stdout). The controller benchmark's floor applies exactly these
 * objects, so it does the same API work as kinfer-controller without any controller logic.
 * Usage: kinfer-desired RUNTIME_IMAGE < isvcs.jsonl > children.jsonl
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../controller/src/reconcile/reconcile.h"

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    int rc = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: kinfer-desired RUNTIME_IMAGE < isvcs.jsonl\n");
        return 2;
    }
    reconcile_config cfg = {.runtime_image = argv[1]};
    while (!rc && getline(&line, &cap, stdin) > 0) {
        json_object *isvc = json_tokener_parse(line), *children = NULL;
        n++;
        if (!isvc) {
            fprintf(stderr, "kinfer-desired: line %ld: not JSON\n", n);
            rc = 1;
            break;
        }
        ctl_status *st = reconcile_desired(isvc, &cfg, &children);
        if (st) {
            fprintf(stderr, "kinfer-desired: line %ld: %s\n", n, ctl_status_msg(st));
            rc = 1;
        }
        for (size_t i = 0; children && i < json_object_array_length(children); i++)
            printf("%s\n", json_object_to_json_string_ext(json_object_array_get_idx(children, i),
                                                          JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        ctl_status_free(st);
        json_object_put(children);
        json_object_put(isvc);
    }
    free(line);
    return rc;
}
