#!/usr/bin/env bash
# Pipeline tests with the installed plugin, the way a user runs it: plain gst-launch-1.0 and
# gst-inspect-1.0 with no GST_PLUGIN_PATH or LD_LIBRARY_PATH, real sinks under Xvfb, the demo.
# Run by `make test` after `make install` and `make model`.
set -u
cd "$(dirname "$0")/.."
unset GST_PLUGIN_PATH LD_LIBRARY_PATH
SHARED=${GST_TORCH_SHARED:-../shared}
MODEL_PROP=${GST_TORCH_MODEL:+model=$GST_TORCH_MODEL}
TEST_MODELS=${GST_TORCH_TEST_MODELS:-target/test-models}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0

check() { # name, then a command that must succeed
  local name=$1; shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1)); echo "ok   - $name"
  else
    failed=$((failed + 1)); echo "FAIL - $name"; sed 's/^/       /' "$out/log" | tail -20
    missing_element_hint
  fi
}

missing_element_hint() { # gst-launch-1.0 says `no element "X"`: name the package that has X
  local e package
  e=$(grep -o 'no element "[A-Za-z0-9_-]*"' "$out/log" | head -1 | cut -d'"' -f2)
  [ -n "$e" ] || return 0
  package=$(tools/setup.sh elements | awk -v e="$e" '$1 == e {print $2}')
  [ -n "$package" ] || package="(none: add the element to ELEMENTS in tools/setup.sh)"
  echo "       element $e is missing: install package $package (tools/setup.sh deps)"
}

inspect_lists_properties() {
  gst-inspect-1.0 torchclassify >"$out/inspect" || return 1
  for p in model labels top-k engine num-threads post-messages inference-interval async \
    stats-interval stats results-file inference-region object-class min-roi-size max-batch \
    model-instance-id batch-size batch-timeout model-config mean std pixel-scale color-order \
    resize crop-fraction output threshold \
    Filter/Analyzer/Video; do
    grep -q -- "$p" "$out/inspect" || { echo "gst-inspect-1.0 torchclassify lacks $p"; return 1; }
  done
  grep -q -- reclassify-interval "$out/inspect" || { echo "torchclassify lacks reclassify-interval"; return 1; }
  gst-inspect-1.0 torchoverlay >"$out/inspect" || return 1
  for p in font-desc position show-top-k color background min-confidence Filter/Editor/Video; do
    grep -q -- "$p" "$out/inspect" || { echo "gst-inspect-1.0 torchoverlay lacks $p"; return 1; }
  done
  gst-inspect-1.0 torchdetect >"$out/inspect" || return 1
  for p in model output-format threshold iou-threshold max-detections object-class min-size \
    pad-color input-size inference-interval async model-instance-id stats Filter/Analyzer/Video; do
    grep -q -- "$p" "$out/inspect" || { echo "gst-inspect-1.0 torchdetect lacks $p"; return 1; }
  done
  gst-inspect-1.0 torchtrack >"$out/inspect" || return 1
  for p in iou-threshold max-age min-hits high-threshold low-threshold per-class stats; do
    grep -q -- "$p" "$out/inspect" || { echo "gst-inspect-1.0 torchtrack lacks $p"; return 1; }
  done
}

card_pipeline() { # sink: the card's pipeline, videotestsrc in place of the camera, under Xvfb
  # stats-interval longer than the run: one torchclassify-stats message, at EOS.
  timeout 120 xvfb-run -a gst-launch-1.0 -m videotestsrc num-buffers=60 ! videoconvert ! \
    torchclassify $MODEL_PROP stats-interval=600000 ! "$1" >"$out/card" 2>&1 || { cat "$out/card"; return 1; }
  grep -q "Got EOS" "$out/card" || { echo "no EOS"; return 1; }
  # Xvfb renders slowly, so some frames are late: videoconvert's QoS may drop them before the
  # element (a qos message each), and the element skips inference on late ones (counted in
  # stats). Every other frame gets one result message.
  local results dropped stats frames inferences skipped
  results=$(grep -c 'from element "torchclassify0" (element): torchclassify,' "$out/card")
  dropped=$(grep -c 'from element "videoconvert0" (qos)' "$out/card")
  stats=$(grep 'torchclassify-stats' "$out/card" | tail -1)
  frames=$(sed -n 's/.*frames=(guint64)\([0-9]*\).*/\1/p' <<<"$stats")
  inferences=$(sed -n 's/.*inferences=(guint64)\([0-9]*\).*/\1/p' <<<"$stats")
  skipped=$(sed -n 's/.*skipped=(guint64)\([0-9]*\).*/\1/p' <<<"$stats")
  echo "$1: $frames frames reached the element ($dropped dropped before it), $inferences inferences, $skipped skipped as late, $results messages"
  [ -n "$frames" ] && [ $((frames + dropped)) -eq 60 ] && [ $((inferences + skipped)) -eq "$frames" ] \
    && [ "$results" -eq "$inferences" ] && [ "$inferences" -gt 0 ] || { echo "counts do not add up"; return 1; }
}

