/* JSON-lines logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_quiet;

void kinfer_log_set_quiet(int quiet)
{
    log_quiet = quiet;
}

void kinfer_log_fields(const char *level, const char *component, const char *event,
                       json_object *fields)
{
    json_object *o = log_quiet ? NULL : json_object_new_object();
    if (!o) goto out;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level));
    if (component) json_object_object_add(o, "component", json_object_new_string(component));
    json_object_object_add(o, "event", json_object_new_string(event));
    if (fields) {
        json_object_object_foreach(fields, k, v) json_object_object_add(o, k, json_object_get(v));
    }
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    /* The line and its newline in one write(2); the string is json-c's, so copy it once. */
    char *line = s ? malloc(len + 1) : NULL;
    if (line) {
        memcpy(line, s, len);
        line[len] = '\n';
        ssize_t w = write(STDERR_FILENO, line, len + 1);
        (void)w;
        free(line);
    }
out:
    json_object_put(o);
    json_object_put(fields);
}

void kinfer_log_event(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object *f = json_object_new_object();
    if (f) json_object_object_add(f, "msg", json_object_new_string(msg));
    kinfer_log_fields(level, NULL, event, f);
}
