//go:build tools

// Prometheus, built from its published module (like ../promtool): test/e2e/test_canary.py runs it
// as the metric source of a rollout (kinfer-controller --prometheus-address). Built with
// -tags remove_all_sd: the test uses static targets, and some discovery plugins' dependencies are
// not on the module proxy. Pins the command so `go mod tidy` keeps its dependencies.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
