#!/usr/bin/env python3
"""The accuracy set's frames (run with the venv's python, for Pillow; called by tools/accuracy.py):

    make_inputs.py --media DIR --photos A.png B.jpg ... --clip-raw FILE --clip-size WxH
                   --clip-name NAME --seed N --crops N --small-crops N --out FRAMES.raw

Writes every input as one 224x224 packed RGB frame to FRAMES.raw, in this order: for each photo
(in the order given) the whole photo, then `--crops` random resized crops of it (35-100 % of its
area), then `--small-crops` smaller ones (10-35 %: the harder inputs, where engines and
calibrations part ways); then the clip's frames (FILE: the clip decoded to raw RGB of WxH).
Prints one JSON line per input, in the same order: {"source", "kind" ("whole" | "crop" | "small"
| "clip"), "box" [x, y, w, h] in the source's pixels, "frame" (clip frames only)}.

Crops follow torchvision's RandomResizedCrop.get_params (area 35-100 % of the photo, aspect ratio
log-uniform in 3/4..4/3, up to 10 draws, else the largest centred crop of an allowed ratio) with
Python's `random.Random`, seeded per photo with the string "SEED/NAME" (string seeds are hashed
with SHA-512, so the boxes are the same on every machine, Python version and run, and adding a
photo leaves the other photos' crops alone); only `random()` is used, whose sequence Python keeps
stable. Every input, whole photos and clip frames included, is resized to 224x224 (the whole
picture squashed, as the element does) with Pillow's bilinear filter, which is what
RandomResizedCrop does to PIL images; the element then gets 224x224 RGB and does not resize.
"""

import argparse
import json
import math
import os
import random
import sys

from PIL import Image

SIZE = 224
SCALE = (0.35, 1.0)
SMALL_SCALE = (0.10, 0.35)
RATIO = (3 / 4, 4 / 3)


def crop_box(rng: random.Random, width: int, height: int, scale: tuple = SCALE) -> tuple:
    """One RandomResizedCrop box (x, y, w, h) of `scale` of the area, drawn with `rng.random()` only."""
    area = width * height
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * rng.random())
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * rng.random())
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            x = min(int(rng.random() * (width - w + 1)), width - w)
            y = min(int(rng.random() * (height - h + 1)), height - h)
            return x, y, w, h
    # torchvision's fallback: the whole photo, cut to the nearest allowed aspect ratio.
    ratio = width / height
    if ratio < RATIO[0]:
        w, h = width, int(round(width / RATIO[0]))
    elif ratio > RATIO[1]:
        w, h = int(round(height * RATIO[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", required=True)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--clip-raw", required=True)
    ap.add_argument("--clip-size", required=True, help="WxH of the raw RGB clip frames")
    ap.add_argument("--clip-name", required=True, help="the clip's name for the rows' source")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--crops", type=int, required=True)
    ap.add_argument("--small-crops", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    clip_w, clip_h = (int(v) for v in args.clip_size.split("x"))
    with open(args.out, "wb") as out:
        def put(image: Image.Image, row: dict):
            out.write(image.resize((SIZE, SIZE), Image.BILINEAR).tobytes())
            print(json.dumps(row))

        for name in args.photos:
            with Image.open(os.path.join(args.media, name)) as f:
                photo = f.convert("RGB")
            put(photo, {"source": name, "kind": "whole", "box": [0, 0, photo.width, photo.height]})
            rng = random.Random(f"{args.seed}/{name}")
            for kind, count, scale in [("crop", args.crops, SCALE), ("small", args.small_crops, SMALL_SCALE)]:
                for _ in range(count):
                    x, y, w, h = crop_box(rng, photo.width, photo.height, scale)
                    put(photo.crop((x, y, x + w, y + h)), {"source": name, "kind": kind, "box": [x, y, w, h]})
        frame_bytes = clip_w * clip_h * 3
        with open(args.clip_raw, "rb") as f:
            clip = f.read()
        if not clip or len(clip) % frame_bytes:
            sys.exit(f"{args.clip_raw}: {len(clip)} bytes, not a whole number of {clip_w}x{clip_h} RGB frames")
        for i in range(len(clip) // frame_bytes):
            frame = Image.frombytes("RGB", (clip_w, clip_h), clip[i * frame_bytes:(i + 1) * frame_bytes])
            put(frame, {"source": args.clip_name, "kind": "clip", "frame": i,
                        "box": [0, 0, clip_w, clip_h]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
