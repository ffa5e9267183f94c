#!/usr/bin/env bash
# `make cluster-up`: a real Kubernetes control plane on 127.0.0.1, as plain processes:
# etcd, kube-apiserver (TLS, RBAC, PodSecurity, ServiceAccount tokens), kube-controller-manager,
# kube-scheduler, and kwok, which runs one fake node ($cl_node) and plays its pods' lifecycle
# (scheduled pods become Running and Ready; there is no container runtime) for scale tests.
# Then one real node ($nd_name, node/up.sh): containerd, runc, CNI, kubelet, kube-proxy, CoreDNS
# and metrics-server, on which kinfer's images (make images) run as real pods; KINFER_REAL_NODE=0
# leaves it out. Then it installs the third-party CRDs from test/cluster/crds.sh (Gateway API,
# Istio, KEDA ScaledObject).
#
# Writes build/cluster/kubeconfig (admin) and build/cluster/bin/kubectl. Idempotent: when the
# cluster is already up and healthy it returns at once. Any other state (a crashed component,
# stale pid files or data after a crash) is cleaned up: our leftover processes are stopped, the
# data dir is wiped, and the cluster starts fresh. A port held by another process stops it with
# the port and that process named. Paths and ports: see lib.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$cl_here/node/up.sh"
timeout_s=${KINFER_CLUSTER_TIMEOUT:-180}
t0=$(date +%s.%N)
since() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "cluster-up: $*"; }
die() { echo "cluster-up: $*" >&2; exit 1; }

bin=$("$cl_here/build.sh") || die "building the control-plane binaries failed (error above)"
crds=$("$cl_here/crds.sh") || die "extracting the third-party CRDs failed (error above)"
want="base=$cl_base bin=$bin crds=$crds node=$nd_enabled:$("$cl_here/node/build.sh" --print-dir)"
kubectl=("$bin/kubectl" --kubeconfig "$cl_kubeconfig")

cl_lock

# --- already up? ---------------------------------------------------------------------------------
healthy() {
  local env c i
  env=$(cat "$cl_data/cluster.env" 2>/dev/null) || { why="not started"; return 1; }
  [ "$env" = "$want" ] || { why="started with other binaries, ports or CRDs: $env"; return 1; }
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    cl_owned "$(cat "$cl_pids/$c.pid" 2>/dev/null)" || { why="$c is not running"; return 1; }
  done
  if [ "$nd_enabled" = 1 ]; then
    for c in kinfer-registry-stub containerd kubelet kube-proxy coredns metrics-server; do
      cl_owned "$(cat "$cl_pids/$c.pid" 2>/dev/null)" || { why="$c is not running"; return 1; }
    done
  fi
  [ -f "$cl_data/crds.done" ] || { why="CRDs not installed"; return 1; }
  # Every process is there: give a slow answer (a loaded machine) 20 s before restarting, since
  # a restart wipes what other suites have in the cluster.
  for ((i = 0; i < 20; i++)); do
    if ! readyz; then why="kube-apiserver is not ready"
    elif [ "$(node_ready)" != True ]; then why="node $cl_node is not Ready"
    elif [ "$nd_enabled" = 1 ] && ! nd_is_ready; then why="node $nd_name is not Ready"
    else return 0
    fi
    sleep 1
  done
  return 1
}
readyz() {
  curl -sf --max-time 3 --cacert "$cl_pki/ca.crt" --cert "$cl_pki/admin.crt" --key "$cl_pki/admin.key" \
    "https://127.0.0.1:$cl_api_port/readyz" >/dev/null 2>&1
}
node_ready() {
  "${kubectl[@]}" get node "$cl_node" --request-timeout=5s \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true
}
why=""
if healthy; then
  nd_images_refresh
  say "already up and healthy ($cl_kubeconfig)"
  exit 0
fi
if [ -n "$(cl_owned_pids)" ] || [ -d "$cl_data" ] || compgen -G "$cl_pids/*.pid" >/dev/null; then
  say "existing state is not a healthy cluster ($why); stopping leftovers and wiping $cl_data"
fi
cl_stop || die "could not stop the leftover processes listed above; stop them by hand"
rm -rf "$cl_data"

