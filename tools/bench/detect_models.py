#!/usr/bin/env python3
"""The detectors of `make bench`'s detection rows (tools/bench/bench.py), exported into a directory
(run with the venv's python; offline, random weights, nothing downloaded):

    detect_models.py OUT_DIR --frames RAW_RGB WIDTH HEIGHT

writes, for each N of BOXES (10 and 100, the box counts bench.py's rows measure):

  yolov8-fixed-N.pt   a YOLOv8-shaped detector whose output [1, 84, 8400] (cx, cy, w, h in input
                      pixels, then 80 class scores per candidate) is a fixed head holding exactly N
                      objects: its forward is one add (the head plus 0 x one input pixel, so the
                      output is a new tensor each time, as a real model's is), so what the element
                      spends around it stands out
  yolov8n-N.pt        the same fixed head after a forward of ultralytics' YOLOv8n layer for layer
                      (width 0.25, depth 0.33: Conv/C2f/SPPF backbone, PAN neck, the Detect head
                      with DFL; batch norm fused into the convolutions as in an export; random
                      weights, 3 151 904 parameters as ultralytics' yolov8n): a real detector's
                      forward time, with exactly N boxes for the decoder (0 x one value of its head
                      is added to the fixed head, so the graph cannot be skipped)

and once:

  ssdlite.pt          torchvision's ssdlite320_mobilenet_v3_large(weights=None,
                      weights_backbone=None, score_thresh=0.02) with its batch norms'
                      statistics measured on the frames of RAW_RGB (packed RGB, WIDTH x HEIGHT,
                      letterboxed to 320x320 as the element does; see calibrated_ssdlite), wrapped
                      (SsdliteBoxes) to take [1, 3, 320, 320] 0..1 RGB (its transform normalises
                      inside) and return boxes [N, 4] (x1, y1, x2, y2 in input pixels), scores [N]
                      and labels [N] (torchdetect output-format=boxes input-size=320); its NMS is
                      written in plain torch ops (nms()), as a process with libtorch but not
                      torchvision has no torchvision::nms
  ssdlite-labels.txt  its 91 COCO category names (torchvision's, "N/A" for the unused ids)
  ssdlite.export.json what the export was made from (not ssdlite.json: the element would read that
                      as the model's config file)

The fixed head (the same for both N models): N objects on a grid inside the picture a 640x480
frame letterboxes to (rows 80..560 of 640), each a box of 60 % of its grid cell scoring 0.9 for
class (i % 80), plus 4 jittered copies of it (up to 3 % of its size; IoU > 0.8 with it, scoring
0.5..0.8) that NMS suppresses; every other candidate is clutter as in a real head: a random box,
class scores 0..0.05 (below any threshold). So the default threshold 0.25, IoU 0.45 and
max-detections 100 leave exactly N boxes per frame.

Prints one JSON line: {"files": [...], "seconds"}. A file newer than this script (and for
ssdlite.pt made from the same frames and score) is kept.
"""

import argparse
import json
import os
import sys
import time

import torch
from torch import nn