demo_prints_sequence() {
  timeout 120 pipelines/demo.py --fast >"$out/demo" 2>&1 || { cat "$out/demo"; return 1; }
  cat "$out/demo"
  ! grep -i 'warning\|deprecat' "$out/demo" || { echo "the demo printed a warning"; return 1; }
  local labels
  labels=$(grep -o 'top-1: [^(]*' "$out/demo" | sed 's/top-1: //; s/ *$//' | paste -sd,)
  case "$labels" in
    *cat,espresso,orange) ;;
    *) echo "demo printed '$labels', expected a cat class, espresso, orange"; return 1 ;;
  esac
}

photo_with_plain_gst_launch() { # coffee.png, as pipelines/classify-file.sh would
  timeout 60 gst-launch-1.0 -m filesrc location="$SHARED/media/coffee.png" ! decodebin ! \
    videoconvert ! torchclassify $MODEL_PROP ! fakesink >"$out/photo" 2>&1 || { cat "$out/photo"; return 1; }
  grep -q 'label=(string)espresso, class-id=(int)967' "$out/photo" || { cat "$out/photo"; return 1; }
}

missing_model_is_an_error_not_a_crash() {
  local rc=0
  timeout 60 gst-launch-1.0 videotestsrc num-buffers=1 ! torchclassify model=/nonexistent/model.pt ! \
    fakesink >"$out/err" 2>&1 || rc=$?
  cat "$out/err"
  # gst-launch-1.0 exits 1 or 255 on an error message; 124 is a time-out, 134/139 a crash.
  case $rc in 1|255) ;; *) echo "exit code $rc"; return 1 ;; esac
  ! grep -q -i 'panicked\|core dumped\|Aborted' "$out/err" || { echo 'crashed'; return 1; }
  grep -q "Cannot use model '/nonexistent/model.pt' (property 'model'): no such file" "$out/err"
}

libtorch_warnings_go_to_the_debug_log() {
  # The default int8 model: libtorch's deprecation of quantize_per_tensor is not printed.
  timeout 60 gst-launch-1.0 videotestsrc num-buffers=2 ! torchclassify $MODEL_PROP ! fakesink \
    >"$out/quiet" 2>&1 || { cat "$out/quiet"; return 1; }
  ! grep -i 'warning\|deprecat' "$out/quiet" || { echo "libtorch printed a warning"; return 1; }
  # warns.pt warns on every forward: its warning goes to the GStreamer log (category libtorch),
  # never as libtorch's own line on stderr.
  local warns="torchclassify model=$TEST_MODELS/warns.pt labels=$TEST_MODELS/ten_labels.txt"
  timeout 60 gst-launch-1.0 videotestsrc num-buffers=2 ! $warns ! fakesink >"$out/plain" 2>&1 \
    || { cat "$out/plain"; return 1; }
  ! grep 'test warning' "$out/plain" || { echo "printed without GST_DEBUG"; return 1; }
  GST_DEBUG=libtorch:2 GST_DEBUG_NO_COLOR=1 timeout 60 gst-launch-1.0 videotestsrc num-buffers=2 ! \
    $warns ! fakesink >"$out/logged" 2>&1 || { cat "$out/logged"; return 1; }
  grep -m1 'WARN .* libtorch .*gst-torch test warning from warns.pt' "$out/logged" \
    || { cat "$out/logged"; return 1; }
}