# --- ports -----------------------------------------------------------------------------------------
for spec in "$cl_etcd_port:etcd client" "$cl_peer_port:etcd peer" "$cl_api_port:kube-apiserver"; do
  port=${spec%%:*}
  holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n1)
  if [ -n "$holder" ]; then
    pid=$(grep -o 'pid=[0-9]*' <<<"$holder" | head -n1 | cut -d= -f2 || true)
    who=${pid:+pid $pid ($(ps -o args= -p "$pid" | cut -c1-120))}
    die "port $port (${spec#*:}) on 127.0.0.1 is in use by ${who:-another process}; stop it, or use other ports: KINFER_CLUSTER_PORT_BASE=N make cluster-up (ports N+379, N+380, N+443)"
  fi
done

# --- certificates and kubeconfigs ------------------------------------------------------------------
gen_pki() {
  local d=$cl_state/pki.tmp
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 -subj "/CN=kinfer-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    leaf() { # name subject extensions...
      local n=$1 s=$2; shift 2
      openssl req "${ec[@]}" -keyout "$n.key" -out "$n.csr" -subj "$s"
      openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$n.crt" \
        -extfile <(printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$@")
      rm -f "$n.csr"
    }
    san="DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    san+=",DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
    leaf apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" "subjectAltName=$san"
    leaf admin "/O=system:masters/CN=kinfer-admin" "extendedKeyUsage=clientAuth"
    leaf kcm "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
    leaf scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
    # The real node: its kubelet (client and serving), kube-proxy, the API server's client to the
    # kubelet (also metrics-server's), the aggregation layer's front proxy, metrics-server.
    leaf kubelet-client "/O=system:nodes/CN=system:node:$nd_name" "extendedKeyUsage=clientAuth"
    leaf kubelet-serving "/CN=$nd_name" "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$nd_name,IP:$nd_ip"
    leaf kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
    leaf kubelet-client-admin "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    leaf front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
    leaf metrics-server "/CN=metrics-server" "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:metrics-server.kube-system.svc,IP:$nd_ip"
    # The ServiceAccount token signing pair (RS256, what every client library verifies).
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$cl_state/pki.log" 2>&1 || die "openssl failed; see $cl_state/pki.log"
  rm -rf "$cl_pki"; mv "$d" "$cl_pki"
}
[ -f "$cl_pki/sa.pub" ] && [ -f "$cl_pki/metrics-server.crt" ] || gen_pki

write_kubeconfig() { # file user cert-name
  local tmp=$1.tmp
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kinfer
  cluster:
    server: https://127.0.0.1:$cl_api_port
    certificate-authority-data: $(base64 -w0 "$cl_pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$cl_pki/$3.crt")
    client-key-data: $(base64 -w0 "$cl_pki/$3.key")
contexts:
- name: kinfer
  context:
    cluster: kinfer
    user: $2
current-context: kinfer
EOF
  chmod 600 "$tmp"; mv "$tmp" "$1"
}
write_kubeconfig "$cl_kubeconfig" kinfer-admin admin
write_kubeconfig "$cl_state/kcm.kubeconfig" system:kube-controller-manager kcm
write_kubeconfig "$cl_state/scheduler.kubeconfig" system:kube-scheduler scheduler
mkdir -p "$cl_state/bin" "$cl_logs" "$cl_pids" "$cl_data"
ln -sfn "$bin/kubectl" "$cl_state/bin/kubectl"

# --- processes -------------------------------------------------------------------------------------
# Each component runs in its own session (setsid), so down.sh can end its whole process group;
# its output goes to logs/<name>.log and it inherits no descriptor of ours (make pipes, the lock).
launch() { # name argv...
  local name=$1; shift
  setsid "$@" </dev/null >"$cl_logs/$name.log" 2>&1 9>&- &
  echo $! >"$cl_pids/$name.pid"
}
# wait_until DESCRIPTION LOG COMMAND...: poll COMMAND; fail at once if a component died.
wait_until() {
  local what=$1 log=$2 deadline=$(( $(date +%s) + timeout_s )) c; shift 2
  until "$@"; do
    for c in "${cl_components[@]}"; do
      [ -f "$cl_pids/$c.pid" ] || continue
      cl_owned "$(cat "$cl_pids/$c.pid")" && continue
      tail -n 15 "$cl_logs/$c.log" >&2 || true
      die "$c exited while waiting for $what; see $cl_logs/$c.log"
    done
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 15 "$log" >&2 || true
      die "$what: not reached after ${timeout_s}s; see $log"
    fi
    sleep 0.2
  done
}

