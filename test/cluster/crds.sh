#!/usr/bin/env bash
# Extracts the third-party CRDs that kinfer's controller writes objects of, from the projects' own
# Go modules (no hand-copied YAML), into one bundle cached at $KINFER_CACHE/crds-<hash>/, and
# prints the bundle's path. up.sh applies it. A failed module download stops with go's error.
#   Gateway API, standard channel   (HTTPRoute weights for canaries; plus its safe-upgrades policy)
#   Istio networking.istio.io (VirtualService, DestinationRule, ...; the other istio groups are
#   left out: each CRD costs the API server startup time)
#   KEDA ScaledObject
set -euo pipefail
cache=${KINFER_CACHE:-$HOME/.cache/kinfer}
export PATH=$PATH:/usr/local/go/bin

# module version files (a glob relative to the module root) [only the documents with this spec.group]
sources=(
  "sigs.k8s.io/gateway-api v1.6.3 config/crd/standard/*.yaml"
  "istio.io/api v1.31.1 kubernetes/customresourcedefinitions.gen.yaml networking.istio.io"
  "github.com/kedacore/keda/v2 v2.21.0 config/crd/bases/keda.sh_scaledobjects.yaml"
)
hash=$(printf '%s\n' "${sources[@]}" | sha256sum | cut -c1-12)
dir=$cache/crds-$hash
out=$dir/thirdparty-crds.yaml
if [ -f "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$dir"
tmp=$(mktemp "$dir/.bundle.XXXXXX")
trap 'rm -f "$tmp"' EXIT
for s in "${sources[@]}"; do
  read -r mod ver glob group <<<"$s"
  # Outside any module, so the download touches no go.mod.
  if ! json=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "$mod@$ver" 2>&1); then
    echo "crds.sh: go mod download $mod@$ver failed:" >&2
    echo "$json" >&2
    exit 1
  fi
  moddir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  [ -d "$moddir" ] || { echo "crds.sh: no module directory in: $json" >&2; exit 1; }
  shopt -s nullglob
  # shellcheck disable=SC2206
  files=($moddir/$glob)
  shopt -u nullglob
  [ ${#files[@]} -gt 0 ] || { echo "crds.sh: $mod@$ver has no $glob" >&2; exit 1; }
  for f in "${files[@]}"; do
    printf -- '---\n# %s@%s %s\n' "$mod" "$ver" "${f#"$moddir"/}"
    if [ -z "$group" ]; then
      cat "$f"; echo   # kubectl skips the empty documents this may leave
    else
      # Split on document markers; keep a document whose top-level spec has `  group: $group`.
      awk -v g="$group" '
        function flush() { if (doc ~ ("\n  group: " g "\n")) printf "---\n%s", doc; doc = "" }
        /^---/ { flush(); next }
        { doc = doc $0 "\n" }
        END { flush() }' "$f"
    fi
  done >>"$tmp"
done
mv "$tmp" "$out"
trap - EXIT
echo "$out"
