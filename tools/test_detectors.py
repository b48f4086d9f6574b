"""The small deterministic TorchScript object detectors and the clip that tools/make_test_models.py
writes for the torchdetect / torchtrack tests (write_all(DIR) writes them; see
make_test_models.py's docstring for the file list).

What the detectors detect: solid coloured rectangles on a dark background. Input [N, 3, H, W], RGB
0..1 (pixel-scale 1/255, mean 0, std 1, as ultralytics models take; any H, W >= 32, any N >= 1
where the format has a batch dimension). A pixel is
  red   (colour 0) when R > 0.5, G < 0.3, B < 0.3
  green (colour 1) when G > 0.5, R < 0.3, B < 0.3
  blue  (colour 2) when B > 0.5, R < 0.3, G < 0.3
and a colour is present in an image when at least 16 of its pixels are. ONE object per colour per
image: the exact bounding box of all that colour's pixels, in input pixels (x1 = min column,
x2 = max column + 1, y likewise), however many rectangles of that colour there are.

Each colour gives five candidates, in this order, every box clipped to the image:
  0 exact       the exact box                                              score 0.9
  1 shifted     the box moved by (+5% of its width, +5% of its height)     score 0.8  (IoU 0.82)
  2 grown       the box scaled by 1.1 about its centre                     score 0.7  (IoU 0.83)
  3 shrunk      the box scaled by 0.9, centre moved by (-5% w, +5% h),     score 0.6  (IoU 0.81)
                i.e. (x1 + 0, y1 + 0.1 h, x2 - 0.1 w, y2) inside the exact box
  4 distractor  a box of the object's size centred on its top-left corner
                (x1 - w/2, y1 - h/2, x1 + w/2, y1 + h/2)                    score 0.2  (IoU 1/7..1/4)
(the IoUs with the exact box, before clipping; clipping only raises those of 1..3), so class-aware
NMS at IoU 0.45 over candidates scoring >= 0.25 leaves the exact box alone, and at a threshold of
0.05 the exact box and the distractor. An absent colour's five candidates are those of the box
(0, 0, 32, 32), all scoring 0. Every other candidate is background, scoring 0.01 for class
(its index % nc): background candidate i is anchor cell i % A (A = the cells of YOLO's grids of
stride 8, 16 and 32, stride by stride, each row-major; the s x s box centred on the cell, clipped).

The scripted code writes these numbers out (TorchScript reads no global constant); the checks
compare the models' outputs with them.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn

import rawclip  # tools/rawclip.py: the one clip decode recipe

MIN_PIXELS = 16
COLOURS = 3
LABELS = ["red", "green", "blue"]
COCO_IDS = [0, 2, 16]  # person, car, dog


def colour_masks(x: torch.Tensor) -> List[torch.Tensor]:
    """The red, green and blue pixels of an RGB 0..1 batch [N, 3, H, W]: three [N, H, W] bool."""
    r = x[:, 0]
    g = x[:, 1]
    b = x[:, 2]
    r_low = r < 0.3
    g_low = g < 0.3
    b_low = b < 0.3
    return [(r > 0.5) & g_low & b_low, (g > 0.5) & r_low & b_low, (b > 0.5) & r_low & g_low]


def colour_boxes(x: torch.Tensor, min_pixels: int = 16) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per image and colour, the exact box x1, y1, x2, y2 of the colour's pixels ([N, 3, 4], float,
    (0, 0, 32, 32) for an absent colour) and whether it is present ([N, 3] bool: at least
    `min_pixels` pixels)."""
    masks = colour_masks(x)
    h = x.size(2)
    w = x.size(3)
    cols = torch.stack([m.any(1) for m in masks], 1)  # [N, 3, W]
    rows = torch.stack([m.any(2) for m in masks], 1)  # [N, 3, H]
    counts = torch.stack([m.count_nonzero([1, 2]) for m in masks], 1)  # [N, 3]
    xs = torch.arange(w, dtype=torch.float32, device=x.device)
    ys = torch.arange(h, dtype=torch.float32, device=x.device)
    x1 = torch.where(cols, xs, torch.full_like(xs, float(w))).amin(-1)
    x2 = torch.where(cols, xs, torch.full_like(xs, -1.0)).amax(-1) + 1.0
    y1 = torch.where(rows, ys, torch.full_like(ys, float(h))).amin(-1)
    y2 = torch.where(rows, ys, torch.full_like(ys, -1.0)).amax(-1) + 1.0
    present = counts >= min_pixels
    boxes = torch.stack([x1, y1, x2, y2], -1)
    absent = torch.tensor([0.0, 0.0, 32.0, 32.0], dtype=torch.float32, device=x.device)
    return torch.where(present.unsqueeze(-1), boxes, absent), present


