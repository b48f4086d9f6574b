#!/usr/bin/python3
"""gst-torch demo: classify a clip (or the camera) with torchclassify and print, for every second
of video, the frames per second, the mean model time and the current top-1 label — the seed
tutorial's "N fps" line plus its top-1 print.

    pipelines/demo.py [CLIP]        default: data/cat-coffee-orange.webm, played in real time
    pipelines/demo.py --camera      CAMERA ! videoconvert ! torchclassify ! autovideosink
    pipelines/demo.py --camera=SRC  the same with another source element (and its properties)
    pipelines/demo.py --fast CLIP   as fast as the model goes (no clock sync, no display)

CAMERA is libcamerasrc where that element exists (a Raspberry Pi's camera module, package
gstreamer1.0-libcamera), v4l2src (a USB webcam, /dev/video0) otherwise.
Uses the installed plugin (`make install`); GST_TORCH_MODEL overrides the element's default
model. Shows the video when a display is present, otherwise plays it into a fakesink.
Runs with Debian's python3 and python3-gst-1.0.
"""

import argparse
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


class Printer:
    """Prints one line per second of stream (running) time from torchclassify messages."""

    def __init__(self) -> None:
        self.window_start = 0  # running time (ns) where the current window began
        self.frames = 0
        self.model_ns = 0
        self.wall = time.monotonic()
        self.last = None  # (label, confidence) of the newest frame
        self.lines = 0

    def on_result(self, s: Gst.Structure) -> None:
        running = s.get_value("running-time")
        if self.lines == 0 and self.frames == 0:
            self.wall = time.monotonic()  # fps from the first result, not from start-up
        if running != Gst.CLOCK_TIME_NONE and running >= self.window_start + Gst.SECOND:
            self.flush()
            self.window_start = running - running % Gst.SECOND
        self.frames += 1
        self.model_ns += s.get_value("inference-time")
        self.last = (s.get_value("label"), s.get_value("confidence"))

    def flush(self) -> None:
        if not self.frames:
            return
        now = time.monotonic()
        start = self.window_start / Gst.SECOND
        label, confidence = self.last
        print(f"{start:5.1f}-{start + 1:.1f} s  {self.frames:3d} frames  "
              f"{self.frames / max(now - self.wall, 1e-9):6.1f} fps  "
              f"model {self.model_ns / self.frames / 1e6:5.1f} ms  "
              f"top-1: {label} ({confidence:.2f})", flush=True)
        self.frames, self.model_ns, self.wall = 0, 0, now
        self.lines += 1


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?",
                    default=os.path.normpath(os.path.join(here, "..", "data", "cat-coffee-orange.webm")))
    ap.add_argument("--camera", nargs="?", const="auto", metavar="SRC",
                    help="classify the camera instead of a clip: libcamerasrc where it exists, else "
                         "v4l2src (/dev/video0); or SRC, a source element with its properties")
    ap.add_argument("--fast", action="store_true", help="no clock sync, no display")
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("torchclassify") is None:
        print("torchclassify not found: run `make install` (or `make demo`)", file=sys.stderr)
        return 1
    model = os.environ.get("GST_TORCH_MODEL")
    props = f' model="{model}"' if model else ""
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if args.camera:
        camera = args.camera
        if camera == "auto":
            camera = "libcamerasrc" if Gst.ElementFactory.find("libcamerasrc") else "v4l2src"
        desc = f"{camera} ! videoconvert ! torchclassify{props} ! autovideosink"
    else:
        if not os.path.isfile(args.clip):
            print(f"no such clip: {args.clip}", file=sys.stderr)
            return 1
        sink = ("fakesink sync=false" if args.fast
                else "videoconvert ! autovideosink" if display else "fakesink sync=true")
        desc = (f'filesrc location="{args.clip}" ! decodebin ! videoconvert ! '
                f"torchclassify{props} ! {sink}")
    print(f"gst-launch-1.0 {desc}", flush=True)
    pipeline = Gst.parse_launch(desc)

    printer = Printer()
    loop = GLib.MainLoop()
    status = {"rc": 0}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s is not None and s.get_name() == "torchclassify":
                printer.on_result(s)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"ERROR from {msg.src.get_name()}: {err.message}", file=sys.stderr)
            if debug:
                print(f"  ({debug})", file=sys.stderr)
            status["rc"] = 1
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            printer.flush()
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        loop.run()
    except KeyboardInterrupt:
        printer.flush()
    pipeline.set_state(Gst.State.NULL)
    return status["rc"]


if __name__ == "__main__":
    sys.exit(main())
