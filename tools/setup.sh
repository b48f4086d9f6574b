#!/usr/bin/env bash
# Idempotent set-up steps for gst-torch, run by the Makefile:
#   tools/setup.sh deps          Debian/Ubuntu packages (apt-get; root or sudo), skipped if present
#   tools/setup.sh venv VENV     Python venv with torch 2.13.0 + torchvision 0.28.0, skipped if present
set -euo pipefail

TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
APT_PACKAGES=(
  build-essential pkg-config python3 python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-x
  python3-gst-1.0 gir1.2-gst-plugins-base-1.0 xvfb xauth
  libpango1.0-dev libcairo2-dev fonts-dejavu-core tesseract-ocr tesseract-ocr-eng
)

log() { printf '[setup] %s\n' "$*" >&2; }

deps() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
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
  venv) venv "${2:?usage: setup.sh venv VENV}" ;;
  *) echo "usage: $0 deps | venv VENV" >&2; exit 2 ;;
esac