def clip_boxes(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Boxes [..., 4] x1, y1, x2, y2 clipped to a w x h image."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([x1.clamp(0.0, float(w)), y1.clamp(0.0, float(h)),
                        x2.clamp(0.0, float(w)), y2.clamp(0.0, float(h))], -1)


def candidates(boxes: torch.Tensor, present: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The five candidates of each colour (module docstring): boxes x1, y1, x2, y2 [N, 3, 5, 4]
    clipped to the image, scores [N, 3, 5] (0 for an absent colour)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    bw = x2 - x1
    bh = y2 - y1
    cx = (x1 + x2) * 0.5
    cy = (y1 + y2) * 0.5
    shifted = torch.stack([x1 + 0.05 * bw, y1 + 0.05 * bh, x2 + 0.05 * bw, y2 + 0.05 * bh], -1)
    grown = torch.stack([cx - 0.55 * bw, cy - 0.55 * bh, cx + 0.55 * bw, cy + 0.55 * bh], -1)
    shrunk = torch.stack([cx - 0.5 * bw, cy - 0.4 * bh, cx + 0.4 * bw, cy + 0.5 * bh], -1)
    distractor = torch.stack([x1 - 0.5 * bw, y1 - 0.5 * bh, x1 + 0.5 * bw, y1 + 0.5 * bh], -1)
    cands = clip_boxes(torch.stack([boxes, shifted, grown, shrunk, distractor], 2), h, w)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.2], dtype=torch.float32,
                          device=boxes.device)
    return cands, scores * present.unsqueeze(-1).to(torch.float32)


def anchor_count(h: int, w: int) -> int:
    """YOLO's number of anchor cells for an h x w input: strides 8, 16 and 32 (8400 for 640x640)."""
    n = 0
    for s in [8, 16, 32]:
        n += ((h + s - 1) // s) * ((w + s - 1) // s)
    return n


def yolo_k(h: int, w: int, channels: int) -> int:
    """The yolov8/yolov5 candidate count K: the anchor count, at least channels + 1."""
    return max(anchor_count(h, w), channels + 1)


def anchor_boxes(h: int, w: int, device: torch.device) -> torch.Tensor:
    """[anchor_count(h, w), 4] x1, y1, x2, y2: the s x s box of every cell of strides 8, 16, 32,
    row-major within a stride, clipped to the image."""
    parts: List[torch.Tensor] = []
    for s in [8, 16, 32]:
        gh = (h + s - 1) // s
        gw = (w + s - 1) // s
        cy = ((torch.arange(gh, dtype=torch.float32, device=device) + 0.5) * s).view(-1, 1).expand(gh, gw)
        cx = ((torch.arange(gw, dtype=torch.float32, device=device) + 0.5) * s).view(1, -1).expand(gh, gw)
        cx = cx.reshape(-1)
        cy = cy.reshape(-1)
        half = s * 0.5
        parts.append(torch.stack([cx - half, cy - half, cx + half, cy + half], -1))
    return clip_boxes(torch.cat(parts, 0), h, w)


def background(count: int, h: int, w: int, nc: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """`count` background candidates: boxes [count, 4] x1, y1, x2, y2 (anchor box i % anchors) and
    a one-hot class index (i % nc) [count] int64."""
    anchors = anchor_boxes(h, w, device)
    index = torch.arange(count, device=device)
    return anchors[index % anchors.size(0)], index % nc


def to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], -1)


