#!/usr/bin/python3
"""One torchclassify pipeline for the benchmark (Debian's python3-gst-1.0, installed plugin):

    element.py PIPELINE

PIPELINE must contain `torchclassify name=c` and end in a sink; its source must stop by itself.
Prints one JSON line: frames, fps (wall time from the first result to EOS), total_ms, model_ms
(the element's mean inference-time), first_ms (the first frame's inference-time, after the
warm-up in start()), engine, and rss_warm_kib / rss_end_kib (this process's RSS after the
first 100 frames and at EOS).
"""

import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


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
    classify.set_property("post-messages", True)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    first_ms = None
    start = None
    frames = 0
    rss_warm = None
    while True:
        msg = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                     | Gst.MessageType.ERROR)
        if msg is None or msg.type == Gst.MessageType.ERROR:
            print(msg.parse_error()[0].message if msg else "timeout", file=sys.stderr)
            pipeline.set_state(Gst.State.NULL)
            return 1
        if msg.type == Gst.MessageType.EOS:
            break
        s = msg.get_structure()
        if s.get_name() != "torchclassify":
            continue
        frames += 1
        if start is None:
            start = time.perf_counter()
            first_ms = s.get_value("inference-time") / 1e6
        if frames == 100:
            rss_warm = rss_kib()
    end = time.perf_counter()
    stats = classify.get_property("stats")
    rss_end = rss_kib()
    pipeline.set_state(Gst.State.NULL)
    # The first result starts the clock: fps over the frames after it.
    fps = (frames - 1) / (end - start) if frames > 1 else 0.0
    print(json.dumps({"frames": frames, "fps": fps, "total_ms": 1e3 / fps if fps else 0.0,
                      "model_ms": stats.get_value("mean-inference-ms"), "first_ms": first_ms,
                      "engine": stats.get_value("engine"), "rss_warm_kib": rss_warm,
                      "rss_end_kib": rss_end}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
