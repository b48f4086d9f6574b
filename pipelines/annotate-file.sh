#!/bin/bash
# Any video GStreamer can decode -> the same video with the labels drawn on it (VP8/WebM), and
# OUT.jsonl beside it with one JSON line per inference.
#
#   pipelines/annotate-file.sh IN OUT [torchclassify properties…]
#   OVERLAY="position=bottom-right show-top-k=true" pipelines/annotate-file.sh in.mp4 out.webm
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 IN OUT [torchclassify properties]" >&2
  exit 2
fi
in=$1 out=$2
shift 2
[ -f "$in" ] || { echo "no such file: $in" >&2; exit 1; }
# shellcheck disable=SC2086
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  torchclassify results-file="$out.jsonl" "$@" ! torchoverlay ${OVERLAY:-} ! videoconvert ! \
  vp8enc deadline=1 cpu-used=4 target-bitrate=2000000 ! webmmux ! filesink location="$out"
echo "wrote $out and $out.jsonl ($(wc -l <"$out.jsonl") results)"
