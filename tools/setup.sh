#!/usr/bin/env bash
# Idempotent set-up steps for gst-torch, run by the Makefile:
#   tools/setup.sh deps [demo] [--no-build]
#                                Debian/Ubuntu packages (apt-get; root or sudo), skipped if present:
#                                all of them, or with `demo` only what `make demo` needs (the
#                                Makefile asks for that on aarch64: a Raspberry Pi); --no-build
#                                leaves out the compiler and -dev packages and the Rust check (a
#                                plugin cross-built by `make aarch64` is installed instead)
#   tools/setup.sh venv VENV     Python venv with torch + torchvision, skipped if present: 2.13.0 +
#                                0.28.0; on aarch64 CPU-only 2.9.1 + 0.24.1 (see below)
#   tools/setup.sh libtorch DIR  aarch64: the plugin's libtorch 2.13.0, CPU libraries and headers only
#                                (tools/requirements-aarch64.txt), skipped if present
#   tools/setup.sh elements      each GStreamer element the project uses and its package (one a line)
#   tools/setup.sh elements-elsewhere   the elements whose package is only installed on other
#                                architectures (ARCH_ELEMENTS), with it
set -euo pipefail

TORCH_VERSION=2.13.0 # the plugin's libtorch (tch 0.26 wants it)
TORCHVISION_VERSION=0.28.0
# aarch64 (Raspberry Pi): PyPI's torch is CPU-only there up to 2.10.0 and a CUDA build from 2.11
# (2.13.0: 2.9 GB to download, 4.8 GB installed, none of it usable on a Pi). So the plugin's
# libtorch 2.13.0 is taken from the wheel without its CUDA part (`libtorch`, 440 MB download,
# 0.35 GB installed), and the venv, which only exports the model (Python), gets CPU-only torch
# 2.9.1 (104 MB download, 0.4 GB installed): a TorchScript file written by 2.9 loads in libtorch
# 2.13 (newer loads older). Not 2.10.0: its libc10.so carries a mimalloc built with ARMv8.1 atomics
# (LSE) that runs when the library loads, so `import torch` dies of SIGILL on a Pi 4's Cortex-A72
# (ARMv8.0; seen here under qemu's cortex-a72, and pytorch/pytorch#174344); 2.9.1 imports there.
AARCH64_TORCH_VERSION=2.9.1
AARCH64_TORCHVISION_VERSION=0.24.1
MACHINE=$(uname -m)
DEB_ARCH=$(dpkg --print-architecture 2>/dev/null || echo unknown)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# What `make build` compiles with (not needed where a cross-built plugin is installed instead).
APT_BUILD=(build-essential pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libpango1.0-dev libcairo2-dev)
# What `make demo` runs with: Python venvs, gst-launch-1.0, pipelines/demo.py (Debian's python3
# with PyGObject), the overlay's font.
APT_RUN=(python3 python3-venv gstreamer1.0-tools python3-gst-1.0 gir1.2-gst-plugins-base-1.0
  fonts-dejavu-core)
# What `make test` needs besides.
APT_TEST=(gstreamer1.0-libav xvfb xauth tesseract-ocr tesseract-ocr-eng mosquitto
  opencv-data) # opencv-data: facedetect's Haar cascades, only a Recommends of gstreamer1.0-opencv
