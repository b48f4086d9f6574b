#!/bin/bash
# Many cameras, one model: N sources in one gst-launch-1.0, each classified by a torchclassify
# that shares one model with the others (model-instance-id: one load, one model thread, their
# frames batched, batch-size=N) and followed by a torchpublish sending its results, source-id
# camera-K, to an MQTT broker (or as JSON lines to a file).
#
#   pipelines/multi-camera.sh [N] [options] [torchclassify properties…]
#
#   N                       cameras (default 4): videotestsrc, live at 30 fps, a pattern each
#   --clip [FILE]           each camera plays FILE (default data/cat-coffee-orange.webm) instead
#   --address HOST:PORT     the MQTT broker (default 127.0.0.1:1883)
#   --topic TOPIC           the MQTT topic (default gst-torch/results)
#   --file PATH             JSON lines to PATH instead of MQTT (- = standard output)
#   --frames F              stop after F frames per camera (default: run until Ctrl-C; a clip
#                           stops at its end)
#   --fast                  as fast as the model goes, not in real time (sync=false)
#
#   mosquitto -p 1883 &  mosquitto_sub -t gst-torch/results &  pipelines/multi-camera.sh 8
#   pipelines/multi-camera.sh 4 --clip --file - | head
#   BATCH_TIMEOUT=0 pipelines/multi-camera.sh 4 num-threads=1
#
# BATCH_TIMEOUT (ns, default 10000000 = 10 ms, a third of a frame at 30 fps) is how long the model
# waits for the other cameras' frames to fill a batch. Every element must agree on the model's
# properties, so extra properties are given to all of them.
set -euo pipefail
usage() {
  sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
n=4 clip= address=127.0.0.1:1883 topic=gst-torch/results file= frames= sync=true
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  n=$1
  shift
fi
props=()
while [ $# -gt 0 ]; do
  case $1 in
    --clip)
      clip=$(dirname "$0")/../data/cat-coffee-orange.webm
      if [ $# -gt 1 ] && [[ $2 != --* && $2 != *=* ]]; then clip=$2; shift; fi ;;
    --address) [ $# -gt 1 ] || usage; address=$2; shift ;;
    --topic) [ $# -gt 1 ] || usage; topic=$2; shift ;;
    --file) [ $# -gt 1 ] || usage; file=$2; shift ;;
    --frames) [ $# -gt 1 ] && [[ $2 =~ ^[0-9]+$ ]] || usage; frames=$2; shift ;;
    --fast) sync=false ;;
    -h|--help) usage ;;
    *=*) props+=("$1") ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift
done
[ "$n" -ge 1 ] && [ "$n" -le 64 ] || { echo "N must be 1 to 64, not $n" >&2; exit 2; }
[ -z "$clip" ] || [ -f "$clip" ] || { echo "no such file: $clip" >&2; exit 1; }
if [ -z "$file" ] && ! [[ $address =~ ^[^:]+:[0-9]+$ ]]; then
  echo "--address wants HOST:PORT, not $address" >&2
  exit 2
fi

patterns=(smpte ball snow pinwheel spokes gradient checkers-8 circular zone-plate colors)
shared=(model-instance-id=multi-camera batch-size="$n" batch-timeout="${BATCH_TIMEOUT:-10000000}"
  post-messages=false)
if [ -n "$file" ]; then
  # All cameras write their lines to gst-launch-1.0's standard output (one writer per line).
  publish=(method=file location=-)
else
  publish=(method=mqtt address="$address" topic="$topic")
fi
branches=()
for k in $(seq 1 "$n"); do
  if [ -n "$clip" ]; then
    src=(filesrc location="$clip" ! decodebin ! videoconvert)
  else
    src=(videotestsrc is-live=true pattern="${patterns[$(((k - 1) % ${#patterns[@]}))]}"
      ${frames:+num-buffers=$frames} ! video/x-raw,width=640,height=480,framerate=30/1)
  fi
  [ -z "$clip" ] || [ -z "$frames" ] || src+=(! identity eos-after="$frames")
  branches+=("${src[@]}" ! torchclassify name=classify$k "${shared[@]}" "${props[@]}" !
    torchpublish name=publish$k "${publish[@]}" source-id=camera-$k ! fakesink sync=$sync)
done
if [ -z "$file" ]; then
  echo "$n cameras -> mqtt://$address topic $topic (source camera-1..camera-$n); Ctrl-C stops" >&2
  exec gst-launch-1.0 -e -q "${branches[@]}"
elif [ "$file" = - ]; then
  exec gst-launch-1.0 -e -q "${branches[@]}"
else
  gst-launch-1.0 -e -q "${branches[@]}" >"$file"
  echo "wrote $file ($(wc -l <"$file") results from $n cameras)" >&2
fi
