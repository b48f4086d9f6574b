#!/bin/bash
# Find, follow and classify objects: torchdetect (a TorchScript detector: YOLOv8/YOLO11, YOLOv5 or
# box lists) -> torchtrack (stable ids) -> torchclassify on each box (inference-region=roi-list,
# each track classified when first seen and every RECLASSIFY frames) -> torchoverlay (boxes,
# labels, ids) -> a window, or a file with JSON lines of every frame's boxes.
#
#   pipelines/detect.sh DETECTOR [camera|VIDEO]             a window
#   OUT=out.webm pipelines/detect.sh DETECTOR VIDEO          out.webm (VP8/WebM), out.webm.jsonl
#                                                            (torchdetect's boxes, one line a frame)
#                                                            and out.webm.classes.jsonl (each
#                                                            frame's classified boxes)
#   DETECT="labels=my.txt object-class=car,truck" CLASSIFY="model=cars.pt labels=cars.txt" \
#     RECLASSIFY=10 pipelines/detect.sh yolov8n.torchscript camera
#
# DETECTOR is a TorchScript detector (README, "Detecting and tracking objects": exporting one);
# an 80-class model gets COCO's names built in. CLASSIFY holds torchclassify's properties (by
# default the ImageNet MobileNetV2: the nearest of its 1000 classes for each box); CLASSIFY=none
# leaves the classifier out. With a camera, libcamerasrc (a Raspberry Pi's camera module) where
# it exists, else v4l2src (a USB webcam); CAMERA="v4l2src device=/dev/video1" (any source element
# and its properties) picks another, as in pipelines/camera.sh.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DETECTOR [camera|VIDEO]" >&2
  exit 2
fi
detector=$1
[ -f "$detector" ] || { echo "no such detector: $detector" >&2; exit 1; }
input=${2:-camera}
if [ "$input" = camera ]; then
  if [ -z "${CAMERA:-}" ]; then
    if gst-inspect-1.0 --exists libcamerasrc; then CAMERA=libcamerasrc; else CAMERA=v4l2src; fi
  fi
  # shellcheck disable=SC2206 # CAMERA is an element and its properties
  src=($CAMERA)
else
  [ -f "$input" ] || { echo "no such file: $input" >&2; exit 1; }
  src=(filesrc location="$input" ! decodebin)
fi
if [ -n "${OUT:-}" ]; then
  results=(results-file="$OUT.jsonl")
  classes=(results-file="$OUT.classes.jsonl")
  sink=(vp8enc deadline=1 cpu-used=4 target-bitrate=2000000 ! webmmux ! filesink location="$OUT")
  quiet=-q
else
  results=() classes=() sink=(autovideosink) quiet=
fi
if [ "${CLASSIFY:-}" = none ]; then
  classify=()
else
  # shellcheck disable=SC2206
  classify=(! torchclassify inference-region=roi-list reclassify-interval="${RECLASSIFY:-10}"
    "${classes[@]}" ${CLASSIFY:-})
fi
# shellcheck disable=SC2086
gst-launch-1.0 -e $quiet "${src[@]}" ! videoconvert ! \
  torchdetect model="$detector" "${results[@]}" ${DETECT:-} ! torchtrack ${TRACK:-} \
  "${classify[@]}" ! torchoverlay ${OVERLAY:-} ! videoconvert ! "${sink[@]}"
[ -z "${OUT:-}" ] || echo "wrote $OUT and $OUT.jsonl ($(wc -l <"$OUT.jsonl") frames)"
