/*
 * kinfer-server's log: one JSON object per line on stderr, so a log pipeline needs no parser
 * rules: {"ts":"2026-01-01T00:00:00.000Z","level":"info","event":"listening","msg":"..."}.
 * Lines are written with a single write(2), so threads never interleave within a line.
 */
#ifndef KINFER_SLOG_H
#define KINFER_SLOG_H

/* level: "info", "warn", "error". event: a fixed snake_case name. msg: printf format. */
void slog_event(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
