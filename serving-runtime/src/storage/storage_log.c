/* JSON event lines for model storage; see storage_log.h. */
#include "storage_log.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static int log_quiet;

void storage_log_set_quiet(int quiet)
{
    log_quiet = quiet;
}

void storage_log_emit(const char *level, const char *event, json_object *fields)
{
    if (log_quiet) {
        json_object_put(fields);
        return;
    }
    json_object *o = json_object_new_object();
    if (!o) {
        json_object_put(fields);
        return;
    }
    struct timeval tv;
    struct tm tm;
    char ts[96];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000));
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level));
    json_object_object_add(o, "component", json_object_new_string("storage"));
    json_object_object_add(o, "event", json_object_new_string(event));
    if (fields) {
        json_object_object_foreach(fields, k, v) json_object_object_add(o, k, json_object_get(v));
        json_object_put(fields);
    }
    fprintf(
        stderr, "%s\n",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stderr);
    json_object_put(o);
}
