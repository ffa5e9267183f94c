#!/usr/bin/env bash
# Prints shell exports for using the local control plane from a shell or another test suite:
#   eval "$(test/cluster/env.sh)"     # KUBECONFIG and PATH (with build/cluster/bin for kubectl)
# It only prints; `make cluster-up` starts the cluster. Honours KINFER_CLUSTER_DIR (lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
printf 'export KUBECONFIG=%q\n' "$cl_kubeconfig"
printf 'export PATH=%q:"$PATH"\n' "$cl_state/bin"