class ShapesYolo(nn.Module):
    """The coloured-rectangle detector with a YOLO head (module docstring). yolov8: output
    [N, 4 + nc, K], rows cx, cy, w, h, then the nc class scores; yolov5 (objectness=True): output
    [N, K, 5 + nc], columns cx, cy, w, h, objectness, the nc class scores. K = yolo_k(H, W, 4 + nc
    or 5 + nc); candidates 0..K-16 are background, the last 15 the objects' (colour-major: red's
    five, green's, blue's), colour c scoring in class row class_ids[c]."""

    def __init__(self, nc: int, class_ids: List[int], objectness: bool) -> None:
        super().__init__()
        self.nc = nc
        self.objectness = objectness
        onehot = torch.zeros(3, nc)
        for colour, class_id in enumerate(class_ids):
            onehot[colour, class_id] = 1.0
        self.register_buffer("onehot", onehot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        h = x.size(2)
        w = x.size(3)
        boxes, present = colour_boxes(x, 16)
        cands, scores = candidates(boxes, present, h, w)
        obj_boxes = to_cxcywh(cands.reshape(n, 15, 4))
        onehot = self.onehot.view(1, 3, 1, self.nc)
        channels = 4 + self.nc + (1 if self.objectness else 0)
        k = yolo_k(h, w, channels)
        bg_boxes, bg_class = background(k - 15, h, w, self.nc, x.device)
        bg_onehot = nn.functional.one_hot(bg_class, self.nc).to(torch.float32)
        if self.objectness:
            obj = (0.95 * (scores > 0).to(torch.float32)).reshape(n, 15, 1)
            cls = (scores.unsqueeze(-1) / 0.95 * onehot).reshape(n, 15, self.nc)
            objects = torch.cat([obj_boxes, obj, cls], -1)
            bg = torch.cat([to_cxcywh(bg_boxes), torch.full_like(bg_boxes[:, :1], 0.1),
                            0.1 * bg_onehot], -1)
        else:
            cls = (scores.unsqueeze(-1) * onehot).reshape(n, 15, self.nc)
            objects = torch.cat([obj_boxes, cls], -1)
            bg = torch.cat([to_cxcywh(bg_boxes), 0.01 * bg_onehot], -1)
        out = torch.cat([bg.unsqueeze(0).expand(n, -1, -1), objects], 1)  # [N, K, channels]
        if self.objectness:
            return out.contiguous()
        return out.transpose(1, 2).contiguous()


class SquareYolov8(nn.Module):
    """yolov8-shaped output [N, 7, 7] (nc = 3, K = 7 = 4 + nc): candidates 0..3 background (anchor
    boxes 0..3, 0.01 for class i % 3), 4..6 the exact boxes of red, green and blue, 0.9 for their
    own class when present, 0 when absent (the box (0, 0, 32, 32))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        h = x.size(2)
        w = x.size(3)
        boxes, present = colour_boxes(x, 16)
        eye = torch.eye(3, device=x.device)
        cls = 0.9 * present.to(torch.float32).unsqueeze(-1) * eye.unsqueeze(0)  # [N, 3, 3]
        objects = torch.cat([to_cxcywh(boxes), cls], -1)
        bg_boxes, bg_class = background(4, h, w, 3, x.device)
        bg = torch.cat([to_cxcywh(bg_boxes),
                        0.01 * nn.functional.one_hot(bg_class, 3).to(torch.float32)], -1)
        out = torch.cat([bg.unsqueeze(0).expand(n, -1, -1), objects], 1)
        return out.transpose(1, 2).contiguous()


class ShapesBoxes(nn.Module):
    """The detector with a post-NMS head for ONE image ([1, 3, H, W]; any other batch raises):
    (boxes [D, 4] x1, y1, x2, y2, scores [D] all 0.9, class ids [D] as floats), one entry per
    present colour in class order (D = 0..3). bad=True: boxes has one more row, (0, 0, 32, 32)."""

    def __init__(self, bad: bool = False) -> None:
        super().__init__()
        self.bad = bad

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.size(0) != 1 or x.size(1) != 3:
            raise RuntimeError("this model takes one image: [1, 3, H, W]")
        boxes, present = colour_boxes(x, 16)
        index = present[0].nonzero().squeeze(1)
        found = boxes[0].index_select(0, index)
        scores = torch.full([index.size(0)], 0.9, dtype=torch.float32, device=x.device)
        if self.bad:
            extra = torch.tensor([[0.0, 0.0, 32.0, 32.0]], dtype=torch.float32,
                                 device=x.device)
            found = torch.cat([found, extra], 0)
        return found, scores, index.to(torch.float32)


# ---- checks -------------------------------------------------------------------------------------

def iou(a: List[float], b: List[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


Detection = Tuple[List[float], float, int]  # box x1, y1, x2, y2; score; class


def decode(out: torch.Tensor, fmt: str, nc: int) -> List[List[Detection]]:
    """Per image, every candidate (box, best class score, class) of a yolov8 or yolov5 output."""
    if fmt == "yolov8":
        rows = out.transpose(1, 2)  # [N, K, 4 + nc]
        scores = rows[:, :, 4:]
    else:
        rows = out
        scores = rows[:, :, 5:] * rows[:, :, 4:5]
    cx, cy, w, h = rows[:, :, 0], rows[:, :, 1], rows[:, :, 2], rows[:, :, 3]
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    best, cls = scores.max(-1)
    return [list(zip(xyxy[n].tolist(), best[n].tolist(), cls[n].tolist())) for n in range(out.size(0))]


def nms(dets: List[Detection], threshold: float, iou_max: Optional[float] = 0.45) -> List[Detection]:
    """The candidates scoring >= threshold, best first, after class-aware greedy NMS (none when
    iou_max is None)."""
    kept: List[Detection] = []
    for d in sorted((d for d in dets if d[1] >= threshold), key=lambda d: -d[1]):
        if iou_max is None or all(k[2] != d[2] or iou(k[0], d[0]) <= iou_max for k in kept):
            kept.append(d)
    return kept


def frame(size: Tuple[int, int], rects: List[Tuple[int, List[int]]]) -> torch.Tensor:
    """[3, H, W] RGB 0..1: background 20/255, rectangles (colour, [x1, y1, x2, y2]) of red
    (230, 25, 25), green (25, 210, 25) or blue (25, 25, 230)."""
    rgb = [(230, 25, 25), (25, 210, 25), (25, 25, 230)]
    h, w = size
    img = torch.full((3, h, w), 20 / 255)
    for colour, (x1, y1, x2, y2) in rects:
        img[:, y1:y2, x1:x2] = torch.tensor(rgb[colour]).view(3, 1, 1) / 255
    return img


# Image 0: red (100, 180)-(200, 280) and blue; image 1: green and red elsewhere (each image of a
# batch its own boxes); image 2: a 3x3 red speck (9 < 16 pixels: absent) and a green rectangle in
# the bottom-right corner (its candidates clipped).
CHECK_IMAGES = [
    [(0, [100, 180, 200, 280]), (2, [400, 300, 520, 380])],
    [(1, [40, 60, 250, 110]), (0, [300, 420, 364, 470])],
    [(0, [10, 10, 13, 13]), (1, [560, 580, 640, 640])],
]


def expected(rects: List[Tuple[int, List[int]]]) -> dict:
    """colour -> exact box of the check image's rectangles (each colour at most once, >= 16 px)."""
    return {c: [float(v) for v in box] for c, box in rects if (box[2] - box[0]) * (box[3] - box[1]) >= MIN_PIXELS}


def close(a: List[float], b: List[float], tol: float = 1e-3) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b))


