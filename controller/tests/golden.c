/* Golden-file helpers (see golden.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

static void golden_path(const char *rel, char *buf, size_t n)
{
    const char *dir = getenv("KINFER_GOLDEN_DIR");
    snprintf(buf, n, "%s/%s", dir && *dir ? dir : "controller/tests/golden", rel);
}

json_object *golden_load(const char *rel)
{
    char path[1024];
    golden_path(rel, path, sizeof(path));
    json_object *o = json_object_from_file(path);
    if (!o)
        fail_msg("golden file %s: %s (run from the repository root)", path,
                 json_util_get_last_err());
    return o;
}

void golden_check(json_object *got, const char *rel)
{
    char path[1024];
    const char *upd = getenv("KINFER_UPDATE_GOLDEN");
    golden_path(rel, path, sizeof(path));
    if (upd && !strcmp(upd, "1")) {
        assert_int_equal(json_object_to_file_ext(path, got,
                                                 JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE),
                         0);
        return;
    }
    json_object *want = golden_load(rel);
    if (!json_object_equal(got, want)) {
        int f = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
        print_error("golden mismatch for %s\n--- want\n%s\n--- got\n%s\n", path,
                    json_object_to_json_string_ext(want, f),
                    json_object_to_json_string_ext(got, f));
        json_object_put(want);
        fail_msg("output differs from %s", path);
    }
    json_object_put(want);
}
