#!/usr/bin/python3
"""Labelled accuracy of torchclassify per model and quantized engine, measured through the element:

    tools/accuracy.py [--model PATH ...] [--engines qnnpack,x86,fbgemm] [--reference MODEL:ENGINE]
                      [--num-threads N] [--shared DIR] [--seed N] [--crops N] [--small-crops N]

The inputs are a fixed set made from SHARED/media (SHARED: --shared, else $GST_TORCH_SHARED,
else ../shared next to the repo): each photo whole plus --crops (30) random resized crops of it
(35-100 % of the area, aspect ratio 3/4..4/3, as torchvision's RandomResizedCrop) and
--small-crops (30) smaller ones (10-35 %: harder, where the engines' answers part ways; the three
photos whole and in large crops are easy for every engine), then the demo clip's 30 frames
labelled by their second — 3 x (1 + 30 + 30) + 30 = 213 inputs. The crops are
drawn from --seed (default 12, SEED below) by tools/accuracy/make_inputs.py with Python's
`random.Random` seeded per photo, so the set is the same on every run and machine; its SHA-256 is
in every result row. Every input becomes one 224x224 RGB frame (resized by Pillow's bilinear
filter in the venv, whole pictures squashed as the element squashes frames), so the element runs
its 224x224 RGB path without resizing.

Each (model, engine) cell runs in a process of its own (libtorch's quantized engine is global to
a process): `filesrc ! rawvideoparse ! torchclassify ! fakesink` in Debian's python3 with gi
(tools/accuracy/cell.py), reading each frame's top-5 from its ROI meta. Per cell: top-1 accuracy
(the top-1 id is in the input's label set: 281-285 all count as "cat"), top-5 accuracy, mean top-1
confidence, top-1 agreement with the reference cell (default: the first model under qnnpack) and
the element's mean model time (`stats`). Prints a markdown table; writes one JSON object per
cell to target/accuracy/results.jsonl and one per cell x input to target/accuracy/inputs.jsonl.

Engines: auto, qnnpack, x86, fbgemm (default qnnpack,x86,fbgemm; about a minute on 2 cores).
--num-threads 0 (default) keeps libtorch's default, one thread per core.
tools/bench/bench.py imports this file for its accuracy line (`evaluate`).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import rawclip  # noqa: E402  (tools/rawclip.py: the one clip decode recipe)

HERE = os.path.join(ROOT, "tools", "accuracy")
OUT = os.path.join(ROOT, "target", "accuracy")
DATA = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
MODEL = os.environ.get("GST_TORCH_MODEL") or os.path.join(DATA, "gst-torch", "mobilenet_v2_quantized.pt")
VENV_PY = os.path.join(os.environ.get("VENV") or os.path.join(DATA, "gst-torch", "venv"), "bin", "python")
ENGINES = ["qnnpack", "x86", "fbgemm"]

SEED = 12  # the crops' seed: change it and the set (and its SHA-256) changes
CROPS = 30  # random resized crops per photo, 35-100 % of its area
SMALL_CROPS = 30  # and 10-35 %
TOP_K = 5

# Labels: an input is right when its top-1 id is in its set. ImageNet's five domestic cats
# (281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat) all count as "cat".
CAT = frozenset(range(281, 286))
ESPRESSO = frozenset({967})
ORANGE = frozenset({950})
PHOTOS = [("cat.png", CAT), ("coffee.png", ESPRESSO), ("orange.jpg", ORANGE)]
CLIP = "cat-coffee-orange.webm"
CLIP_SIZE = (640, 480)  # decoded at this size (videoscale is a no-op for the demo clip)
CLIP_FPS = 10
CLIP_SECONDS = [CAT, ESPRESSO, ORANGE]  # second 0, 1, 2 of the clip
CLIP_FRAMES = CLIP_FPS * len(CLIP_SECONDS)


def fail(message: str):
    """Stops with `message` (the exception is caught in main(); bench.py lets it end the run)."""
    raise SystemExit(f"accuracy: {message}")


def sh(args: list, what: str) -> str:
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{what} failed (exit {r.returncode}): {' '.join(args)}\n{r.stderr[-3000:].rstrip()}")
    return r.stdout


def shared_dir(arg: str = None) -> str:
    return os.path.abspath(arg or os.environ.get("GST_TORCH_SHARED") or os.path.join(ROOT, "..", "shared"))


def check_setup(shared: str, models: list):
    """Fails with what to do when the plugin, the venv, a model or a media file is missing."""
    if subprocess.run(["gst-inspect-1.0", "torchclassify"], capture_output=True).returncode != 0:
        fail("GStreamer has no element `torchclassify`: run `make install` (installs the plugin into "
             f"{os.path.join(DATA, 'gstreamer-1.0', 'plugins')})")
    if not os.path.exists(VENV_PY):
        fail(f"{VENV_PY} missing (needed for Pillow): run `make venv` or set VENV")
    for model in models:
        if model is not None and not os.path.isfile(model):
            fail(f"model {model} missing" + (": run `make model`" if model == MODEL else ""))
    media = os.path.join(shared, "media")
    missing = [os.path.join(media, name) for name in [p for p, _ in PHOTOS] + [CLIP]
               if not os.path.isfile(os.path.join(media, name))]
    if missing:
        fail(f"media missing: {', '.join(missing)} (the shared directory is {shared}: "
             "set it with --shared DIR or GST_TORCH_SHARED)")


def prepare_inputs(shared: str, seed: int = SEED, crops: int = CROPS, small_crops: int = SMALL_CROPS) -> dict:
    """Writes the input set to target/accuracy/frames-224x224-rgb.raw. Returns {"path", "rows"
    (one dict per input: source, kind, box, frame for clip frames, labels), "seed", "crops",
    "sha256" (of the frames)}."""
    os.makedirs(OUT, exist_ok=True)
    media = os.path.join(shared, "media")
    w, h = CLIP_SIZE
    clip_raw = os.path.join(OUT, f"clip-{w}x{h}-rgb.raw")
    try:
        clip = rawclip.decode(os.path.join(media, CLIP), "RGB", w, h)
    except RuntimeError as e:
        fail(str(e))
    with open(clip_raw, "wb") as f:
        f.write(clip)
    frames = len(clip) // (w * h * 3)
    if frames != CLIP_FRAMES:
        fail(f"{os.path.join(media, CLIP)} decoded to {frames} frames, expected {CLIP_FRAMES} "
             f"({len(CLIP_SECONDS)} s at {CLIP_FPS} fps)")
    path = os.path.join(OUT, "frames-224x224-rgb.raw")
    out = sh([VENV_PY, os.path.join(HERE, "make_inputs.py"), "--media", media,
              "--photos", *[p for p, _ in PHOTOS], "--clip-raw", clip_raw, "--clip-size", f"{w}x{h}",
              "--clip-name", CLIP, "--seed", str(seed), "--crops", str(crops), "--small-crops", str(small_crops),
              "--out", path],
             "making the inputs (tools/accuracy/make_inputs.py)")
    os.remove(clip_raw)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    labels = dict(PHOTOS)
    for r in rows:
        r["labels"] = sorted(CLIP_SECONDS[r["frame"] // CLIP_FPS] if r["kind"] == "clip" else labels[r["source"]])
    if os.path.getsize(path) != len(rows) * 224 * 224 * 3:
        fail(f"{path}: {os.path.getsize(path)} bytes for {len(rows)} inputs")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"path": path, "rows": rows, "seed": seed, "crops": crops, "small_crops": small_crops,
            "sha256": digest}


def run_cell(inputs: dict, model, engine: str, threads: int) -> dict:
    """One cell through the element, in its own process (cell.py); `model` None = the element's
    default. Fails if the element did not classify every input or ran another engine."""
    what = f"torchclassify model={model or '(default)'} engine={engine}"
    out = sh(["/usr/bin/python3", os.path.join(HERE, "cell.py"), inputs["path"], model or "", engine,
              str(threads), str(TOP_K)], what)
    cell = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    results = cell["results"]
    if [r["frame"] for r in results] != list(range(len(inputs["rows"]))):
        fail(f"{what}: got results for {len(results)} frames, expected one for each of {len(inputs['rows'])}")
    # An engine this libtorch cannot run is only a warning in the element: the old one stays.
    if engine != "auto" and cell["engine"] != engine:
        fail(f"{what}: the element ran engine {cell['engine']} (this libtorch cannot run {engine}?)")
    cell["engine_requested"] = engine
    return cell


def score(cell: dict, inputs: dict, reference: dict) -> dict:
    """The cell's row: accuracies, mean confidence, agreement with `reference` (a cell), plus its
    per-input rows under "per_input" (not written to results.jsonl)."""
    per_input, groups = [], {}
    for i, (r, res, ref) in enumerate(zip(inputs["rows"], cell["results"], reference["results"])):
        top1_ok = res["ids"][0] in r["labels"]
        per_input.append({"input": i, "source": r["source"], "kind": r["kind"], "box": r["box"],
                          "labels": r["labels"], "top1_id": res["ids"][0], "top1_label": res["labels"][0],
                          "confidence": round(res["confidences"][0], 5), "top5_ids": res["ids"][:5],
                          "top1_ok": top1_ok, "top5_ok": any(x in r["labels"] for x in res["ids"][:5]),
                          "agrees": res["ids"][0] == ref["ids"][0]})
        groups.setdefault(r["kind"], []).append(top1_ok)
    n = len(per_input)

    def pct(key):
        return round(100 * sum(p[key] for p in per_input) / n, 1)

    return {"model": cell["label"], "model_path": cell["model"], "engine": cell["engine_requested"],
            "engine_used": cell["engine"], "threads": cell["threads"], "inputs": n,
            "top1_pct": pct("top1_ok"), "top5_pct": pct("top5_ok"),
            "mean_conf": round(sum(res["confidences"][0] for res in cell["results"]) / n, 4),
            "agreement_pct": pct("agrees"), "reference": f"{reference['label']}:{reference['engine_requested']}",
            "model_ms": round(cell["model_ms"], 3),
            "top1_pct_by_kind": {k: round(100 * sum(v) / len(v), 1) for k, v in groups.items()},
            "seed": inputs["seed"], "crops_per_photo": inputs["crops"],
            "small_crops_per_photo": inputs["small_crops"], "inputs_sha256": inputs["sha256"],
            "per_input": per_input}


def label_models(models: list) -> dict:
    """Short names for the table: the file name, or the path when two share a name."""
    names = [os.path.basename(m) if m else "default" for m in models]
    return {m: (n if names.count(n) == 1 else (m or n)) for m, n in zip(models, names)}


def evaluate(configs: list, reference: int = 0, threads: int = 0, shared: str = None, seed: int = SEED,
             crops: int = CROPS, small_crops: int = SMALL_CROPS, log=None) -> list:
    """Runs each (model, engine) or (model, engine, threads) of `configs` (model None = the
    element's default; threads default `threads`) on the input set and returns their rows (see
    score()), agreement measured against configs[reference]. Fails (SystemExit) with a message."""
    log = log or (lambda text: print(text, file=sys.stderr))
    began = time.time()
    shared = shared_dir(shared)
    check_setup(shared, [c[0] for c in configs])
    inputs = prepare_inputs(shared, seed, crops, small_crops)
    log(f"accuracy: {len(inputs['rows'])} inputs (seed {seed}, sha256 {inputs['sha256'][:12]}) ready at "
        f"{time.time() - began:.0f} s")
    labels = label_models(list(dict.fromkeys(c[0] for c in configs)))
    cells = []
    for model, engine, *rest in configs:
        cell_threads = rest[0] if rest else threads
        cell = run_cell(inputs, model, engine, cell_threads)
        # The element's default model is named by the file it loaded.
        label = labels[model] if model else f"{os.path.basename(cell['model'] or '?')} (default)"
        cell.update(label=label, threads=cell_threads)
        cells.append(cell)
        log(f"accuracy: {label} {engine}: done at {time.time() - began:.0f} s")
    return [score(c, inputs, cells[reference]) for c in cells]


def markdown(rows: list) -> str:
    lines = ["| model | engine | inputs | top-1 % | top-5 % | mean conf | agreement % | model ms | "
             "top-1 % whole / crops / small crops / clip |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        engine = r["engine"] if r["engine"] == r["engine_used"] else f"{r['engine']} ({r['engine_used']})"
        kinds = " / ".join(f"{r['top1_pct_by_kind'].get(k, float('nan')):.1f}"
                           for k in ("whole", "crop", "small", "clip"))
        lines.append(f"| {r['model']} | {engine} | {r['inputs']} | {r['top1_pct']:.1f} | {r['top5_pct']:.1f} | "
                     f"{r['mean_conf']:.3f} | {r['agreement_pct']:.1f} | {r['model_ms']:.2f} | {kinds} |")
    return "\n".join(lines)


def parse_reference(spec: str, models: list) -> tuple:
    """MODEL:ENGINE -> (model path, engine); MODEL is a path or the name of one of `models`."""
    model, sep, engine = spec.rpartition(":")
    if not sep or not model or engine not in ["auto"] + ENGINES:
        fail(f"--reference {spec}: expected MODEL:ENGINE with ENGINE one of auto, {', '.join(ENGINES)}")
    by_name = [m for m in models if os.path.basename(m) == model]
    if os.path.abspath(model) in models:
        return os.path.abspath(model), engine
    if len(by_name) == 1:
        return by_name[0], engine
    return os.path.abspath(model), engine  # a model outside --model: checked and run as an extra cell


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help=f"TorchScript model (repeatable; default {MODEL})")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, from auto,qnnpack,x86,fbgemm "
                    "(default %(default)s)")
    ap.add_argument("--reference", help="MODEL:ENGINE for the agreement column (default: the first model "
                    "under qnnpack, else the first cell); a cell outside the grid is run as well")
    ap.add_argument("--num-threads", type=int, default=0, help="the element's num-threads (default 0: one per core)")
    ap.add_argument("--shared", help="directory holding media/ (default $GST_TORCH_SHARED, else ../shared)")
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the random crops (default %(default)s)")
    ap.add_argument("--crops", type=int, default=CROPS, help="random crops per photo (default %(default)s)")
    ap.add_argument("--small-crops", type=int, default=SMALL_CROPS,
                    help="random small (10-35 %%) crops per photo (default %(default)s)")
    args = ap.parse_args()
    began = time.time()
    models = list(dict.fromkeys(os.path.abspath(m) for m in (args.model or [MODEL])))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ["auto"] + ENGINES]
    if bad or not engines:
        fail(f"--engines {args.engines}: engines are auto, {', '.join(ENGINES)}")
    if args.crops < 0 or args.small_crops < 0 or args.num_threads < 0:
        fail("--crops, --small-crops and --num-threads must be >= 0")
    configs = [(m, e) for m in models for e in engines]
    if args.reference:
        ref = parse_reference(args.reference, models)
    else:
        ref = (models[0], "qnnpack") if "qnnpack" in engines else configs[0]
    if ref not in configs:
        configs.append(ref)
    rows = evaluate(configs, configs.index(ref), args.num_threads, args.shared, args.seed, args.crops,
                    args.small_crops)
    with open(os.path.join(OUT, "results.jsonl"), "w") as f, open(os.path.join(OUT, "inputs.jsonl"), "w") as g:
        for r in rows:
            per_input = r.pop("per_input")
            f.write(json.dumps(r) + "\n")
            for p in per_input:
                g.write(json.dumps({"model": r["model"], "engine": r["engine"], **p}) + "\n")
    r0 = rows[0]
    print(f"\nMachine: {os.cpu_count()} CPUs, {os.uname().machine}; {r0['inputs']} inputs (seed {r0['seed']}, "
          f"{r0['crops_per_photo']} + {r0['small_crops_per_photo']} small crops per photo, sha256 {r0['inputs_sha256'][:12]}); "
          f"agreement: top-1 equal to {r0['reference']}; threads: {args.num_threads or 'default'}\n")
    print(markdown(rows))
    print(f"\n{len(rows)} rows in {os.path.relpath(os.path.join(OUT, 'results.jsonl'), ROOT)} (per input: "
          f"inputs.jsonl); took {time.time() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
