#!/usr/bin/env bash
# `make cluster-down`: stops every process of the local control plane and the real node (each
# component's whole process group: TERM, then KILL after 10 s; the pods' processes by cgroup),
# including ones whose pid file was lost, verifies that none is left, removes the node's machine
# state (mounts, cgroups, bridge, nftables tables; sysctls restored: node/down.sh), and wipes the
# data dir, so the next cluster-up starts from an empty etcd.
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
if [ "$(nd_owner)" = "$cl_state" ] || [ -d "$nd_dir" ]; then
  nd_down_all "$cl_state" || { echo "cluster-down: the real node's state above could not be removed; run 'make cluster-down' again" >&2; exit 1; }
fi
rm -rf "$cl_data"
echo "cluster-down: stopped ($cl_state)"
