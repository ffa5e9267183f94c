#!/usr/bin/env bash
# Builds the local control plane's binaries from the pinned Go modules, once:
#   etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy (tools/k8s)
#   kwok, plus kwok's stage YAML (node/pod lifecycle) as kwok-stages.yaml (tools/kwok)
# into $KINFER_CACHE/k8s-<k8s version>-kwok-<kwok version>-<hash>/bin, where the hash covers the
# tools' go.mod/go.sum, the etcd main, this script and the Go version. When that directory exists
# the script only prints it (fast path). A build goes to a temporary directory that is renamed at
# the end, so a failed or interrupted build never leaves a half-filled cache.
# Prints the bin directory on stdout; go's own messages (errors included, verbatim) go to stderr.
# Usage: test/cluster/build.sh [--print-dir]   (--print-dir: print the directory, build nothing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/tools
cache=${KINFER_CACHE:-$HOME/.cache/kinfer}
export PATH=$PATH:/usr/local/go/bin
export GOFLAGS=${GOFLAGS:--buildvcs=false}

command -v go >/dev/null || { echo "build.sh: go not found (looked on PATH and in /usr/local/go/bin)" >&2; exit 1; }

# The versions come from go.mod itself, so the directory name cannot drift from what is built.
modver() { awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"; }
k8s_ver=$(modver "$tools/k8s/go.mod" k8s.io/kubernetes)
kwok_ver=$(modver "$tools/kwok/go.mod" sigs.k8s.io/kwok)
[ -n "$k8s_ver" ] && [ -n "$kwok_ver" ] \
  || { echo "build.sh: cannot read the k8s.io/kubernetes / sigs.k8s.io/kwok versions from $tools/*/go.mod" >&2; exit 1; }
go_ver=$(go env GOVERSION)
hash=$( { cat "$tools/k8s/go.mod" "$tools/k8s/go.sum" "$tools/k8s/cmd/etcd/main.go" \
              "$tools/kwok/go.mod" "$tools/kwok/go.sum" "$0"; echo "$go_ver"; } | sha256sum | cut -c1-12)
dir=$cache/k8s-$k8s_ver-kwok-$kwok_ver-$hash
bin=$dir/bin

if [ "${1:-}" = "--print-dir" ] || [ -f "$bin/.complete" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
# One build at a time (several suites may call this at once); the second one finds it done.
exec 9>"$cache/.k8s-build.lock"
flock 9
if [ -f "$bin/.complete" ]; then echo "$bin"; exit 0; fi
tmp=$(mktemp -d "$cache/.k8s-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "build.sh: building the control plane ($k8s_ver, kwok $kwok_ver) into $dir" >&2

# The flags match the cache warm-up build (plain `go build`, no -trimpath): compile results are
# shared through GOCACHE. -ldflags touches only the link step, so it costs no cache hits; it gives
# the binaries their real version, which clients (kubectl, helm's kubeVersion checks) read.
vpkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags=""
minor=${k8s_ver#v1.}; minor=${minor%%.*}
for p in "${vpkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$k8s_ver -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

(cd "$tools/k8s" && go mod download) \
  || { echo "build.sh: 'go mod download' failed in $tools/k8s (error above)" >&2; exit 1; }
(cd "$tools/k8s" && go build -ldflags "$ldflags" -o "$tmp/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy ./cmd/etcd) \
  || { echo "build.sh: go build failed in $tools/k8s (error above)" >&2; exit 1; }
(cd "$tools/kwok" && go mod download) \
  || { echo "build.sh: 'go mod download' failed in $tools/kwok (error above)" >&2; exit 1; }
(cd "$tools/kwok" && go build -o "$tmp/bin/" sigs.k8s.io/kwok/cmd/kwok) \
  || { echo "build.sh: go build failed in $tools/kwok (error above)" >&2; exit 1; }

# kwok runs no lifecycle without stages. Its module ships them as YAML (the set kwokctl uses by
# default: node initialize + lease heartbeat, pod ready/complete/delete); keep a copy with the
# binaries so running the cluster never needs the module cache.
kwok_dir=$(cd "$tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
stages=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
for s in "${stages[@]}"; do
  f=$kwok_dir/kustomize/stage/$s
  [ -f "$f" ] || { echo "build.sh: kwok stage $f not found in the kwok module" >&2; exit 1; }
  printf -- '---\n'; cat "$f"
done >"$tmp/bin/kwok-stages.yaml"

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok; do
  [ -x "$tmp/bin/$b" ] || { echo "build.sh: $b was not produced" >&2; exit 1; }
done
touch "$tmp/bin/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
