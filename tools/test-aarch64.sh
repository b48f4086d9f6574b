#!/usr/bin/env bash
# The aarch64 build, proven under emulation: `make test-aarch64` runs this inside
# `tools/rootfs.sh debian13-arm64` (Debian 13 arm64 under qemu-user), where the cross-built plugin
# and the qnnpack model are installed per user as the README's set-up installs them, and plain
# gst-launch-1.0 runs with no GST_PLUGIN_PATH or LD_LIBRARY_PATH:
#   - the plugin loads (gst-inspect-1.0) and finds libtorch through its rpath;
#   - the shared photos give their classes, and the demo clip cat -> espresso -> orange, with
#     engine=auto, which must be qnnpack there (asserted from `stats`);
#   - engine=auto picks qnnpack for a model that records no engine (the platform's default on
#     ARM; GST_TORCH_TEST_MODELS from `make test-models`);
#   - the card's pipeline, videotestsrc in place of the camera, reaches EOS.
# Prints the emulated model time per frame. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
unset GST_PLUGIN_PATH LD_LIBRARY_PATH
SHARED=${GST_TORCH_SHARED:-../shared}
TEST_MODELS=${GST_TORCH_TEST_MODELS:-target/test-models}
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

# The labels of ELEMENT's torchclassify messages in gst-launch-1.0 -m output FILE, one a line.
labels() {
  grep "from element \"$2\" (element): torchclassify," "$1" |
    sed -n 's/.* label=(string)\("\([^"]*\)"\|\([^,;]*\)\).*/\2\3/p' | sed 's/\\//g'
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
    sed -n 's/.* label=(string)\("\([^"]*\)"\|\([^,;]*\)\).* timestamp=(guint64)\([0-9]*\).*/\4 \2\3/p' |
    sed 's/\\//g' | awk '{ s = int($1 / 1e9); $1 = ""; sub(/^ /, ""); n[s " " $0]++ }
      END { for (k in n) print k "\t" n[k] }' | sort -t$'\t' -k1,1n -k2,2nr |
    awk -F'\t' '{ split($1, a, " "); if (!(a[1] in best)) { best[a[1]] = substr($1, length(a[1]) + 2); print best[a[1]] } }' |
    paste -sd,)
  echo "top-1 of each second: $seconds; frames $(stat "$out/clip" torchclassify0 frames)," \
    "model $(stat "$out/clip" torchclassify0 mean-inference-ms) ms per frame (mean; max $(stat "$out/clip" torchclassify0 max-inference-ms))"
  local first=${seconds%%,*}
  is_cat "$first" && [ "${seconds#*,}" = "espresso,orange" ] || { echo "expected a cat class, espresso, orange"; return 1; }
  engine_is_qnnpack "$out/clip" torchclassify0
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

echo "qemu CPU model: ${QEMU_CPU:-default}"
check "the installed plugin loads (rpath to the venv's libtorch)" plugin_loads
check "photos: their classes, engine=auto is qnnpack" photos
check "demo clip: cat, espresso, orange, engine=auto is qnnpack" clip
check "engine=auto without a recorded engine is qnnpack" auto_without_record
check "the card's pipeline (videotestsrc) reaches EOS" card_pipeline
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
