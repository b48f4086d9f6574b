#!/usr/bin/env bash
# Idempotent set-up steps for gst-torch, run by the Makefile:
#   tools/setup.sh deps          Debian/Ubuntu packages (apt-get; root or sudo), skipped if present
#   tools/setup.sh venv VENV     Python venv with torch 2.13.0 + torchvision 0.28.0, skipped if present
#   tools/setup.sh elements      each GStreamer element the project uses and its package (one a line)
set -euo pipefail

TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
APT_PACKAGES=(
  build-essential pkg-config python3 python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-libav
  python3-gst-1.0 gir1.2-gst-plugins-base-1.0 xvfb xauth
  libpango1.0-dev libcairo2-dev fonts-dejavu-core tesseract-ocr tesseract-ocr-eng
  mosquitto
  opencv-data  # facedetect's Haar cascades: only a Recommends of gstreamer1.0-opencv
)
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

# APT_PACKAGES and the packages of ELEMENTS, each once.
packages() {
  printf '%s\n' "${APT_PACKAGES[@]}" "${ELEMENTS[@]#*=}" | awk '!seen[$0]++'
}

log() { printf '[setup] %s\n' "$*" >&2; }

deps() {
  local missing=()
  local p
  for p in $(packages); do
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
  if ! command -v cargo >/dev/null; then
    log "cargo not found: install Rust (https://rustup.rs), version 1.95 or newer"
    exit 1
  fi
}

venv() {
  local venv=$1
  if "$venv/bin/python" - "$TORCH_VERSION" "$TORCHVISION_VERSION" 2>/dev/null <<'PY'
import sys, torch, torchvision
ok = torch.__version__.split("+")[0] == sys.argv[1] and torchvision.__version__.split("+")[0] == sys.argv[2]
sys.exit(0 if ok else 1)
PY
  then
    log "venv $venv: torch $TORCH_VERSION present"
    return
  fi
  log "venv $venv: installing torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION (large download, once)"
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
}

case "${1:-}" in
  deps) deps ;;
  elements) for e in "${ELEMENTS[@]}"; do echo "${e%%=*} ${e#*=}"; done ;;
  venv) venv "${2:?usage: setup.sh venv VENV}" ;;
  *) echo "usage: $0 deps | venv VENV | elements" >&2; exit 2 ;;
esac
