/*
 * libFuzzer target for what the canary analysis reads from outside: the Prometheus text a pod (or
 * whatever answers on its IP) returns, and spec.predictor.rollout. The input is split at the first
 * NUL: text A and text B are parsed as two scrapes and analyzed as one interval, then A is also
 * read as JSON for the rollout policy, whose result drives one rollout_step(). Checks: no crash,
 * leak or UB, rates within [0, 100], p99 not negative, weights within [0, 100].
 */
#include <json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rollout/rollout.h"
#include "../src/rollout/scrape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *a = (const char *)data, *nul = memchr(data, 0, size);
    size_t alen = nul ? (size_t)(nul - a) : size;
    const char *b = nul ? nul + 1 : "";
    size_t blen = nul ? size - alen - 1 : 0;
    scrape_sample sa, sb;
    ctl_status *st = scrape_parse(a, alen, &sa);
    ctl_status *st2 = scrape_parse(b, blen, &sb);
    if (!st && !st2) {
        rollout_metric sr, p99;
        scrape_analyze(&sa, &sb, &sr, &p99);
        if (sr.status == ROLLOUT_METRIC_OK && !(sr.value >= 0 && sr.value <= 100)) abort();
        if (p99.status == ROLLOUT_METRIC_OK && !(p99.value >= 0)) abort();
        scrape_sample acc = {0};
        scrape_add(&acc, &sa);
        scrape_add(&acc, &sb);
    }
    ctl_status_free(st);
    ctl_status_free(st2);

    char *text = malloc(alen + 1);
    if (!text) return 0;
    memcpy(text, a, alen);
    text[alen] = 0;
    json_object *j = json_tokener_parse(text);
    free(text);
    rollout_policy p;
    int present = 0;
    st = rollout_policy_parse(j, &p, &present);
    if (!st && present) {
        if (p.nsteps < 1 || p.nsteps > ROLLOUT_MAX_STEPS || p.interval_ms <= 0 || p.threshold < 1)
            abort();
        rollout_state s = {0};
        rollout_obs o = {.canary_ready = 1,
                         .success_pct = {ROLLOUT_METRIC_OK, 100},
                         .p99_ms = {ROLLOUT_METRIC_OK, 1}};
        int64_t now = 1;
        for (int i = 0; i < 4 * ROLLOUT_MAX_STEPS && !rollout_phase_terminal(s.phase); i++) {
            rollout_result r = rollout_step(&p, &s, &o, now);
            if (r.state.weight < 0 || r.state.weight > 100) abort();
            s = r.state;
            now += r.requeue_ms > 0 ? r.requeue_ms : 1;
        }
    }
    ctl_status_free(st);
    json_object_put(j);
    return 0;
}
