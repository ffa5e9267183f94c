#!/usr/bin/env bash
# `make cluster-down`: stops every process of the local control plane (each component's whole
# process group: TERM, then KILL after 15 s), including ones whose pid file was lost, verifies
# that none is left, and wipes the data dir, so the next cluster-up starts from an empty etcd.
# Keeps the certificates, kubeconfig and logs. Safe to run when nothing is up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cl_lock
if ! cl_stop; then
  echo "cluster-down: processes above are still running; data in $cl_data kept" >&2
  exit 1
fi
left=$(cl_owned_pids)
[ -z "$left" ] || { echo "cluster-down: still running: $left" >&2; exit 1; }
rm -rf "$cl_data"
echo "cluster-down: stopped ($cl_state)"
