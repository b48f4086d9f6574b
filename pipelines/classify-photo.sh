#!/bin/sh
# Classify one image file and print the torchclassify message: pipelines/classify-photo.sh IMAGE
[ -n "$1" ] || { echo "usage: $0 IMAGE [torchclassify properties]" >&2; exit 2; }
img=$1; shift
exec gst-launch-1.0 -m filesrc location="$img" ! decodebin ! videoconvert ! torchclassify "$@" ! fakesink