python_app_reads_bus_and_meta() {
  timeout 120 pipelines/app.py >"$out/app" 2>&1 || { cat "$out/app"; return 1; }
  tail -1 "$out/app"
  grep -q '^30 results from the bus, 30 from buffer meta, the same$' "$out/app" || { cat "$out/app"; return 1; }
  for label in cat espresso orange; do grep -q "^bus .* [A-Za-z ]*$label" "$out/app" || { echo "no $label"; return 1; }; done
}

rust_app_prints_label_changes() {
  # Built by `make test` (cargo build --examples); links the plugin statically.
  timeout 120 target/release/examples/app >"$out/rapp" 2>&1 || { cat "$out/rapp"; return 1; }
  cat "$out/rapp"
  local labels
  labels=$(awk '{print $2, $3}' "$out/rapp" | sed 's/ (.*//; s/ [0-9].*//' | paste -sd,)
  case "$labels" in
    *cat*,espresso,orange) ;;
    *) echo "printed '$labels', expected a cat class, then espresso, then orange"; return 1 ;;
  esac
}

annotated_file_has_the_label_in_its_corner() {
  OVERLAY="position=bottom-right" timeout 120 pipelines/annotate-file.sh data/cat-coffee-orange.webm \
    "$out/annotated.webm" $MODEL_PROP || return 1
  # Pixels: text in the bottom-right corner only; JSON lines: 30 objects with the right labels.
  tests/check_annotated.py data/cat-coffee-orange.webm "$out/annotated.webm" bottom-right "$out/frame.png" || return 1
  # OCR: tesseract reads the label back from that corner of frame 15 (espresso).
  tesseract "$out/frame-corner.png" stdout 2>/dev/null >"$out/ocr" || return 1
  echo "tesseract read: $(head -1 "$out/ocr")"
  grep -q espresso "$out/ocr" || { echo "OCR did not find 'espresso'"; return 1; }
}

classify_file_prints_one_line_per_inference() {
  timeout 60 pipelines/classify-file.sh data/cat-coffee-orange.webm $MODEL_PROP >"$out/cf" 2>/dev/null || return 1
  sed -n '1p;30p' "$out/cf"
  [ "$(wc -l <"$out/cf")" -eq 30 ] || { echo "$(wc -l <"$out/cf") lines, expected 30"; return 1; }
  grep -q '^   1.500 s  espresso ' "$out/cf" && grep -q '^   2.900 s  orange ' "$out/cf"
}

regions_app_reads_each_region() {
  timeout 120 pipelines/regions_app.py >"$out/regions" 2>&1 || { cat "$out/regions"; return 1; }
  sed -n '1,2p;$p' "$out/regions"
  grep -q '^30 frames in, 30 out, 60 region results on ROI metas (0 carried), 60 bus messages, all agree$' "$out/regions" \
    || { cat "$out/regions"; return 1; }
  # Region 1 covers most of the frame: a cat class (281-285), espresso (967), orange (950) in the
  # clip's three seconds, in at least 8 of each second's 10 frames.
  awk '$5 == "roi" && $6 == 1 {
         p = int($1); for (i = 8; i < NF; i++) if ($i == "class") c = $(i + 1); total[p]++
         if ((p == 0 && c >= 281 && c <= 285) || (p == 1 && c == 967) || (p == 2 && c == 950)) right[p]++ }
       END { for (p = 0; p < 3; p++) {
               printf "second %d: region 1 right in %d of %d frames\n", p, right[p], total[p]
               if (total[p] != 10 || right[p] < 8) bad = 1 }
             exit bad }' "$out/regions"
}

