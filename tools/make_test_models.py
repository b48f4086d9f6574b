#!/usr/bin/env python3
"""Write the small TorchScript files the tests need into DIR (default target/test-models):

    make_test_models.py [DIR] [--model PATH]

  not_classifier.pt   valid TorchScript, output [1, 3, 224, 224] (an image, not class scores)
  tuple_output.pt     valid TorchScript, output a tuple of tensors
  dict_output.pt      valid TorchScript, output a dict of tensors
  ten_classes.pt      float (non-quantized) classifier with 10 outputs
  ten_labels.txt      10 labels for it
  batch1_only.pt      ten_classes.pt written for one image per forward (it flattens the whole batch
                      into one image's channels): [1, 3, H, W] gives [1, 10]; a batch of n > 1
                      gives [1, 10] too, the scores of all n images' pixels together
  fixed_224.pt        float classifier that only takes 224x224 input (for `input-size` errors)
  input_shape.pt      1000 scores that tell the input's shape: class H scores highest, 500 + W next
  warns.pt            ten_classes.pt that raises a libtorch warning (TORCH_WARN) on every forward
  records_qnnpack.pt  ten_classes.pt with gst_torch_engine() -> "qnnpack", as tools/export_model.py
  records_x86.pt      records the engine a model was calibrated for; the same with "x86"
  not_torchscript.pt  random bytes
  bgr255.pt           the default int8 MobileNetV2 (--model) taking BGR 0..255 input: it flips the
                      channels to RGB and applies the ImageNet normalisation itself; its
                      gst_torch_engine() is the inner model's
  bgr255_config.json  the model config that tells the element so (color-order bgr, pixel-scale 1,
                      mean 0, std 1); not bgr255.json, which the element would read by default
  multilabel.pt       float, 3 independent labels of an RGB 0..1 input: output[n, c] =
                      12 * (mean of channel c - 0.5), so a yellow frame scores red and green high
  multilabel_labels.txt  red, green, blue

Object detectors (tools/test_detectors.py, whose docstring tells what they detect and how): solid red,
green and blue rectangles on a dark background, RGB 0..1 input [N, 3, S, S] (pixel-scale 1/255,
mean 0, std 1; any S >= 32, any N where the format has a batch), ONE object per colour per image
(the exact box of all its pixels, present from 16 pixels on). Each object gives 5 candidates: its
exact box 0.9, three jittered copies 0.8, 0.7, 0.6 (IoU > 0.8 with it) and a distractor 0.2 (IoU
< 0.3); an absent colour's score 0; background candidates 0.01. K = YOLO's anchor count (8400 for
S = 640, 2100 for 320; at least channels + 1), the objects' 15 candidates the last.
  shapes_yolov8.pt    yolov8 head [N, 4 + 3, K]: rows cx, cy, w, h, scores of red, green, blue
  shapes_yolov5.pt    yolov5 head [N, K, 5 + 3]: cx, cy, w, h, objectness, 3 class scores (an
                      object's objectness 0.95, its class score score / 0.95; background 0.1, 0.1)
  shapes_coco80.pt    shapes_yolov8.pt with 80 classes: red, green, blue are COCO 0 (person),
                      2 (car), 16 (dog)
  shapes_boxes.pt     post-NMS head for batch 1 (others raise): (boxes [D, 4] x1, y1, x2, y2,
                      scores [D] all 0.9, class ids [D] as floats), one row per present colour in
                      class order, D = 0..3
  shapes_boxes_bad.pt shapes_boxes.pt with one row too many in boxes ([D + 1, 4]; the extra row
                      (0, 0, 32, 32)): the three tensors' lengths differ
  square_yolov8.pt    yolov8 head [N, 7, 7] (4 + nc == K, nc = 3): ambiguous for output-format=auto;
                      candidates 0..3 background, 4..6 the exact boxes of red, green, blue
  shapes_labels.txt   red, green, blue
  shapes.webm         VP8 in WebM, 320x240, 10 fps, 40 frames, background (20, 20, 20): a red 40x40
                      square moving right, a blue 30x30 moving left over it (they overlap in
                      frames 18-23), a green 36x36 moving right, hidden in frames 15-19
  shapes_truth.json   per frame, each square present: class name, class id, box [x, y, w, h]

--model is the int8 MobileNetV2 bgr255.pt wraps (default: the path `make model` writes,
$XDG_DATA_HOME/gst-torch/mobilenet_v2_quantized.pt, XDG_DATA_HOME defaulting to ~/.local/share).
Deterministic (fixed seed; the detectors have no weights); rewritten only when missing (bgr255.pt
also when --model is newer; shapes.webm and shapes_truth.json both when either is). Every detector
is checked on synthetic frames after scripting and loaded back, the clip decoded back (its colour
boxes within 2 px of the truth); a file whose check fails is not written, and the script exits 1.
"""

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from typing import Dict

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_detectors  # noqa: E402  (tools/test_detectors.py: the detectors and the clip)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


