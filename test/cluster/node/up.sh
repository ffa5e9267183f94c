# The real node (sourced by ../up.sh once the control plane answers; uses its launch, wait_until,
# say and die). nd_up starts, in order: the pod bridge and the node's nftables table, containerd
# (with runc and the CNI plugins), the kinfer images imported into it, CoreDNS, the kubelet,
# kube-proxy (nftables mode) and metrics-server, then waits for the node to be Ready. Names,
# addresses and what is machine-wide: lib.sh. cluster-down undoes all of it (down.sh).

nd_fail() { # MESSAGE: stop what was started, then die
  nd_down_all "$cl_state" >&2 || true
  die "$*"
}

nd_preflight() {
  local p owner
  for p in bridge host-local loopback portmap; do
    [ -x "$nd_cni_bin/$p" ] || die "CNI plugin $nd_cni_bin/$p is missing (scripts/deps.sh test installs containernetworking-plugins)"
  done
  command -v nft >/dev/null || die "nft is missing (scripts/deps.sh test installs nftables)"
  for p in "${nd_images[@]}"; do
    p=${p%% *}
    [ -f "$cl_root/build/images/$p/index.json" ] \
      || die "image layout build/images/$p is missing: run 'make images' (make cluster-up does it first)"
  done
  owner=$(nd_owner)
  if [ -n "$owner" ] && [ "$owner" != "$cl_state" ]; then
    if [ -n "$(KINFER_CLUSTER_DIR=$owner bash -c 'source "$0"; cl_owned_pids' "$cl_here/lib.sh")" ]; then
      die "the real node belongs to the cluster in $owner; run 'make cluster-down' with KINFER_CLUSTER_DIR=$owner, or start this one without it: KINFER_REAL_NODE=0"
    fi
    say "the real node of $owner was left behind by a crash; cleaning it up"
    nd_down_all "$owner" || die "could not clean up the real node left by $owner (messages above)"
  fi
  # Left by a crash of our own: our processes were stopped by cl_stop; the rest goes now.
  nd_down_all "$cl_state" || die "could not clean up this cluster's earlier real node (messages above)"
}

# nd_sysctls_set: save the values (and the nftables tables there are) once: a crash keeps the
# first save, the true originals; then set what the node needs. The kubelet sets its own (vm.overcommit_memory, kernel.panic, ...).
nd_sysctls_set() {
  local k
  mkdir -p "$nd_run"
  if [ ! -f "$nd_run/sysctl.saved" ]; then
    for k in "${nd_sysctls[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$nd_run/sysctl.saved.tmp"
    mv "$nd_run/sysctl.saved.tmp" "$nd_run/sysctl.saved"
  fi
  # The nftables tables there were before, so that cluster-down removes only what the node made
  # (its own table, kube-proxy's, and any iptables-nft table a component created).
  [ -f "$nd_run/nft.before" ] || nft list tables >"$nd_run/nft.before"
  # containerd makes /run/containerd (its shims' sockets) whatever its state dir: cluster-down
  # removes it again when it was not there before.
  [ -f "$nd_run/run.before" ] || { [ -e /run/containerd ] && echo /run/containerd || true; } >"$nd_run/run.before"
  echo "$cl_state" >"$nd_run/owner"
  sysctl -qw net.ipv4.ip_forward=1
}

