#!/usr/bin/env bash
# Builds a minimal container image of one kinfer binary without a container engine.
#
#   scripts/oci-image.sh rootfs BINARY ROOTFS_DIR
#       assemble the image's root filesystem: the binary (stripped) at /usr/local/bin/, the shared
#       libraries it needs (ldd) and the dynamic loader, CA certificates, /etc/passwd and /etc/group
#       with the non-root user 65532, /tmp (1777) and /home/nonroot. Used by `make images` and by
#       the Dockerfiles' build stage (then COPY'd onto scratch).
#   scripts/oci-image.sh image BINARY LAYOUT_DIR [--env K=V]... [--port N]... [--arg ARG]...
#       assemble the rootfs, pack it into one reproducible tar layer (numeric owners, sorted names,
#       fixed mtime) and write an OCI image layout with umoci: tag "latest", entrypoint the binary
#       (then the --arg values), user 65532:65532.
#   scripts/oci-image.sh size LAYOUT_DIR
#       print "<compressed bytes> <uncompressed bytes>" of the image's layers.
#
# It copies the libraries of the build machine, so the image runs the same code that `make test`
# tested; it does not try to be a distribution (no shell, no package manager).
set -euo pipefail

die() { echo "oci-image.sh: $*" >&2; exit 1; }
UID_NONROOT=65532
# The date of every file and of the image config: images are reproducible from the same inputs.
EPOCH=${SOURCE_DATE_EPOCH:-946684800}

# copy_file SRC ROOTFS: SRC at the same absolute path under ROOTFS, symlink chains preserved.
copy_file() {
  local src=$1 root=$2 dst
  while [ -L "$src" ]; do
    dst=$root$src
    mkdir -p "$(dirname "$dst")"
    [ -e "$dst" ] || [ -L "$dst" ] || cp -P "$src" "$dst"
    local target
    target=$(readlink "$src")
    case "$target" in /*) src=$target ;; *) src=$(dirname "$src")/$target ;; esac
  done
  dst=$root$src
  mkdir -p "$(dirname "$dst")"
  [ -e "$dst" ] || cp "$src" "$dst"
}

assemble_rootfs() {
  local bin=$1 root=$2 name libs lib
  [ -f "$bin" ] && [ -x "$bin" ] || die "binary $bin does not exist (build it first: make $bin)"
  name=$(basename "$bin")
  rm -rf "$root"
  mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,home/nonroot}
  cp "$bin" "$root/usr/local/bin/$name"
  strip --strip-unneeded "$root/usr/local/bin/$name"

  # ldd lists every library the loader maps (transitively), with the loader itself last. A static
  # binary (no PT_INTERP: the sandbox's pause) needs neither.
  if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    libs=$(ldd "$bin") || die "ldd $bin failed"
    if grep -q "not found" <<<"$libs"; then die "ldd $bin: missing libraries: $(grep 'not found' <<<"$libs")"; fi
    while read -r lib; do
      [ -n "$lib" ] && copy_file "$lib" "$root"
    done < <(awk '/=> \// { print $3 } /^\t\// { print $1 }' <<<"$libs")
    [ -n "$(find "$root" -name 'ld-linux*' -print -quit)" ] || die "ldd $bin: no dynamic loader found"
  fi

  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" \
    || die "no /etc/ssl/certs/ca-certificates.crt (install ca-certificates)"
  cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:$UID_NONROOT:$UID_NONROOT:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<EOF
root:x:0:
nonroot:x:$UID_NONROOT:
EOF
  # glibc resolves hosts from files then DNS; without this file it would still, but say it.
  echo "hosts: files dns" >"$root/etc/nsswitch.conf"
  chmod 1777 "$root/tmp"
  # As root (a Dockerfile build stage) the home can be owned by the user for real; `image` sets the
  # owner in the tar instead.
  if [ "$(id -u)" -eq 0 ]; then chown "$UID_NONROOT:$UID_NONROOT" "$root/home/nonroot"; fi
}

# layout_size LAYOUT: "<compressed bytes> <uncompressed bytes>" of the image's layers.
layout_size() {
  python3 - "$1" <<'PY'
import gzip, json, os, sys
lay = sys.argv[1]
blob = lambda d: os.path.join(lay, "blobs", *d.split(":"))
idx = json.load(open(os.path.join(lay, "index.json")))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
comp = sum(l["size"] for l in man["layers"])
raw = 0
for l in man["layers"]:
    with gzip.open(blob(l["digest"])) as f:
        while chunk := f.read(1 << 20):
            raw += len(chunk)
print(comp, raw)
PY
}

pack_layout() {
  local bin=$1 layout=$2; shift 2
  local name work layer entry envs=() ports=() args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --env) envs+=(--config.env "$2"); shift 2 ;;
      --port) ports+=(--config.exposedports "$2/tcp"); shift 2 ;;
      --arg) args+=(--config.cmd "$2"); shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  command -v umoci >/dev/null || die "umoci is not installed (scripts/deps.sh test)"
  name=$(basename "$bin")
  work=$(mktemp -d "${TMPDIR:-/tmp}/oci-image.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  assemble_rootfs "$bin" "$work/rootfs"

  # One layer, reproducible: sorted, numeric owners (root, except the non-root user's home), fixed dates.
  layer=$work/layer.tar
  tar --sort=name --mtime="@$EPOCH" --numeric-owner --owner=0 --group=0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$work/rootfs" -cf "$work/base.tar" --exclude=./home/nonroot .
  tar --sort=name --mtime="@$EPOCH" --numeric-owner --owner=$UID_NONROOT --group=$UID_NONROOT --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$work/rootfs" -cf "$work/home.tar" ./home/nonroot
  tar --concatenate -f "$work/base.tar" "$work/home.tar"
  mv "$work/base.tar" "$layer"

  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:latest"
  umoci raw add-layer --image "$layout:latest" --history.created_by "scripts/oci-image.sh $name" \
    --history.created "$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)" "$layer"
  entry=/usr/local/bin/$name
  umoci config --image "$layout:latest" --no-history \
    --created "$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
    --architecture "$(dpkg --print-architecture)" --os linux \
    --config.user "$UID_NONROOT:$UID_NONROOT" --config.workingdir /home/nonroot \
    --config.entrypoint "$entry" "${args[@]}" \
    --config.env PATH=/usr/local/bin --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.env HOME=/home/nonroot "${envs[@]}" "${ports[@]}" \
    --config.label "org.opencontainers.image.title=$name" \
    --config.label "org.opencontainers.image.source=https://kinfer.dev"
  umoci gc --layout "$layout"
}

case "${1:-}" in
  rootfs) [ $# -eq 3 ] || die "usage: $0 rootfs BINARY ROOTFS_DIR"; assemble_rootfs "$2" "$3" ;;
  image) [ $# -ge 3 ] || die "usage: $0 image BINARY LAYOUT_DIR [--env K=V] [--port N] [--arg A]"
    bin=$2 layout=$3; shift 3; pack_layout "$bin" "$layout" "$@" ;;
  size) [ $# -eq 2 ] || die "usage: $0 size LAYOUT_DIR"; layout_size "$2" ;;
  *) die "usage: $0 rootfs BINARY ROOTFS_DIR | image BINARY LAYOUT_DIR [options] | size LAYOUT_DIR" ;;
esac
