#!/bin/bash
# Classify a video (or image) file and print one line per inference: time, top-1 label and
# confidence, then the rest of the top-k — like the seed tutorial's top-k print.
#
#   pipelines/classify-file.sh IN [torchclassify properties…]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 IN [torchclassify properties]" >&2
  exit 2
fi
in=$1
shift
[ -f "$in" ] || { echo "no such file: $in" >&2; exit 1; }
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  torchclassify results-file=- post-messages=false "$@" ! fakesink |
  python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    t = "%8.3f s" % (r["pts"] / 1e9) if r["pts"] is not None else "       -"
    rest = ", ".join("%s %.2f" % (p["label"], p["confidence"]) for p in r["top-k"][1:])
    print("%s  %-20s %.2f   %s" % (t, r["label"], r["confidence"], rest), flush=True)
'
