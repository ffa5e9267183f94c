# Tearing down the real node (sourced by ../lib.sh; used by cluster-down and by cluster-up after a
# crash). The node's processes are stopped by cl_stop like the control plane's; what is left is
# machine state, removed here: the pods' processes (by cgroup), mounts under the node's state
# dir, the cgroups, the bridge, the nftables tables, and the sysctls, restored to their saved
# values. Each step is idempotent, so a half-finished teardown can simply be run again.

# nd_kill_pods: SIGKILL every process in the pods' cgroups (containers outlive their shims).
nd_kill_pods() {
  local i procs
  for ((i = 0; i < 50; i++)); do
    procs=$(find /sys/fs/cgroup/*/"$nd_cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -n "$procs" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $procs 2>/dev/null || true
    sleep 0.1
  done
  echo "cluster: pod processes survived SIGKILL: $procs" >&2
  return 1
}

# nd_down_all STATE_DIR: everything but the processes, for the node that STATE_DIR's cluster ran.
nd_down_all() {
  local state=$1 rc=0 m c d k v
  local node=$state/node
  nd_kill_pods || rc=1
  # Mounts under the node's state (container rootfs, netns, pod volumes), deepest first.
  for m in $(awk -v p="$node/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || { echo "cluster: cannot unmount $m" >&2; rc=1; }
  done
  for c in /sys/fs/cgroup/*/"$nd_cgroup"; do
    [ -d "$c" ] || continue
    find "$c" -depth -mindepth 0 -type d -exec rmdir {} + 2>/dev/null
    [ ! -d "$c" ] || { echo "cluster: cannot remove cgroup $c" >&2; rc=1; }
  done
  if ip link show "$nd_bridge" >/dev/null 2>&1; then
    ip link del "$nd_bridge" || { echo "cluster: cannot delete bridge $nd_bridge" >&2; rc=1; }
  fi
  # Tables that were not there before cluster-up (node/up.sh saved the list): ours, kube-proxy's,
  # and iptables-nft tables a component created.
  while read -r t; do
    [ -n "$t" ] || continue
    if [ -f "$nd_run/nft.before" ] && grep -qxF "table $t" "$nd_run/nft.before"; then continue; fi
    # shellcheck disable=SC2086
    nft delete table $t || { echo "cluster: cannot delete nft table $t" >&2; rc=1; }
  done < <(nft list tables 2>/dev/null | awk '$1 == "table" && ($3 == "'"$nd_table"'" || $3 == "kube-proxy" ||
                                                    ($2 ~ /^ip6?$/ && $3 ~ /^(filter|nat|mangle|raw|security)$/)) { print $2, $3 }')
  if [ -f "$nd_run/run.before" ] && [ "$rc" = 0 ] && ! grep -qx /run/containerd "$nd_run/run.before"; then
    find /run/containerd -depth -type d -empty -delete 2>/dev/null || true
    [ ! -e /run/containerd ] || { echo "cluster: /run/containerd is not empty; left in place" >&2; }
  fi
  if [ -f "$nd_run/sysctl.saved" ] && [ "$rc" = 0 ]; then
    while IFS='=' read -r k v; do
      sysctl -qw "$k=$v" || { echo "cluster: cannot restore sysctl $k=$v" >&2; rc=1; }
    done <"$nd_run/sysctl.saved"
    [ "$rc" = 0 ] && rm -f "$nd_run/sysctl.saved" "$nd_run/nft.before" "$nd_run/run.before"
  fi
  if [ "$rc" = 0 ]; then
    [ "$(nd_owner)" = "$state" ] && rm -f "$nd_run/owner"
    rmdir "$nd_run" 2>/dev/null || true
    # containerd's snapshots and the kubelet's pod dirs: root-owned files a non-root user cannot remove.
    rm -rf "$node"
  fi
  return $rc
}
