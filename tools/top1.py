#!/usr/bin/env python3
"""Top-1 of a TorchScript classifier run by Python's torch on images decoded by GStreamer to SxS RGB.

    top1.py MODEL IMAGE...

Each image goes through `decodebin ! videoconvert ! videoscale` to SxS RGB (tools/rawclip.py; S the
model config file's input-size, else 224), is normalised as the model config file beside MODEL says
(torchvision's ImageNet mean/std of 0..1 pixels when there is none) and classified under the
quantized engine the model records (`gst_torch_engine()`; none: torch's default). A torchclassify
behind the same `videoscale` to SxS RGB gets the same bytes, so `make test-aarch64` compares the
two: the model exported by the venv's torch (2.9.1 on aarch64) against the plugin's libtorch
(2.13.0). Prints one line per image: IMAGE<TAB>label<TAB>class id<TAB>confidence. Runs in the venv
(torch; no torchvision needed).
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclip  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()

    import torch

    config_path = args.model.with_suffix(".json")
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    size = config.get("input-size", 224)
    mean = torch.tensor(config.get("mean", [0.485, 0.456, 0.406])).view(1, 3, 1, 1)
    std = torch.tensor(config.get("std", [0.229, 0.224, 0.225])).view(1, 3, 1, 1)
    scale = config.get("pixel-scale", 1 / 255)
    labels_name = config.get("labels", "imagenet_labels.txt")
    labels_path = Path(labels_name) if os.path.isabs(labels_name) else args.model.parent / labels_name
    labels = labels_path.read_text().splitlines()

    model = torch.jit.load(str(args.model))
    engine = model.gst_torch_engine() if hasattr(model, "gst_torch_engine") else ""
    if engine:
        torch.backends.quantized.engine = engine
        model = torch.jit.load(str(args.model))  # packed again for the engine
    model.eval()
    for image in args.images:
        data = rawclip.decode(image, "RGB", size, size)
        frame = torch.frombuffer(bytearray(data[:size * size * 3]), dtype=torch.uint8).view(1, size, size, 3)
        x = (frame.permute(0, 3, 1, 2).float() * scale - mean) / std
        with torch.no_grad():
            probs = torch.softmax(model(x), dim=1)[0]
        conf, idx = probs.max(0)
        print(f"{image}\t{labels[int(idx)]}\t{int(idx)}\t{float(conf):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
