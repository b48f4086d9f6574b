#!/bin/sh
# The card's pipeline: camera -> torchclassify -> display, printing every result message.
# Extra arguments become torchclassify properties, e.g. `pipelines/camera.sh top-k=3 num-threads=2`.
exec gst-launch-1.0 -m v4l2src ! videoconvert ! torchclassify "$@" ! autovideosink