# Every GStreamer element that the tests, pipelines/, examples/ and tools/ use, with the Debian
# package that has it; deps installs these packages too. tools/check_elements.py (run by
# `make test`) fails when a source names an element missing here, or an element here is not in
# its package.
ELEMENTS=(
  fakesink=libgstreamer1.0-0 filesink=libgstreamer1.0-0 filesrc=libgstreamer1.0-0
  identity=libgstreamer1.0-0 queue=libgstreamer1.0-0 tee=libgstreamer1.0-0
  appsink=gstreamer1.0-plugins-base appsrc=gstreamer1.0-plugins-base
  decodebin=gstreamer1.0-plugins-base rawvideoparse=gstreamer1.0-plugins-base
  videoconvert=gstreamer1.0-plugins-base videoscale=gstreamer1.0-plugins-base
  videotestsrc=gstreamer1.0-plugins-base imagefreeze=gstreamer1.0-plugins-good
  autovideosink=gstreamer1.0-plugins-good pngenc=gstreamer1.0-plugins-good
  v4l2src=gstreamer1.0-plugins-good vp8enc=gstreamer1.0-plugins-good
  webmmux=gstreamer1.0-plugins-good
  ximagesink=gstreamer1.0-x glimagesink=gstreamer1.0-gl
  fpsdisplaysink=gstreamer1.0-plugins-bad
  facedetect=gstreamer1.0-opencv
  # what decodebin picks for ../shared/media and data/ (WebM/VP8, PNG, JPEG): no source names them
  matroskademux=gstreamer1.0-plugins-good vp8dec=gstreamer1.0-plugins-good
  pngdec=gstreamer1.0-plugins-good jpegdec=gstreamer1.0-plugins-good
)
# The elements `make demo` needs: filesrc, decodebin, videoconvert, the clip's demuxer and
# decoder, v4l2src, autovideosink and an X sink for it. `deps demo` installs their packages as
# ELEMENTS maps them (an element missing there stops the script: unbound variable), and
# ARCH_ELEMENTS' where they are installed.
DEMO_ELEMENTS=(filesrc decodebin videoconvert matroskademux vp8dec v4l2src autovideosink ximagesink)
declare -A PACKAGE_OF
for e in "${ELEMENTS[@]}"; do PACKAGE_OF[${e%%=*}]=${e#*=}; done
DEMO_ELEMENT_PACKAGES=()
for e in "${DEMO_ELEMENTS[@]}"; do DEMO_ELEMENT_PACKAGES+=("${PACKAGE_OF[$e]}"); done

# Elements whose package is installed only on the architectures (Debian's names) after the `@`:
# the Raspberry Pi camera module's libcamerasrc (libcamera; on a PC cameras are USB webcams, for
# v4l2src). pipelines/camera.sh and demo.py use it where it exists and v4l2src otherwise;
# `elements` lists it where it is installed, `elements-elsewhere` everywhere else (for
# tools/check_elements.py: named in the sources, but not to be found installed here).
ARCH_ELEMENTS=(
  libcamerasrc=gstreamer1.0-libcamera@arm64
)

# ARCH_ELEMENTS' entries for this architecture (here=1) or for others (here=0), as element=package.
arch_elements() {
  local e arches
  for e in "${ARCH_ELEMENTS[@]}"; do
    arches=" ${e#*@} "
    arches=${arches//,/ }
    if [[ $arches == *" $DEB_ARCH "* ]]; then [ "$1" = 1 ] && echo "${e%@*}"; else [ "$1" = 0 ] && echo "${e%@*}"; fi
  done
  return 0
}

# The packages deps installs, each once: all of them, or (demo) what `make demo` needs, with or
# without (no_build) what compiling needs.
packages() {
  local set=$1 no_build=$2 here
  mapfile -t here < <(arch_elements 1)
  {
    [ "$no_build" = 1 ] || printf '%s\n' "${APT_BUILD[@]}"
    printf '%s\n' "${APT_RUN[@]}"
    if [ "$set" = demo ]; then
      printf '%s\n' "${DEMO_ELEMENT_PACKAGES[@]}"
    else
      printf '%s\n' "${APT_TEST[@]}" "${ELEMENTS[@]#*=}"
    fi
    [ ${#here[@]} -eq 0 ] || printf '%s\n' "${here[@]#*=}"
  } | awk '!seen[$0]++'
}

log() { printf '[setup] %s\n' "$*" >&2; }

deps() {
  local set=all no_build=0 arg
  for arg in "$@"; do
    case $arg in
      demo) set=demo ;;
      --no-build) no_build=1 ;;
      *) echo "usage: setup.sh deps [demo] [--no-build]" >&2; exit 2 ;;
    esac
  done
  local missing=()
  local p
  for p in $(packages "$set" "$no_build"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt packages: all present"
  else
    log "apt packages: installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "$no_build" = 0 ] && ! command -v cargo >/dev/null; then
    log "cargo not found: install Rust (https://rustup.rs), version 1.95 or newer"
    exit 1
  fi
}

venv() {
  local venv=$1 torch=$TORCH_VERSION torchvision=$TORCHVISION_VERSION pip_opts=(-q)
  if [ "$MACHINE" = aarch64 ]; then
    # CPU-only on aarch64 (its nvidia dependencies are marked x86_64-only); no pip cache: on a
    # Pi's SD card it would keep another copy of the download.
    torch=$AARCH64_TORCH_VERSION torchvision=$AARCH64_TORCHVISION_VERSION
    pip_opts+=(--no-cache-dir)
  fi
  if "$venv/bin/python" - "$torch" "$torchvision" 2>/dev/null <<'PY'
import sys, torch, torchvision
ok = torch.__version__.split("+")[0] == sys.argv[1] and torchvision.__version__.split("+")[0] == sys.argv[2]
sys.exit(0 if ok else 1)
PY
  then
    log "venv $venv: torch $torch present"
    return
  fi
  log "venv $venv: installing torch $torch, torchvision $torchvision (large download, once)"
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install "${pip_opts[@]}" "torch==$torch" "torchvision==$torchvision"
  if [ "$MACHINE" = aarch64 ]; then
    local rc=0
    "$venv/bin/python" -c 'import sys, torch; sys.exit(3 if torch.version.cuda else 0)' || rc=$?
    [ $rc -ne 3 ] || { log "venv $venv: torch $torch is a CUDA build here, not the CPU-only one expected"; exit 1; }
    [ $rc -eq 0 ] || { log "venv $venv: torch $torch does not import here (exit status $rc; 132: an instruction this CPU lacks)"; exit 1; }
  fi
}

# The plugin's libtorch on aarch64 without PyPI's CUDA build around it: the wheels of
# tools/requirements-aarch64.txt downloaded by pip (into a temporary directory beside DIR) and
# only what the plugin needs kept (tools/libtorch_from_wheels.py): DIR/lib (libtorch_cpu.so,
# libc10.so and what they load) and DIR/include (to compile against). The requirements (the file's
# lines but comments) are kept as DIR/requirements-aarch64.txt: DIR is present when they are the
# checkout's (tools/rootfs.sh checks the same).
libtorch() {
  local dir=$1 req=$HERE/requirements-aarch64.txt
  if [ -f "$dir/lib/libtorch_cpu.so" ] && cmp -s <(grep -v '^#' "$req") "$dir/requirements-aarch64.txt"; then
    log "libtorch $dir: present ($(cat "$dir/build-version"))"
    return
  fi
  [ "$MACHINE" = aarch64 ] || { log "libtorch: only for aarch64 (elsewhere the venv's torch is the plugin's libtorch)"; exit 1; }
  log "libtorch $dir: torch $TORCH_VERSION's CPU libraries from PyPI's aarch64 wheel (440 MB download, once)"
  mkdir -p "$(dirname "$dir")"
  local tmp
  tmp=$(mktemp -d "$(dirname "$dir")/.libtorch-download.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  # A pip of its own: Debian's python3 has none unless python3-pip is installed.
  "${PYTHON:-python3}" -m venv "$tmp/pip"
  "$tmp/pip/bin/pip" download -q --no-cache-dir --no-deps --only-binary=:all: -d "$tmp/wheels" -r "$req"
  "$tmp/pip/bin/python" "$HERE/libtorch_from_wheels.py" --output "$tmp/libtorch" "$tmp"/wheels/*.whl
  grep -v '^#' "$req" >"$tmp/libtorch/requirements-aarch64.txt"
  rm -rf "$dir" && mv "$tmp/libtorch" "$dir"
  rm -rf "$tmp"
  trap - EXIT
  log "libtorch $dir: $(du -sm "$dir" | cut -f1) MB"
}

case "${1:-}" in
  deps) shift; deps "$@" ;;
  elements) for e in "${ELEMENTS[@]}" $(arch_elements 1); do echo "${e%%=*} ${e#*=}"; done ;;
  elements-elsewhere) for e in $(arch_elements 0); do echo "${e%%=*} ${e#*=}"; done ;;
  venv) venv "${2:?usage: setup.sh venv VENV}" ;;
  libtorch) libtorch "${2:?usage: setup.sh libtorch DIR}" ;;
  *) echo "usage: $0 deps [demo] [--no-build] | venv VENV | libtorch DIR | elements | elements-elsewhere" >&2; exit 2 ;;
esac
