#!/usr/bin/env bash
# The aarch64 build, proven under emulation (or natively on a Pi): `make test-aarch64` on aarch64
# runs this after the set-up `make demo` does there (the apt packages, the plugin's libtorch, the
# venv with CPU-only torch, the model exported in it, the plugin installed: cross-built by `make
# aarch64`, or compiled); on a PC it runs that in `tools/rootfs.sh debian13-arm64` (Debian 13 arm64
# under qemu-user). Plain gst-launch-1.0 with no GST_PLUGIN_PATH or LD_LIBRARY_PATH:
#   - the set-up: no CUDA anywhere (the venv's torch is a CPU build, the libtorch has no
#     libtorch_cuda.so), its sizes (venv + libtorch under 1.2 GB);
#   - the plugin loads (gst-inspect-1.0) and finds libtorch through its rpath;
#   - the shared photos give their classes, and the demo clip cat -> espresso -> orange, with
#     engine=auto, which must be qnnpack there (asserted from `stats`);
#   - the model exported by the venv's torch gives the same answers under the plugin's libtorch
#     as under that torch (tools/top1.py): each photo's top-1 the same, its confidence within 0.02;
#   - engine=auto picks qnnpack for a model that records no engine (the platform's default on
#     ARM; GST_TORCH_TEST_MODELS from `make test-models`);
#   - the card's pipeline, videotestsrc in place of the camera, reaches EOS;
#   - pipelines/camera.sh and demo.py --camera take libcamerasrc where it exists (the package is
#     installed on arm64), v4l2src where it does not (libcamera's plugin hidden).
# Prints the emulated model time per frame. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
unset GST_PLUGIN_PATH LD_LIBRARY_PATH
SHARED=${GST_TORCH_SHARED:-../shared}
TEST_MODELS=${GST_TORCH_TEST_MODELS:-target/test-models}
DATA_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/gst-torch
VENV=${VENV:-$DATA_DIR/venv}
LIBTORCH_DIR=${LIBTORCH_DIR:-$DATA_DIR/libtorch}
MODEL=${GST_TORCH_MODEL:-$DATA_DIR/mobilenet_v2_quantized.pt}
CLIP=data/cat-coffee-orange.webm
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
[ "$(uname -m)" = aarch64 ] || { echo "not on aarch64 (run through tools/rootfs.sh debian13-arm64)"; exit 1; }

check() { # name, then a command that must succeed
  local name=$1 t0=$SECONDS
  shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1)); echo "ok   - $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "FAIL - $name ($((SECONDS - t0)) s)"
  fi
  sed 's/^/       /' "$out/log" | tail -20
}

# The label of each torchclassify message on stdin (gst-launch-1.0 -m output lines), one a line;
# given FIELD TYPE PATTERN, each followed by a tab and the value of the later field
# FIELD=(TYPE)PATTERN.
label_of() {
  local rest="" value=""
  [ $# -eq 3 ] && rest=".* $1=($2)\\($3\\)" value='\t\4'
  sed -n 's/.* label=(string)\("\([^"]*\)"\|\([^,;]*\)\)'"$rest"'.*/\2\3'"$value"'/p' | sed 's/\\//g'
}
# The labels of ELEMENT's torchclassify messages in gst-launch-1.0 -m output FILE, one a line.
labels() {
  grep "from element \"$2\" (element): torchclassify," "$1" | label_of
}
# A field of ELEMENT's last torchclassify-stats message.
stat() {
  grep "from element \"$2\" (element): torchclassify-stats," "$1" | tail -1 |
    sed -n "s/.* $3=([a-z0-9]*)\([^,;]*\).*/\1/p"
}
is_cat() { case $1 in "Egyptian cat" | tabby | "tiger cat" | "Persian cat" | "Siamese cat") ;; *) return 1 ;; esac; }
engine_is_qnnpack() { # file, element
  local engine
  engine=$(stat "$1" "$2" engine)
  [ "$engine" = qnnpack ] || { echo "$2: engine '$engine' in stats, expected qnnpack"; return 1; }
}

setup_without_cuda() {
  "$VENV/bin/python" -c 'import sys, torch, torchvision
print(f"venv: torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA {torch.version.cuda}")
sys.exit(torch.version.cuda is not None)' || { echo "the venv's torch is a CUDA build"; return 1; }
  echo "libtorch: $(cat "$LIBTORCH_DIR/build-version"), $(ls "$LIBTORCH_DIR/lib" | wc -l) libraries"
  if ls "$LIBTORCH_DIR"/lib/libtorch_cuda* >/dev/null 2>&1; then echo "libtorch_cuda in $LIBTORCH_DIR"; return 1; fi
  local venv_mb libtorch_mb
  venv_mb=$(du -sm "$VENV" | cut -f1) libtorch_mb=$(du -sm "$LIBTORCH_DIR" | cut -f1)
  echo "installed: venv $venv_mb MB, libtorch $libtorch_mb MB; $DATA_DIR in all $(du -sm "$DATA_DIR" | cut -f1) MB"
  [ $((venv_mb + libtorch_mb)) -lt 1200 ] || { echo "venv + libtorch over 1.2 GB"; return 1; }
}