def check_yolo(model, fmt: str, nc: int, class_ids: List[int]) -> None:
    """Raises RuntimeError unless `model` (yolov8 or yolov5 head) gives the documented output."""
    channels = 4 + nc if fmt == "yolov8" else 5 + nc
    for size, n in [((640, 640), 1), ((320, 320), 2), ((32, 32), 1), ((100, 100), 2), ((240, 320), 1)]:
        with torch.no_grad():
            out = model(torch.zeros(n, 3, *size))
        k = yolo_k(size[0], size[1], channels)
        want = (n, channels, k) if fmt == "yolov8" else (n, k, channels)
        if tuple(out.shape) != want or k <= channels:
            raise RuntimeError(f"{size} x {n}: output {tuple(out.shape)}, not {want}")
    batch = torch.stack([frame((640, 640), rects) for rects in CHECK_IMAGES])
    with torch.no_grad():
        one = model(batch[:1])
        out = model(batch)
    if not torch.allclose(one[0], out[0]):
        raise RuntimeError("image 0 alone and in a batch of 3 give different outputs")
    for i, (rects, dets) in enumerate(zip(CHECK_IMAGES, decode(out, fmt, nc))):
        want = expected(rects)
        kept = nms(dets, 0.25)
        got = sorted((class_ids.index(d[2]), d[0], d[1]) for d in kept)
        if len(got) != len(want) or any(c not in want or not close(b, want[c]) or abs(s - 0.9) > 1e-5
                                        for c, b, s in got):
            raise RuntimeError(f"image {i}: NMS at 0.25 keeps {got}, not the exact boxes {want} at 0.9")
        raw = nms(dets, 0.25, None)
        if len(raw) != 4 * len(want) or any(iou(d[0], want[class_ids.index(d[2])]) <= 0.6 for d in raw):
            raise RuntimeError(f"image {i}: {len(raw)} candidates >= 0.25, not 4 per object of IoU > 0.6")
        if sorted(round(d[1], 4) for d in raw) != sorted([0.6, 0.7, 0.8, 0.9] * len(want)):
            raise RuntimeError(f"image {i}: candidate scores {[d[1] for d in raw]}, not 0.9, 0.8, 0.7, 0.6")
        low = nms(dets, 0.05)
        distractors = [d for d in low if d[1] < 0.25]
        if (len(low) != 2 * len(want) or len(distractors) != len(want)
                or any(abs(d[1] - 0.2) > 1e-5 or iou(d[0], want[class_ids.index(d[2])]) >= 0.3
                       for d in distractors)):
            raise RuntimeError(f"image {i}: NMS at 0.05 keeps {low}, not each exact box and a distractor")
        for colour, class_id in enumerate(class_ids):
            if colour not in want:
                best = max((d[1] for d in dets if d[2] == class_id), default=0.0)
                if best >= 0.05:
                    raise RuntimeError(f"image {i}: absent colour {colour} scores {best}")
        if sum(1 for d in dets if d[1] > 0.05) != 5 * len(want):
            raise RuntimeError(f"image {i}: background candidates above 0.05")
    if fmt == "yolov5":
        objectness = sorted(round(v, 4) for v in out[:, :, 4].unique().tolist())
        if objectness != [0.0, 0.1, 0.95]:
            raise RuntimeError(f"objectness values {objectness}, not 0, 0.1 and 0.95")