class Pair(nn.Module):
    def forward(self, x: torch.Tensor):
        return x.mean(), x.sum()


class Named(nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"logits": x.mean(dim=[2, 3])}


class TenClasses(nn.Module):
    """Scores 10 classes from the mean colour: enough to be a real (if poor) float classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class Batch1Only(TenClasses):
    """TenClasses as a model written (or traced) for batch 1 is: the reshape to one image makes a
    batch of n > 1 a single [1, 10] output of all n images' pixels, not n rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(1, 3, -1).mean(dim=-1))


class Warns(TenClasses):
    """TenClasses whose forward warns through libtorch (TorchScript compiles warnings.warn to
    aten::warn), as a model with a deprecated op would."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("gst-torch test warning from warns.pt")
        return self.fc(torch.flatten(self.pool(x), 1))


class Records(TenClasses):
    """TenClasses with the method tools/export_model.py gives every model it writes: the quantized
    engine the model was calibrated for, which the element's engine=auto then runs."""

    def __init__(self, engine: str) -> None:
        super().__init__()
        self.engine = engine

    @torch.jit.export
    def gst_torch_engine(self) -> str:
        return self.engine


class Fixed224(nn.Module):
    """10 classes from an 8x8 colour thumbnail: the Linear layer fixes the input at 224x224."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.avg_pool2d(x, 28), 1))


class InputShape(nn.Module):
    """1000 scores that say what the model was given, the same on every CPU: for a [1, 3, H, W]
    input, class H % 500 scores 2 and class 500 + W % 500 scores 1 (so top-1 is H, top-2 is
    500 + W when H != W % 500); any other shape is an error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(0) != 1 or x.size(1) != 3:
            raise RuntimeError("input_shape.pt takes [1, 3, H, W]")
        out = torch.zeros(1, 1000)
        out[0, x.size(2) % 500] += 2.0
        out[0, 500 + x.size(3) % 500] += 1.0
        return out


