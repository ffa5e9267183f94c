/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a replica takes
 * the Lease when it is free (no holder) or when its record (holder + renewTime) has not changed
 * for leaseDurationSeconds as measured on this replica's own clock (no cross-node clock
 * comparison); updates carry the resourceVersion, so two replicas racing for it cannot both
 * win. The holder renews every retry period; if it cannot renew for the renew deadline
 * (shorter than the lease duration) it reports the loss, and the caller must stop working
 * at once (kinfer-controller exits, like client-go). On shutdown the holder releases the
 * Lease (empty holder, leaseDurationSeconds 1) so a successor need not wait out the lease.
 */
#ifndef KINFER_CTL_LEADER_H
#define KINFER_CTL_LEADER_H

#include <json.h>
#include <stdint.h>

#include "../common/error.h"
#include "kube.h"

typedef struct leader leader;

typedef struct leader_config {
    const char *namespace, *name, *identity;
    int64_t lease_duration_ms, renew_deadline_ms, retry_period_ms;
} leader_config;

/* Checks lease_duration > renew_deadline > retry_period > 0 (client-go's rule, without its
 * 1.2 jitter factor slack) and that names are given. */
ctl_status *leader_config_check(const leader_config *cfg) __attribute__((warn_unused_result));
/* The client should have a request timeout below the renew deadline. Strings are copied. */
ctl_status *leader_create(kube_client *c, const leader_config *cfg, leader **out)
    __attribute__((warn_unused_result));
/* Blocks until the Lease is ours (NULL) or leader_cancel() (CTL_ECANCELED). */
ctl_status *leader_acquire(leader *le) __attribute__((warn_unused_result));
/* After acquire: renews on a thread; on_lost(ud) runs on that thread if the renew deadline passes.
 */
ctl_status *leader_start_renewing(leader *le, void (*on_lost)(void *ud), void *ud)
    __attribute__((warn_unused_result));
/* Interrupts acquire and tells the renew thread to stop; does not wait (safe from a signal
 * thread). Idempotent. */
void leader_cancel(leader *le);
/* Cancels, waits for the renew thread, then gives the Lease up if we hold it. */
ctl_status *leader_release(leader *le) __attribute__((warn_unused_result));
int leader_is_leader(leader *le);
void leader_free(leader *le); /* cancels and joins; does not release; NULL is a no-op */

/* Exposed for tests: may a replica named identity take lease (a Lease object) at local time
 * now_ms, given that the record it last observed changed at observed_ms (updated in place
 * when the record differs from *observed_record)? Returns 1 if it may. */
int leader__may_acquire(json_object *lease, const char *identity, int64_t now_ms,
                        char *observed_record, size_t record_len, int64_t *observed_ms);

#endif
