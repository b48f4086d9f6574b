#!/bin/bash
# Faces found by OpenCV's face detector, each classified and drawn: gst-plugins-bad's `facedetect`
# (Debian package gstreamer1.0-opencv, its Haar cascades from opencv-data) attaches a "face"
# GstVideoRegionOfInterestMeta per face; `torchclassify inference-region=roi-list` classifies every
# one (all of a frame's faces in one batch) and `torchoverlay` draws each box with its label.
#
#   pipelines/faces.sh [camera]                 the camera (v4l2src), in a window
#   pipelines/faces.sh VIDEO                    a file, in a window
#   OUT=out.webm pipelines/faces.sh VIDEO       into out.webm (VP8/WebM) and out.webm.jsonl (one
#                                               JSON line per frame with faces); no display needed
#   pipelines/faces.sh camera model=my.pt       extra arguments are torchclassify properties
#   FACEDETECT="min-size-width=60 min-size-height=60" OVERLAY="show-top-k=true" pipelines/faces.sh VIDEO
#
# The default model is ImageNet's MobileNetV2, which has no "face" class: it labels what is in each
# box with the nearest of its 1000 classes (expect "wig", "mask", "sunglasses" and the like). The
# point is the wiring: a face model of your own (identity, expression, ...) goes in with
# model=… labels=… (README, "Your own model"). facedetect gives its regions no id (all 0), so with
# inference-interval above 1 the frames between inferences carry no results.
set -euo pipefail
src=(v4l2src)
if [ $# -gt 0 ] && [[ $1 != *=* ]]; then
  if [ "$1" != camera ]; then
    [ -f "$1" ] || { echo "no such file: $1" >&2; exit 1; }
    src=(filesrc location="$1" ! decodebin)
  fi
  shift
fi
gst-inspect-1.0 --exists facedetect ||
  { echo "no element facedetect: install gstreamer1.0-opencv (tools/setup.sh deps)" >&2; exit 1; }
# Without its cascade file facedetect finds nothing and says nothing.
cascade=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml
if [[ " ${FACEDETECT:-}" != *" profile="* ]] && [ ! -f "$cascade" ]; then
  echo "no $cascade: install opencv-data (tools/setup.sh deps)" >&2
  exit 1
fi
# facedetect also loads eye, nose and mouth cascades (haarcascade_mcs_*.xml), which Debian's
# opencv-data lacks; OpenCV logs an error for each. Faces alone are all this needs.
export OPENCV_LOG_LEVEL=${OPENCV_LOG_LEVEL:-FATAL}
if [ -n "${OUT:-}" ]; then
  results=(results-file="$OUT.jsonl")
  sink=(vp8enc deadline=1 cpu-used=4 target-bitrate=2000000 ! webmmux ! filesink location="$OUT")
  quiet=-q
else
  results=() sink=(autovideosink) quiet=
fi
# shellcheck disable=SC2086
gst-launch-1.0 -e $quiet "${src[@]}" ! videoconvert ! facedetect display=false ${FACEDETECT:-} ! \
  torchclassify inference-region=roi-list object-class=face "${results[@]}" "$@" ! \
  torchoverlay ${OVERLAY:-} ! videoconvert ! "${sink[@]}"
[ -z "${OUT:-}" ] || echo "wrote $OUT and $OUT.jsonl ($(wc -l <"$OUT.jsonl") frames with faces)"
