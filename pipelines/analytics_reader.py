#!/usr/bin/python3
"""Reads torchclassify's results from the GStreamer 1.24+ analytics meta (GstAnalytics.RelationMeta)
in a pad probe, with PyGObject alone: no gst-torch code, no ROI meta. Needs the plugin built with
`--features analytics` (the Makefile does when pkg-config finds gstreamer-analytics-1.0 >= 1.24),
python3-gi and gir1.2-gst-plugins-bad-1.0 (GstAnalytics).

    pipelines/analytics_reader.py [VIDEO]            full frame: prints each frame's classes
    pipelines/analytics_reader.py --roi-list [VIDEO] two regions per frame: prints each box's class
    pipelines/analytics_reader.py --check [VIDEO]    both modes; exit 0 when, for every frame (and
                                                     box), the top-1 label and confidence read from
                                                     the analytics meta equal the bus message's

Default VIDEO: $GST_TORCH_SHARED/media/cat-coffee-orange.webm, else data/cat-coffee-orange.webm.
GST_TORCH_MODEL overrides the element's default model path.

What torchclassify writes: a full-frame result is a GstAnalyticsClsMtd (top-k labels as quarks,
confidences as levels) related to nothing; in `inference-region=roi-list` mode each region's
result is a ClsMtd related from the GstAnalyticsODMtd of its box (RELATE_TO, ODMtd -> ClsMtd), an
ODMtd added for a region that came from a GstVideoRegionOfInterestMeta.

Reading it from Python: PyGObject gets the RelationMeta with
GstAnalytics.buffer_get_analytics_relation_meta(buf), and each metadata by id with
rmeta.get_cls_mtd(id) / rmeta.get_od_mtd(id) (a (found, mtd) pair); the meta is not iterable
there (gst_analytics_relation_meta_iterate takes a gpointer state that PyGObject cannot pass).
Ids are handed out 0, 1, 2, ... as metadata is added, so `ids()` walks them up to
gst_analytics_relation_get_length() (or, where that is not exposed, until get_mtd fails).
rmeta.get_relation(od_id, cls_id) says whether a ClsMtd classifies an ODMtd.

roi-list mode needs regions on the frames: the app decodes the clip into an appsink, makes its
own buffer of each frame (a buffer seen in a probe is not writable from Python) and adds a
GstVideoRegionOfInterestMeta (left part, "roi") and an ODMtd (right part, "object"), then pushes
it through `appsrc ! torchclassify inference-region=roi-list ! fakesink`.
"""

import os
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstAnalytics", "1.0")
from gi.repository import GLib, Gst, GstAnalytics, GstApp, GstVideo  # noqa: E402,F401

WIDTH, HEIGHT = 640, 480
TIMEOUT = 60 * Gst.SECOND
# roi-list: (x, y, width, height) of the ROI meta's box and of the ODMtd's.
ROI_BOX = (0, 0, 400, 480)
OD_BOX = (240, 0, 400, 480)


def ids(rmeta) -> range:
    """The ids of the relation meta's metadata."""
    get_length = getattr(GstAnalytics, "relation_get_length", None)
    if get_length is not None:
        return range(get_length(rmeta))
    n = 0
    while rmeta.get_mtd(n, GstAnalytics.MTD_TYPE_ANY)[0]:
        n += 1
    return range(n)


def classes(cls) -> list:
    """A ClsMtd's (label, confidence) pairs, best first."""
    return [(GLib.quark_to_string(cls.get_quark(i)), cls.get_level(i)) for i in range(cls.get_length())]


def read(buf: Gst.Buffer) -> tuple:
    """The buffer's analytics results: the full-frame ClsMtds' classes, and each ODMtd's box
    (x, y, w, h), type and the classes of the ClsMtds it relates to."""
    rmeta = GstAnalytics.buffer_get_analytics_relation_meta(buf)
    if rmeta is None:
        return [], []
    cls_mtds, od_mtds = [], []
    for i in ids(rmeta):
        found, cls = rmeta.get_cls_mtd(i)
        if found:
            cls_mtds.append(cls)
            continue
        found, od = rmeta.get_od_mtd(i)
        if found:
            od_mtds.append(od)
    related = lambda od, cls: bool(rmeta.get_relation(od.id, cls.id) & GstAnalytics.RelTypes.RELATE_TO)  # noqa: E731
    frame = [classes(c) for c in cls_mtds if not any(related(od, c) for od in od_mtds)]
    boxes = []
    for od in od_mtds:
        found, x, y, w, h, _confidence = od.get_location()
        if found:
            boxes.append(((x, y, w, h), GLib.quark_to_string(od.get_obj_type()),
                          [classes(c) for c in cls_mtds if related(od, c)]))
    return frame, boxes


