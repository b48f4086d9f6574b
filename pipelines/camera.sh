#!/bin/sh
# The card's pipeline with the labels drawn on the picture: camera -> torchclassify ->
# torchoverlay -> display. Extra arguments become torchclassify properties, e.g.
# `pipelines/camera.sh top-k=3 async=true`.
exec gst-launch-1.0 v4l2src ! videoconvert ! torchclassify "$@" ! torchoverlay ! videoconvert ! autovideosink
