#!/usr/bin/python3
"""Embedding torchclassify in a Python (PyGObject) application, with no gst-torch Python code:
results read both from the bus (`torchclassify` element messages) and from each buffer's
full-frame GstVideoRegionOfInterestMeta param `torchclassify`, in a pad probe.

    pipelines/app.py [VIDEO]     (default: data/cat-coffee-orange.webm)

Needs Debian's python3-gst-1.0 and gir1.2-gst-plugins-base-1.0 and the installed plugin
(`make install`). GST_TORCH_MODEL overrides the element's default model path. Prints one line
per frame, "meta" and "bus" side by side, and exits non-zero if they disagree.
"""

import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    video = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "cat-coffee-orange.webm")
    Gst.init(None)
    model = os.environ.get("GST_TORCH_MODEL")
    pipeline = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! '
        f'torchclassify name=classify{f" model={model}" if model else ""} ! fakesink name=sink')

    from_meta = {}  # pts -> (label, confidence), read in the pad probe

    def probe(_pad, info):
        buf = info.get_buffer()
        # The element adds one ROI meta per buffer, the full frame; its param holds the result.
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, 0)
        if roi is not None:
            s = roi.get_param("torchclassify")
            if s is not None:
                from_meta[s.get_value("timestamp")] = (s.get_value("label"), s.get_value("confidence"))
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)

    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    from_bus = {}
    rc = 0
    while True:
        msg = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                     | Gst.MessageType.ERROR)
        if msg is None or msg.type == Gst.MessageType.ERROR:
            print("error:", msg.parse_error()[0].message if msg else "timeout", file=sys.stderr)
            rc = 1
            break
        if msg.type == Gst.MessageType.EOS:
            break
        s = msg.get_structure()
        if s.get_name() == "torchclassify":
            top_k = ", ".join(s.get_value("top-k-labels"))
            from_bus[s.get_value("timestamp")] = (s.get_value("label"), s.get_value("confidence"))
            print(f"bus  {s.get_value('timestamp') / Gst.SECOND:6.2f} s  {s.get_value('label'):<14} "
                  f"{s.get_value('confidence'):.2f}  top-k: {top_k}")
    pipeline.set_state(Gst.State.NULL)

    for pts in sorted(from_bus):
        if from_meta.get(pts) != from_bus[pts]:
            print(f"meta and bus disagree at {pts}: {from_meta.get(pts)} vs {from_bus[pts]}", file=sys.stderr)
            rc = 1
    print(f"{len(from_bus)} results from the bus, {len(from_meta)} from buffer meta, "
          f"{'the same' if rc == 0 else 'NOT the same'}")
    return rc if from_bus else 1


if __name__ == "__main__":
    sys.exit(main())