def check_boxes(model, bad: bool) -> None:
    for rects in CHECK_IMAGES + [[]]:
        with torch.no_grad():
            boxes, scores, classes = model(frame((640, 640), rects).unsqueeze(0))
        want = expected(rects)
        d = len(want)
        if bad:
            if boxes.shape != (d + 1, 4) or scores.shape != (d,) or classes.shape != (d,):
                raise RuntimeError(f"shapes {boxes.shape}, {scores.shape}, {classes.shape}, not [D+1, 4], [D], [D]")
            continue
        if boxes.shape != (d, 4) or scores.shape != (d,) or classes.shape != (d,):
            raise RuntimeError(f"shapes {boxes.shape}, {scores.shape}, {classes.shape}, not [{d}, 4], [{d}], [{d}]")
        if (classes.tolist() != [float(c) for c in sorted(want)]
                or any(not close(b, want[c]) for b, c in zip(boxes.tolist(), sorted(want)))
                or any(abs(s - 0.9) > 1e-6 for s in scores.tolist())):
            raise RuntimeError(f"got {boxes.tolist()}, {scores.tolist()}, {classes.tolist()}, not {want}")
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 320, 240))
    if out[0].shape != (0, 4) and not bad:
        raise RuntimeError(f"a blank 320x240 image gives {out[0].shape} boxes")
    try:
        model(torch.zeros(2, 3, 64, 64))
    except Exception:  # a scripted module raises torch.jit.Error, an eager one RuntimeError
        pass
    else:
        raise RuntimeError("a batch of 2 does not raise")


def check_square(model) -> None:
    for size in [(640, 640), (320, 320), (32, 32)]:
        for n in [1, 2]:
            with torch.no_grad():
                out = model(torch.zeros(n, 3, *size))
            if tuple(out.shape) != (n, 7, 7):
                raise RuntimeError(f"{size} x {n}: output {tuple(out.shape)}, not ({n}, 7, 7)")
    with torch.no_grad():
        out = model(frame((640, 640), CHECK_IMAGES[0]).unsqueeze(0))
    dets = decode(out, "yolov8", 3)[0]
    if [dets[4][2], dets[6][2]] != [0, 2] or not close(dets[4][0], [100, 180, 200, 280]) \
            or not close(dets[6][0], [400, 300, 520, 380]) \
            or [round(d[1], 4) for d in dets] != [0.01] * 4 + [0.9, 0.0, 0.9]:
        raise RuntimeError(f"candidates {dets}, not 4 background, then red, (absent) green, blue")