faces_runs_on_the_clip() {
  # No faces in the clip: the pipeline simply runs to the end and writes its file.
  OUT="$out/faces.webm" timeout 120 pipelines/faces.sh data/cat-coffee-orange.webm $MODEL_PROP \
    >"$out/faces" 2>&1 || { cat "$out/faces"; return 1; }
  cat "$out/faces"
  ! grep 'ERROR\|CRITICAL' "$out/faces" || { echo 'it printed errors'; return 1; }
  [ -s "$out/faces.webm" ] || { echo "no video written"; return 1; }
  # The detector's raw windows (min-neighbors=0) as faces: regions reach torchclassify and the file.
  FACEDETECT=min-neighbors=0 OUT="$out/raw.webm" timeout 120 pipelines/faces.sh data/cat-coffee-orange.webm \
    $MODEL_PROP >"$out/faces" 2>&1 || { cat "$out/faces"; return 1; }
  cat "$out/faces"
  python3 - "$out/raw.webm.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
objects = [o for l in lines for o in l["objects"]]
assert lines and all(o["roi-type"] == "face" and o["label"] and o["width"] > 0 for o in objects), lines[:1]
print(f"{len(lines)} frames with raw face windows, {len(objects)} regions classified")
PY
}

detect_sh_finds_follows_and_classifies() {
  # The test detector on the shapes clip (tools/make_test_models.py): every frame's boxes in the
  # JSON lines, each classified by the colour classifier, one track id per object.
  local tm=$TEST_MODELS
  OUT="$out/detect.webm" DETECT="labels=$tm/shapes_labels.txt" RECLASSIFY=8 \
    CLASSIFY="model=$tm/multilabel.pt labels=$tm/multilabel_labels.txt output=sigmoid input-size=32 mean=<0.0,0.0,0.0> std=<1.0,1.0,1.0>" \
    timeout 120 pipelines/detect.sh "$tm/shapes_yolov8.pt" "$tm/shapes.webm" >"$out/detect" 2>&1 ||
    { cat "$out/detect"; return 1; }
  cat "$out/detect"
  [ -s "$out/detect.webm" ] || { echo "no video written"; return 1; }
  python3 - "$out/detect.webm.jsonl" "$out/detect.webm.classes.jsonl" <<'PY'
import json, sys
boxes = [json.loads(l) for l in open(sys.argv[1])]
classes = [json.loads(l) for l in open(sys.argv[2])]
assert len(boxes) == 40, len(boxes)
counts = [len(l["objects"]) for l in boxes]
assert counts.count(3) == 35 and counts.count(2) == 5, counts
# Each track's boxes: one label, one class (its colour).
ids = {}
for line in classes:
    for o in line["objects"]:
        assert o["label"] == o["roi-type"], o
        ids.setdefault(o["roi-id"], set()).add(o["roi-type"])
assert all(len(v) == 1 for v in ids.values()) and len(ids) == 3, ids
print(f"{sum(counts)} boxes in 40 frames; tracks {sorted(ids)}; {len(classes)} frames with classified boxes")
PY
}

multi_camera_publishes_every_camera() { # 3 cameras sharing one model: --file, then MQTT
  local n=3 frames=10
  timeout 60 pipelines/multi-camera.sh $n --frames $frames --file "$out/cams.jsonl" $MODEL_PROP \
    >"$out/cams" 2>&1 || { cat "$out/cams"; return 1; }
  cat "$out/cams"
  count_cameras "$out/cams.jsonl" $n $frames || return 1
  # MQTT: a mosquitto on a free loopback port and a subscriber (mosquitto_sub if installed, else a
  # few lines of MQTT 3.1.1 over a socket); every camera's messages must arrive.
  local broker port conf sub pid sub_pid
  broker=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  [ -x "$broker" ] || { echo "no mosquitto (tools/setup.sh deps installs it)"; return 1; }
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  conf="$out/mosquitto.conf"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$conf"
  "$broker" -c "$conf" >"$out/broker" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null && break
    sleep 0.05
  done
  if command -v mosquitto_sub >/dev/null; then
    sub=(mosquitto_sub -h 127.0.0.1 -p "$port" -t gst-torch/results -C $((n * frames)) -W 30)
  else
    sub=(python3 -c "$MQTT_SUB" 127.0.0.1 "$port" gst-torch/results $((n * frames)) 30)
  fi
  "${sub[@]}" >"$out/mqtt.jsonl" 2>"$out/sub" &
  sub_pid=$!
  sleep 0.5 # subscribed before the cameras start (the broker keeps nothing for late subscribers)
  timeout 60 pipelines/multi-camera.sh $n --frames $frames --address 127.0.0.1:"$port" $MODEL_PROP \
    >"$out/cams" 2>&1 || { cat "$out/cams"; kill "$pid" "$sub_pid" 2>/dev/null; return 1; }
  cat "$out/cams"
  wait "$sub_pid" || { cat "$out/sub"; echo "the subscriber did not get $((n * frames)) messages"; }
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  count_cameras "$out/mqtt.jsonl" $n $frames
}

