#!/usr/bin/python3
"""Side-by-side benchmark: torchclassify vs the seed tutorial's Python loop vs the raw model; torchdetect's costs.

    tools/bench/bench.py [--quick] [--engines x86 fbgemm qnnpack] [--threads 1 2] [--rounds 3]
                         [--seed-model PATH] [--only all|detect]

Run by `make bench` (QUICK=1 for --quick, ONLY=detect for --only detect), which builds the plugin,
the raw-model, regions and detection examples, the core's nms_bench and the model first. The
demo clip is decoded once to raw frames (224x224 RGB and 640x480), so decoding is outside every
measurement; then for each engine x threads cell, on the same frames:

  raw-model            the model's forward in a tight loop from Rust (tch), prepared input
  python-seed-loop     the tutorial's loop (numpy BGR -> ToTensor/Normalize -> model -> top-k)
  torchclassify        filesrc ! rawvideoparse ! torchclassify ! fakesink sync=false
  videoscale+element   640x480 only: videoscale ! videoconvert ! torchclassify at 224x224

Each cell's measurements run in turn, once per round (3; --quick: 1, and it measures x86 at 1 and
2 threads and qnnpack at 2), on 210 frames (qnnpack, ~5x slower here: 90; --quick 90 and 40), and
each row
shows its median-fps round; the ratios (fps vs the seed loop, model time vs the raw model) are
medians of per-round ratios, so a drift of the machine's speed hits both sides alike. Model times
are means per forward everywhere (the element's `inference-time`, the loop's timer around the
forward, the raw loop's mean). Prints a markdown table (fps, total and model ms per frame,
overhead %, ratios) and writes the rows as JSON lines to target/bench/results.jsonl; then
torchpublish's cost (with and without method=mqtt), 1920x1080 I420 straight into the element vs
`videoconvert ! video/x-raw,format=RGB` in front (a black videotestsrc, same frames, fps ratio),
8 regions per 640x480 frame in roi-list mode batched (max-batch=8) vs one forward per region
(max-batch=1, examples/regions_bench.rs), and first-frame latency and RSS over 10 000 frames
(1 000 with --quick) through the element.

Beside the speed of `torchclassify engine=auto` against the seed's exact recipe (the seed's model,
--seed-model, default $GST_TORCH_MODEL, under qnnpack with 2 threads), it gives the two
configurations' labelled accuracy — top-1 %, top-5 %, mean top-1 confidence and top-1 agreement
with the seed's recipe — on tools/accuracy.py's fixed input set (needs ../shared/media, or
$GST_TORCH_SHARED), both measured through the element (the seed's recipe as its model and engine:
tools/accuracy.py runs the element, not the Python loop). The rows go to results.jsonl as well
(name "accuracy"); if they cannot be measured, the reason is printed and the run exits 1 at the end.

Last, the detection rows (alone with --only detect, which decodes only the 640x480 RGB frames and
uses nothing installed). Each pipeline runs in a process of its own through
examples/detect_bench.rs (`appsrc ! CHAIN ! fakesink sync=false`, the plugin linked in, the
frames made into buffers and the models loaded before the clock starts; fps = frames / wall time
from the first buffer pushed to EOS), with OMP_WAIT_POLICY=PASSIVE unless the environment sets it
(libgomp's spinning made forwards 3-5x slower and erratic here while other jobs used the cores), on
detectors tools/bench/detect_models.py exports once into target/bench/detect/ (random weights,
offline, never committed):

  torchdetect outside the model  the clip's 640x480 RGB frames letterboxed to 640x640 through
                       `torchdetect model=M` (defaults: threshold 0.25, IoU 0.45, max-detections
                       100, messages on), N = 10 and 100 boxes per frame; M is a [1, 84, 8400]
                       YOLOv8 head holding exactly N boxes (and 4 suppressed copies of each), once
                       after a forward of ~nothing (yolov8-fixed-N: what the element itself
                       spends) and once after the forward of YOLOv8n (yolov8n-N: ultralytics'
                       architecture layer for layer, random weights). total = wall time per
                       frame, model = the element's mean-inference-ms (the forward and the copy of
                       its output), outside = total - model and its % of total (target <= 5 % for
                       the YOLOv8n rows; the element prepares the next frame during the forward, so
                       there much of its work is hidden), and the fixed head's outside as a share
                       of a YOLOv8n frame done serially: outside / (YOLOv8n's model + outside).
                       60 and 20 frames (--quick) or 90 and 30; the four run in turn in each round;
                       a row is the round with the median outside ms. The run fails if a frame gets
                       other than N boxes.
  decode + NMS         core/examples/nms_bench.rs once per round: the core's decoding and NMS of
                       a [1, 84, 8400] head, 400 frames per case (typical, 20 objects; none above
                       the threshold; worst, 2000 candidates above it, with max-detections 100 and
                       with no limit): median and mean µs per frame (medians over the rounds) and
                       the slowest frame; target <= 1 ms (mean). And its tracker updates, 10 and
                       100 boxes.
  detect -> track -> classify  `SSDLITE ! torchtrack ! torchclassify inference-region=roi-list
                       max-batch=16 reclassify-interval=10` (the default model) vs the detector
                       alone and `torchclassify` full-frame alone, 30 frames (--quick) or 60 of the
                       clip; rows are the median-fps rounds, the ratios (chain fps / each alone)
                       medians of per-round ratios. The detector is torchvision's
                       ssdlite320_mobilenet_v3_large with random weights (batch norm statistics
                       measured on the clip, so its scores follow the image) wrapped to give boxes,
                       scores and labels, at threshold=0.05 max-detections=20: 2-20 boxes per frame
                       that move between frames as random weights' do, so torchtrack starts many
                       tracks and most regions are classified rather than carried (the table shows
                       boxes per frame, regions classified and carried per frame, track ids).

Their rows go to results.jsonl too: torchdetect-outside, torchdetect-outside-pct, decode-nms,
track-update, detect-chain, detect-chain-ratios.
"""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import rawclip  # noqa: E402  (tools/rawclip.py: the one clip decode recipe)

