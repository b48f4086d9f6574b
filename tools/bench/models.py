#!/usr/bin/python3
"""torchclassify with each model of the seed's table, on this machine (`make bench-models`):

    models.py [--quick] [--arch NAME ...]

Exports each arch of the seed's table with `tools/export_model.py --arch NAME --random-weights`
(torchvision's int8 variant where it has one, float otherwise; random weights because only
MobileNetV2's published weights are available offline here: speed does not depend on the
weight values) into target/bench/models/, once (a present export is reused); mobilenet_v2 is the
real default model ($GST_TORCH_MODEL). Then runs each through the element on the demo clip
decoded once to 224x224 RGB (decoding is outside the measurement), default engine and threads:

    filesrc ! rawvideoparse ! identity eos-after=N ! torchclassify model=M input-size=S ! fakesink sync=false

N is ~3 s worth of frames by a per-arch estimate for this machine (at least 20; ~1 s and at least
10 with --quick). Prints a markdown table (model, input, quantized, fps, total and model ms per
frame, file size) and writes the rows as JSON lines to target/bench/models.jsonl.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (ROOT, OUT, MODEL, VENV_PY, sh, last_json, decode_clip)

# The seed's table, with the total ms/frame measured on this machine (2 cores, x86 engine, 2 threads),
# which only sets how many frames a run takes. (int8 ShuffleNetV2 x1.0 and x2.0 are that slow here:
# their 116- and 244-channel depthwise convolutions hit a slow path of libtorch's x86 and fbgemm
# int8 kernels, e.g. 2.3 ms for 116 channels at 14x14 against 0.1 ms for 112 or 232 channels.)
ARCHS = {
    "mobilenet_v2": 5.5, "mobilenet_v3_large": 6.5, "resnet18": 8, "resnet50": 18, "resnext101_32x8d": 65,
    "inception_v3": 30, "googlenet": 11, "shufflenet_v2_x0_5": 7, "shufflenet_v2_x1_0": 33,
    "shufflenet_v2_x1_5": 9.5, "shufflenet_v2_x2_0": 93,
}
MODELS = os.path.join(bench.OUT, "models")
FRAMES = os.path.join(MODELS, "frames-224x224-rgb.raw")
FRAME_BYTES = 224 * 224 * 3
MAX_FRAMES = 600  # 90 MB of frames


def busy_s() -> float:
    """CPU seconds all processes have used so far (from /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def children_s() -> float:
    r = os.times()
    return r.children_user + r.children_system


def prepare_frames() -> int:
    """The clip's 30 frames at 224x224 RGB, repeated to MAX_FRAMES, decoded once; returns the count."""
    if os.path.exists(FRAMES) and os.path.getsize(FRAMES) == MAX_FRAMES * FRAME_BYTES:
        return MAX_FRAMES
    data = bench.decode_clip("RGB", 224, 224)
    copies = math.ceil(MAX_FRAMES * FRAME_BYTES / len(data))
    with open(FRAMES + ".tmp", "wb") as f:
        f.write((data * copies)[:MAX_FRAMES * FRAME_BYTES])
    os.replace(FRAMES + ".tmp", FRAMES)
    return MAX_FRAMES


def export(arch: str) -> dict:
    """The model file for `arch` and what the export said about it (exported once, then reused)."""
    if arch == "mobilenet_v2":
        if not os.path.exists(bench.MODEL):
            sys.exit(f"{bench.MODEL} missing: run `make model`")
        return {"path": bench.MODEL, "quantized": True, "input": 224, "weights": "published", "export_s": 0.0}
    # Not <arch>.json: that is the model config export_model.py writes beside <arch>.pt, which the
    # element reads.
    path, info_path = os.path.join(MODELS, f"{arch}.pt"), os.path.join(MODELS, f"{arch}.export.json")
    if os.path.exists(path) and os.path.exists(info_path):
        with open(info_path) as f:
            return json.load(f)
    began = time.time()
    cmd = [bench.VENV_PY, os.path.join(bench.ROOT, "tools", "export_model.py"), "--arch", arch, "--random-weights",
           "--output", path, "--labels", os.path.join(MODELS, "imagenet_labels.txt")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    said = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    size = re.search(r"input-size=(\d+)", said)
    if r.returncode != 0 or not size:
        print(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}", file=sys.stderr)
        return {"path": path, "quantized": None, "input": None, "weights": "random",
                "error": "export failed: " + (said or f"exit code {r.returncode}")}
    info = {"path": path, "quantized": " int8" in said, "input": int(size.group(1)), "weights": "random",
            "export_s": round(time.time() - began, 1)}
    with open(info_path, "w") as f:  # after the model: an interrupted export is redone
        json.dump(info, f)
    print(f"  exported {arch} in {info['export_s']:.0f} s", flush=True)
    return info


def measure(arch: str, info: dict, frames: int, seconds: float, least: int) -> dict:
    if "error" in info:
        return {"model": arch, "input": info["input"], "quantized": info["quantized"], "weights": info["weights"],
                "size_mib": 0.0, "frames": 0, "other_cpu": 0.0, "path": info["path"], "error": info["error"]}
    n = max(least, min(frames, round(seconds * 1e3 / ARCHS[arch])))
    pipeline = (f"filesrc location={FRAMES} ! rawvideoparse format=rgb width=224 height=224 framerate=30/1 ! "
                f"identity eos-after={n} ! torchclassify name=c model={info['path']} input-size={info['input']} ! "
                f"fakesink sync=false")
    busy0, mine0, t0 = busy_s(), children_s(), time.time()
    r = subprocess.run(["/usr/bin/python3", os.path.join(bench.ROOT, "tools", "bench", "element.py"), pipeline],
                       capture_output=True, text=True)
    wall = time.time() - t0
    # CPU that other processes took meanwhile (in cores): the machine was not quiet if > ~0.2.
    other = max(0.0, (busy_s() - busy0 - (children_s() - mine0)) / wall)
    row = {"model": arch, "input": info["input"], "quantized": info["quantized"], "weights": info["weights"],
           "size_mib": round(os.path.getsize(info["path"]) / 2**20, 1), "frames": n, "run_s": round(wall, 1),
           "other_cpu": round(other, 2), "path": info["path"]}
    if r.returncode != 0:
        row["error"] = (r.stderr.strip().splitlines() or ["element.py failed"])[-1]
        return row
    out = bench.last_json(r.stdout)
    row.update(fps=round(out["fps"], 2), total_ms=round(out["total_ms"], 3), model_ms=round(out["model_ms"], 3),
               engine=out["engine"])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~1 s per model instead of ~3 s")
    ap.add_argument("--arch", nargs="+", choices=list(ARCHS), default=list(ARCHS), help="only these models")
    args = ap.parse_args()
    if not os.path.exists(bench.VENV_PY):
        sys.exit(f"{bench.VENV_PY} missing: run `make venv`")
    began = time.time()
    os.makedirs(MODELS, exist_ok=True)
    frames = prepare_frames()
    seconds, least = (1.0, 10) if args.quick else (3.0, 20)
    rows = []
    for arch in args.arch:
        info = export(arch)
        row = measure(arch, info, frames, seconds, least)
        rows.append(row)
        print(f"  {arch}: " + (f"{row['fps']:.1f} fps over {row['frames']} frames" if "fps" in row
                               else f"FAILED: {row['error']}"), flush=True)

    with open(os.path.join(bench.OUT, "models.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    engines = sorted({r["engine"] for r in rows if "engine" in r})
    print(f"\nMachine: {os.cpu_count()} CPUs, {os.uname().machine}; torchclassify defaults (engine "
          f"{'/'.join(engines) or '?'}, libtorch's default threads); 224x224 RGB frames in\n")
    print("| model | input | quantized | fps | total ms/frame | model ms/frame | file MiB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        q = {True: "yes", False: "no", None: "?"}[r["quantized"]]
        size = f"{r['input']}x{r['input']}" if r["input"] else "?"
        if "fps" in r:
            print(f"| {r['model']} | {size} | {q} | {r['fps']:.1f} | {r['total_ms']:.2f} | {r['model_ms']:.2f} | "
                  f"{r['size_mib']:.1f} |")
        else:
            print(f"| {r['model']} | {size} | {q} | failed: {r['error']} | | | {r['size_mib']:.1f} |")
    print("\nmobilenet_v2 is the default model (published weights); the others have random weights "
          "(same speed as the published ones).")
    busy = [r["model"] for r in rows if r["other_cpu"] > 0.2]
    if busy:
        print(f"warning: other processes used the CPUs during {', '.join(busy)}: those numbers are low")
    print(f"{len(rows)} rows in {os.path.relpath(os.path.join(bench.OUT, 'models.jsonl'), bench.ROOT)}; "
          f"took {time.time() - began:.0f} s")
    return 0 if all("fps" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