CLASSES = 80
SIZE = 640
STRIDES = (8, 16, 32)
CANDIDATES = sum((SIZE // s) ** 2 for s in STRIDES)  # 8400
COPIES = 4
# The fixed heads' box counts: bench.py's detect_outside() reads yolov8-fixed-N.pt and yolov8n-N.pt
# for these N (its own (10, 100)).
BOXES = (10, 100)
# SSDlite's score_thresh (torchvision's default 0.001 lets thousands of candidates of random
# weights into NMS).
SSDLITE_SCORE = 0.02


def fixed_head(n: int, seed: int = 0) -> torch.Tensor:
    """[1, 84, 8400]: n objects (with COPIES suppressed copies each) among clutter; see the module
    docstring."""
    g = torch.Generator().manual_seed(seed)
    head = torch.zeros(4 + CLASSES, CANDIDATES)
    # Clutter: random boxes in the input, small scores for every class.
    head[0] = torch.rand(CANDIDATES, generator=g) * SIZE
    head[1] = torch.rand(CANDIDATES, generator=g) * SIZE
    head[2:4] = 8 + torch.rand(2, CANDIDATES, generator=g) * 192
    head[4:] = torch.rand(CLASSES, CANDIDATES, generator=g) * 0.05
    cols = max(1, int(round((n * 4 / 3) ** 0.5)))
    rows = (n + cols - 1) // cols
    cell_w, cell_h = SIZE / cols, 480 / rows
    # Spread over the candidates (as a head's anchors are), one object's copies together.
    slots = torch.randperm(CANDIDATES, generator=g)[: n * (1 + COPIES)].view(n, 1 + COPIES)
    for i in range(n):
        cx = (i % cols + 0.5) * cell_w
        cy = 80 + (i // cols + 0.5) * cell_h
        w, h = 0.6 * cell_w, 0.6 * cell_h
        for k in range(1 + COPIES):
            j = int(slots[i, k])
            jitter = (torch.rand(4, generator=g) * 2 - 1) * 0.03 if k else torch.zeros(4)
            head[0:4, j] = torch.tensor([cx + jitter[0] * w, cy + jitter[1] * h,
                                         w * (1 + jitter[2]), h * (1 + jitter[3])])
            head[4:, j] = torch.rand(CLASSES, generator=g) * 0.05
            head[4 + i % CLASSES, j] = 0.9 if k == 0 else 0.5 + 0.3 * float(torch.rand(1, generator=g))
    return head.unsqueeze(0)


# ultralytics' YOLOv8n (ultralytics/cfg/models/v8/yolov8.yaml, scale n), batch norm fused.

class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=True)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool):
        super().__init__()
        self.cv1 = Conv(c1, c2, 3)
        self.cv2 = Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int, shortcut: bool):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList([Bottleneck(self.c, self.c, shortcut) for _ in range(n)])

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int):
        super().__init__()
        self.cv1 = Conv(c1, c1 // 2, 1)
        self.cv2 = Conv(c1 // 2 * 4, c2, 1)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        y0 = self.cv1(x)
        y1 = self.m(y0)
        y2 = self.m(y1)
        return self.cv2(torch.cat([y0, y1, y2, self.m(y2)], 1))


class Detect(nn.Module):
    def __init__(self, ch=(64, 128, 256), nc: int = CLASSES, reg_max: int = 16):
        super().__init__()
        self.nc, self.reg_max = nc, reg_max
        c2, c3 = max(16, ch[0] // 4, reg_max * 4), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1))
                                 for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1))
                                 for x in ch)
        self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False)
        self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1)
        anchors, strides = [], []
        for s in STRIDES:
            n = SIZE // s
            sy, sx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
            anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
            strides.append(torch.full((n * n, 1), float(s)))
        self.register_buffer("anchors", torch.cat(anchors).transpose(0, 1).unsqueeze(0))  # [1, 2, 8400]
        self.register_buffer("strides", torch.cat(strides).transpose(0, 1).unsqueeze(0))  # [1, 1, 8400]

    def forward(self, xs: list[torch.Tensor]):
        outs = []
        for i, (reg, score) in enumerate(zip(self.cv2, self.cv3)):
            x = xs[i]
            outs.append(torch.cat([reg(x), score(x)], 1).flatten(2))
        y = torch.cat(outs, 2)  # [1, 144, 8400]
        box, cls = y.split([4 * self.reg_max, self.nc], 1)
        b = box.shape[0]
        dist = self.dfl(box.view(b, 4, self.reg_max, -1).transpose(2, 1).softmax(1)).view(b, 4, -1)
        lt, rb = dist.chunk(2, 1)
        x1y1 = self.anchors - lt
        x2y2 = self.anchors + rb
        xywh = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * self.strides
        return torch.cat([xywh, cls.sigmoid()], 1)  # [1, 84, 8400]


class YOLOv8n(nn.Module):
    def __init__(self):
        super().__init__()
        self.b0 = Conv(3, 16, 3, 2)
        self.b1 = Conv(16, 32, 3, 2)
        self.b2 = C2f(32, 32, 1, True)
        self.b3 = Conv(32, 64, 3, 2)
        self.b4 = C2f(64, 64, 2, True)
        self.b5 = Conv(64, 128, 3, 2)
        self.b6 = C2f(128, 128, 2, True)
        self.b7 = Conv(128, 256, 3, 2)
        self.b8 = C2f(256, 256, 1, True)
        self.b9 = SPPF(256, 256)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.h12 = C2f(384, 128, 1, False)
        self.h15 = C2f(192, 64, 1, False)
        self.h16 = Conv(64, 64, 3, 2)
        self.h18 = C2f(192, 128, 1, False)
        self.h19 = Conv(128, 128, 3, 2)
        self.h21 = C2f(384, 256, 1, False)
        self.detect = Detect()

    def forward(self, x):
        p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        h12 = self.h12(torch.cat([self.up(p5), p4], 1))
        h15 = self.h15(torch.cat([self.up(h12), p3], 1))
        h18 = self.h18(torch.cat([self.h16(h15), h12], 1))
        h21 = self.h21(torch.cat([self.h19(h18), p5], 1))
        return self.detect([h15, h18, h21])


