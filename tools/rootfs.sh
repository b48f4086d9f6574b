#!/usr/bin/env bash
# Cached Debian roots for building and running gst-torch on other systems, without touching the
# host's packages (needs root: debootstrap and chroot; nothing is installed on the host).
#
#   tools/rootfs.sh NAME [CMD…]    make root NAME once, then run CMD in it (default: a shell)
#   tools/rootfs.sh NAME --path    make it, print its directory
#   tools/rootfs.sh NAME --remove  delete it
#   tools/rootfs.sh --list         the roots and what each holds
#
# Roots live in ${ROOTFS_DIR:-${XDG_DATA_HOME:-~/.local/share}/gst-torch/rootfs}/NAME. CMD runs as
# root inside, in the current directory, with the checkout, the system temp directory (/tmp),
# ../shared (where it exists) and the paths in ROOTFS_BIND (space-separated) mounted at the same
# paths, /proc, /dev and /sys from the host, the host's /etc/resolv.conf and CA bundle, HOME=/root
# and the caller's GST_* variables (and PIP_CERT, proxies). Every mount lives in a private mount namespace (inside a user namespace that maps
# every uid to itself, where binfmt_misc is the namespace's own): they vanish with CMD.
# Roots of another architecture run through qemu-user (ROOTFS_QEMU_CPU, default cortex-a72:
# a Raspberry Pi 4's cores, the oldest 64-bit Pi). debootstrap and qemu-user come as Debian
# packages (trixie's) unpacked into ROOTFS_DIR/.tools, never installed.
#
# Roots (ROOTS below: suite, architecture, packages, and a function that finishes it):
#   debian13-arm64  Debian 13 (trixie) arm64, the base of today's Raspberry Pi OS, standing in for
#                   a Pi: GStreamer 1.26 with its development files and make, and, per user
#                   (/root), the plugin's libtorch 2.13.0 where `make demo` on a Pi puts it
#                   (~/.local/share/gst-torch/libtorch: `tools/setup.sh libtorch`, the CPU part of
#                   tools/requirements-aarch64.txt): the sysroot `make aarch64` links against.
#                   Everything else a Pi needs, `make demo` (or `make test-aarch64`) run in it sets
#                   up as on a Pi (apt, the venv, the model), installing the cross-built plugin
#                   instead of compiling.
#   sid-cross       Debian sid amd64 with rustc/cargo and the aarch64 cross toolchain, the
#                   debian13-arm64 root mounted at /sysroot: `make aarch64` builds there (trixie's
#                   rustc 1.85 is too old for this code; sid's can cross-compile with
#                   libstd-rust-dev:arm64).
#   debian13        Debian 13 (trixie) amd64: GStreamer 1.26 with its development files (analytics
#                   included), PyGObject and the GstAnalytics typelib, gcc; `make test-debian13`
#                   tests there. No Rust or libtorch of its own (trixie's rustc 1.85 is too old):
#                   the host's rustup and cargo homes and the host's venv (ROOTFS_VENV, default
#                   `make venv`'s) are mounted at the same paths, with RUSTUP_HOME, CARGO_HOME,
#                   LIBTORCH (the venv's torch) and CARGO_TARGET_DIR=target/debian13 (the host's
#                   builds are not touched) set for every command. On every run the plugin is built
#                   there (with the `analytics` feature when Cargo.toml has it; cargo rebuilds only
#                   what changed) and installed per user, with the default model (ROOTFS_MODEL,
#                   default the host's mobilenet_v2_quantized.pt from `make model`) when it changed.
# A root for another Debian release or architecture is one more entry in ROOTS (and, if it needs
# more than packages, a finish_NAME function).
set -euo pipefail

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
ROOTFS_DIR=${ROOTFS_DIR:-$DATA_HOME/gst-torch/rootfs}
MIRROR=${ROOTFS_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
QEMU_CPU_MODEL=${ROOTFS_QEMU_CPU:-cortex-a72}
TOOLS=$ROOTFS_DIR/.tools
SHARED=$(cd "$CHECKOUT/.." && pwd)/shared
# Where the README's set-up puts things for a user whose HOME is /root.
LIBTORCH_IN_ROOT=/root/.local/share/gst-torch/libtorch
MODEL_IN_ROOT=/root/.local/share/gst-torch/mobilenet_v2_quantized.pt
PLUGIN_IN_ROOT=/root/.local/share/gstreamer-1.0/plugins/libgsttorch.so

declare -A SUITE ARCH PACKAGES
SUITE[debian13-arm64]=trixie
ARCH[debian13-arm64]=arm64
PACKAGES[debian13-arm64]="make python3 python3-venv libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev libpango1.0-dev libcairo2-dev"
SUITE[sid-cross]=sid
ARCH[sid-cross]=amd64
PACKAGES[sid-cross]="ca-certificates rustc cargo libstd-rust-dev:arm64 gcc-aarch64-linux-gnu
  g++-aarch64-linux-gnu pkgconf binutils-aarch64-linux-gnu file"
SUITE[debian13]=trixie
ARCH[debian13]=amd64
PACKAGES[debian13]="ca-certificates pkgconf gcc g++ libc6-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev python3 python3-gi
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 libpango1.0-dev
  libcairo2-dev fonts-dejavu-core"
ROOT_NAMES=(debian13-arm64 sid-cross debian13)

# debian13 borrows the host's Rust toolchain and libtorch (mounted at the same paths).
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}
HOST_VENV=${ROOTFS_VENV:-$DATA_HOME/gst-torch/venv}
DEBIAN13_TARGET=$CHECKOUT/target/debian13
DEBIAN13_PLUGINS=$DEBIAN13_TARGET/gstreamer-1.0-plugins # this checkout's plugin alone

