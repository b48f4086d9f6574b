#!/bin/bash
# Live video that never stutters: the card's pipeline with async inference, printing the
# element's torchclassify-stats once per second (the seed tutorial's "N fps" line, as data).
#
#   pipelines/live.sh                  simulated live camera (videotestsrc is-live=true), 30 fps
#   FPS=60 pipelines/live.sh           ... at 60 fps
#   SOURCE=camera pipelines/live.sh    the real camera (v4l2src)
#   FRAMES=300 pipelines/live.sh       stop after 300 frames
#   pipelines/live.sh async=false      extra arguments are torchclassify properties
#
# Needs a display (or xvfb-run); SINK=fakesink runs without one.
FPS=${FPS:-30}
SINK=${SINK:-autovideosink}
if [ "${SOURCE:-test}" = camera ]; then
  src="v4l2src"
else
  src="videotestsrc is-live=true pattern=ball ${FRAMES:+num-buffers=$FRAMES} ! video/x-raw,width=640,height=480,framerate=$FPS/1"
fi
# shellcheck disable=SC2086
gst-launch-1.0 -m $src ! videoconvert ! torchclassify async=true stats-interval=1000 "$@" ! $SINK 2>&1 |
  sed -u -n 's/.*torchclassify-stats, frames=(guint64)\([0-9]*\), inferences=(guint64)\([0-9]*\), skipped=(guint64)\([0-9]*\), replaced=(guint64)\([0-9]*\), mean-inference-ms=(double)\([0-9]*\.[0-9]\)[0-9]*, max-inference-ms=(double)\([0-9]*\.[0-9]\)[0-9]*, frame-fps=(double)\([0-9]*\.[0-9]\)[0-9]*, inference-fps=(double)\([0-9]*\.[0-9]\)[0-9]*.*/frames \1  inferences \2  skipped \3  replaced \4  model \5 ms (max \6)  video \7 fps  inference \8 fps/p; /ERROR/p'