class FixedHead(nn.Module):
    """The fixed head, plus 0 x one input pixel (cheap) or 0 x one value of YOLOv8n's head."""

    def __init__(self, head: torch.Tensor, net: nn.Module):
        super().__init__()
        self.register_buffer("head", head)
        self.net = net

    def forward(self, x):
        return self.head + self.net(x)[:, :1, :1] * 0.0


class Pixel(nn.Module):
    def forward(self, x):
        return x[:, :1, :1, 0]


def nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision.ops.batched_nms in plain torch ops (a libtorch process without torchvision has
    no torchvision::nms): the indices of the boxes kept by class-aware greedy NMS (a box is dropped
    when its IoU with a kept, more confident box of its class exceeds `iou_threshold`), by
    decreasing score."""
    if boxes.size(0) == 0:
        return torch.zeros(0, dtype=torch.long)
    order = scores.argsort(descending=True)
    b = boxes[order]
    # Boxes of different classes never overlap: each class moved to its own region.
    b = b + (labels[order].to(b.dtype) * (b.max() + 1.0)).unsqueeze(1)
    area = (b[:, 2] - b[:, 0]).clamp(min=0.0) * (b[:, 3] - b[:, 1]).clamp(min=0.0)
    lt = torch.max(b[:, None, :2], b[None, :, :2])
    rb = torch.min(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0.0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    iou = inter / (area[:, None] + area[None, :] - inter)
    over = (iou > iou_threshold).triu(1)  # over[j, i]: j (more confident) would drop i
    # Greedy NMS is keep[i] = no kept j < i with over[j, i]: iterated from all kept, the first k
    # entries are final after k rounds, so it stops at the exact greedy result.
    keep = torch.ones(b.size(0), dtype=torch.bool)
    for _ in range(b.size(0)):
        new = ~(over & keep.unsqueeze(1)).any(0)
        if bool(torch.equal(new, keep)):
            break
        keep = new
    return order[keep]


class SsdliteBoxes(nn.Module):
    """torchvision's SSDlite on one image [1, 3, S, S] (0..1 RGB): SSD.forward's inference path
    (its transform, backbone, head, anchors and box coder) and SSD.postprocess_detections (per
    class: score > score_thresh, the best topk_candidates; class-aware NMS; the best
    detections_per_img), with nms() for torchvision's NMS op and at most `pre_nms` candidates into
    it (the most confident). Returns boxes [N, 4] x1, y1, x2, y2 in input pixels, scores [N],
    labels [N] (COCO category ids, 1..90)."""

    def __init__(self, model: nn.Module, pre_nms: int = 1000):
        super().__init__()
        self.pre_nms = pre_nms
        self.transform = model.transform
        self.backbone = model.backbone
        self.head = model.head
        self.anchor_generator = model.anchor_generator
        self.box_coder = model.box_coder
        self.score_thresh = float(model.score_thresh)
        self.nms_thresh = float(model.nms_thresh)
        self.topk_candidates = int(model.topk_candidates)
        self.detections_per_img = int(model.detections_per_img)

    def forward(self, x):
        size = x.shape[-2:]
        images, _ = self.transform([x[0]])
        features = list(self.backbone(images.tensors).values())
        head = self.head(features)
        anchors = self.anchor_generator(images, features)
        boxes = self.box_coder.decode_single(head["bbox_regression"][0], anchors[0])
        h, w = images.image_sizes[0]
        boxes = torch.stack([boxes[:, 0].clamp(0.0, float(w)), boxes[:, 1].clamp(0.0, float(h)),
                             boxes[:, 2].clamp(0.0, float(w)), boxes[:, 3].clamp(0.0, float(h))], 1)
        scores = head["cls_logits"][0].softmax(-1)[:, 1:]  # [anchors, classes], no background
        # Per class its best topk_candidates above score_thresh (as postprocess_detections).
        best, index = scores.topk(min(self.topk_candidates, scores.size(0)), dim=0)  # [k, classes]
        row, label = (best > self.score_thresh).nonzero().unbind(1)
        anchor = index[row, label]
        score = best[row, label]
        if score.numel() > self.pre_nms:
            top = score.topk(self.pre_nms).indices
            anchor, label, score = anchor[top], label[top], score[top]
        box = boxes[anchor]
        keep = nms(box, score, label, self.nms_thresh)[: self.detections_per_img]
        # Back to the input's size (the transform resized it to its fixed size).
        scale = torch.tensor([size[1] / w, size[0] / h, size[1] / w, size[0] / h])
        return box[keep] * scale, score[keep], label[keep] + 1


def calibrated_ssdlite(frames: torch.Tensor, score_thresh: float) -> nn.Module:
    """ssdlite320_mobilenet_v3_large with random weights, its batch norms' statistics set from
    `frames` ([N, 3, 320, 320], 0..1): with the running statistics of a fresh model (mean 0,
    variance 1) the features fade to ~1e-14 by the last layer and every anchor scores 1/91 for
    every class whatever the image; measured on frames, the features keep unit scale and the
    scores follow the image, as a trained detector's do (the weights stay random)."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, score_thresh=score_thresh)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches seen
    with torch.no_grad():
        model.backbone.train()
        model.head.train()
        for batch in frames.split(10):
            images, _ = model.transform(list(batch))
            model.head(list(model.backbone(images.tensors).values()))
    return model.eval()