count_cameras() { # FILE N FRAMES: JSON lines from sources camera-1..camera-N, FRAMES each
  python3 - "$@" <<'PY'
import collections, json, sys
path, n, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = [json.loads(line) for line in open(path)]
counts = collections.Counter(r["source"] for r in lines)
want = {f"camera-{k}": frames for k in range(1, n + 1)}
print(f"{path.rsplit('/', 1)[-1]}: {dict(sorted(counts.items()))}")
assert counts == want, f"expected {want}"
assert all(r["label"] and 0 <= r["confidence"] <= 1 for r in lines), lines[0]
PY
}

# A minimal MQTT 3.1.1 subscriber (QoS 0): HOST PORT TOPIC COUNT SECONDS; prints each payload.
MQTT_SUB='
import socket, struct, sys, time
host, port, topic, count, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def packet(kind, body):
    n, length = len(body), b""
    while True:
        length += bytes([(n % 128) | (128 if n >= 128 else 0)]); n //= 128
        if not n: break
    return bytes([kind]) + length + body
def string(b): return struct.pack("!H", len(b)) + b
s = socket.create_connection((host, port), timeout=seconds)
s.sendall(packet(0x10, string(b"MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + string(b"pipelines-check")))
s.sendall(packet(0x82, struct.pack("!H", 1) + string(topic.encode()) + b"\0"))
f, got, deadline = s.makefile("rb"), 0, time.monotonic() + seconds
while got < count and time.monotonic() < deadline:
    kind, n, shift = f.read(1)[0], 0, 0
    while True:
        b = f.read(1)[0]; n |= (b & 127) << shift; shift += 7
        if b < 128: break
    body = f.read(n)
    if kind >> 4 == 3:
        t = struct.unpack("!H", body[:2])[0]
        sys.stdout.write(body[2 + t + (2 if kind & 6 else 0):].decode() + "\n"); sys.stdout.flush(); got += 1
sys.exit(0 if got >= count else 1)
'

check "every element used comes from a package tools/setup.sh installs" tools/check_elements.py
check "gst-inspect-1.0 lists the properties (installed plugin, no env vars)" inspect_lists_properties
check "card pipeline reaches EOS through autovideosink under xvfb" card_pipeline autovideosink
check "card pipeline reaches EOS through ximagesink under xvfb" card_pipeline ximagesink
check "card pipeline reaches EOS through glimagesink under xvfb" card_pipeline glimagesink
check "demo prints cat, espresso, orange" demo_prints_sequence
check "plain gst-launch-1.0 -m classifies a photo" photo_with_plain_gst_launch
check "missing model: error message, exit 1, no crash" missing_model_is_an_error_not_a_crash
check "libtorch's warnings: the known deprecation nowhere, others in the debug log" libtorch_warnings_go_to_the_debug_log
check "Python app reads results from bus messages and ROI meta alike" python_app_reads_bus_and_meta
check "Rust app reads ClassificationMeta in a pad probe" rust_app_prints_label_changes
check "annotate-file.sh: label in the chosen corner only, JSON lines, OCR reads it" annotated_file_has_the_label_in_its_corner
check "classify-file.sh prints one line per inference" classify_file_prints_one_line_per_inference
check "regions_app.py: its own regions, each region's result from ROI meta and bus alike" regions_app_reads_each_region
check "faces.sh: facedetect's regions classified, runs to the end of the clip" faces_runs_on_the_clip
check "multi-camera.sh: 3 cameras share one model; every camera's results in the file and over MQTT" \
  multi_camera_publishes_every_camera
check "detect.sh: detect, track, classify, overlay: every box, one id per object, its class" \
  detect_sh_finds_follows_and_classifies

echo "pipelines: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
