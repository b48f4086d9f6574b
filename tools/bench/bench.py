#!/usr/bin/python3
"""Side-by-side benchmark: torchclassify vs the seed tutorial's Python loop vs the raw model.

    tools/bench/bench.py [--quick] [--engines x86 fbgemm qnnpack] [--threads 1 2] [--rounds 3]
                         [--seed-model PATH]

Run by `make bench` (QUICK=1 for --quick), which builds the plugin, the raw-model example and the
model first. The demo clip is decoded once to raw frames (224x224 RGB and 640x480), so decoding
is outside every measurement; then for each engine x threads cell, on the same frames:

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
"""

import argparse
import importlib.util
import json
import os
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


def prepare_frames(copies: int) -> dict:
    """The clip's 30 frames decoded once per input kind, repeated `copies` times."""
    inputs = {}
    for name, fmt, w, h, raw_fmt in [("224x224 RGB", "RGB", 224, 224, "rgb"),
                                     ("640x480 BGRx", "BGRx", 640, 480, "bgrx"),
                                     ("640x480 RGB", "RGB", 640, 480, "rgb")]:
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


def row(name, engine, threads, inp, rounds, seeds=None, raws=None) -> dict:
    """One table row from the same measurement's rounds: the round with the median fps, and the
    medians of the per-round ratios to the seed loop and to the raw model measured beside it."""
    r = sorted(rounds, key=lambda x: x["fps"])[len(rounds) // 2]
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
        r = sorted(runs, key=lambda x: x["fps"])[len(runs) // 2]
        rows.append({"name": f"regions-max-batch-{batch}", **r})
        print(f"| {'8 (one forward)' if batch == 8 else '1 (eight forwards)'} | {r['fps']:.1f} | {r['total_ms']:.2f} | "
              f"{r['region_ms']:.2f} | {r['model_ms']:.2f} | {r['mean_batch_size']:.1f} |")
    print(f"batched: {ratio:.2f}x the fps of one forward per region")
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"name": "regions-batched-vs-single", "fps_ratio": round(ratio, 3), "rounds": rounds}) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer frames, one round, x86 (1 and 2 threads) and qnnpack (2 threads): under 2 minutes")
    ap.add_argument("--engines", nargs="+", default=None, help="default: x86 fbgemm qnnpack (quick: x86 qnnpack)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=None, help="rounds per cell (default 3, quick 1)")
    ap.add_argument("--seed-model", default=MODEL,
                    help="the model of the seed's recipe (qnnpack, 2 threads); default $GST_TORCH_MODEL (%(default)s)")
    args = ap.parse_args()
    for need in (MODEL, RAW_MODEL, VENV_PY):
        if not os.path.exists(need):
            sys.exit(f"{need} missing: run `make bench`")
    if not os.path.isfile(args.seed_model):
        sys.exit(f"--seed-model {args.seed_model}: no such file")
    began = time.time()
    engines = args.engines or (["x86", "qnnpack"] if args.quick else ["x86", "fbgemm", "qnnpack"])
    rounds = args.rounds or (1 if args.quick else 3)
    copies = 3 if args.quick else 7  # the clip's 30 frames, repeated: 90 or 210 frames
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
    print(f"\n{len(rows)} rows in {os.path.relpath(os.path.join(OUT, 'results.jsonl'), ROOT)}; "
          f"took {time.time() - began:.0f} s")
    if accuracy_failed:
        print(f"failed: {accuracy_failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