plugin_loads() {
  gst-inspect-1.0 torchclassify >"$out/inspect" || { cat "$out/inspect"; return 1; }
  grep -E 'Filename|Version' "$out/inspect"
  gst-inspect-1.0 torchoverlay >/dev/null
}

photos() { # one process, one element per photo
  local pipeline=() name
  for name in cat.png coffee.png orange.jpg; do
    pipeline+=(filesrc location="$SHARED/media/$name" ! decodebin ! videoconvert !
      torchclassify name="${name%.*}" stats-interval=600000 ! fakesink)
  done
  timeout 600 gst-launch-1.0 -m "${pipeline[@]}" >"$out/photos" 2>&1 || { tail -20 "$out/photos"; return 1; }
  local cat coffee orange
  cat=$(labels "$out/photos" cat) coffee=$(labels "$out/photos" coffee) orange=$(labels "$out/photos" orange)
  echo "cat.png: $cat; coffee.png: $coffee; orange.jpg: $orange"
  is_cat "$cat" && [ "$coffee" = espresso ] && [ "$orange" = orange ] || { echo "unexpected classes"; return 1; }
  for name in cat coffee orange; do engine_is_qnnpack "$out/photos" "$name" || return 1; done
}

clip() { # the whole clip (3 s, 30 frames): the top-1 most frames of each second have
  timeout 900 gst-launch-1.0 -m filesrc location="$CLIP" ! decodebin ! videoconvert ! \
    torchclassify stats-interval=600000 ! fakesink >"$out/clip" 2>&1 || { tail -20 "$out/clip"; return 1; }
  local seconds
  seconds=$(grep 'from element "torchclassify0" (element): torchclassify,' "$out/clip" |
    label_of timestamp guint64 '[0-9]*' | awk -F'\t' '{ n[int($2 / 1e9) " " $1]++ }
      END { for (k in n) print k "\t" n[k] }' | sort -t$'\t' -k1,1n -k2,2nr |
    awk -F'\t' '{ split($1, a, " "); if (!(a[1] in best)) { best[a[1]] = substr($1, length(a[1]) + 2); print best[a[1]] } }' |
    paste -sd,)
  echo "top-1 of each second: $seconds; frames $(stat "$out/clip" torchclassify0 frames)," \
    "model $(stat "$out/clip" torchclassify0 mean-inference-ms) ms per frame (mean; max $(stat "$out/clip" torchclassify0 max-inference-ms))"
  local first=${seconds%%,*}
  is_cat "$first" && [ "${seconds#*,}" = "espresso,orange" ] || { echo "expected a cat class, espresso, orange"; return 1; }
  engine_is_qnnpack "$out/clip" torchclassify0
}

same_answers() { # the venv's torch and the plugin's libtorch on the same 224x224 RGB frames
  local name element
  "$VENV/bin/python" tools/top1.py "$MODEL" "$SHARED/media/cat.png" "$SHARED/media/coffee.png" \
    "$SHARED/media/orange.jpg" >"$out/python" 2>"$out/python.err" || { cat "$out/python.err"; return 1; }
  local pipeline=()
  for name in cat.png coffee.png orange.jpg; do
    pipeline+=(filesrc location="$SHARED/media/$name" ! decodebin ! videoconvert ! videoscale !
      video/x-raw,format=RGB,width=224,height=224 ! torchclassify model="$MODEL" name="${name%.*}" ! fakesink)
  done
  timeout 600 gst-launch-1.0 -m "${pipeline[@]}" >"$out/same" 2>&1 || { tail -20 "$out/same"; return 1; }
  local torch_version
  torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
  while IFS=$'\t' read -r image label _id confidence; do
    name=$(basename "$image")
    element=$(grep "from element \"${name%.*}\" (element): torchclassify," "$out/same" | head -1 |
      label_of confidence double '[0-9.e-]*')
    echo "$name: torch $torch_version: $label ($confidence); plugin (libtorch $(cat "$LIBTORCH_DIR/build-version")):" \
      "${element%%$'\t'*} ($(printf '%.4f' "${element#*$'\t'}"))"
    [ "${element%%$'\t'*}" = "$label" ] || { echo "top-1 differs"; return 1; }
    awk -v a="$confidence" -v b="${element#*$'\t'}" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.02) }' ||
      { echo "confidence differs by more than 0.02"; return 1; }
  done <"$out/python"
  [ "$(wc -l <"$out/python")" -eq 3 ] || { echo "expected 3 lines from tools/top1.py"; return 1; }
}