OUT = os.path.join(ROOT, "target", "bench")
DATA = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
MODEL = os.environ.get("GST_TORCH_MODEL") or os.path.join(DATA, "gst-torch", "mobilenet_v2_quantized.pt")
VENV_PY = os.path.join(os.environ.get("VENV") or os.path.join(DATA, "gst-torch", "venv"), "bin", "python")
RAW_MODEL = os.path.join(ROOT, "target", "release", "examples", "raw_model")
CLIP = os.path.join(ROOT, "data", "cat-coffee-orange.webm")


def sh(args, **kw) -> str:
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr[-2000:]}")
    return r.stdout


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def decode_clip(fmt: str, w: int, h: int) -> bytes:
    """The demo clip's frames as raw video of format `fmt`, `w`x`h`."""
    try:
        return rawclip.decode(CLIP, fmt, w, h)
    except RuntimeError as e:
        sys.exit(f"failed: {e}")


def prepare_frames(copies: int, kinds=("224x224 RGB", "640x480 BGRx", "640x480 RGB")) -> dict:
    """The clip's 30 frames decoded once per input kind, repeated `copies` times."""
    inputs = {}
    for name, fmt, w, h, raw_fmt in [("224x224 RGB", "RGB", 224, 224, "rgb"),
                                     ("640x480 BGRx", "BGRx", 640, 480, "bgrx"),
                                     ("640x480 RGB", "RGB", 640, 480, "rgb")]:
        if name not in kinds:
            continue
        path = os.path.join(OUT, f"frames-{w}x{h}-{raw_fmt}.raw")
        data = decode_clip(fmt, w, h)
        with open(path, "wb") as f:
            for _ in range(copies):
                f.write(data)
        inputs[name] = (path, raw_fmt, w, h, len(data) * copies // (w * h * (4 if raw_fmt == "bgrx" else 3)))
    return inputs


def element(pipeline: str) -> dict:
    return last_json(sh(["/usr/bin/python3", os.path.join(ROOT, "tools", "bench", "element.py"), pipeline]))


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def median_round(rounds: list, key: str) -> dict:
    """The round (a dict) whose `key` is the median of the rounds'."""
    return sorted(rounds, key=lambda x: x[key])[len(rounds) // 2]


def row(name, engine, threads, inp, rounds, seeds=None, raws=None) -> dict:
    """One table row from the same measurement's rounds: the round with the median fps, and the
    medians of the per-round ratios to the seed loop and to the raw model measured beside it."""
    r = median_round(rounds, "fps")
    d = {"name": name, "engine": engine, "threads": threads, "input": inp, "frames": r["frames"],
         "fps": round(r["fps"], 2), "total_ms": round(r["total_ms"], 3), "model_ms": round(r["model_ms"], 3),
         "rounds": len(rounds)}
    if "engine" in r and r["engine"] != engine:
        d["engine_used"] = r["engine"]
    if r.get("overlap") not in (None, "none"):
        # What the element chose in each round (it measures on every run).
        d["overlap"] = "/".join(x.get("overlap", "") for x in rounds)
    d["overhead_pct"] = round((d["total_ms"] / d["model_ms"] - 1) * 100, 1) if d["model_ms"] else None
    d["vs_seed"] = round(median([x["fps"] / s["fps"] for x, s in zip(rounds, seeds)]), 2) if seeds else None
    d["model_vs_raw"] = (round(median([x["model_ms"] / w["model_ms"] for x, w in zip(rounds, raws)]), 3)
                         if raws else None)
    return d


def load_accuracy():
    """tools/accuracy.py as a module (by path: tools/accuracy/ holds its helper scripts)."""
    spec = importlib.util.spec_from_file_location("gst_torch_accuracy", os.path.join(ROOT, "tools", "accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accuracy_vs_seed(seed_model: str) -> list:
    """tools/accuracy.py's rows for the two configurations of the "vs the seed's recipe" ratio:
    torchclassify engine=auto with the element's default model and threads (as measured above),
    then the seed's model under qnnpack with 2 threads (the reference for agreement). Raises
    SystemExit with the reason when they cannot be measured."""
    return load_accuracy().evaluate([(None, "auto", 0), (seed_model, "qnnpack", 2)], reference=1)


def accuracy_table(rows: list) -> str:
    """The accuracy_vs_seed() rows as a short markdown table."""
    r0 = rows[0]
    lines = [f"accuracy through the element on tools/accuracy.py's {r0['inputs']} labelled inputs "
             f"(seed {r0['seed']}, sha256 {r0['inputs_sha256'][:12]}):",
             "| config | model | engine | top-1 % | top-5 % | mean conf | top-1 agreement with the seed's % |",
             "|---|---|---|---|---|---|---|"]
    for name, r in zip(["torchclassify engine=auto", "seed's recipe (its model, qnnpack)"], rows):
        lines.append(f"| {name} | {r['model']} | {r['engine_used']} | {r['top1_pct']:.1f} | {r['top5_pct']:.1f} | "
                     f"{r['mean_conf']:.3f} | {r['agreement_pct']:.1f} |")
    return "\n".join(lines)


def publish_cost(inp, rounds: int) -> None:
    """torchpublish's cost to the streaming thread: the engine=auto pipeline at 224x224 with and
    without `torchpublish method=mqtt` to a mosquitto on a free loopback port, side by side."""
    import shutil
    import socket
    broker = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if broker is None:
        print("\ntorchpublish: no mosquitto (tools/setup.sh deps installs it): not measured")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = os.path.join(OUT, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([broker, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        path, raw_fmt, w, h, frames = inp
        src = (f"filesrc location={path} ! rawvideoparse format={raw_fmt} width={w} height={h} framerate=30/1 ! "
               f"identity eos-after={frames} ! torchclassify name=c ! ")
        plain, published = [], []
        for _ in range(rounds):
            plain.append(element(f"{src} fakesink sync=false"))
            published.append(element(f"{src} torchpublish method=mqtt address=127.0.0.1:{port} ! fakesink sync=false"))
        ratio = median([p["fps"] / q["fps"] for p, q in zip(published, plain)])
        print(f"\ntorchpublish method=mqtt (every result to a local mosquitto): {ratio:.3f}x the fps without it "
              f"(median of {rounds} paired rounds; {median([p['fps'] for p in plain]):.1f} fps without)")
        with open(os.path.join(OUT, "results.jsonl"), "a") as f:
            f.write(json.dumps({"name": "torchpublish-mqtt", "fps_ratio": round(ratio, 3), "rounds": rounds}) + "\n")
    finally:
        proc.kill()
        proc.wait()


def yuv_straight_in(rounds: int, frames: int) -> None:
    """1920x1080 I420 (what decoders give) straight into the element vs `videoconvert` to RGB in
    front, side by side; a black videotestsrc, so the source's cost does not hide the gain."""
    src = (f"videotestsrc num-buffers={frames} pattern=black ! "
           f"video/x-raw,format=I420,width=1920,height=1080,framerate=30/1 ! ")
    direct, converted = [], []
    for _ in range(rounds):
        direct.append(element(f"{src} torchclassify name=c ! fakesink sync=false"))
        converted.append(element(f"{src} videoconvert ! video/x-raw,format=RGB ! torchclassify name=c ! "
                                 f"fakesink sync=false"))
    ratio = median([d["fps"] / c["fps"] for d, c in zip(direct, converted)])
    d_ms = median([d["total_ms"] for d in direct])
    c_ms = median([c["total_ms"] for c in converted])
    print(f"\n1920x1080 I420 straight in: {ratio:.2f}x the fps of videoconvert to RGB in front "
          f"({d_ms:.2f} vs {c_ms:.2f} ms per frame; median of {rounds} paired rounds of {frames} frames)")
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps({"name": "i420-1080p-straight-in", "fps_ratio": round(ratio, 3), "direct_ms": round(d_ms, 3),
                            "videoconvert_ms": round(c_ms, 3), "frames": frames, "rounds": rounds}) + "\n")


REGIONS_BENCH = os.path.join(ROOT, "target", "release", "examples", "regions_bench")


def regions_batched(inp, rounds: int, frames: int) -> None:
    """inference-region=roi-list with 8 regions per 640x480 frame (examples/regions_bench.rs): the
    regions of a frame in one forward (max-batch=8) vs one forward per region (max-batch=1), same
    engine (auto) and threads, side by side in each round."""
    if not os.path.exists(REGIONS_BENCH):
        print(f"\n{REGIONS_BENCH} missing (make bench builds it): regions not measured")
        return
    path, _, w, h, _ = inp
    got = {8: [], 1: []}
    for _ in range(rounds):
        for batch in got:
            got[batch].append(last_json(sh([REGIONS_BENCH, path, str(w), str(h), str(frames), str(batch)])))
    ratio = median([b["fps"] / s["fps"] for b, s in zip(got[8], got[1])])
    print(f"\n8 regions per {w}x{h} frame (inference-region=roi-list, engine=auto, default threads; "
          f"median of {rounds} paired rounds of {frames} frames):")
    print("| regions per forward | fps | ms per frame | ms per region | model ms per frame | mean batch |")
    print("|---|---|---|---|---|---|")
    rows = []
    for batch, runs in got.items():
        r = median_round(runs, "fps")
        rows.append({"name": f"regions-max-batch-{batch}", **r})
        print(f"| {'8 (one forward)' if batch == 8 else '1 (eight forwards)'} | {r['fps']:.1f} | {r['total_ms']:.2f} | "
              f"{r['region_ms']:.2f} | {r['model_ms']:.2f} | {r['mean_batch_size']:.1f} |")
    print(f"batched: {ratio:.2f}x the fps of one forward per region")
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"name": "regions-batched-vs-single", "fps_ratio": round(ratio, 3), "rounds": rounds}) + "\n")


DETECT_BENCH = os.path.join(ROOT, "target", "release", "examples", "detect_bench")
NMS_BENCH = os.path.join(ROOT, "target", "release", "examples", "nms_bench")
DETECT_DIR = os.path.join(OUT, "detect")
# The chain's detector: SSDlite with random weights finds 2-20 boxes per frame of the clip at
# these settings (tools/bench/detect_models.py sets its batch norms from the clip).
SSDLITE = ("torchdetect name=d model={dir}/ssdlite.pt labels={dir}/ssdlite-labels.txt output-format=boxes "
           "input-size=320 threshold=0.05 max-detections=20")


def detect_env() -> dict:
    """The detection rows' environment: OMP_WAIT_POLICY=PASSIVE unless set (libgomp's spinning
    makes forwards several times slower, and erratic, when other jobs share the cores; see the
    README's *Many cameras*)."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def detect_run(clip: str, frames: int, chain: str, *names: str) -> dict:
    """examples/detect_bench.rs: `frames` of the clip's 640x480 RGB frames through `appsrc ! CHAIN !
    fakesink` (CHAIN: the argument `chain`): the stats of the elements `names`."""
    return last_json(sh([DETECT_BENCH, clip, "640", "480", str(frames), chain, *names], env=detect_env()))


NMS_LINE = re.compile(r"^decode\+NMS (?P<case>.+?)\s+median\s+(?P<median>[\d.]+) µs\s+mean\s+(?P<mean>[\d.]+) µs\s+"
                      r"min\s+(?P<min>[\d.]+) µs\s+max\s+(?P<max>[\d.]+) µs\s+\|\s+(?P<passed>\d+) pass threshold, "
                      r"(?P<invalid>\d+) invalid, (?P<suppressed>\d+) suppressed, (?P<over>\d+) over limit, "
                      r"(?P<kept>\d+) kept, (?P<allocs>[\d.]+) allocations/frame")
TRACK_LINE = re.compile(r"^track update\s+(?P<boxes>\d+) boxes/frame\s+median\s+(?P<median>[\d.]+) µs\s+"
                        r"mean\s+(?P<mean>[\d.]+) µs")


def detect_outside(clip: str, rounds: int, quick: bool) -> list:
    """torchdetect's time outside the model, 640x480 RGB letterboxed to 640x640, for N = 10 and
    100 boxes per frame: the fixed-head model (a forward of ~nothing: what the element spends) and
    YOLOv8n's forward with the same head, side by side in each round."""
    # (10, 100): tools/bench/detect_models.py's BOXES, the box counts it exports models for.
    configs = [(n, kind) for n in (10, 100) for kind in ("yolov8-fixed", "yolov8n")]
    frames = {"yolov8-fixed": 60 if quick else 90, "yolov8n": 20 if quick else 30}
    got = {c: [] for c in configs}
    for _ in range(rounds):
        for n, kind in configs:
            r = detect_run(clip, frames[kind], f"torchdetect name=d model={DETECT_DIR}/{kind}-{n}.pt", "d")
            d = r["stats"]["d"]
            if r["boxes_min"] != n or r["boxes_max"] != n:
                sys.exit(f"failed: {kind}-{n}.pt gave {r['boxes_min']}..{r['boxes_max']} boxes per frame, not {n}")
            model = d["mean-inference-ms"]
            got[(n, kind)].append({"frames": r["frames"], "total_ms": r["total_ms"], "model_ms": model,
                                   "outside_ms": r["total_ms"] - model,
                                   "outside_pct": (r["total_ms"] - model) / r["total_ms"] * 100,
                                   "boxes_per_frame": r["boxes_per_frame"], "overlap": d.get("overlap", "")})
    print(f"\ntorchdetect outside the model: 640x480 RGB frames of the clip letterboxed to 640x640, a [1, 84, 8400] "
          f"head with exactly N boxes (tools/bench/detect_models.py; element defaults, messages on; "
          f"OMP_WAIT_POLICY={detect_env()['OMP_WAIT_POLICY']}; median of {rounds} round(s)):")
    print("| model | boxes/frame | frames | total ms/frame | model ms/frame | outside ms/frame | outside % of total | "
          "overlap |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for n, kind in configs:
        runs = got[(n, kind)]
        r = median_round(runs, "outside_ms")
        rows.append({"name": "torchdetect-outside", "model": f"{kind}-{n}", "boxes": n,
                     "input": "640x480 RGB letterboxed to 640x640", "frames": r["frames"],
                     "total_ms": round(r["total_ms"], 3), "model_ms": round(r["model_ms"], 3),
                     "outside_ms": round(r["outside_ms"], 3), "outside_pct": round(r["outside_pct"], 2),
                     "boxes_per_frame": r["boxes_per_frame"], "overlap": "/".join(x["overlap"] for x in runs),
                     "rounds": rounds})
        name = "fixed head (forward ~0)" if kind == "yolov8-fixed" else "YOLOv8n forward + fixed head"
        print(f"| {name} | {n} | {r['frames']} | {r['total_ms']:.2f} | {r['model_ms']:.2f} | {r['outside_ms']:.2f} | "
              f"{r['outside_pct']:.1f} | {rows[-1]['overlap']} |")
    for n in (10, 100):
        real = got[(n, "yolov8n")]
        # What the element spends (measured beside a forward of ~nothing) as a share of a YOLOv8n
        # frame done one after the other: per round, outside / (YOLOv8n's model time + outside).
        own = median([f["outside_ms"] / (y["model_ms"] + f["outside_ms"]) * 100
                       for f, y in zip(got[(n, "yolov8-fixed")], real)])
        pct = median([y["outside_pct"] for y in real])
        print(f"{n} boxes: outside the model {pct:.1f} % of the YOLOv8n frame's total (target <= 5 %); the "
              f"element's own {median([f['outside_ms'] for f in got[(n, 'yolov8-fixed')]]):.2f} ms per frame "
              f"(fixed head) is {own:.1f} % of a YOLOv8n frame done serially")
        rows.append({"name": "torchdetect-outside-pct", "boxes": n, "outside_pct_yolov8n": round(pct, 2),
                     "element_pct_of_serial_yolov8n_frame": round(own, 2), "target_pct": 5, "rounds": rounds})
    return rows


def detect_nms(rounds: int) -> list:
    """The core's decode + NMS of a [1, 84, 8400] head per frame, and tracker updates
    (core/examples/nms_bench.rs), once per round; medians of the rounds' medians and means."""
    if not os.path.exists(NMS_BENCH):
        print(f"\n{NMS_BENCH} missing (make bench builds it): decode+NMS not measured")
        return []
    cases, tracks = {}, {}
    for _ in range(rounds):
        for line in sh([NMS_BENCH]).splitlines():
            if m := NMS_LINE.match(line):
                cases.setdefault(m["case"], []).append(m.groupdict())
            elif m := TRACK_LINE.match(line):
                tracks.setdefault(int(m["boxes"]), []).append(m.groupdict())
    if not cases:
        sys.exit(f"failed: no decode+NMS line in {NMS_BENCH}'s output")
    print(f"\ndecode + NMS of 8400 candidates per frame, the core alone (core/examples/nms_bench.rs, 400 frames; "
          f"median of {rounds} run(s)); target <= 1 ms:")
    print("| case | above threshold | suppressed | kept | median µs | mean µs | max µs | mean <= 1 ms |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for case, runs in cases.items():
        med = median([float(r["median"]) for r in runs])
        mean = median([float(r["mean"]) for r in runs])
        top = max(float(r["max"]) for r in runs)
        r = runs[-1]
        rows.append({"name": "decode-nms", "case": case, "median_us": med, "mean_us": mean, "max_us": top,
                     "above_threshold": int(r["passed"]), "suppressed": int(r["suppressed"]), "kept": int(r["kept"]),
                     "allocations_per_frame": float(r["allocs"]), "rounds": rounds})
        print(f"| {case} | {r['passed']} | {r['suppressed']} | {r['kept']} | {med:.1f} | {mean:.1f} | {top:.1f} | "
              f"{'yes' if mean <= 1000 else 'no'} |")
    if tracks:
        print("tracker update: " + ", ".join(f"{n} boxes {median([float(r['median']) for r in runs]):.1f} µs"
                                             for n, runs in tracks.items()) + " per frame (median)")
        for n, runs in tracks.items():
            rows.append({"name": "track-update", "boxes": n, "median_us": median([float(r["median"]) for r in runs]),
                         "mean_us": median([float(r["mean"]) for r in runs]), "rounds": rounds})
    return rows


def detect_chain(clip: str, rounds: int, quick: bool) -> list:
    """detect -> track -> classify on the clip's 640x480 RGB frames: SSDlite (random weights) !
    torchtrack ! torchclassify inference-region=roi-list, vs the detector alone and torchclassify
    full-frame alone, side by side in each round."""
    frames = 30 if quick else 60
    detect = SSDLITE.format(dir=DETECT_DIR)
    classify = f"torchclassify name=c model={MODEL}"
    configs = {
        "torchdetect (SSDlite)": (detect, ["d"]),
        "torchdetect ! torchtrack ! torchclassify roi-list": (
            f"{detect} ! torchtrack name=t ! {classify} inference-region=roi-list max-batch=16 reclassify-interval=10",
            ["d", "t", "c"]),
        "torchclassify full-frame": (classify, ["c"]),
    }
    got = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (chain, names) in configs.items():
            got[name].append(detect_run(clip, frames, chain, *names))
    detect_name, chain_name, classify_name = list(configs)
    vs_detect = median([c["fps"] / d["fps"] for c, d in zip(got[chain_name], got[detect_name])])
    vs_classify = median([c["fps"] / f["fps"] for c, f in zip(got[chain_name], got[classify_name])])
    print(f"\ndetect -> track -> classify, the clip's 640x480 RGB frames ({frames}; {SSDLITE.format(dir='…')}; "
          f"torchclassify {os.path.basename(MODEL)}; OMP_WAIT_POLICY={detect_env()['OMP_WAIT_POLICY']}; "
          f"median-fps round of {rounds}):")
    print("| pipeline | fps | total ms/frame | detector model ms | classifier model ms | boxes/frame (min-max) | "
          "regions classified/frame | carried/frame | track ids |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in configs:
        r = median_round(got[name], "fps")
        st = r["stats"]
        d, c, t = st.get("d"), st.get("c"), st.get("t")
        row_ = {"name": "detect-chain", "pipeline": name, "frames": r["frames"], "fps": round(r["fps"], 2),
                "total_ms": round(r["total_ms"], 3),
                "detector_model_ms": round(d["mean-inference-ms"], 3) if d else None,
                "classifier_model_ms": round(c["mean-inference-ms"], 3) if c else None,
                "boxes_per_frame": round(r["boxes_per_frame"], 2) if d else None,
                "boxes_min": r["boxes_min"] if d else None, "boxes_max": r["boxes_max"] if d else None,
                "regions_per_frame": round(c["regions"] / r["frames"], 2) if c and t else None,
                "carried_per_frame": round(c["regions-carried"] / r["frames"], 2) if c and t else None,
                "classifier_mean_batch": round(c["mean-batch-size"], 2) if c else None,
                "track_ids": r["track_ids"] if t else None, "rounds": rounds}
        rows.append(row_)
        cell = lambda v, f="{:.2f}": "" if v is None else f.format(v)  # noqa: E731
        boxes = f"{row_['boxes_per_frame']:.1f} ({row_['boxes_min']}-{row_['boxes_max']})" if d else ""
        print(f"| {name} | {row_['fps']:.1f} | {row_['total_ms']:.2f} | {cell(row_['detector_model_ms'])} | "
              f"{cell(row_['classifier_model_ms'])} | {boxes} | {cell(row_['regions_per_frame'], '{:.1f}')} | "
              f"{cell(row_['carried_per_frame'], '{:.1f}')} | {cell(row_['track_ids'], '{}')} |")
    print(f"the chain: {vs_detect:.2f}x the fps of torchdetect alone, {vs_classify:.3f}x the fps of torchclassify "
          f"full-frame alone (medians of {rounds} paired round(s))")
    rows.append({"name": "detect-chain-ratios", "chain_vs_detect_fps": round(vs_detect, 3),
                 "chain_vs_classify_fps": round(vs_classify, 3), "frames": frames, "rounds": rounds})
    return rows


def detection(inp, rounds: int, quick: bool) -> int:
    """The detection rows: torchdetect's time outside the model, the core's decode + NMS, and
    detect -> track -> classify. Appends them to results.jsonl; returns how many."""
    if not os.path.exists(DETECT_BENCH):
        print(f"\n{DETECT_BENCH} missing (make bench builds it): detection rows not measured")
        return 0
    path, _, w, h, _ = inp
    os.makedirs(DETECT_DIR, exist_ok=True)
    # The clip's 30 frames once (what the SSDlite export calibrates on; the driver repeats them).
    clip = os.path.join(DETECT_DIR, "clip-640x480-rgb.raw")
    with open(path, "rb") as f:
        frames = f.read(30 * w * h * 3)
    if not os.path.exists(clip) or os.path.getsize(clip) != len(frames):
        with open(clip, "wb") as f:
            f.write(frames)
    began = time.time()
    sh([VENV_PY, os.path.join(ROOT, "tools", "bench", "detect_models.py"), DETECT_DIR, "--frames", clip, "640", "480"])
    if time.time() - began > 2:
        print(f"\n(detectors exported into {os.path.relpath(DETECT_DIR, ROOT)} in {time.time() - began:.0f} s)")
    rows = detect_outside(clip, rounds, quick) + detect_nms(rounds) + detect_chain(clip, rounds, quick)
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return len(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer frames, one round, x86 (1 and 2 threads) and qnnpack (2 threads): under 2 minutes")
    ap.add_argument("--engines", nargs="+", default=None, help="default: x86 fbgemm qnnpack (quick: x86 qnnpack)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=None, help="rounds per cell (default 3, quick 1)")
    ap.add_argument("--seed-model", default=MODEL,
                    help="the model of the seed's recipe (qnnpack, 2 threads); default $GST_TORCH_MODEL (%(default)s)")
    ap.add_argument("--only", choices=["all", "detect"], default="all",
                    help="detect: only the detection rows (examples/detect_bench.rs links the plugin in: "
                         "nothing installed is used)")
    args = ap.parse_args()
    only_detect = args.only == "detect"
    os.makedirs(OUT, exist_ok=True)
    for need in (MODEL, VENV_PY) + ((DETECT_BENCH, NMS_BENCH) if only_detect else (RAW_MODEL,)):
        if not os.path.exists(need):
            sys.exit(f"{need} missing: run `make bench`")
    if not os.path.isfile(args.seed_model):
        sys.exit(f"--seed-model {args.seed_model}: no such file")
    began = time.time()
    engines = args.engines or (["x86", "qnnpack"] if args.quick else ["x86", "fbgemm", "qnnpack"])
    rounds = args.rounds or (1 if args.quick else 3)
    copies = 3 if args.quick else 7  # the clip's 30 frames, repeated: 90 or 210 frames
    if only_detect:
        inputs = prepare_frames(1, kinds=("640x480 RGB",))
        with open(os.path.join(OUT, "results.jsonl"), "w"):
            pass
        n = detection(inputs["640x480 RGB"], rounds, args.quick)
        print(f"\n{n} rows in {os.path.relpath(os.path.join(OUT, 'results.jsonl'), ROOT)}; "
              f"took {time.time() - began:.0f} s")
        return 0
    inputs = prepare_frames(copies)
    rows = []
    for engine in engines:
        # --quick: qnnpack with the seed's 2 threads only.
        for threads in ([2] if args.quick and engine == "qnnpack" else args.threads):
            # qnnpack is ~5x slower on x86-64: fewer frames keep the run short (but enough for the
            # element to measure how to overlap: 36 frames).
            n = (40 if args.quick else 90) if engine == "qnnpack" else copies * 30
            cell_rounds = rounds
            # Every measurement of the cell once per round, so that each sees the machine as the
            # others in its round did (this VM's speed drifts by 10 % and more).
            got = {}
            for _ in range(cell_rounds):
                raw = last_json(sh([RAW_MODEL, MODEL, engine, str(threads), str(n)]))
                # The mean, like the element's and the loop's model times (the median hides the
                # slow forwards that wall-clock fps pays for).
                got.setdefault("raw", []).append({"frames": n, "fps": 1e3 / raw["mean_ms"], "total_ms": raw["mean_ms"],
                                                  "model_ms": raw["mean_ms"]})
                for inp in ["224x224 RGB", "640x480 BGRx"]:
                    path, raw_fmt, w, h, frames = inputs[inp]
                    seed_path = inputs["224x224 RGB" if w == 224 else "640x480 RGB"][0]
                    count = min(n, frames)
                    got.setdefault(("seed", inp), []).append(last_json(sh(
                        [VENV_PY, os.path.join(ROOT, "tools", "bench", "seed_loop.py"), MODEL, engine,
                         str(threads), seed_path, str(w), str(h), str(count)])))
                    src = (f"filesrc location={path} ! rawvideoparse format={raw_fmt} width={w} height={h} "
                           f"framerate=30/1 ! identity eos-after={count} ! ")
                    props = f"engine={engine} num-threads={threads}"
                    got.setdefault(("element", inp), []).append(
                        element(f"{src} torchclassify name=c {props} ! fakesink sync=false"))
                    if w != 224:
                        got.setdefault(("videoscale", inp), []).append(element(
                            f"{src} videoscale ! video/x-raw,width=224,height=224 ! videoconvert ! "
                            f"video/x-raw,format=RGB ! torchclassify name=c {props} ! fakesink sync=false"))
            raws = got["raw"]
            rows.append(row("raw-model", engine, threads, "224x224 prepared tensor", raws))
            for inp in ["224x224 RGB", "640x480 BGRx"]:
                seeds = got[("seed", inp)]
                rows.append(row("python-seed-loop", engine, threads, inp.replace("BGRx", "BGR (numpy)"), seeds,
                                raws=raws))
                rows.append(row("torchclassify", engine, threads, inp, got[("element", inp)], seeds, raws))
                if ("videoscale", inp) in got:
                    rows.append(row("videoscale+torchclassify", engine, threads, inp, got[("videoscale", inp)],
                                    seeds, raws))
            print(f"{engine} x {threads} thread(s) done at {time.time() - began:.0f} s", file=sys.stderr)
    # engine=auto, the default, at 224x224 against the seed's exact recipe (qnnpack).
    path, raw_fmt, w, h, frames = inputs["224x224 RGB"]
    src = (f"filesrc location={path} ! rawvideoparse format={raw_fmt} width={w} height={h} framerate=30/1 ! "
           f"identity eos-after={frames} ! ")
    autos, exacts = [], []
    for _ in range(rounds):
        autos.append(element(f"{src} torchclassify name=c ! fakesink sync=false"))
        exacts.append(last_json(sh([VENV_PY, os.path.join(ROOT, "tools", "bench", "seed_loop.py"),
                                    args.seed_model, "qnnpack", "2", path, "224", "224", "60"])))
    rows.append(row("torchclassify engine=auto", autos[0]["engine"], 0, "224x224 RGB", autos, exacts))
    rows.append(row("python-seed-loop (seed's recipe)", "qnnpack", 2, "224x224 RGB", exacts))

    with open(os.path.join(OUT, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"\nMachine: {os.cpu_count()} CPUs, {os.uname().machine}; model {os.path.basename(MODEL)}\n")
    print("| name | engine | threads | input | frames | fps | total ms/frame | model ms/frame | overhead % | "
          "vs seed loop | model vs raw | overlap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs = f"{r['vs_seed']:.2f}x" if r["vs_seed"] else ""
        vr = f"{r['model_vs_raw']:.2f}x" if r["model_vs_raw"] else ""
        print(f"| {r['name']} | {r.get('engine_used', r['engine'])} | {r['threads'] or 'default'} | {r['input']} | "
              f"{r['frames']} | {r['fps']:.1f} | {r['total_ms']:.2f} | {r['model_ms']:.2f} | "
              f"{r['overhead_pct'] if r['overhead_pct'] is not None else ''} | {vs} | {vr} | "
              f"{r.get('overlap') or ''} |")
    print(f"\nengine=auto vs the seed's exact recipe (qnnpack, 2 threads): {rows[-2]['vs_seed']:.2f}x the fps "
          f"(median of {rounds} paired rounds)")
    # ... and what each of the two configurations gets right.
    accuracy_failed = None
    try:
        accuracy = accuracy_vs_seed(args.seed_model)
    except SystemExit as e:
        accuracy_failed = str(e)
        print(f"{e}\n(so the two configurations' accuracy is not measured)")
    else:
        print(accuracy_table(accuracy))
        with open(os.path.join(OUT, "results.jsonl"), "a") as f:
            for config, r in zip(["torchclassify engine=auto", "seed's recipe"], accuracy):
                r = {k: v for k, v in r.items() if k != "per_input"}
                f.write(json.dumps({"name": "accuracy", "config": config, **r}) + "\n")

    publish_cost(inputs["224x224 RGB"], rounds)
    yuv_straight_in(rounds, 60 if args.quick else 150)
    regions_batched(inputs["640x480 RGB"], rounds, 20 if args.quick else 60)

    # First-frame latency and memory over many frames.
    n = 1000 if args.quick else 10000
    r = element(f"videotestsrc num-buffers={n} pattern=ball ! video/x-raw,format=RGB,width=224,height=224 ! "
                f"torchclassify name=c ! fakesink sync=false")
    print(f"first frame: {r['first_ms']:.2f} ms in the model (mean {r['model_ms']:.2f} ms) after the warm-up in start()")
    growth = (r["rss_end_kib"] - r["rss_warm_kib"]) / 1024
    print(f"RSS over {n} frames: {r['rss_warm_kib'] / 1024:.1f} MiB after 100 frames, "
          f"{r['rss_end_kib'] / 1024:.1f} MiB at the end ({growth:+.2f} MiB)")
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps({"name": "memory", "frames": n, "rss_warm_kib": r["rss_warm_kib"],
                            "rss_end_kib": r["rss_end_kib"], "first_ms": r["first_ms"]}) + "\n")
    detected = detection(inputs["640x480 RGB"], rounds, args.quick)
    print(f"\n{len(rows)} + {detected} detection rows in {os.path.relpath(os.path.join(OUT, 'results.jsonl'), ROOT)}; "
          f"took {time.time() - began:.0f} s")
    if accuracy_failed:
        print(f"failed: {accuracy_failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
