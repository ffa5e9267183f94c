# Shared by up.sh, down.sh and env.sh (sourced, not run): where the local control plane keeps its
# state, which ports it uses, and how it recognises the processes it owns.
#
#   KINFER_CLUSTER_DIR        state directory (default build/cluster): pki, kubeconfigs, data, logs,
#                             pids. Every component's command line names a path under it, which is
#                             how a process is recognised as ours.
#   KINFER_CLUSTER_PORT_BASE  loopback ports: etcd client BASE+379, etcd peer BASE+380,
#                             kube-apiserver BASE+443 (default 26000: 26379, 26380, 26443).
#                             Stay below the ephemeral port range (32768+), where an outgoing
#                             connection may hold the port.
#                             kube-controller-manager, kube-scheduler and kwok serve no port.

cl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cl_here=$cl_root/test/cluster
cl_state=${KINFER_CLUSTER_DIR:-$cl_root/build/cluster}
case $cl_state in /*) ;; *) cl_state=$cl_root/$cl_state ;; esac
cl_state=${cl_state%/}
cl_base=${KINFER_CLUSTER_PORT_BASE:-26000}
[[ $cl_base =~ ^[0-9]+$ ]] && [ "$cl_base" -ge 1024 ] && [ "$cl_base" -le 65000 ] \
  || { echo "cluster: KINFER_CLUSTER_PORT_BASE must be a number in 1024..65000, got '$cl_base'" >&2; exit 2; }
cl_etcd_port=$((cl_base + 379))
cl_peer_port=$((cl_base + 380))
cl_api_port=$((cl_base + 443))
cl_pki=$cl_state/pki
cl_data=$cl_state/data
cl_logs=$cl_state/logs
cl_pids=$cl_state/pids
cl_kubeconfig=$cl_state/kubeconfig
cl_components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
cl_node=kwok-node-0
source "$cl_here/node/lib.sh"
source "$cl_here/node/down.sh"
cl_components+=("${nd_components[@]}")

# cl_owned PID: true when PID is a live (not zombie) control-plane component of this state dir.
cl_owned() {
  local pid=$1 st argv0 cmd c
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  st=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] && [ "$st" != X ] || return 1
  cmd=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  argv0=$(basename "$(head -n1 <<<"$cmd")")
  [[ $cmd == *"$cl_state/"* ]] || return 1
  for c in "${cl_components[@]}"; do [ "$argv0" = "$c" ] && return 0; done
  return 1
}

# cl_owned_pids: every live process of ours, from the pid files and, for a lost pid file,
# from the process table.
cl_owned_pids() {
  local f p
  {
    for f in "$cl_pids"/*.pid; do [ -f "$f" ] && cat "$f"; done
    pgrep -f -- "$cl_state/" || true
  } | sort -un | while read -r p; do cl_owned "$p" && echo "$p"; done
}

# cl_stop: stops every process of ours in waves, clients first, so the API server does not sit
# in its shutdown retrying etcd: the real node's agents (kubelet first, so it restarts nothing),
# then the pods' processes (by cgroup: containers outlive their shims), then containerd and its
# shims; kwok, controller manager, scheduler; then kube-apiserver; then etcd. Each wave: TERM to
# the process group, KILL after 10 s. Fails if any survive.
cl_stop() {
  local wave p
  cl_stop_wave "kubelet kube-proxy metrics-server coredns kinfer-registry-stub" || return 1
  if [ "$(nd_owner)" = "$cl_state" ]; then nd_kill_pods || return 1; fi
  for wave in "containerd-shim-runc-v2 containerd" "kwok kube-controller-manager kube-scheduler" kube-apiserver "etcd"; do
    cl_stop_wave "$wave" || return 1
  done
  cl_stop_wave "" || return 1   # anything of ours with another name (an older layout)
  rm -f "$cl_pids"/*.pid
}
cl_pids_named() { # NAMES ("" = all): our live pids whose program is one of NAMES
  local p n
  for p in $(cl_owned_pids); do
    n=$(basename "$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n1)")
    [ -z "$1" ] || [[ " $1 " == *" $n "* ]] && echo "$p"
  done
  return 0
}
cl_stop_wave() {
  local names=$1 victims left p i
  victims=$(cl_pids_named "$names")
  [ -n "$victims" ] || return 0
  for p in $victims; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    left=$(cl_pids_named "$names"); [ -z "$left" ] && return 0
    sleep 0.1
  done
  for p in $left; do
    echo "cluster: $(basename "$(ps -o comm= -p "$p")") (pid $p) did not stop on TERM in 10 s; sending KILL" >&2
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  done
  for ((i = 0; i < 50; i++)); do
    left=$(cl_pids_named "$names"); [ -z "$left" ] && return 0
    sleep 0.1
  done
  echo "cluster: could not stop: $(ps -o pid=,args= -p "${left//$'\n'/,}" 2>/dev/null | cut -c1-160)" >&2
  return 1
}

# cl_lock: serialise up.sh/down.sh on one state dir (suites call `make cluster-up` on their own).
cl_lock() {
  mkdir -p "$cl_state"
  exec 9>"$cl_state/.lock"
  flock -w 600 9 || { echo "cluster: timed out waiting for $cl_state/.lock" >&2; exit 1; }
}
