#!/usr/bin/python3
"""Checks an annotated video made by pipelines/annotate-file.sh from ORIGINAL:

    tests/check_annotated.py ORIGINAL ANNOTATED CORNER PNG_OUT

- decoded again, frame 15 differs from the original's frame 15 inside CORNER's quarter of the
  picture (where the text box is) and nowhere else beyond codec noise;
- ANNOTATED.jsonl has one valid JSON object per frame with every field, labels cat -> espresso
  -> orange, pts increasing;
- writes the annotated frame 15 as PNG_OUT, and CORNER's 300x80 corner of it as
  PNG_OUT-corner.png (for OCR).
Needs Debian's python3-gst-1.0; it only decodes.
"""

import json
import os
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

W, H = 640, 480
FRAME = 15


def frame(path: str) -> bytes:
    """Frame FRAME of `path` as RGB bytes."""
    p = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! videoconvert ! '
                         f"video/x-raw,format=RGB,width={W},height={H} ! appsink name=sink sync=false")
    sink = p.get_by_name("sink")
    p.set_state(Gst.State.PLAYING)
    data = None
    for _ in range(FRAME + 1):
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
    p.set_state(Gst.State.NULL)
    if data is None:
        sys.exit(f"{path}: fewer than {FRAME + 1} frames")
    return data


def write_png(rgb: bytes, png: str, box=(0, 0, W, H)) -> None:
    """Writes the `box` (x0, y0, x1, y1) of an RGB frame as a PNG."""
    x0, y0, x1, y1 = box
    raw = png + ".rgb"
    with open(raw, "wb") as f:
        for y in range(y0, y1):
            f.write(rgb[(y * W + x0) * 3:(y * W + x1) * 3])
    p = Gst.parse_launch(f'filesrc location="{raw}" ! rawvideoparse format=rgb width={x1 - x0} height={y1 - y0} ! '
                         f'videoconvert ! pngenc ! filesink location="{png}"')
    p.set_state(Gst.State.PLAYING)
    p.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    p.set_state(Gst.State.NULL)
    os.remove(raw)


def mean_diff(a: bytes, b: bytes, x0: int, y0: int, x1: int, y1: int) -> float:
    stride = W * 3
    total = 0
    for y in range(y0, y1):
        ra = a[y * stride + x0 * 3:y * stride + x1 * 3]
        rb = b[y * stride + x0 * 3:y * stride + x1 * 3]
        total += sum(abs(p - q) for p, q in zip(ra, rb))
    return total / ((x1 - x0) * (y1 - y0) * 3)


def main() -> int:
    original, annotated, corner, png = sys.argv[1:5]
    Gst.init(None)
    a = frame(original)
    b = frame(annotated)
    write_png(b, png)
    corners = {"top-left": (0, 0, 300, 80), "top-right": (W - 300, 0, W, 80),
               "bottom-left": (0, H - 80, 300, H), "bottom-right": (W - 300, H - 80, W, H)}
    write_png(b, png.replace(".png", "-corner.png"), corners[corner])
    # The text box (one line at 1/16 of the frame height) fits in a 240x64 corner; the rest of
    # the picture may only differ by the codec's noise.
    boxes = {
        "top-left": (0, 0, 240, 64), "top-right": (W - 240, 0, W, 64),
        "bottom-left": (0, H - 64, 240, H), "bottom-right": (W - 240, H - 64, W, H),
    }
    quarters = {
        "top-left": (0, 0, W // 2, H // 2), "top-right": (W // 2, 0, W, H // 2),
        "bottom-left": (0, H // 2, W // 2, H), "bottom-right": (W // 2, H // 2, W, H),
    }
    in_box = mean_diff(a, b, *boxes[corner])
    others = {k: mean_diff(a, b, *q) for k, q in quarters.items() if k != corner}
    print(f"frame {FRAME}: mean |annotated - original| {in_box:.1f} in the {corner} text box; "
          + ", ".join(f"{k} quarter {v:.1f}" for k, v in others.items()))
    ok = True
    if in_box < 25:
        print(f"no text in the {corner} corner")
        ok = False
    for name, d in others.items():
        if d > 6 or d * 4 > in_box:
            print(f"the {name} quarter changed too ({d:.1f})")
            ok = False

    lines = open(annotated + ".jsonl").read().splitlines()
    results = [json.loads(line) for line in lines]
    fields = {"pts", "frame", "label", "class-id", "confidence", "top-k", "inference-ms"}
    if len(results) != 30 or any(set(r) != fields for r in results):
        print(f"{len(results)} JSON lines, expected 30 with fields {sorted(fields)}")
        ok = False
    for i, r in enumerate(results):
        want = [range(281, 286), [967], [950]][i // 10] if len(results) == 30 else []
        if r["class-id"] not in want or r["frame"] != i or r["pts"] != i * 100_000_000:
            print(f"line {i}: {r['label']} ({r['class-id']}) frame {r['frame']} pts {r['pts']}")
            ok = False
        if not all({"label", "id", "confidence"} == set(p) for p in r["top-k"]):
            print(f"line {i}: bad top-k {r['top-k']}")
            ok = False
    print(f"{len(results)} JSON lines: " + ", ".join(sorted({r['label'] for r in results})))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
