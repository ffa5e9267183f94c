#!/usr/bin/env bash
# Builds the real node's binaries from their Go modules, once per version, into
# $KINFER_CACHE/node-<versions>-<hash>/bin:
#   containerd, containerd-shim-runc-v2, ctr   github.com/containerd/containerd/v2
#   runc                                       github.com/opencontainers/runc (cgo, -tags seccomp)
#   coredns                                    github.com/coredns/coredns
#   metrics-server                             sigs.k8s.io/metrics-server
# kubelet and kube-proxy come from ../build.sh (the control plane's k8s.io/kubernetes module); the
# CNI plugins (bridge, host-local, loopback, portmap) from Debian's containernetworking-plugins.
# Each command is built with `go install MODULE/PKG@VERSION`, which builds inside that module with
# its own go.mod and go.sum (none of these has replace lines), checked against the checksum
# database. The hash covers this script and the Go version; a build goes to a temporary directory
# renamed at the end, so a failed build never leaves a half-filled cache.
# Prints the bin directory on stdout. Usage: test/cluster/node/build.sh [--print-dir]
set -euo pipefail
cache=${KINFER_CACHE:-$HOME/.cache/kinfer}
export PATH=$PATH:/usr/local/go/bin
export GOFLAGS=${GOFLAGS:--buildvcs=false}
command -v go >/dev/null || { echo "node/build.sh: go not found" >&2; exit 1; }

containerd_ver=v2.4.2
runc_ver=v1.5.3
coredns_ver=v1.15.0
metrics_server_ver=v0.9.0   # v0.9.1 needs go 1.26.10; this machine's Go is older

hash=$( { cat "$0"; go env GOVERSION; } | sha256sum | cut -c1-12)
dir=$cache/node-containerd-$containerd_ver-runc-$runc_ver-$hash
bin=$dir/bin
if [ "${1:-}" = "--print-dir" ] || [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.node-build.lock"
flock 9
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi
tmp=$(mktemp -d "$cache/.node-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "node/build.sh: building containerd $containerd_ver, runc $runc_ver, coredns $coredns_ver, metrics-server $metrics_server_ver into $dir" >&2

build() { # CGO TAGS LDFLAGS MODULE[/PKG]@VERSION
  local cgo=$1 tags=$2 ld=$3 what=$4
  CGO_ENABLED=$cgo GOBIN=$tmp/bin go install ${tags:+-tags "$tags"} -ldflags "-s -w $ld" "$what" \
    || { echo "node/build.sh: go install $what failed (error above)" >&2; exit 1; }
}
ctrd=github.com/containerd/containerd/v2
ctrd_ld="-X $ctrd/version.Version=$containerd_ver -X $ctrd/version.Package=$ctrd"
for c in containerd containerd-shim-runc-v2 ctr; do
  build 0 "" "$ctrd_ld" "$ctrd/cmd/$c@$containerd_ver"
done
# runc's nsenter is C, and its seccomp support links libseccomp (libseccomp-dev, scripts/deps.sh).
build 1 seccomp "-X main.version=${runc_ver#v}" "github.com/opencontainers/runc@$runc_ver"
build 0 "" "" "github.com/coredns/coredns@$coredns_ver"
build 0 "" "-X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$metrics_server_ver" \
  "sigs.k8s.io/metrics-server/cmd/metrics-server@$metrics_server_ver"

for b in containerd containerd-shim-runc-v2 ctr runc coredns metrics-server; do
  [ -x "$tmp/bin/$b" ] || { echo "node/build.sh: $b was not produced" >&2; exit 1; }
done
touch "$tmp/bin/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "node/build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
