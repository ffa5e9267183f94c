# The local Kubernetes control plane (test/cluster, docs/cluster.md).
#   make cluster-up     build the binaries once (cached in $(KINFER_CACHE)), start etcd,
#                       kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
#                       127.0.0.1; a no-op when already up. kubeconfig: build/cluster/kubeconfig
#   make cluster-down   stop all of it (no process left behind) and wipe its data
#   make test-cluster   the suite `cluster`: brings the cluster up, then test/cluster/test_*.py
TEST_SUITES += cluster
.PHONY: test-cluster

# The real node runs the images of `make images` (KINFER_REAL_NODE=0: a control plane without it).
cluster-up:
	@[ "$${KINFER_REAL_NODE:-1}" = 0 ] || $(MAKE) --no-print-directory images
	@test/cluster/up.sh

cluster-down:
	@test/cluster/down.sh

test-cluster: cluster-up
	@venv=$$(scripts/pyenv.sh) && "$$venv/bin/python" -m pytest -p no:cacheprovider -p no:hypothesispytest -v test/cluster/test_control_plane.py