def letterboxed(path: str, width: int, height: int, side: int) -> torch.Tensor:
    """The packed RGB frames of `path` letterboxed into side x side (114 grey bars, as the
    element's default), 0..1: [N, 3, side, side]."""
    import numpy as np
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, height, width, 3)
    x = torch.from_numpy(raw.copy()).permute(0, 3, 1, 2).float().div(255.0)
    scale = side / max(width, height)
    w, h = round(width * scale), round(height * scale)
    x = nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    out = torch.full((x.size(0), 3, side, side), 114 / 255.0)
    top, left = (side - h) // 2, (side - w) // 2
    out[:, :, top:top + h, left:left + w] = x
    return out


def fresh(path: str) -> bool:
    return os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(os.path.abspath(__file__))


def save(module: nn.Module, path: str, example: torch.Tensor) -> None:
    scripted = torch.jit.script(module.eval())
    with torch.no_grad():
        scripted(example)  # it runs
    scripted.save(path + ".tmp")
    os.replace(path + ".tmp", path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--frames", nargs=3, metavar=("RAW_RGB", "WIDTH", "HEIGHT"), required=True,
                    help="packed RGB frames for SSDlite's batch norm statistics")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    began = time.time()
    torch.manual_seed(0)
    files = []
    net = None
    x = torch.rand(1, 3, SIZE, SIZE)
    for n in BOXES:
        head = fixed_head(n)
        for name, cost in [(f"yolov8-fixed-{n}.pt", False), (f"yolov8n-{n}.pt", True)]:
            path = os.path.join(args.out, name)
            files.append(path)
            if fresh(path):
                continue
            if cost and net is None:
                net = YOLOv8n().eval()
            save(FixedHead(head, net if cost else Pixel()), path, x)
    path = os.path.join(args.out, "ssdlite.pt")
    labels = os.path.join(args.out, "ssdlite-labels.txt")
    # Not ssdlite.json: the element would read that as the model's config file.
    info_path = os.path.join(args.out, "ssdlite.export.json")
    frames, width, height = args.frames[0], int(args.frames[1]), int(args.frames[2])
    info = {"frames": os.path.abspath(frames), "frames_bytes": os.path.getsize(frames),
            "score_thresh": SSDLITE_SCORE}
    files += [path, labels]
    try:
        with open(info_path) as f:
            same = json.load(f) == info
    except (OSError, ValueError):
        same = False
    if not (same and fresh(path) and fresh(labels)):
        from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights
        torch.manual_seed(0)
        calibration = letterboxed(frames, width, height, 320)
        save(SsdliteBoxes(calibrated_ssdlite(calibration, SSDLITE_SCORE)), path, calibration[:1])
        categories = SSDLite320_MobileNet_V3_Large_Weights.DEFAULT.meta["categories"]
        with open(labels, "w") as f:
            f.write("\n".join(categories) + "\n")
        with open(info_path, "w") as f:
            json.dump(info, f)
    print(json.dumps({"files": files, "seconds": round(time.time() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