def outputs(model) -> List[torch.Tensor]:
    """`model`'s outputs, flattened to a list, for check image 0 at 640x640 and a blank 96x160."""
    got: List[torch.Tensor] = []
    for x in [frame((640, 640), CHECK_IMAGES[0]).unsqueeze(0), torch.zeros(1, 3, 96, 160)]:
        with torch.no_grad():
            out = model(x)
        got.extend(out if isinstance(out, tuple) else [out])
    return got


def save_checked(path: Path, module: nn.Module, check) -> None:
    """Scripts `module`, checks it (check(model) raises RuntimeError), saves it, checks that it
    loads back giving the same outputs, and writes it to `path` only then."""
    scripted = torch.jit.script(module.eval())
    check(scripted)
    tmp = path.with_suffix(path.suffix + ".tmp")
    scripted.save(str(tmp))
    try:
        want = outputs(scripted)
        got = outputs(torch.jit.load(str(tmp)))
        if len(got) != len(want) or any(g.shape != w.shape or not torch.equal(g, w) for g, w in zip(got, want)):
            raise RuntimeError(f"{tmp} loaded back gives other outputs")
    except RuntimeError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


# ---- the clip -----------------------------------------------------------------------------------

CLIP_W, CLIP_H, CLIP_FPS, CLIP_FRAMES = 320, 240, 10, 40
CLIP_BACKGROUND = (20, 20, 20)
CLIP_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
GREEN_HIDDEN = range(15, 20)
VP8ENC = ["vp8enc", "end-usage=cq", "cq-level=4", "target-bitrate=4000000", "keyframe-max-dist=10",
          "deadline=1", "cpu-used=-4", "threads=1"]  # a negative cpu-used: a fixed speed (0 = by time)


def clip_truth() -> List[List[Tuple[str, List[int]]]]:
    """Per frame, (class name, [x, y, w, h]) of each square present, red, green, blue in drawing
    order (blue, drawn last, covers red where they cross: frames 18-23)."""
    frames = []
    for t in range(CLIP_FRAMES):
        squares = [("red", [10 + 6 * t, 100, 40, 40])]
        if t not in GREEN_HIDDEN:
            squares.append(("green", [40 + 2 * t, 170, 36, 36]))
        squares.append(("blue", [260 - 6 * t, 106, 30, 30]))
        frames.append(squares)
    return frames


def clip_frames(truth) -> bytes:
    """The clip's frames as raw RGB, back to back."""
    video = torch.empty(CLIP_FRAMES, CLIP_H, CLIP_W, 3, dtype=torch.uint8)
    video[:] = torch.tensor(CLIP_BACKGROUND, dtype=torch.uint8)
    for t, squares in enumerate(truth):
        for name, (x, y, w, h) in squares:
            video[t, y:y + h, x:x + w] = torch.tensor(CLIP_COLOURS[name], dtype=torch.uint8)
    return video.numpy().tobytes()


def check_clip(path: Path, truth) -> None:
    """Decodes `path` back and raises RuntimeError unless every frame's colour masks give the truth
    (present colours, boxes within 2 px)."""
    data = rawclip.decode(str(path), "RGB", CLIP_W, CLIP_H)
    video = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, CLIP_H, CLIP_W, 3)
    if video.size(0) != CLIP_FRAMES:
        raise RuntimeError(f"{path} decodes to {video.size(0)} frames, not {CLIP_FRAMES}")
    boxes, present = colour_boxes(video.permute(0, 3, 1, 2).float() / 255)
    for t, squares in enumerate(truth):
        want = {LABELS.index(name): [x, y, x + w, y + h] for name, (x, y, w, h) in squares}
        for colour in range(COLOURS):
            got = boxes[t, colour].tolist()
            if bool(present[t, colour]) != (colour in want) or (
                    colour in want and not close(got, want[colour], 2.0)):
                raise RuntimeError(f"{path} frame {t}: {LABELS[colour]} decodes as "
                                   f"{got if present[t, colour] else 'absent'}, not {want.get(colour)}")


