#!/usr/bin/env bash
# `make demo`: the main job on the embedded default, end to end on this machine.
#  1. the local control plane (make cluster-up), 2. the CRD, 3. kinfer-controller,
#  4. an example InferenceService, waited on until Ready, 5. kinfer-server serving the same model
#  on loopback, 6. one V2 inference request. kwok runs fake pods (no container runtime here), so
#  step 5 serves the model from a local process instead of inside the pod.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/demo; mkdir -p "$out"
kubectl=build/cluster/bin/kubectl
export KUBECONFIG=$root/build/cluster/kubeconfig
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "control plane"
make --no-print-directory cluster-up

step "example model (scikit-learn iris classifier exported to ONNX)"
venv=$(scripts/pyenv.sh)
"$venv/bin/python" examples/models/make_iris.py "$out/model"
ls -l "$out/model"

step "CRD"
$kubectl apply --server-side -f crds/
$kubectl wait --for=condition=Established crd/inferenceservices.serving.kinfer.dev --timeout=30s

step "kinfer-controller"
build/bin/kinfer-controller --kubeconfig "$KUBECONFIG" --health-addr 127.0.0.1:0 \
  --metrics-addr 127.0.0.1:0 --runtime-image kinfer/kinfer-server:dev >"$out/controller.log" 2>&1 &
pids+=($!)

step "InferenceService examples/demo/sklearn-iris.yaml"
$kubectl delete -f examples/demo/sklearn-iris.yaml --ignore-not-found --wait=true >/dev/null
$kubectl apply -f examples/demo/sklearn-iris.yaml
$kubectl wait --for=condition=Ready inferenceservice/sklearn-iris --timeout=120s \
  || { echo "demo: InferenceService not Ready; controller log: $out/controller.log" >&2; tail -20 "$out/controller.log" >&2; exit 1; }
$kubectl get inferenceservice sklearn-iris
$kubectl get deployment,service,hpa -l serving.kinfer.dev/inferenceservice=sklearn-iris

step "kinfer-server on 127.0.0.1"
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/bin/kinfer-server --model-uri "file://$root/$out/model" --model-dir "$out/served" \
  --model-name sklearn-iris --port "$port" >"$out/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/v2/models/sklearn-iris"; echo

step "POST /v2/models/sklearn-iris/infer"
body='{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}'
echo "$body"
curl -fsS -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/v2/models/sklearn-iris/infer"
echo
echo
echo "demo: done. The control plane is still up: build/cluster/bin/kubectl --kubeconfig build/cluster/kubeconfig get kisvc; 'make cluster-down' stops it."