log() { printf '[rootfs] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

host_arch() { dpkg --print-architecture 2>/dev/null || echo amd64; }

# debootstrap and qemu-user from Debian trixie, unpacked into $TOOLS (apt-get with a private
# state directory: the host's package database and lists are not touched).
fetch_tools() {
  [ -x "$TOOLS/usr/sbin/debootstrap" ] && [ -x "$TOOLS/usr/bin/qemu-aarch64" ] && return
  [ -r "$KEYRING" ] || die "$KEYRING missing: install Debian's archive keyring (debian-archive-keyring)"
  log "fetching debootstrap and qemu-user (trixie) into $TOOLS"
  local apt=$ROOTFS_DIR/.apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/deb"
  echo "deb [signed-by=$KEYRING] $MIRROR trixie main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::lists=$apt/lists" -o "Dir::Cache::archives=$apt/archives"
    -o Dir::State::status=/dev/null -o "APT::Architecture=$(host_arch)"
    -o APT::Architectures::="$(host_arch)" -o APT::Sandbox::User=root -q)
  apt-get "${opts[@]}" update >/dev/null
  (cd "$apt/deb" && rm -f ./*.deb && apt-get "${opts[@]}" download debootstrap qemu-user >/dev/null)
  rm -rf "$TOOLS.new" && mkdir -p "$TOOLS.new"
  local deb
  for deb in "$apt"/deb/*.deb; do dpkg-deb -x "$deb" "$TOOLS.new"; done
  # Only aarch64 of qemu-user's 30-odd emulators (450 MB).
  find "$TOOLS.new/usr/bin" -name 'qemu-*' ! -name qemu-aarch64 -delete
  rm -rf "$TOOLS.new/usr/share/man" "$TOOLS.new/usr/share/doc" "$apt"
  rm -rf "$TOOLS" && mv "$TOOLS.new" "$TOOLS"
}

debootstrap_() { DEBOOTSTRAP_DIR=$TOOLS/usr/share/debootstrap "$TOOLS/usr/sbin/debootstrap" "$@"; }

# Run "$@" in a new user namespace (every uid and gid mapped to itself, so files keep their
# owners), with its own mount and pid namespaces. util-linux's --map-users needs newuidmap, so the
# maps are written from outside while the child waits on a fifo.
ns_exec() {
  local fifo me self
  fifo=$(mktemp -u "${TMPDIR:-/tmp}/rootfs-ns.XXXXXX")
  mkfifo "$fifo"
  me=$BASHPID
  self=$(readlink /proc/self/ns/user)
  (
    for _ in $(seq 1000); do
      [ "$(readlink "/proc/$me/ns/user" 2>/dev/null)" != "$self" ] && break
      sleep 0.01
    done
    echo "0 0 4294967295" >"/proc/$me/uid_map" && echo "0 0 4294967295" >"/proc/$me/gid_map" ||
      log "could not map the user namespace's ids (the command will fail)"
    echo go >"$fifo" # whatever happened: the child must not wait forever
  ) &
  exec unshare --user --mount --propagation private --pid --fork --kill-child -- \
    bash -c 'read -r _ <"$0"; rm -f "$0"; exec "$@"' "$fifo" "$@"
}

# Inside ns_exec: qemu for a foreign root, the mounts, then chroot and CMD.
inside() {
  local name=$1 root=$2 cwd=$3
  shift 3
  if [ "${ARCH[$name]}" = arm64 ] && [ "$(host_arch)" != arm64 ]; then
    # This user namespace's own binfmt_misc (Linux >= 6.7); F: qemu is opened now, so it need not
    # exist inside the root. Older kernels share the host's: qemu-aarch64 must be registered there.
    if mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
      local conf
      conf=$(cat "$TOOLS/usr/share/qemu/binfmt.d/qemu-aarch64.conf")
      conf=${conf/\/usr\/libexec\/qemu-binfmt/$TOOLS\/usr\/libexec\/qemu-binfmt}
      echo "$conf" >/proc/sys/fs/binfmt_misc/register
    elif ! grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
      die "Linux $(uname -r) has no binfmt_misc per user namespace (6.7+): install the host's qemu-user-binfmt (Debian 13) or qemu-user-static (Debian 12), which registers qemu-aarch64"
    fi
  fi
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  local tmp=/tmp
  mount --rbind "$tmp" "$root$tmp"
  # The root reaches the network as the host does: its DNS and its trust store (a proxy's CA).
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  local bind src dst
  for bind in "$CHECKOUT" $( [ -d "$SHARED" ] && echo "$SHARED") ${ROOTFS_BIND:-} ${EXTRA_BIND:-}; do
    src=${bind%%:*}
    dst=${bind#*:}
    [ -e "$src" ] || { log "ROOTFS_BIND: $src does not exist"; exit 1; }
    # A symlink (../shared often is one) is mounted at the path it resolves to, where the link,
    # if it is inside a mounted tree (/tmp, the checkout), then leads inside the root too.
    [ "$dst" = "$src" ] && dst=$(readlink -f "$src")
    src=$(readlink -f "$src")
    mkdir -p "$root$dst"
    mount --rbind "$src" "$root$dst"
  done
  local env=(HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM="${TERM:-dumb}"
    PATH=${EXTRA_PATH:+$EXTRA_PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    QEMU_CPU="$QEMU_CPU_MODEL")
  local var
  for var in ${EXTRA_ENV:-}; do env+=("$var"); done
  for var in $(compgen -e); do
    case $var in
      GST_* | CARGO_TERM_* | CI | PIP_CERT | PIP_DEFAULT_TIMEOUT | http_proxy | https_proxy | no_proxy) env+=("$var=${!var}") ;;
    esac
  done
  exec chroot "$root" /usr/bin/env -i "${env[@]}" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$cwd" "$@"
}

# run NAME CMD…: CMD in the root (which must exist); run_at DIR NAME CMD…: in the root at DIR.
run() { run_at "$ROOTFS_DIR/$1" "$@"; }
run_at() {
  local root=$1 name=$2
  shift 2
  local cwd=$PWD
  case $cwd in "$CHECKOUT"|"$CHECKOUT"/*|/tmp|/tmp/*) ;; *) cwd=$CHECKOUT ;; esac
  local extra="" extra_env="" extra_path=""
  [ "$name" = sid-cross ] && [ -d "$ROOTFS_DIR/debian13-arm64" ] && extra="$ROOTFS_DIR/debian13-arm64:/sysroot"
  if [ "$name" = debian13 ]; then
    # The host's Rust and libtorch, where they exist (finish_debian13 says when they do not).
    local dir torch
    for dir in "$RUSTUP_DIR" "$CARGO_DIR" "$HOST_VENV"; do [ -d "$dir" ] && extra+=" $dir"; done
    # The root is shared by every checkout: each command sees its own checkout's plugin in the
    # per-user plugin directory (the root's own copy there is the last one built). A directory,
    # not the file: installing a file unlinks the old one, which would detach a file mount in
    # every other namespace.
    [ -f "$DEBIAN13_PLUGINS/libgsttorch.so" ] && extra+=" $DEBIAN13_PLUGINS:$(dirname "$PLUGIN_IN_ROOT")"
    extra_env="RUSTUP_HOME=$RUSTUP_DIR CARGO_HOME=$CARGO_DIR CARGO_TARGET_DIR=$DEBIAN13_TARGET"
    torch=$(venv_torch) && extra_env+=" LIBTORCH=$torch"
    extra_path=$CARGO_DIR/bin
  fi
  (EXTRA_BIND=$extra EXTRA_ENV=$extra_env EXTRA_PATH=$extra_path \
    ns_exec "$CHECKOUT/tools/rootfs.sh" __inside "$name" "$root" "$cwd" "$@")
}

# The host venv's torch package directory (libtorch: lib/, include/), if it has one.
venv_torch() {
  local dir
  for dir in "$HOST_VENV"/lib/python3*/site-packages/torch; do
    [ -d "$dir/lib" ] && [ -d "$dir/include" ] && { echo "$dir"; return; }
  done
  return 1
}

stamp() { echo "$1/.gst-torch-$2"; }

# Refuse to delete a directory anything is mounted in (as this namespace sees it).
safe_rm() {
  local dir=$1
  [ -e "$dir" ] || return 0
  if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    die "something is mounted in $dir (see /proc/mounts): not deleting it"
  fi
  rm -rf --one-file-system "$dir"
}

bootstrap() {
  local name=$1 root=$ROOTFS_DIR/$1
  [ -e "$(stamp "$root" base)" ] && return
  (flock 8; fetch_tools) 8>"$ROOTFS_DIR/.tools.lock"
  local partial=$root.partial
  safe_rm "$partial"
  mkdir -p "$partial"
  local arch=${ARCH[$name]} suite=${SUITE[$name]}
  log "$name: debootstrap $suite $arch (minbase) into $root"
  if [ "$arch" = "$(host_arch)" ]; then
    # debootstrap mounts /proc and /sys in the new root: only in a private mount namespace.
    unshare --mount --propagation private -- env DEBOOTSTRAP_DIR="$TOOLS/usr/share/debootstrap" \
      "$TOOLS/usr/sbin/debootstrap" --variant=minbase --arch="$arch" --keyring="$KEYRING" "$suite" "$partial" "$MIRROR" \
      >"$partial.log" 2>&1 ||
      { tail -20 "$partial.log" >&2; die "$name: debootstrap failed (log: $partial.log)"; }
  else
    debootstrap_ --variant=minbase --arch="$arch" --keyring="$KEYRING" --foreign "$suite" "$partial" "$MIRROR" \
      >"$partial.log" 2>&1 || { tail -20 "$partial.log" >&2; die "$name: debootstrap failed (log: $partial.log)"; }
    log "$name: second stage under qemu"
    run_at "$partial" "$name" /debootstrap/debootstrap --second-stage >>"$partial.log" 2>&1 ||
      { tail -20 "$partial.log" >&2; die "$name: second stage failed (log: $partial.log)"; }
  fi
  # sid's Release files can be past their Valid-Until date on the mirror.
  [ "$suite" = sid ] && echo 'Acquire::Check-Valid-Until "false";' >"$partial/etc/apt/apt.conf.d/99gst-torch"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$partial/etc/apt/apt.conf.d/98gst-torch-no-recommends"
  # No man pages or docs, no fsync: smaller roots, faster installs (a root is remade, not repaired).
  echo force-unsafe-io >"$partial/etc/dpkg/dpkg.cfg.d/99gst-torch-unsafe-io"
  printf 'path-exclude /usr/share/man/*\npath-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/locale/*\n' \
    >"$partial/etc/dpkg/dpkg.cfg.d/99gst-torch-nodoc"
  mv "$partial.log" "$partial/.gst-torch-debootstrap.log"
  touch "$(stamp "$partial" base)"
  mv "$partial" "$root"
}

install_packages() {
  local name=$1 root=$ROOTFS_DIR/$1
  local packages=${PACKAGES[$name]} sum
  sum=$(echo "$packages" | md5sum | cut -c1-12)
  [ -e "$(stamp "$root" "packages-$sum")" ] && return
  log "$name: apt-get install $(echo $packages)"
  local foreign=""
  [[ $packages == *:arm64* ]] && foreign="dpkg --add-architecture arm64 &&"
  # shellcheck disable=SC2086
  run "$name" /bin/sh -c "$foreign apt-get update -q >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(echo $packages) >/dev/null && apt-get clean" ||
    die "$name: apt-get install failed"
  rm -f "$root"/.gst-torch-packages-*
  touch "$(stamp "$root" "packages-$sum")"
}

# debian13-arm64: the plugin's libtorch as `make demo` on a Pi makes it (tools/setup.sh libtorch),
# the sysroot's libtorch for `make aarch64`; again when tools/requirements-aarch64.txt's
# requirements changed.
finish_debian13-arm64() {
  local root=$ROOTFS_DIR/debian13-arm64
  # Roots made before: a venv with the whole 2.13.0 wheel in it (tools/setup.sh venv now makes
  # the venv there with CPU-only torch for Python), the model and plugin the host installed.
  if compgen -G "$root/.gst-torch-venv-*" >/dev/null; then
    log "debian13-arm64: removing the old venv, model and plugin (make demo in the root makes its own)"
    rm -rf --one-file-system "$root/root/.local/share/gst-torch" "$root$PLUGIN_IN_ROOT"
    rm -f "$root"/.gst-torch-venv-*
  fi
  cmp -s <(grep -v '^#' "$CHECKOUT/tools/requirements-aarch64.txt") "$root$LIBTORCH_IN_ROOT/requirements-aarch64.txt" &&
    return
  log "debian13-arm64: libtorch at $LIBTORCH_IN_ROOT (tools/setup.sh libtorch, pip under qemu)"
  run debian13-arm64 "$CHECKOUT/tools/setup.sh" libtorch "$LIBTORCH_IN_ROOT" ||
    die "debian13-arm64: libtorch failed"
}

# debian13: the plugin built there from the checkout (cargo rebuilds what changed) and installed
# per user, and the default model; both installed again when they changed.
finish_debian13() {
  local root=$ROOTFS_DIR/debian13
  if [ ! -x "$CARGO_DIR/bin/cargo" ] || [ ! -d "$RUSTUP_DIR" ]; then
    die "debian13: no Rust toolchain at $CARGO_DIR, $RUSTUP_DIR (rustup, README; or set CARGO_HOME, RUSTUP_HOME)"
  fi
  venv_torch >/dev/null ||
    die "debian13: no torch in $HOST_VENV (make venv, or ROOTFS_VENV=…)"
  install_model debian13 "${ROOTFS_MODEL:-$DATA_HOME/gst-torch/mobilenet_v2_quantized.pt}"
  local features=()
  # The GstAnalytics meta (GStreamer 1.24+) where this checkout's Cargo.toml has the feature.
  sed -n '/^\[features\]/,/^\[/p' "$CHECKOUT/Cargo.toml" | grep -q '^analytics *=' && features=(--features analytics)
  log "debian13: cargo build --release${features[*]:+ ${features[*]}} (into $DEBIAN13_TARGET)"
  run debian13 /bin/sh -c 'cd "$0" && cargo build --release --quiet "$@"' "$CHECKOUT" "${features[@]}" ||
    die "debian13: building the plugin failed"
  install_if_changed "$DEBIAN13_TARGET/release/libgsttorch.so" "$DEBIAN13_PLUGINS/libgsttorch.so"
  install_if_changed "$DEBIAN13_TARGET/release/libgsttorch.so" "$root$PLUGIN_IN_ROOT"
}

# install_model NAME MODEL: MODEL as root NAME's default model (for HOME=/root), with the labels
# beside it and its model config file (labels relative to it) beside it under the model's name.
install_model() {
  local name=$1 model=$2 root=$ROOTFS_DIR/$1
  if [ -f "$model" ]; then
    install_if_changed "$model" "$root$MODEL_IN_ROOT"
    [ -f "$(dirname "$model")/imagenet_labels.txt" ] &&
      install_if_changed "$(dirname "$model")/imagenet_labels.txt" "$root$(dirname "$MODEL_IN_ROOT")/imagenet_labels.txt"
    [ -f "${model%.pt}.json" ] &&
      install_if_changed "${model%.pt}.json" "$root${MODEL_IN_ROOT%.pt}.json"
  else
    log "$name: no model at $model (make model, or ROOTFS_MODEL=…): none installed"
  fi
  return 0
}

install_if_changed() {
  cmp -s "$1" "$2" && return
  install -D -m 644 "$1" "$2"
  log "installed $2 (from $1)"
}

ensure() {
  local name=$1
  [ -n "${SUITE[$name]:-}" ] || die "unknown root '$name' (tools/rootfs.sh --list)"
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot): run it with sudo"
  mkdir -p "$ROOTFS_DIR"
  # sid-cross links against debian13-arm64 (its /sysroot): both are made at the same time.
  local sysroot=""
  if [ "$name" = sid-cross ]; then
    ensure debian13-arm64 &
    sysroot=$!
  fi
  (
    flock 9
    bootstrap "$name"
    install_packages "$name"
    if declare -f "finish_$name" >/dev/null; then "finish_$name"; fi
  ) 9>"$ROOTFS_DIR/.$name.lock"
  if [ -n "$sysroot" ]; then wait "$sysroot" || die "debian13-arm64 failed"; fi
}

case "${1:-}" in
  __inside) shift; inside "$@" ;;
  --list | "")
    for n in "${ROOT_NAMES[@]}"; do
      printf '%-16s Debian %s %s: %s\n' "$n" "${SUITE[$n]}" "${ARCH[$n]}" "$(echo ${PACKAGES[$n]})"
    done
    [ -n "${1:-}" ] || { echo "usage: $0 NAME [CMD…] | NAME --path | NAME --remove | --list" >&2; exit 2; }
    ;;
  *)
    name=$1
    shift
    case "${1:-}" in
      --remove)
        [ -n "${SUITE[$name]:-}" ] || die "unknown root '$name'"
        (flock 9; safe_rm "$ROOTFS_DIR/$name"; safe_rm "$ROOTFS_DIR/$name.partial") 9>"$ROOTFS_DIR/.$name.lock"
        log "removed $ROOTFS_DIR/$name"
        ;;
      --path) ensure "$name"; echo "$ROOTFS_DIR/$name" ;;
      *)
        ensure "$name"
        [ $# -gt 0 ] || set -- /bin/bash
        run "$name" "$@"
        ;;
    esac
    ;;
esac
