#!/bin/sh
# The card's pipeline with the labels drawn on the picture: camera -> torchclassify ->
# torchoverlay -> display. The camera is libcamerasrc where that element exists (a Raspberry Pi's
# camera module; package gstreamer1.0-libcamera, which `make demo` installs on aarch64), v4l2src
# (a USB webcam, /dev/video0) otherwise; CAMERA="v4l2src device=/dev/video1" (any source element
# and its properties) picks another. Extra arguments become torchclassify properties, e.g.
# `pipelines/camera.sh top-k=3 async=true`.
if [ -z "${CAMERA:-}" ]; then
  if gst-inspect-1.0 --exists libcamerasrc; then CAMERA=libcamerasrc; else CAMERA=v4l2src; fi
fi
echo "camera: $CAMERA" >&2
# shellcheck disable=SC2086 # CAMERA is an element and its properties
exec gst-launch-1.0 $CAMERA ! videoconvert ! torchclassify "$@" ! torchoverlay ! videoconvert ! autovideosink