def as_float(x: float) -> float:
    """x as the 32-bit float a ClsMtd stores."""
    return struct.unpack("f", struct.pack("f", x))[0]


class Run:
    """One run's results: per frame PTS, what the analytics meta holds and what the bus said."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.meta = {}  # (pts, box or None) -> [(label, confidence)] of each ClsMtd
        self.bus = {}  # (pts, box or None) -> (label, confidence)
        self.frames = 0

    def probe(self, _pad, info) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        self.frames += 1
        frame, boxes = read(buf)
        t = buf.pts / Gst.SECOND
        if self.mode == "full-frame":
            self.meta[(buf.pts, None)] = [c[0] for c in frame]
            for c in frame:
                print(f"{t:7.3f} s  " + ", ".join(f"{label} {conf:.3f}" for label, conf in c), flush=True)
        else:
            for box, obj_type, cls in boxes:
                self.meta[(buf.pts, box)] = [c[0] for c in cls]
                for c in cls:
                    print(f"{t:7.3f} s  {obj_type:<7} {box[0]:3d},{box[1]:3d} {box[2]:3d}x{box[3]:<3d}  "
                          + ", ".join(f"{label} {conf:.3f}" for label, conf in c), flush=True)
        return Gst.PadProbeReturn.OK

    def message(self, msg: Gst.Message) -> None:
        s = msg.get_structure()
        if s is None or s.get_name() != "torchclassify":
            return
        box = None
        if s.has_field("roi-id"):
            box = tuple(s.get_value(f) for f in ("x", "y", "width", "height"))
        self.bus[(s.get_value("timestamp"), box)] = (s.get_value("label"), s.get_value("confidence"))

    def compare(self, expected_per_frame: int) -> list:
        """What disagrees, as lines; empty when all agree."""
        problems = []
        if self.frames == 0:
            problems.append(f"{self.mode}: no frame came out")
        if len(self.bus) != self.frames * expected_per_frame:
            problems.append(f"{self.mode}: {len(self.bus)} results on the bus for {self.frames} frames "
                            f"(expected {expected_per_frame} a frame)")
        for key in sorted(set(self.meta) | set(self.bus), key=lambda k: (k[0], k[1] or ())):
            meta, bus = self.meta.get(key, []), self.bus.get(key)
            where = f"{self.mode}: {key[0] / Gst.SECOND:.3f} s{f' box {key[1]}' if key[1] else ''}"
            if bus is None:
                problems.append(f"{where}: analytics meta {meta} but no bus message")
            elif len(meta) != 1:
                problems.append(f"{where}: {len(meta)} ClsMtds ({meta}), expected 1 (bus: {bus})")
            elif meta[0][0] != bus[0] or meta[0][1] != as_float(bus[1]):
                problems.append(f"{where}: analytics meta says {meta[0]}, the bus {bus}")
        return problems


def run_pipeline(pipeline: Gst.Pipeline, run: Run, feed=None) -> None:
    """Plays `pipeline` (calling `feed()` once playing) to EOS, collecting its torchclassify
    messages into `run`; raises on an error."""
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    try:
        if feed is not None:
            feed()
        while True:
            msg = bus.timed_pop_filtered(TIMEOUT, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                         | Gst.MessageType.ERROR)
            if msg is None:
                raise RuntimeError(f"{run.mode}: no EOS after 60 s")
            if msg.type == Gst.MessageType.ERROR:
                err, debug = msg.parse_error()
                raise RuntimeError(f"{run.mode}: {err.message} ({debug})")
            if msg.type == Gst.MessageType.EOS:
                return
            run.message(msg)
    finally:
        pipeline.set_state(Gst.State.NULL)


def model_property() -> str:
    model = os.environ.get("GST_TORCH_MODEL")
    return f' model="{model}"' if model else ""


def full_frame(video: str) -> Run:
    run = Run("full-frame")
    pipeline = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! torchclassify{model_property()} ! '
        'fakesink name=sink')
    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, run.probe)
    run_pipeline(pipeline, run)
    return run


def decoded(video: str) -> tuple:
    """The clip's frames as RGB WIDTH x HEIGHT: (caps, [buffers the app made])."""
    decoder = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! videoscale ! '
        f'video/x-raw,format=RGB,width={WIDTH},height={HEIGHT} ! appsink name=frames sync=false')
    sink = decoder.get_by_name("frames")
    decoder.set_state(Gst.State.PLAYING)
    caps, frames = None, []
    try:
        while (sample := sink.try_pull_sample(TIMEOUT)) is not None:
            caps = sample.get_caps()
            frame = sample.get_buffer()
            ok, info = frame.map(Gst.MapFlags.READ)
            if not ok:
                raise RuntimeError("cannot map a decoded frame")
            try:
                buf = Gst.Buffer.new_wrapped(bytes(info.data))
            finally:
                frame.unmap(info)
            buf.pts, buf.dts, buf.duration = frame.pts, frame.dts, frame.duration
            frames.append(buf)
        msg = decoder.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            raise RuntimeError(f"decoding: {msg.parse_error()[0].message}")
    finally:
        decoder.set_state(Gst.State.NULL)
    if not frames:
        raise RuntimeError(f"decoding {video}: no frames")
    return caps, frames


