# The real node's names, addresses and bookkeeping; sourced by ../lib.sh after its own settings.
#
# There is one real node per machine: kube-proxy's nftables tables ("ip kube-proxy", "ip6
# kube-proxy"), the kubelet's port and the pod bridge are machine-wide. The cluster that started
# it is recorded in $nd_run/owner; another state dir's cluster-up refuses to start a second one
# (KINFER_REAL_NODE=0 brings up a control plane with kwok nodes only).
#
#   network  pods 10.88.0.0/24 on bridge $nd_bridge (10.88.0.1, also the node's InternalIP),
#            Services 10.96.0.0/16 (the API server's range), cluster DNS 10.96.0.10 -> CoreDNS on
#            10.88.0.1:53. All of it exists only on this machine: table "inet $nd_table" drops
#            whatever a pod sends anywhere but the pod network (Service traffic is already
#            translated to pod addresses when the forward hook sees it) and this host.
#   state    $cl_state/node: containerd's root and state, the kubelet's root dir, pod logs,
#            CNI config; netns mounts under containerd's state dir. Pods' cgroups live under
#            /$nd_cgroup in every v1 hierarchy.
#   sysctls  the values before cluster-up, saved once in $nd_run/sysctl.saved and restored by
#            cluster-down: ip_forward (pod Service traffic is routed), and what the kubelet sets.

nd_enabled=${KINFER_REAL_NODE:-1}
nd_name=kinfer-node-real
nd_label=kinfer.dev/node=real
nd_taint_key=kinfer.dev/real-node
nd_bridge=kinfer0
nd_ip=10.88.0.1
nd_pod_cidr=10.88.0.0/24
nd_dns_ip=10.96.0.10
nd_table=kinfer-node
nd_cgroup=kinfer-node
nd_run=/run/kinfer-node
nd_dir=$cl_state/node
nd_sock=$nd_dir/containerd/containerd.sock
nd_cni_bin=/usr/lib/cni
nd_kubelet_port=10250
nd_metrics_port=4443
nd_registry_port=$((cl_base + 500))
nd_components=(containerd kubelet kube-proxy coredns metrics-server kinfer-registry-stub containerd-shim-runc-v2)
nd_sysctls=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
            kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# The images the node runs, as `make images` writes them (OCI layouts), and the names they are
# imported under: the chart's defaults (appVersion), the controller's --runtime-image default, and
# the sandbox image containerd is configured with.
nd_app_version=$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' "$cl_root/charts/kinfer/Chart.yaml")
nd_pause_image=localhost/kinfer/pause:1.0
nd_images=(
  "kinfer-server-oci docker.io/kinfer/kinfer-server:$nd_app_version docker.io/library/kinfer-server:latest"
  "kinfer-controller-oci docker.io/kinfer/kinfer-controller:$nd_app_version"
  "pause-oci $nd_pause_image"
  "curl-oci localhost/kinfer/curl:debian"
)

# nd_owner: the state dir whose cluster runs the node ("" when none is recorded).
nd_owner() { cat "$nd_run/owner" 2>/dev/null || true; }