nd_network() {
  ip link add "$nd_bridge" type bridge || nd_fail "creating bridge $nd_bridge failed"
  ip addr add "$nd_ip/${nd_pod_cidr#*/}" dev "$nd_bridge"
  ip link set "$nd_bridge" up
  # Pods reach the API server through the kubernetes Service (10.96.0.1:443), which is
  # translated here to the loopback address it listens on; route_localnet lets the bridge accept it.
  sysctl -qw "net.ipv4.conf.$nd_bridge.route_localnet=1"
  nft -f - <<NFT || nd_fail "loading nftables table inet $nd_table failed"
table inet $nd_table {
  chain prerouting {
    type nat hook prerouting priority dstnat - 10; policy accept;
    iifname "$nd_bridge" ip daddr 10.96.0.1 tcp dport 443 dnat ip to 127.0.0.1:$cl_api_port
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr $nd_pod_cidr ip daddr != $nd_pod_cidr counter drop comment "pod traffic never leaves this machine"
    iifname "$nd_bridge" meta nfproto ipv6 counter drop
  }
  chain postrouting {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname != { "$nd_bridge", "lo" } ip saddr $nd_pod_cidr counter drop
  }
  # kwok's nodes and pods are fakes whose addresses (node 10.0.0.10, pods 10.244.0.0/16) are not
  # on this machine: a component that tries to reach them (metrics-server scraping every node,
  # a scrape of a fake pod) is refused here instead of sending packets out of the machine.
  chain output {
    type filter hook output priority filter - 10; policy accept;
    ip daddr { 10.0.0.10, 10.244.0.0/16 } counter reject comment "kwok's fake addresses"
  }
}
NFT
  mkdir -p "$nd_dir/cni/net.d"
  cat >"$nd_dir/cni/net.d/10-kinfer.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "kinfer",
  "plugins": [
    {"type": "bridge", "bridge": "$nd_bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$nd_dir/cni/ipam",
              "ranges": [[{"subnet": "$nd_pod_cidr", "gateway": "$nd_ip"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

nd_containerd() {
  local c
  mkdir -p "$nd_dir/containerd"
  # Pod cgroups go under /$nd_cgroup in every v1 hierarchy (kubelet's cgroupRoot must exist).
  for c in /sys/fs/cgroup/*/; do
    [ "$c" = /sys/fs/cgroup/unified/ ] && continue
    mkdir -p "$c$nd_cgroup"
  done
  cat >"$nd_dir/containerd/config.toml" <<TOML
version = 3
root = "$nd_dir/containerd/root"
state = "$nd_dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$nd_sock"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[ttrpc]
  address = "$nd_sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$nd_pause_image"
  # Every registry resolves to registry_stub.py: nothing is pulled from outside this machine.
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$nd_dir/containerd/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  # CAP_SYS_RESOURCE is not in this machine's bounding set: a negative oom_score_adj fails runc.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$nbin/runc"
      Root = "$nd_dir/containerd/runc"
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$nd_cni_bin"]
    conf_dir = "$nd_dir/cni/net.d"
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
  mkdir -p "$nd_dir/containerd/certs.d/_default"
  cat >"$nd_dir/containerd/certs.d/_default/hosts.toml" <<TOML
server = "http://127.0.0.1:$nd_registry_port"
[host."http://127.0.0.1:$nd_registry_port"]
  capabilities = ["pull", "resolve"]
TOML
  # argv0 names it, so cl_owned knows it as ours (its ready file is under $cl_state); Debian's
  # python3, not a wrapper on PATH that would exec another interpreter and lose that name.
  rm -f "$nd_dir/registry.ready"
  launch kinfer-registry-stub bash -c 'exec -a kinfer-registry-stub /usr/bin/python3 "$@"' _ \
    "$cl_here/node/registry_stub.py" 127.0.0.1 "$nd_registry_port" "$nd_dir/registry.ready"
  wait_until "the registry stub" "$cl_logs/kinfer-registry-stub.log" test -f "$nd_dir/registry.ready"
  PATH=$nbin:$PATH launch containerd "$nbin/containerd" --config "$nd_dir/containerd/config.toml"
  wait_until "containerd's socket" "$cl_logs/containerd.log" nd_containerd_answers
}
nd_containerd_answers() { "$nbin/ctr" --address "$nd_sock" version >/dev/null 2>&1; }

# nd_images_key: what the layouts hold (their index.json digests), to re-import only on change.
nd_images_key() {
  local spec
  for spec in "${nd_images[@]}"; do sha256sum "$cl_root/build/images/${spec%% *}/index.json"; done 2>/dev/null | sha256sum
}
# nd_images_refresh: on an already running node, import the images again when `make images`
# rebuilt them (a running cluster keeps serving; pods created later get the new image).
nd_images_refresh() {
  [ "$nd_enabled" = 1 ] || return 0
  [ "$(nd_images_key)" = "$(cat "$nd_dir/images.key" 2>/dev/null)" ] && return 0
  nbin=$("$cl_here/node/build.sh") || die "building the real node's binaries failed (error above)"
  say "images changed since they were imported; importing them again"
  nd_images_import
}

nd_images_import() {
  local spec layout names base n ctr=("$nbin/ctr" --address "$nd_sock" -n k8s.io)
  for spec in "${nd_images[@]}"; do
    read -r layout names <<<"$spec"
    # The layout's one manifest is tagged "latest" (oci-image.sh); --base-name names it
    # <base>:latest, which is then tagged with every name the image is known by.
    base=${names%% *}; base=${base%:*}
    tar -C "$cl_root/build/images/$layout" -cf "$nd_dir/$layout.tar" . \
      && "${ctr[@]}" images import --base-name "$base" "$nd_dir/$layout.tar" >>"$cl_logs/images.log" 2>&1 \
      || nd_fail "importing build/images/$layout into containerd failed; see $cl_logs/images.log"
    rm -f "$nd_dir/$layout.tar"
    for n in $names; do
      [ "$n" = "$base:latest" ] && continue
      "${ctr[@]}" images tag --force "$base:latest" "$n" >>"$cl_logs/images.log" 2>&1 \
        || nd_fail "tagging $base:latest as $n failed; see $cl_logs/images.log"
    done
    [[ " $names " == *" $base:latest "* ]] || "${ctr[@]}" images rm "$base:latest" >>"$cl_logs/images.log" 2>&1
  done
  nd_images_key >"$nd_dir/images.key"
}

# CoreDNS answers cluster.local names on the node's address, behind the kube-dns Service (no
# selector; its EndpointSlice names that address). It forwards nothing: a pod's name lookup
# never leaves this machine.
nd_coredns() {
  cat >"$nd_dir/Corefile" <<COREFILE
.:53 {
    bind $nd_ip
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $cl_kubeconfig kinfer
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
COREFILE
  launch coredns "$nbin/coredns" -conf "$nd_dir/Corefile"
  nd_host_service kube-dns "$nd_dns_ip" '[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}]'
}

# nd_host_service NAME CLUSTER_IP PORTS_JSON: a kube-system Service without a selector whose one
# endpoint is the node's address (a component that runs as a process of cluster-up).
nd_host_service() {
  local name=$1 cip=$2 ports=$3
  "${kubectl[@]}" apply -f - >>"$cl_logs/node-objects.log" 2>&1 <<YAML || nd_fail "creating Service kube-system/$name failed; see $cl_logs/node-objects.log"
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: kube-system, labels: {k8s-app: $name}}
spec:
  ${cip:+clusterIP: $cip}
  ports: $(python3 -c 'import json,sys; print(json.dumps([{k: v for k, v in p.items()} for p in json.loads(sys.argv[1])]))' "$ports")
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: $name, endpointslice.kubernetes.io/managed-by: kinfer-cluster-up}
addressType: IPv4
endpoints: [{addresses: ["$nd_ip"], conditions: {ready: true}, nodeName: $nd_name}]
ports: $(python3 -c 'import json,sys; print(json.dumps([{"name": p["name"], "port": p.get("targetPort", p["port"]), "protocol": p["protocol"]} for p in json.loads(sys.argv[1])]))' "$ports")
YAML
}

nd_kubelet() {
  mkdir -p "$nd_dir/kubelet" "$nd_dir/pod-logs"
  write_kubeconfig "$nd_dir/kubelet.kubeconfig" "system:node:$nd_name" kubelet-client
  cat >"$nd_dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on this machine: kubelet >= 1.35 refuses it unless told (KEP-5573).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$nd_cgroup
containerRuntimeEndpoint: unix://$nd_sock
address: $nd_ip
port: $nd_kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $cl_pki/kubelet-serving.crt
tlsPrivateKeyFile: $cl_pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $cl_pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$nd_dns_ip]
# No host resolver in pods: names outside cluster.local do not resolve (nothing leaves the machine).
resolvConf: ""
podLogsDir: $nd_dir/pod-logs
staticPodPath: ""
registerNode: true
registerWithTaints: [{key: $nd_taint_key, value: "true", effect: NoSchedule}]
failSwapOn: false
# No iptables chains from the kubelet (hint, canary, and a KUBE-FIREWALL that drops DNAT to
# 127.0.0.0/8, which is how pods reach the API server here; see nd_network).
makeIPTablesUtilChains: false
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 20s
syncFrequency: 10s
fileCheckFrequency: 0s
shutdownGracePeriod: 0s
YAML
  launch kubelet "$kbin/kubelet" --config="$nd_dir/kubelet.yaml" --kubeconfig="$nd_dir/kubelet.kubeconfig" \
    --root-dir="$nd_dir/kubelet" --cert-dir="$nd_dir/kubelet/pki" --hostname-override="$nd_name" \
    --node-ip="$nd_ip" --node-labels="$nd_label" --v=1
}

nd_kube_proxy() {
  write_kubeconfig "$nd_dir/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  cat >"$nd_dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: $nd_dir/kube-proxy.kubeconfig}
hostnameOverride: $nd_name
bindAddress: $nd_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $nd_pod_cidr
# NodePorts only on the node's own (bridge) address, never on the machine's real interfaces.
nodePortAddresses: ["$nd_ip/32"]
# Leave the machine's conntrack settings as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  PATH=/usr/sbin:/sbin:$PATH launch kube-proxy "$kbin/kube-proxy" --config="$nd_dir/kube-proxy.yaml" --v=1
}

# metrics-server reads the kubelet's resource metrics and serves metrics.k8s.io through the API
# server's aggregation layer (front-proxy client certificate, --enable-aggregator-routing).
nd_metrics_server() {
  launch metrics-server "$nbin/metrics-server" --kubeconfig="$cl_kubeconfig" \
    --authentication-kubeconfig="$cl_kubeconfig" --authorization-kubeconfig="$cl_kubeconfig" \
    --bind-address="$nd_ip" --secure-port="$nd_metrics_port" \
    --tls-cert-file="$cl_pki/metrics-server.crt" --tls-private-key-file="$cl_pki/metrics-server.key" \
    --kubelet-certificate-authority="$cl_pki/ca.crt" \
    --kubelet-client-certificate="$cl_pki/kubelet-client-admin.crt" --kubelet-client-key="$cl_pki/kubelet-client-admin.key" \
    --kubelet-preferred-address-types=InternalIP --node-selector="$nd_label" --metric-resolution=15s --v=1
  nd_host_service metrics-server "" "[{\"name\":\"https\",\"port\":443,\"targetPort\":$nd_metrics_port,\"protocol\":\"TCP\"}]"
  "${kubectl[@]}" apply -f - >>"$cl_logs/node-objects.log" 2>&1 <<YAML || nd_fail "creating the metrics.k8s.io APIService failed; see $cl_logs/node-objects.log"
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(base64 -w0 "$cl_pki/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
}

nd_up() {
  local t0n
  [ "$nd_enabled" = 1 ] || { say "no real node (KINFER_REAL_NODE=$nd_enabled)"; return 0; }
  t0n=$(date +%s.%N)
  nbin=$("$cl_here/node/build.sh") || die "building the real node's binaries failed (error above)"
  kbin=$bin
  nd_preflight
  nd_sysctls_set
  nd_network
  nd_containerd
  nd_images_import
  nd_coredns
  nd_kubelet
  nd_kube_proxy
  nd_metrics_server
  wait_until "node $nd_name Ready" "$cl_logs/kubelet.log" nd_is_ready
  say "real node $nd_name Ready after $(awk -v a="$t0n" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s (containerd $("$nbin/containerd" --version | awk '{print $3}'), kubelet $("$kbin/kubelet" --version | awk '{print $2}'))"
}
nd_is_ready() {
  [ "$("${kubectl[@]}" get node "$nd_name" --request-timeout=5s \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
