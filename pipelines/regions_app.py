#!/usr/bin/python3
"""A Python (PyGObject) application that marks regions of interest itself, as a tracker or motion
detector would, has `torchclassify inference-region=roi-list` classify each of them, and reads
every region's result back, from its ROI meta and from the bus. No gst-torch Python code.

    pipelines/regions_app.py [VIDEO [torchclassify properties…]]   (default: data/cat-coffee-orange.webm)
    pipelines/regions_app.py data/cat-coffee-orange.webm inference-interval=3

Two pipelines, the app between them:

    filesrc ! decodebin ! videoconvert ! videoscale ! RGB 640x480 ! appsink      (frames in)
    appsrc ! torchclassify inference-region=roi-list ! appsink                    (results out)

For every decoded frame the app makes a new buffer of the same pixels, PTS and duration, adds a
GstVideoRegionOfInterestMeta per region with an id of its own that stays the same from frame to
frame, as a tracker's does (id 1 "main": most of the frame; id 2 "moving": a box that slides from
left to right over the video), and pushes it into the appsrc. Out of the second pipeline it reads
each region's `torchclassify` param from the ROI meta of that id, and the `torchclassify` bus
messages (one per region, with its `roi-id`). Prints one line per frame and region and exits
non-zero if the meta and the bus disagree or a region got no result.

Why a second buffer rather than a pad probe: with PyGObject on GStreamer 1.22 a buffer seen in a
Python pad probe, or pulled from an appsink (even after .copy()), is not writable from Python, so
GstVideo.buffer_add_video_region_of_interest_meta fails on it with a CRITICAL. A buffer the app
makes itself (Gst.Buffer.new_wrapped) is writable and takes the metas. A C or Rust application
adds the metas in a pad probe in front of torchclassify, in one pipeline (examples/app.rs is the
Rust app; its pad probe reads results, the same kind of probe can add regions).

Needs Debian's python3-gst-1.0 and gir1.2-gst-plugins-base-1.0 and the installed plugin
(`make install`). GST_TORCH_MODEL overrides the element's default model path.
"""

import collections
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
# GstApp: appsink.try_pull_sample, appsrc.push_buffer
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402,F401

WIDTH, HEIGHT = 640, 480
TIMEOUT = 60 * Gst.SECOND


def regions(n: int, frames: int) -> list:
    """The regions of frame n of about `frames`: (id, type, x, y, width, height). Ids are the
    app's own and stable across frames, as a tracker's."""
    side = HEIGHT * 3 // 5
    x = (WIDTH - side) * (n % frames) // max(frames - 1, 1)  # left to right over the clip, again
    return [
        (1, "main", WIDTH // 20, HEIGHT // 20, WIDTH * 9 // 10, HEIGHT * 9 // 10),
        (2, "moving", x, (HEIGHT - side) // 2, side, side),
    ]


def duration_frames(decoder: Gst.Pipeline, fps: float) -> int:
    """The video's length in frames (for the moving box's speed); 100 when unknown."""
    ok, duration = decoder.query_duration(Gst.Format.TIME)
    return max(1, round(duration / Gst.SECOND * fps)) if ok and duration > 0 and fps > 0 else 100


def check_bus(pipeline: Gst.Pipeline, name: str) -> None:
    """Raises on an error message waiting on the pipeline's bus."""
    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is not None:
        err, debug = msg.parse_error()
        raise RuntimeError(f"{name}: {err.message} ({debug})")


def own_buffer(sample: Gst.Sample) -> Gst.Buffer:
    """A new buffer with the decoded frame's pixels and times: one the app made is writable."""
    frame = sample.get_buffer()
    ok, info = frame.map(Gst.MapFlags.READ)
    if not ok:
        raise RuntimeError("cannot map a decoded frame")
    try:
        buf = Gst.Buffer.new_wrapped(bytes(info.data))
    finally:
        frame.unmap(info)
    buf.pts, buf.dts, buf.duration = frame.pts, frame.dts, frame.duration
    return buf


class Results:
    """Every region's result as read from the ROI metas and from the bus, by (the PTS of the
    frame it was computed on, ROI id)."""

    def __init__(self) -> None:
        self.from_meta = {}
        self.from_bus = {}
        self.read = self.carried = self.missing = self.conflicts = 0

    def read_meta(self, buf: Gst.Buffer, n: int, wanted: list) -> None:
        """One frame out of torchclassify: each region's param, from the ROI meta of its id."""
        for roi_id, roi_type, *_ in wanted:
            meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, roi_id)
            s = meta.get_param("torchclassify") if meta is not None else None
            if s is None:
                print(f"frame {n}: region {roi_id} ({roi_type}) has no torchclassify result", file=sys.stderr)
                self.missing += 1
                continue
            # With inference-interval above 1, the frames between inferences carry the newest
            # result of the same id: its timestamp, x, y, width, height are the classified frame's.
            key, result = (s.get_value("timestamp"), roi_id), result_of(s)
            if self.from_meta.setdefault(key, result) != result:
                print(f"frame {n}: region {roi_id} carries {result}, not {self.from_meta[key]}", file=sys.stderr)
                self.conflicts += 1
            self.read += 1
            carried = key[0] != buf.pts
            self.carried += carried
            print(f"{buf.pts / Gst.SECOND:7.3f} s  frame {n:3d}  roi {roi_id} {roi_type:<6}  "
                  f"{s.get_value('x'):3d},{s.get_value('y'):3d} "
                  f"{s.get_value('width'):3d}x{s.get_value('height'):<3d}  "
                  f"{s.get_value('label'):<22} class {s.get_value('class-id'):3d}  "
                  f"{s.get_value('confidence'):.2f}"
                  f"{f'  (carried from {key[0] / Gst.SECOND:.3f} s)' if carried else ''}", flush=True)

    def read_bus(self, pipeline: Gst.Pipeline) -> None:
        """The `torchclassify` messages waiting on the bus: one per region, with its roi-id."""
        while True:
            msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ELEMENT | Gst.MessageType.ERROR)
            if msg is None:
                return
            if msg.type == Gst.MessageType.ERROR:
                raise RuntimeError(f"classifying: {msg.parse_error()[0].message}")
            s = msg.get_structure()
            if s.get_name() == "torchclassify" and s.has_field("roi-id"):
                self.from_bus[(s.get_value("timestamp"), s.get_value("roi-id"))] = result_of(s)


