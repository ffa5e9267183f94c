#!/usr/bin/env bash
# `make demo`: the main job, end to end on this machine, served from a real pod.
#  1. the local cluster (make cluster-up): the control plane and the real node (containerd, runc,
#     kubelet, kube-proxy, CoreDNS, metrics-server), with kinfer's images imported
#  2. the example model, uploaded to a model store on this machine (moto's S3 server on the
#     node's address, authentication enforced); its credentials go into the Secret demo-s3
#  3. the CRD, and kinfer-controller (a process here; `helm install charts/kinfer` runs it in the
#     cluster instead: docs/quickstart.md)
#  4. examples/demo/sklearn-iris.yaml: the storage initializer fetches the model from S3, the
#     kinfer-server container loads it, and Ready follows its real readiness probe
#  5. a V2 inference request: curl -> the Service's ClusterIP (kube-proxy) -> the pod; then the
#     same from a client pod, by the Service's DNS name
# Prints how long each stage took. The cluster stays up (make cluster-down stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/demo; mkdir -p "$out"
kubectl=(build/cluster/bin/kubectl --request-timeout=30s)
export KUBECONFIG=$root/build/cluster/kubeconfig
ns=default
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
t_all=$(date +%s.%N); t_step=$t_all; stage=""; times=()
step() {
  local now; now=$(date +%s.%N)
  [ -z "$stage" ] || times+=("$(awk -v a="$t_step" -v b="$now" 'BEGIN { printf "%6.1f s", b - a }')  $stage")
  stage=$*; t_step=$now
  [ -z "$stage" ] || printf '\n== %s\n' "$stage"
}
fail() { echo "demo: $*" >&2; exit 1; }

step "cluster: control plane and real node"
make --no-print-directory cluster-up
"${kubectl[@]}" get nodes -o wide

step "example model (scikit-learn iris classifier exported to ONNX), into S3 on this machine"
venv=$(scripts/pyenv.sh)
"$venv/bin/python" examples/models/make_iris.py "$out/model"
source test/cluster/lib.sh
store=$("$venv/bin/python" test/node/s3store.py "$out" "$nd_ip" "sklearn-iris/model.onnx=$out/model/model.onnx") \
  || fail "starting the S3 model store failed"
read -r moto_pid s3_url s3_key s3_secret < <("$venv/bin/python" -c \
  'import json,sys; d=json.loads(sys.argv[1]); print(d["pid"], d["url"], d["access_key"], d["secret_key"])' "$store")
pids+=("$moto_pid")
echo "moto S3 at $s3_url (SigV4 enforced), s3://sklearn-iris/model.onnx"
"${kubectl[@]}" -n "$ns" create secret generic demo-s3 --dry-run=client -o yaml \
  --from-literal=AWS_ACCESS_KEY_ID="$s3_key" --from-literal=AWS_SECRET_ACCESS_KEY="$s3_secret" \
  --from-literal=AWS_ENDPOINT_URL_S3="$s3_url" --from-literal=AWS_REGION=us-east-1 | "${kubectl[@]}" apply -f -

step "CRD and kinfer-controller"
"${kubectl[@]}" apply --server-side -f crds/
"${kubectl[@]}" wait --for=condition=Established crd/inferenceservices.serving.kinfer.dev --timeout=30s
build/bin/kinfer-controller --kubeconfig "$KUBECONFIG" --health-addr 127.0.0.1:0 \
  --metrics-addr 127.0.0.1:0 >"$out/controller.log" 2>&1 &
pids+=($!)

step "InferenceService examples/demo/sklearn-iris.yaml on the real node"
"${kubectl[@]}" delete -f examples/demo/sklearn-iris.yaml --ignore-not-found --wait=true >/dev/null
"${kubectl[@]}" -n "$ns" wait --for=delete pod -l serving.kinfer.dev/inferenceservice=sklearn-iris --timeout=90s >/dev/null 2>&1 || true
"${kubectl[@]}" apply -f examples/demo/sklearn-iris.yaml
if ! "${kubectl[@]}" -n "$ns" wait --for=condition=Ready inferenceservice/sklearn-iris --timeout=180s; then
  "${kubectl[@]}" -n "$ns" get pods -o wide >&2 || true
  "${kubectl[@]}" -n "$ns" get inferenceservice sklearn-iris -o jsonpath='{.status.conditions}' >&2 || true
  tail -20 "$out/controller.log" >&2
  fail "InferenceService not Ready; controller log: $out/controller.log"
fi
"${kubectl[@]}" -n "$ns" get inferenceservice sklearn-iris
"${kubectl[@]}" -n "$ns" get pods -o wide -l serving.kinfer.dev/inferenceservice=sklearn-iris
pod=$("${kubectl[@]}" -n "$ns" get pods -l serving.kinfer.dev/inferenceservice=sklearn-iris -o jsonpath='{.items[0].metadata.name}')
echo "storage initializer's log:"; "${kubectl[@]}" -n "$ns" logs "$pod" -c storage-initializer | tail -3

step "POST /v2/models/sklearn-iris/infer through the Service's ClusterIP"
cip=$("${kubectl[@]}" -n "$ns" get service sklearn-iris -o jsonpath='{.spec.clusterIP}')
body='{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}'
echo "curl http://$cip/v2/models/sklearn-iris/infer  $body"
# kube-proxy adds the new endpoint to its rules a moment after the pod turns Ready.
curl -fsS --max-time 10 --retry 20 --retry-connrefused --retry-delay 1 -H 'Content-Type: application/json' \
  -d "$body" "http://$cip/v2/models/sklearn-iris/infer"
echo

step "the same from a client pod, by DNS name"
url=$("${kubectl[@]}" -n "$ns" get inferenceservice sklearn-iris -o jsonpath='{.status.url}')
"${kubectl[@]}" -n "$ns" delete pod demo-client --ignore-not-found --wait=true >/dev/null
"${kubectl[@]}" -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: demo-client}
spec:
  restartPolicy: Never
  nodeSelector: {kinfer.dev/node: real}
  tolerations: [{key: kinfer.dev/real-node, operator: Exists, effect: NoSchedule}]
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: curl
    image: localhost/kinfer/curl:debian
    args: ["-fsS", "--max-time", "10", "-H", "Content-Type: application/json", "-d", '$body', "$url/v2/models/sklearn-iris/infer"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
for _ in $(seq 1 120); do
  phase=$("${kubectl[@]}" -n "$ns" get pod demo-client -o jsonpath='{.status.phase}')
  case $phase in Succeeded|Failed) break ;; esac
  sleep 0.5
done
echo "curl $url/v2/models/sklearn-iris/infer  (pod demo-client: $phase)"
"${kubectl[@]}" -n "$ns" logs demo-client; echo
[ "$phase" = Succeeded ] || fail "the client pod's request failed (phase ${phase:-unknown})"
step ""

printf '\n== stage times\n'
printf '%s\n' "${times[@]}"
awk -v a="$t_all" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1f s  total\n", b - a }'
echo
echo "demo: done. The cluster is still up: build/cluster/bin/kubectl --kubeconfig build/cluster/kubeconfig -n $ns get kisvc,pods; 'make cluster-down' stops it."
