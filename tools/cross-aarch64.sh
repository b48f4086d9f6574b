#!/usr/bin/env bash
# Cross-builds the plugin for aarch64-unknown-linux-gnu: `make aarch64` runs this inside
# `tools/rootfs.sh sid-cross` (Debian sid's rustc/cargo with libstd-rust-dev:arm64 and the aarch64
# cross gcc), against the arm64 GStreamer, glib, pango, cairo and libtorch of the debian13-arm64
# root mounted at /sysroot. Writes target/aarch64-unknown-linux-gnu/release/libgsttorch.so, whose
# rpath finds libtorch where `make demo` on a Pi puts it (tools/setup.sh libtorch), relative to the
# installed plugin (~/.local/share/gstreamer-1.0/plugins/ -> ~/.local/share/gst-torch/libtorch/lib),
# then checks that
# every versioned symbol it needs is defined by the sysroot's libraries (Debian 13's glibc and
# libstdc++): a cross toolchain newer than the target could otherwise link symbols the Pi lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
SYSROOT=${SYSROOT:-/sysroot}
TRIPLE=aarch64-unknown-linux-gnu
GNU=aarch64-linux-gnu
[ -d "$SYSROOT/usr/lib/$GNU" ] || { echo "no arm64 sysroot at $SYSROOT (run through tools/rootfs.sh sid-cross)" >&2; exit 1; }
torch=$SYSROOT/root/.local/share/gst-torch/libtorch
[ -f "$torch/lib/libtorch_cpu.so" ] || { echo "no aarch64 libtorch at $torch" >&2; exit 1; }

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$GNU-gcc
export CC_aarch64_unknown_linux_gnu=$GNU-gcc CXX_aarch64_unknown_linux_gnu=$GNU-g++ AR_aarch64_unknown_linux_gnu=$GNU-ar
# Only for the target: build scripts (host) must not find the arm64 .pc files.
export PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu=$SYSROOT
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=$SYSROOT/usr/lib/$GNU/pkgconfig:$SYSROOT/usr/share/pkgconfig
# torch-sys and build.rs: this libtorch, no Python (the aarch64 one cannot run here).
export LIBTORCH=$torch LIBTORCH_CXX11_ABI=1
unset LIBTORCH_USE_PYTORCH VIRTUAL_ENV
# The installed plugin finds libtorch in the user's data dir, wherever HOME is.
export GST_TORCH_RPATH='$ORIGIN/../../gst-torch/libtorch/lib'
# Link against the sysroot's C library (Debian 13's glibc, not the cross toolchain's newer one),
# resolving the libraries' own dependencies there (and libtorch's in its dir).
flags="-C link-arg=--sysroot=$SYSROOT"
for d in "$SYSROOT/usr/lib/$GNU" "$SYSROOT/lib/$GNU" "$torch/lib"; do flags+=" -C link-arg=-Wl,-rpath-link,$d"; done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${flags# }"

rustc --version
cargo build --release --target $TRIPLE --lib
so=target/$TRIPLE/release/libgsttorch.so
file "$so"
$GNU-readelf -d "$so" | grep -E 'NEEDED|RUNPATH|RPATH' | sed 's/^ *0x[0-9a-f]* *//'

# Every (library, version) the plugin needs must be defined by that library in the sysroot.
missing=0
while read -r lib version; do
  path=""
  for candidate in "$SYSROOT/usr/lib/$GNU/$lib" "$SYSROOT/lib/$GNU/$lib" "$torch/lib/$lib"; do
    [ -e "$candidate" ] && { path=$candidate; break; }
  done
  [ -n "$path" ] || { echo "needs $lib, not in the sysroot"; missing=1; continue; }
  $GNU-readelf -V -W "$path" | grep "Name: $version\$" >/dev/null ||
    { echo "needs $version of $lib; the sysroot's $lib lacks it"; missing=1; }
done < <($GNU-readelf -V -W "$so" | awk '/File:/ { for (i = 1; i < NF; i++) if ($i == "File:") lib = $(i + 1) } /Name:/ && lib { print lib, $3 }' | sort -u)
[ $missing -eq 0 ] || exit 1
echo "newest symbol versions needed: $($GNU-readelf -V -W "$so" | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1)," \
  "$($GNU-readelf -V -W "$so" | grep -o 'GLIBCXX_3\.4\.[0-9]*' | sort -t. -k3 -n -u | tail -1) (all in the sysroot)"
