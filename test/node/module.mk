# node-e2e: kinfer's images as real pods on the local cluster's real node (test/cluster/node):
# lifecycle, S3 fetch and its failures, readiness, liveness, OOM kills, and the chart with its
# `helm test`. cluster-up imports the images (make images) into the node's containerd.
TEST_SUITES += node-e2e
.PHONY: test-node-e2e
test-node-e2e: $(BIN)/kinfer-controller $(HELM)
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/node && HELM=$(abspath $(HELM)) "$$venv/bin/python" -m pytest \
	  -p no:cacheprovider -p no:hypothesispytest -v -rs $(PYTEST_ARGS) test_node.py test_traffic.py test_autoscale.py test_chart_node.py

# Not part of `make test`: pod start to Ready, ClusterIP against pod IP latency, and the node's
# idle CPU and memory (test/node/bench_node.py; results in docs/cluster.md and docs/benchmarks.md).
.PHONY: bench-node
bench-node: $(BIN)/kinfer-controller
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/node && "$$venv/bin/python" bench_node.py $(BENCH_ARGS)
