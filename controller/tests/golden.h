/*
 * Golden-file helpers shared by the controller's unit tests. Files live under
 * controller/tests/golden/ (or $KINFER_GOLDEN_DIR); tests run from the repository root.
 * Comparison is on parsed JSON (json_object_equal: key order does not matter, everything else
 * does). KINFER_UPDATE_GOLDEN=1 rewrites the expected files instead of comparing (review the
 * diff!).
 */
#ifndef KINFER_TEST_GOLDEN_H
#define KINFER_TEST_GOLDEN_H

#include <json.h>

/* Parsed JSON of golden/<rel>; fails the test when missing or malformed. Caller puts it. */
json_object *golden_load(const char *rel);
/* Fails the test (printing both documents) unless got equals golden/<rel>. */
void golden_check(json_object *got, const char *rel);

#endif
