#!/usr/bin/env python3
"""The seed tutorial's loop, as written there, on prepared frames (run with the venv's python):

    seed_loop.py MODEL ENGINE THREADS FRAMES_FILE WIDTH HEIGHT COUNT

Frames come as numpy BGR arrays (what OpenCV's capture gives), then exactly the tutorial's steps:
[:, :, [2, 1, 0]] -> transforms.ToTensor() + Normalize(ImageNet) -> (Resize((224, 224)) on the
tensor when the frame is not 224x224, bilinear, as a Python user would add it) -> unsqueeze(0)
-> the scripted model under torch.no_grad() -> softmax + top-10 (torch.topk). The model is saved and
reloaded under the engine being measured. Prints one JSON line with fps, total and model ms.
"""

import json
import sys
import time

import numpy as np
import torch
from torchvision import transforms


def main() -> int:
    model_path, engine, threads, frames_file, w, h, count = sys.argv[1:8]
    w, h, count, threads = int(w), int(h), int(count), int(threads)
    torch.backends.quantized.engine = engine
    torch.set_num_threads(threads)
    net = torch.jit.load(model_path)
    raw = np.fromfile(frames_file, dtype=np.uint8).reshape(-1, h, w, 3)  # RGB frames
    frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in raw]  # as OpenCV gives them: BGR
    steps = [transforms.ToTensor(),
             transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
    if (w, h) != (224, 224):
        steps.append(transforms.Resize((224, 224), antialias=False))
    preprocess = transforms.Compose(steps)
    model_s = 0.0
    with torch.no_grad():
        for i in range(10):  # warm-up, as the tutorial's first frames would be
            net(preprocess(frames[i % len(frames)][:, :, [2, 1, 0]]).unsqueeze(0))
        start = time.perf_counter()
        for i in range(count):
            image = frames[i % len(frames)]
            image = image[:, :, [2, 1, 0]]
            input_tensor = preprocess(image)
            input_batch = input_tensor.unsqueeze(0)
            t = time.perf_counter()
            output = net(input_batch)
            model_s += time.perf_counter() - t
            _ = output[0].softmax(dim=0).topk(10)
        total = time.perf_counter() - start
    print(json.dumps({"engine": torch.backends.quantized.engine, "threads": torch.get_num_threads(),
                      "frames": count, "fps": count / total, "total_ms": total / count * 1e3,
                      "model_ms": model_s / count * 1e3}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