def roi_list(video: str) -> Run:
    run = Run("roi-list")
    caps, frames = decoded(video)
    for buf in frames:
        GstVideo.buffer_add_video_region_of_interest_meta(buf, "roi", *ROI_BOX).id = 1
        rmeta = GstAnalytics.buffer_add_analytics_relation_meta(buf)
        found, _od = rmeta.add_od_mtd(GLib.quark_from_string("object"), *OD_BOX, 1.0)
        if not found:
            raise RuntimeError("cannot add an ODMtd from Python")
    pipeline = Gst.parse_launch(
        'appsrc name=src format=time ! '
        f'torchclassify inference-region=roi-list{model_property()} ! fakesink name=sink')
    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, run.probe)
    src = pipeline.get_by_name("src")
    src.set_property("caps", caps)

    def feed() -> None:
        for buf in frames:
            if src.push_buffer(buf) != Gst.FlowReturn.OK:
                raise RuntimeError("roi-list: appsrc refused a frame")
        src.end_of_stream()

    run_pipeline(pipeline, run, feed)
    return run


def main() -> int:
    args = sys.argv[1:]
    check = "--check" in args
    mode_roi = "--roi-list" in args
    rest = [a for a in args if not a.startswith("--")]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("GST_TORCH_SHARED", os.path.join(here, "..", "..", "shared"))
    default = os.path.join(shared, "media", "cat-coffee-orange.webm")
    if not os.path.isfile(default):
        default = os.path.join(here, "..", "data", "cat-coffee-orange.webm")
    video = rest[0] if rest else default
    Gst.init(None)
    if Gst.ElementFactory.find("torchclassify") is None:
        print("error: no torchclassify element (make install)", file=sys.stderr)
        return 2
    try:
        runs = []
        if check or not mode_roi:
            runs.append((full_frame(video), 1))
        if check or mode_roi:
            runs.append((roi_list(video), 2))
    except (RuntimeError, GLib.Error) as e:
        print("error:", e, file=sys.stderr)
        return 1
    if not check:
        return 0
    problems = [p for run, per_frame in runs for p in run.compare(per_frame)]
    for p in problems:
        print("MISMATCH", p, file=sys.stderr)
    summary = ", ".join(f"{run.mode}: {run.frames} frames, {len(run.bus)} results" for run, _ in runs)
    if problems:
        print(f"analytics meta and bus disagree ({len(problems)} problems; {summary})", file=sys.stderr)
        return 1
    print(f"analytics meta and bus agree on every top-1 label and confidence ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
