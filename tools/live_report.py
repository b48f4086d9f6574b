#!/usr/bin/python3
"""Frames displayed vs produced, and inferences per second, for the card's pipeline on a simulated
live camera, blocking vs async:

    xvfb-run -a tools/live_report.py [--seconds 5] [--fps 30 60] [--sink autovideosink] [--props …]

videotestsrc is-live=true (640x480) ! videoconvert ! torchclassify async=… ! fpsdisplaysink
(video-sink=autovideosink); displayed/dropped come from fpsdisplaysink, the rest from the
element's `stats` property at EOS. Uses the installed plugin and Debian's python3-gst-1.0.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def run(fps: int, frames: int, async_: bool, sink: str, props: str) -> str:
    desc = (f"videotestsrc is-live=true pattern=ball num-buffers={frames} ! "
            f"video/x-raw,width=640,height=480,framerate={fps}/1 ! videoconvert ! "
            f"torchclassify name=classify async={str(async_).lower()} {props} ! "
            f"fpsdisplaysink name=fps text-overlay=false video-sink={sink}")
    pipeline = Gst.parse_launch(desc)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        (frames // fps + 30) * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        pipeline.set_state(Gst.State.NULL)
        return f"{fps} fps async={async_}: {'timeout' if msg is None else msg.parse_error()[0].message}"
    stats = pipeline.get_by_name("classify").get_property("stats")
    fpssink = pipeline.get_by_name("fps")
    rendered, dropped = fpssink.get_property("frames-rendered"), fpssink.get_property("frames-dropped")
    pipeline.set_state(Gst.State.NULL)
    g = stats.get_value
    return (f"| {fps} | {'async' if async_ else 'blocking'} | {frames} | {rendered} | {dropped} | "
            f"{g('frames')} | {g('inferences')} | {g('skipped')} | {g('replaced')} | "
            f"{g('inference-fps'):.1f} | {g('mean-inference-ms'):.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--fps", type=int, nargs="+", default=[30, 60])
    ap.add_argument("--sink", default="autovideosink")
    ap.add_argument("--props", default="", help="more torchclassify properties, e.g. num-threads=1")
    args = ap.parse_args()
    Gst.init(None)
    print("| source fps | mode | produced | displayed | dropped by sink | reached element | "
          "inferences | skipped (QoS) | replaced (async) | inferences/s | model ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fps in args.fps:
        for async_ in (False, True):
            print(run(fps, fps * args.seconds, async_, args.sink, args.props), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