class MultiLabel(nn.Module):
    """3 independent labels (red, green, blue) of an RGB 0..1 input [N, 3, H, W]: the logit of label c
    is 12 * (mean of channel c - 0.5), e.g. a yellow frame: red and green about 6, blue about -6."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 12.0 * (x.mean(dim=[2, 3]) - 0.5)


IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class Bgr255(nn.Module):
    """`inner` (a model taking ImageNet-normalised RGB 0..1 input) taking BGR 0..255 input instead,
    as OpenCV- and Caffe-style models do: forward(x) = inner((x.flip(1) / 255 - mean) / std)."""

    def __init__(self, inner: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner((x.flip(1) / 255 - self.mean) / self.std)

    @torch.jit.export
    def gst_torch_engine(self) -> str:
        return self.inner.gst_torch_engine()


def default_model() -> Path:
    """The default model `make model` writes (the Makefile's MODEL)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "gst-torch" / "mobilenet_v2_quantized.pt"


def write_bgr255(path: Path, model: Path) -> None:
    """bgr255.pt from `model`, checked (before saving and loaded back) to give on a BGR 0..255 input
    what `model` gives on the same pixels as ImageNet-normalised RGB; raises RuntimeError if not."""
    if not model.is_file():
        raise RuntimeError(f"{model} not found (make model writes it; or pass --model)")
    # The engine the default model is calibrated for on x86-64; set before loading, since loading
    # packs the int8 weights for the active engine.
    if "x86" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "x86"
    inner = torch.jit.load(str(model)).eval()
    if not hasattr(inner, "gst_torch_engine"):
        raise RuntimeError(f"{model} has no gst_torch_engine() (not written by tools/export_model.py)")
    wrapped = torch.jit.script(Bgr255(inner).eval())

    generator = torch.Generator().manual_seed(1)
    bgr = torch.randint(0, 256, (2, 3, 224, 224), generator=generator).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = bgr[:, [2, 1, 0]] / 255
    with torch.no_grad():
        expected = inner((rgb - mean) / std)

    def check(m, what: str) -> None:
        with torch.no_grad():
            got = m(bgr)
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=0, atol=1e-5):
            raise RuntimeError(f"{what}: output differs from {model} on the normalised RGB input")
        if m.gst_torch_engine() != inner.gst_torch_engine():
            raise RuntimeError(f"{what}: gst_torch_engine() {m.gst_torch_engine()!r}, "
                               f"not the inner model's {inner.gst_torch_engine()!r}")

    check(wrapped, "bgr255.pt before saving")
    tmp = path.with_suffix(path.suffix + ".tmp")
    wrapped.save(str(tmp))
    try:
        check(torch.jit.load(str(tmp)), f"{tmp} loaded back")
    except RuntimeError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=Path("target/test-models"),
                    help="folder to write into (default: %(default)s)")
    ap.add_argument("--model", type=Path, default=default_model(),
                    help="the int8 MobileNetV2 bgr255.pt wraps (default: %(default)s)")
    args = ap.parse_args()
    out = args.dir
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, module in [("not_classifier.pt", Identity()), ("tuple_output.pt", Pair()),
                         ("dict_output.pt", Named()),
                         ("ten_classes.pt", TenClasses().eval()),
                         ("fixed_224.pt", Fixed224().eval()),
                         ("input_shape.pt", InputShape().eval()),
                         ("warns.pt", Warns().eval()),
                         ("records_qnnpack.pt", Records("qnnpack").eval()),
                         ("records_x86.pt", Records("x86").eval())]:
        path = out / name
        if not path.exists():
            torch.jit.script(module).save(str(path))
    batch1 = out / "batch1_only.pt"
    if not batch1.exists():
        # Seeded on its own, in a forked generator: the files after it stay as they were.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            scripted = torch.jit.script(Batch1Only().eval())
            with torch.no_grad():
                one = scripted(torch.rand(1, 3, 8, 8)).shape
                two = scripted(torch.rand(2, 3, 8, 8)).shape
        if one != (1, 10) or two != (1, 10):
            print(f"batch1_only.pt: output {tuple(one)} for 1 image, {tuple(two)} for 2, "
                  "not [1, 10] for both", file=sys.stderr)
            return 1
        scripted.save(str(batch1))
    labels = out / "ten_labels.txt"
    if not labels.exists():
        labels.write_text("".join(f"colour-{i}\n" for i in range(10)))
    junk = out / "not_torchscript.pt"
    if not junk.exists():
        junk.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())

    multilabel = out / "multilabel.pt"
    if not multilabel.exists():
        scripted = torch.jit.script(MultiLabel().eval())
        yellow = torch.zeros(1, 3, 8, 8)
        yellow[:, :2] = 1.0
        logits = scripted(yellow)[0].tolist()
        if not (logits[0] > 5 and logits[1] > 5 and logits[2] < -5):
            print(f"multilabel.pt: a yellow frame gives {logits}, not red and green high, blue low",
                  file=sys.stderr)
            return 1
        scripted.save(str(multilabel))
    labels = out / "multilabel_labels.txt"
    if not labels.exists():
        labels.write_text("red\ngreen\nblue\n")

    try:
        test_detectors.write_all(out)
    except RuntimeError as e:
        print(f"cannot write the detectors: {e}", file=sys.stderr)
        return 1

    config = out / "bgr255_config.json"
    if not config.exists():
        config.write_text(json.dumps({"color-order": "bgr", "pixel-scale": 1.0, "mean": [0, 0, 0],
                                      "std": [1, 1, 1]}, indent=4) + "\n")
    bgr255 = out / "bgr255.pt"
    if not bgr255.exists() or (args.model.is_file() and args.model.stat().st_mtime > bgr255.stat().st_mtime):
        try:
            write_bgr255(bgr255, args.model)
        except RuntimeError as e:
            print(f"cannot write {bgr255}: {e}", file=sys.stderr)
            return 1
    print(f"test models in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