def write_clip(webm: Path, truth_json: Path) -> None:
    """shapes.webm (VP8 in WebM via gst-launch-1.0) and shapes_truth.json, checked decoded back."""
    truth = clip_truth()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "frames.rgb")
        with open(raw, "wb") as f:
            f.write(clip_frames(truth))
        out = webm.with_suffix(webm.suffix + ".tmp")
        cmd = ["gst-launch-1.0", "-q", "filesrc", f"location={raw}", "!", "rawvideoparse", "format=rgb",
               f"width={CLIP_W}", f"height={CLIP_H}", f"framerate={CLIP_FPS}/1", "!", "videoconvert", "!",
               "video/x-raw,format=I420", "!", *VP8ENC, "!", "webmmux", "!", "filesink", f"location={out}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            raise RuntimeError("gst-launch-1.0 not found (tools/setup.sh deps installs it)") from None
        if done.returncode != 0:
            out.unlink(missing_ok=True)
            raise RuntimeError(f"encoding {webm} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    try:
        check_clip(out, truth)
        truth_json.write_text(truth_text(truth))
    except RuntimeError:
        out.unlink(missing_ok=True)
        raise
    out.replace(webm)


def overlap(a: List[int], b: List[int]) -> bool:
    """Whether boxes [x, y, w, h] a and b share a pixel."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def truth_text(truth) -> str:
    """shapes_truth.json: the clip's facts, then one line per frame."""
    boxes = [dict(squares) for squares in truth]
    head = {
        "width": CLIP_W, "height": CLIP_H, "framerate": CLIP_FPS, "frames": CLIP_FRAMES,
        "background": list(CLIP_BACKGROUND), "colours": {k: list(v) for k, v in CLIP_COLOURS.items()},
        "box": "[x, y, w, h] in frame pixels: columns x..x+w-1, rows y..y+h-1",
        "drawing_order": LABELS,
        "red_blue_overlap_frames": [t for t, b in enumerate(boxes) if overlap(b["red"], b["blue"])],
        "green_hidden_frames": [t for t, b in enumerate(boxes) if "green" not in b],
    }
    lines = [json.dumps({"frame": t, "pts_ns": t * 1_000_000_000 // CLIP_FPS,
                         "objects": [{"class": name, "class_id": LABELS.index(name), "box": box}
                                     for name, box in squares]})
             for t, squares in enumerate(truth)]
    text = ("{\n" + "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
            + ' "truth": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")
    if json.loads(text)["truth"][CLIP_FRAMES - 1]["frame"] != CLIP_FRAMES - 1:
        raise RuntimeError("shapes_truth.json does not read back")
    return text


def write_all(out: Path) -> None:
    """Writes the missing detector files into `out`; raises RuntimeError naming the one that fails.
    Runs libtorch on one thread: the models are tiny, and a second thread spinning on a busy
    machine (a build alongside) made the checks several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        write_files(out)
    finally:
        torch.set_num_threads(threads)


def write_files(out: Path) -> None:
    models = [
        ("shapes_yolov8.pt", lambda: ShapesYolo(3, [0, 1, 2], False),
         lambda m: check_yolo(m, "yolov8", 3, [0, 1, 2])),
        ("shapes_yolov5.pt", lambda: ShapesYolo(3, [0, 1, 2], True),
         lambda m: check_yolo(m, "yolov5", 3, [0, 1, 2])),
        ("shapes_coco80.pt", lambda: ShapesYolo(80, COCO_IDS, False),
         lambda m: check_yolo(m, "yolov8", 80, COCO_IDS)),
        ("shapes_boxes.pt", lambda: ShapesBoxes(), lambda m: check_boxes(m, False)),
        ("shapes_boxes_bad.pt", lambda: ShapesBoxes(bad=True), lambda m: check_boxes(m, True)),
        ("square_yolov8.pt", lambda: SquareYolov8(), check_square),
    ]
    for name, make, check in models:
        path = out / name
        if not path.exists():
            try:
                save_checked(path, make(), check)
            except RuntimeError as e:
                raise RuntimeError(f"{name}: {e}") from None
    labels = out / "shapes_labels.txt"
    if not labels.exists():
        labels.write_text("".join(f"{name}\n" for name in LABELS))
    webm, truth = out / "shapes.webm", out / "shapes_truth.json"
    if not webm.exists() or not truth.exists():
        write_clip(webm, truth)
