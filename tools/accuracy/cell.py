#!/usr/bin/python3
"""One accuracy cell through torchclassify (Debian's python3-gst-1.0, installed plugin; called by
tools/accuracy.py, one process per model x engine because libtorch's quantized engine is global):

    cell.py FRAMES.raw MODEL ENGINE THREADS TOP_K

Runs `filesrc ! rawvideoparse (224x224 RGB) ! torchclassify ! fakesink sync=false` on every
frame of FRAMES.raw; MODEL "" leaves the element's `model` property at its default. Reads each
buffer's result from its `torchclassify` ROI meta param on the element's src pad, and at EOS the
element's `stats` and `model` property. Prints one JSON object: model (the property's value),
engine (the engine libtorch used, from `stats`), model_ms (mean-inference-ms), frames, results
(one per frame in order: frame, ids, confidences, labels — the top-k, best first). Exits 1 with
the pipeline's error message on error.
"""

import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402


def main() -> int:
    path, model, engine, threads, top_k = sys.argv[1:6]
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! rawvideoparse format=rgb width=224 height=224 framerate=10/1 ! '
        "torchclassify name=c ! fakesink sync=false")
    classify = pipeline.get_by_name("c")
    if model:
        classify.set_property("model", model)
    classify.set_property("engine", engine)
    classify.set_property("num-threads", int(threads))
    classify.set_property("top-k", int(top_k))
    classify.set_property("post-messages", False)  # results come from the meta
    results, missing = [], []

    def probe(_pad, info):
        buffer = info.get_buffer()
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, 0)
        param = roi.get_param("torchclassify") if roi is not None else None
        if param is None:
            missing.append(buffer.offset)
        else:
            results.append({"frame": param.get_value("frame"), "ids": list(param.get_value("top-k-ids")),
                            "confidences": list(param.get_value("top-k-confidences")),
                            "labels": list(param.get_value("top-k-labels"))})
        return Gst.PadProbeReturn.OK

    classify.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    msg = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    if msg.type == Gst.MessageType.ERROR:
        err, debug = msg.parse_error()
        print(f"{err.message}\n{debug or ''}", file=sys.stderr)
        pipeline.set_state(Gst.State.NULL)
        return 1
    stats = classify.get_property("stats")
    used_model = classify.get_property("model")
    pipeline.set_state(Gst.State.NULL)
    if missing:
        print(f"{len(missing)} buffer(s) without a torchclassify ROI meta param (first: offset {missing[0]})",
              file=sys.stderr)
        return 1
    print(json.dumps({"model": used_model, "engine": stats.get_value("engine"),
                      "model_ms": stats.get_value("mean-inference-ms"), "frames": stats.get_value("frames"),
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