auto_without_record() { # no gst_torch_engine(): the platform's default, qnnpack on ARM
  [ -f "$TEST_MODELS/ten_classes.pt" ] || { echo "no $TEST_MODELS/ten_classes.pt (make test-models)"; return 1; }
  timeout 300 gst-launch-1.0 -m videotestsrc num-buffers=2 ! videoconvert ! \
    torchclassify model="$TEST_MODELS/ten_classes.pt" labels="$TEST_MODELS/ten_labels.txt" stats-interval=600000 ! \
    fakesink >"$out/auto" 2>&1 || { tail -20 "$out/auto"; return 1; }
  engine_is_qnnpack "$out/auto" torchclassify0 && echo "engine=auto: qnnpack"
}

card_pipeline() { # the card's pipeline, videotestsrc in place of the camera
  timeout 600 gst-launch-1.0 -m videotestsrc num-buffers=20 ! videoconvert ! \
    torchclassify stats-interval=600000 ! autovideosink >"$out/card" 2>&1 || { tail -20 "$out/card"; return 1; }
  grep -q "Got EOS" "$out/card" || { echo "no EOS"; return 1; }
  echo "EOS; frames $(stat "$out/card" torchclassify0 frames), inferences $(stat "$out/card" torchclassify0 inferences)," \
    "skipped as late $(stat "$out/card" torchclassify0 skipped)"
  [ "$(stat "$out/card" torchclassify0 inferences)" -gt 0 ] && engine_is_qnnpack "$out/card" torchclassify0
}

# The camera scripts' choice: the source they print (camera.sh: "camera: X"; demo.py: its
# pipeline). No camera here, so the pipeline then fails or is stopped: only the choice is checked.
camera_choice() { # expected source, then extra environment (GST_*)
  local want=$1
  shift
  env "$@" timeout 60 pipelines/camera.sh >"$out/camera" 2>&1
  env "$@" timeout 60 pipelines/demo.py --camera >"$out/demo-camera" 2>&1
  local got demo
  got=$(sed -n 's/^camera: //p' "$out/camera" | head -1)
  demo=$(sed -n 's/^gst-launch-1.0 \([^ ]*\) .*/\1/p' "$out/demo-camera" | head -1)
  echo "camera.sh: $got; demo.py --camera: $demo ($(grep -m1 '^ERROR' "$out/camera" || grep -m1 -i 'error' "$out/camera" ||
    echo "no error"))"
  [ "$got" = "$want" ] && [ "$demo" = "$want" ] || { cat "$out/camera" "$out/demo-camera" | tail -20; return 1; }
  ! grep -q 'no element\|erroneous pipeline' "$out/camera" "$out/demo-camera" || { echo "a pipeline did not parse"; return 1; }
}

camera_libcamera() {
  gst-inspect-1.0 --exists libcamerasrc || { echo "no libcamerasrc (tools/setup.sh deps: gstreamer1.0-libcamera)"; return 1; }
  camera_choice libcamerasrc
}

camera_v4l2() { # the same with libcamera's plugin hidden: every other plugin, a registry of its own
  local dir plugins=$out/plugins f
  dir=$(dirname "$(gst-inspect-1.0 libcamerasrc | sed -n 's/^ *Filename *//p')")
  mkdir -p "$plugins"
  for f in "$dir"/*.so; do [ "$(basename "$f")" = libgstlibcamera.so ] || ln -s "$f" "$plugins/"; done
  camera_choice v4l2src GST_REGISTRY_1_0="$out/registry.bin" \
    GST_PLUGIN_SYSTEM_PATH_1_0="${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins:$plugins"
}

echo "qemu CPU model: ${QEMU_CPU:-default}"
check "the set-up has no CUDA, venv + libtorch under 1.2 GB" setup_without_cuda
check "the installed plugin loads (rpath to libtorch)" plugin_loads
check "photos: their classes, engine=auto is qnnpack" photos
check "demo clip: cat, espresso, orange, engine=auto is qnnpack" clip
check "the venv's export gives the same answers under the plugin's libtorch" same_answers
check "engine=auto without a recorded engine is qnnpack" auto_without_record
check "the card's pipeline (videotestsrc) reaches EOS" card_pipeline
check "camera.sh and demo.py --camera take libcamerasrc where it exists" camera_libcamera
check "... and v4l2src where it does not" camera_v4l2
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