def result_of(s: Gst.Structure) -> tuple:
    return s.get_value("label"), s.get_value("class-id"), s.get_value("confidence")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    video = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "cat-coffee-orange.webm")
    properties = " ".join(sys.argv[2:])
    Gst.init(None)
    model = os.environ.get("GST_TORCH_MODEL")
    decoder = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! videoscale ! '
        f'video/x-raw,format=RGB,width={WIDTH},height={HEIGHT} ! appsink name=frames sync=false')
    classifier = Gst.parse_launch(
        'appsrc name=src format=time ! '
        f'torchclassify inference-region=roi-list{f" model={model}" if model else ""} {properties} ! '
        'appsink name=out sync=false')
    frames_sink = decoder.get_by_name("frames")
    src = classifier.get_by_name("src")
    out = classifier.get_by_name("out")
    results = Results()
    # Frames pushed and not yet back, oldest first: (number, regions). On a non-live stream
    # torchclassify holds a frame until the next one arrives (it pipelines: see README, "Live
    # video"), so the app pulls whatever has come out after each push, and the rest after EOS.
    pending = collections.deque()
    n_in = n_out = 0

    def take(sample: Gst.Sample) -> None:
        nonlocal n_out
        buf = sample.get_buffer()
        n, wanted = pending.popleft()
        results.read_meta(buf, n, wanted)
        # The element posts a frame's messages before it passes the frame on: they are there.
        results.read_bus(classifier)
        n_out += 1

    decoder.set_state(Gst.State.PLAYING)
    classifier.set_state(Gst.State.PLAYING)
    try:
        while True:
            sample = frames_sink.try_pull_sample(TIMEOUT)
            if sample is None:
                check_bus(decoder, "decoding")
                if not frames_sink.is_eos():
                    raise RuntimeError("decoding: no frame for 60 s")
                break
            if n_in == 0:
                ok, num, den = sample.get_caps().get_structure(0).get_fraction("framerate")
                frames = duration_frames(decoder, num / den if ok and den else 0.0)
                src.set_property("caps", sample.get_caps())
            buf = own_buffer(sample)
            wanted = regions(n_in, frames)
            for roi_id, roi_type, x, y, w, h in wanted:
                meta = GstVideo.buffer_add_video_region_of_interest_meta(buf, roi_type, x, y, w, h)
                meta.id = roi_id
            pending.append((n_in, wanted))
            n_in += 1
            if src.push_buffer(buf) != Gst.FlowReturn.OK:
                check_bus(classifier, "classifying")
                raise RuntimeError("appsrc refused a frame")
            while (done := out.try_pull_sample(0)) is not None:
                take(done)
        src.end_of_stream()
        while not out.is_eos():
            done = out.try_pull_sample(TIMEOUT)
            if done is None:
                check_bus(classifier, "classifying")
                if not out.is_eos():
                    raise RuntimeError("classifying: no frame back for 60 s")
            else:
                take(done)
        results.read_bus(classifier)
    except RuntimeError as e:
        print("error:", e, file=sys.stderr)
        return 1
    finally:
        decoder.set_state(Gst.State.NULL)
        classifier.set_state(Gst.State.NULL)

    rc = 0 if n_in == n_out and results.read and not results.missing and not results.conflicts else 1
    for key in sorted(set(results.from_meta) | set(results.from_bus)):
        if results.from_meta.get(key) != results.from_bus.get(key):
            print(f"meta and bus disagree at {key[0]} ns, roi {key[1]}: "
                  f"{results.from_meta.get(key)} vs {results.from_bus.get(key)}", file=sys.stderr)
            rc = 1
    print(f"{n_in} frames in, {n_out} out, {results.read} region results on ROI metas ({results.carried} "
          f"carried), {len(results.from_bus)} bus messages, {'all agree' if rc == 0 else 'NOT all right'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