launch etcd "$bin/etcd" --name=kinfer --data-dir="$cl_data/etcd" \
  --listen-client-urls="http://127.0.0.1:$cl_etcd_port" --advertise-client-urls="http://127.0.0.1:$cl_etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$cl_peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$cl_peer_port" \
  --initial-cluster="kinfer=http://127.0.0.1:$cl_peer_port" \
  --unsafe-no-fsync --quota-backend-bytes=4294967296 --auto-compaction-retention=1 --log-level=warn

sa_issuer=https://kubernetes.default.svc.cluster.local
launch kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$cl_etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$cl_api_port" \
  --tls-cert-file="$cl_pki/apiserver.crt" --tls-private-key-file="$cl_pki/apiserver.key" \
  --client-ca-file="$cl_pki/ca.crt" \
  --service-account-issuer="$sa_issuer" --api-audiences="$sa_issuer" \
  --service-account-key-file="$cl_pki/sa.pub" --service-account-signing-key-file="$cl_pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true \
  --endpoint-reconciler-type=none --profiling=false --v=1 \
  --kubelet-client-certificate="$cl_pki/kubelet-client-admin.crt" --kubelet-client-key="$cl_pki/kubelet-client-admin.key" \
  --kubelet-certificate-authority="$cl_pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$cl_pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- --enable-aggregator-routing=true \
  --proxy-client-cert-file="$cl_pki/front-proxy-client.crt" --proxy-client-key-file="$cl_pki/front-proxy-client.key"

wait_until "kube-apiserver /readyz" "$cl_logs/kube-apiserver.log" readyz
t_ready=$(since)
say "kube-apiserver ready at https://127.0.0.1:$cl_api_port after ${t_ready}s"

# The controller manager and scheduler give up when the API server is not there within seconds
# of their start, so they start after /readyz. Higher QPS and sync concurrency than the defaults:
# tests create and delete many objects in bursts.
launch kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$cl_state/kcm.kubeconfig" --secure-port=0 --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$cl_pki/sa.key" --root-ca-file="$cl_pki/ca.crt" \
  --cluster-signing-cert-file="$cl_pki/ca.crt" --cluster-signing-key-file="$cl_pki/ca.key" \
  --kube-api-qps=200 --kube-api-burst=400 \
  --concurrent-deployment-syncs=20 --concurrent-replicaset-syncs=20 --concurrent-gc-syncs=50 \
  --concurrent-namespace-syncs=20 --concurrent-serviceaccount-token-syncs=20 \
  --concurrent-horizontal-pod-autoscaler-syncs=10 --profiling=false --v=1
launch kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig="$cl_state/scheduler.kubeconfig" --secure-port=0 --leader-elect=false \
  --kube-api-qps=200 --kube-api-burst=400 --profiling=false --v=1
launch kwok "$bin/kwok" --kubeconfig="$cl_kubeconfig" --config="$bin/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=10.0.0.10

"${kubectl[@]}" apply -f - >/dev/null <<EOF || die "creating node $cl_node failed"
apiVersion: v1
kind: Node
metadata:
  name: $cl_node
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $cl_node
    node-role.kubernetes.io/agent: ""
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "500", ephemeral-storage: 500Gi}
  allocatable: {cpu: "32", memory: 256Gi, pods: "500", ephemeral-storage: 500Gi}
EOF

# The CRDs go in while kwok brings the node up. etcd is empty here, so `create`: server-side apply
# of these large schemas costs the API server twice the time.
"${kubectl[@]}" create -f "$crds" -o name \
  >"$cl_data/crds.applied" 2>"$cl_logs/crds.log" 9>&- &
crd_job=$!

node_is_ready() { [ "$(node_ready)" = True ]; }
wait_until "node $cl_node Ready" "$cl_logs/kwok.log" node_is_ready
t_node=$(since)
say "node $cl_node Ready after ${t_node}s"

nd_up

wait "$crd_job" || die "applying the third-party CRDs from $crds failed; see $cl_logs/crds.log"
crd_names=$(grep '^customresourcedefinition' "$cl_data/crds.applied" || true)
[ -n "$crd_names" ] || die "no CRD in $crds was applied; see $cl_logs/crds.log"
# shellcheck disable=SC2086
"${kubectl[@]}" wait --for=condition=Established --timeout="${timeout_s}s" $crd_names >>"$cl_logs/crds.log" 2>&1 \
  || die "third-party CRDs not Established; see $cl_logs/crds.log"
touch "$cl_data/crds.done"
echo "$want" >"$cl_data/cluster.env"
say "up in $(since)s: $(wc -l <<<"$crd_names") CRDs Established; KUBECONFIG=$cl_kubeconfig, kubectl: $cl_state/bin/kubectl"
