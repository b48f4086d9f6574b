#!/usr/bin/python3
"""One torchclassify pipeline for the benchmark (Debian's python3-gst-1.0, installed plugin):

    element.py PIPELINE

PIPELINE must contain `torchclassify name=c` and end in a sink; its source must stop by itself.
Prints one JSON line from the element's `stats` at EOS: frames, fps (frames / wall time since
the first frame), total_ms, model_ms (mean inference time), first_ms (the first frame's
inference time, after the warm-up in start()), engine, overlap (pipelined or serial, as the
element measured on this stream), and rss_warm_kib /
rss_end_kib (this process's RSS after about 100 frames and at EOS).
"""

import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    Gst.init(None)
    pipeline = Gst.parse_launch(sys.argv[1])
    classify = pipeline.get_by_name("c")
    # No message per frame: this process shares the 2 cores with the pipeline. The first
    # frame's inference time comes from its ROI meta param.
    classify.set_property("post-messages", False)
    first = {}

    def probe(_pad, info):
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(info.get_buffer(), 0)
        param = roi.get_param("torchclassify") if roi is not None else None
        if param is not None:
            first["ms"] = param.get_value("inference-time") / 1e6
        return Gst.PadProbeReturn.REMOVE

    classify.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    rss_warm = None
    while True:
        msg = bus.timed_pop_filtered(Gst.SECOND // 2, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is not None and msg.type == Gst.MessageType.ERROR:
            print(msg.parse_error()[0].message, file=sys.stderr)
            pipeline.set_state(Gst.State.NULL)
            return 1
        stats = classify.get_property("stats")
        if rss_warm is None and stats.get_value("frames") >= 100:
            rss_warm = rss_kib()
        if msg is not None:
            break
    stats = classify.get_property("stats")
    rss_end = rss_kib()
    pipeline.set_state(Gst.State.NULL)
    fps = stats.get_value("frame-fps")  # frames / wall time since the first frame arrived
    print(json.dumps({"frames": stats.get_value("frames"), "fps": fps,
                      "total_ms": 1e3 / fps if fps else 0.0,
                      "model_ms": stats.get_value("mean-inference-ms"), "first_ms": first.get("ms"),
                      "engine": stats.get_value("engine"), "overlap": stats.get_value("overlap"),
                      "rss_warm_kib": rss_warm or rss_end,
                      "rss_end_kib": rss_end}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
