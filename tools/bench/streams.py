#!/usr/bin/python3
"""Many streams in one process: separate torchclassify instances vs one shared model
(model-instance-id) vs the shared model batching the streams' frames (batch-size, batch-timeout).

    tools/bench/streams.py [--quick] [--streams 1 2 4 8] [--rounds 3] [--inputs 224 640]
                           [--frames 360] [--batch N:B:T ...]

Run by `make bench-streams` (QUICK=1 for --quick), which builds examples/streams_bench.rs (the
driver: N branches `appsrc ! torchclassify ! fakesink sync=false` in one process, the plugin
linked in, each stream pushing the same in-memory frames as fast as its element takes them) and
the model first. The demo clip is decoded once to raw 224x224 RGB and 640x480 BGRx frames
(target/bench/streams-*.raw), so decoding is outside every measurement. For each input and each
stream count N, every configuration runs as its own process:

  separate        N elements, a model each (the default: one model thread each, libtorch's
                  default intra-op threads each)
  separate-1t     the same with num-threads=1 (one thread per model: no oversubscription)
  shared          N elements with one model-instance-id: one model, one model thread, batch-size 1
  batched B/T     shared with batch-size=B and batch-timeout=T ms (default variants: B=N with
                  T=0 and 5, and B=N/2 with T=5 from 4 streams on; --batch N:B:T adds one)

Each round runs every configuration of one input and N in turn (then the next N, the next input),
three rounds (--quick: one, fewer frames, 1/2/4/8 streams at 224x224 only, batch-size N only);
each row shows its median-fps round. Ratios to `separate` are medians of per-round ratios, so a
drift of the machine's speed (other work on it) hits both sides alike. Every run has the same
frames in all (--frames, default 360: each stream gets frames/N), so runs take about as long at
any N. Per row: total fps (all streams' frames over the wall time from the first frame out of
any element to the last), fps per stream, model ms per frame (the elements' mean-inference-ms:
each frame's share of its forward), mean-batch-size, RSS (VmRSS at the end of the run) and the RSS
beyond one stream per extra stream ((RSS(N) - RSS(1 stream)) / (N - 1), the 1-stream run of the
same round). Prints a markdown table and writes the rows as JSON lines to
target/bench/streams.jsonl, then checks the issue's targets at 4 and 8 streams: the shared (or
best batched) configuration beats separate in total fps, and adds at most half the memory per
extra stream that a separate instance adds.
"""

import argparse
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
DRIVER = os.path.join(ROOT, "target", "release", "examples", "streams_bench")
CLIP = os.path.join(ROOT, "data", "cat-coffee-orange.webm")
INPUTS = {"224": ("224x224 RGB", "RGB", 224, 224), "640": ("640x480 BGRx", "BGRx", 640, 480)}
ID = "bench"


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def prepare(inp: str) -> str:
    """The clip's frames as raw video for input `inp`, decoded once; returns the file."""
    _, fmt, w, h = INPUTS[inp]
    path = os.path.join(OUT, f"streams-{w}x{h}-{fmt}.raw")
    if not os.path.exists(path):
        try:
            data = rawclip.decode(CLIP, fmt, w, h)
        except RuntimeError as e:
            sys.exit(f"failed: {e}")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return path


def configs(n: int, quick: bool, extra: list) -> list:
    """(name, torchclassify properties) of every configuration at `n` streams."""
    if n == 1:
        return [("separate", "")]
    out = [("separate", ""), ("separate-1t", "num-threads=1"), ("shared", f"model-instance-id={ID}")]
    variants = [(n, 0), (n, 5)] + ([(n // 2, 5)] if n >= 4 and not quick else [])
    variants += [(b, t) for (s, b, t) in extra if s == n and (b, t) not in variants]
    for b, t in variants:
        out.append((f"batched {b}/{t:g}", f"model-instance-id={ID} batch-size={b} batch-timeout={int(t * 1e6)}"))
    return out


def run(path: str, inp: str, frames: int, n: int, props: str) -> dict:
    _, fmt, w, h = INPUTS[inp]
    args = [DRIVER, path, fmt, str(w), str(h), str(frames), str(n), f"model={MODEL}"] + props.split()
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{(r.stderr or r.stdout)[-2000:]}")
    return json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round, fewer frames, 224x224 only: ~1 minute")
    ap.add_argument("--streams", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--inputs", nargs="+", choices=sorted(INPUTS), default=None,
                    help="224 (224x224 RGB), 640 (640x480 BGRx); default both (quick: 224)")
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (quick 1)")
    ap.add_argument("--frames", type=int, default=None, help="frames per run, all streams (default 360, quick 240)")
    ap.add_argument("--batch", action="append", default=[], metavar="N:B:T",
                    help="one more batched variant: at N streams, batch-size B, batch-timeout T ms")
    args = ap.parse_args()
    for need in (MODEL, DRIVER):
        if not os.path.exists(need):
            sys.exit(f"{need} missing: run `make bench-streams`")
    if 1 not in args.streams:
        sys.exit("--streams must include 1 (the RSS per extra stream is measured from it)")
    extra = []
    for spec in args.batch:
        try:
            s, b, t = spec.split(":")
            extra.append((int(s), int(b), float(t)))
        except ValueError:
            sys.exit(f"--batch {spec}: expected STREAMS:BATCH-SIZE:TIMEOUT-MS, e.g. 8:8:5")
    os.makedirs(OUT, exist_ok=True)
    began, load_start = time.time(), os.getloadavg()[0]
    inputs = args.inputs or (["224"] if args.quick else ["224", "640"])
    rounds = args.rounds or (1 if args.quick else 3)
    total_frames = args.frames or (240 if args.quick else 360)
    streams = sorted(set(args.streams))
    paths = {inp: prepare(inp) for inp in inputs}
    got = {}  # (inp, n, name) -> [run per round]
    for r in range(rounds):
        for inp in inputs:
            for n in streams:
                frames = max(1, total_frames // n)
                for name, props in configs(n, args.quick, extra):
                    got.setdefault((inp, n, name), []).append(run(paths[inp], inp, frames, n, props))
            print(f"round {r + 1}/{rounds}, {INPUTS[inp][0]} done at {time.time() - began:.0f} s", file=sys.stderr)

    rows = []
    for inp in inputs:
        for n in streams:
            seps = got[(inp, n, "separate")]
            ones = got[(inp, 1, "separate")]
            for name, props in configs(n, args.quick, extra):
                runs = got[(inp, n, name)]
                m = sorted(runs, key=lambda x: x["fps"])[len(runs) // 2]
                row = {"name": name, "input": INPUTS[inp][0], "streams": n, "properties": props,
                       "frames": m["frames"], "fps": round(m["fps"], 2), "fps_per_stream": round(m["fps_per_stream"], 2),
                       "model_ms": round(m["model_ms"], 3), "mean_batch_size": round(m["mean_batch_size"], 2),
                       "rss_mib": round(median([x["rss_kib"] for x in runs]) / 1024, 1),
                       "threads": m["threads"], "rounds": len(runs)}
                if n > 1:
                    per = [(x["rss_kib"] - o["rss_kib"]) / (n - 1) / 1024 for x, o in zip(runs, ones)]
                    row["rss_per_extra_stream_mib"] = round(median(per), 2)
                    row["fps_vs_separate"] = round(median([x["fps"] / s["fps"] for x, s in zip(runs, seps)]), 3)
                rows.append(row)
    # The best batched variant of each input and stream count: the highest fps ratio to separate
    # (measured side by side).
    for inp in inputs:
        for n in streams:
            batched = [r for r in rows if r["input"] == INPUTS[inp][0] and r["streams"] == n
                       and r["name"].startswith("batched")]
            if batched:
                max(batched, key=lambda r: r["fps_vs_separate"])["best_batched"] = True

    with open(os.path.join(OUT, "streams.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"\nMachine: {os.cpu_count()} CPUs, {os.uname().machine}; model {os.path.basename(MODEL)} "
          f"(engine=auto); {total_frames} frames per run; OMP_WAIT_POLICY "
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average before the run {load_start:.2f}\n")
    print("| input | streams | config | total fps | fps per stream | vs separate | model ms/frame | "
          "mean batch | RSS MiB | RSS per extra stream MiB | threads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs = f"{r['fps_vs_separate']:.2f}x" if "fps_vs_separate" in r else ""
        extra_rss = f"{r['rss_per_extra_stream_mib']:.1f}" if "rss_per_extra_stream_mib" in r else ""
        best = " (best)" if r.get("best_batched") else ""
        print(f"| {r['input']} | {r['streams']} | {r['name']}{best} | {r['fps']:.1f} | {r['fps_per_stream']:.1f} | "
              f"{vs} | {r['model_ms']:.2f} | {r['mean_batch_size']:.2f} | {r['rss_mib']:.1f} | {extra_rss} | "
              f"{r['threads']} |")

    # The targets at 4 and 8 streams.
    print()
    missed = []
    for inp in inputs:
        for n in [s for s in streams if s >= 4]:
            sel = {r["name"]: r for r in rows if r["input"] == INPUTS[inp][0] and r["streams"] == n}
            sep, shared = sel["separate"], sel["shared"]
            best = max([shared] + [r for r in sel.values() if r.get("best_batched")],
                       key=lambda r: r["fps_vs_separate"])
            fps_ok = best["fps_vs_separate"] > 1.0
            mem_ok = (sep["rss_per_extra_stream_mib"] > 0
                      and best["rss_per_extra_stream_mib"] <= sep["rss_per_extra_stream_mib"] / 2)
            print(f"{INPUTS[inp][0]}, {n} streams: {best['name']} {best['fps_vs_separate']:.2f}x separate's total fps "
                  f"({'ok' if fps_ok else 'MISSED'}); RSS per extra stream {best['rss_per_extra_stream_mib']:.1f} "
                  f"vs {sep['rss_per_extra_stream_mib']:.1f} MiB separate "
                  f"({'ok: at most half' if mem_ok else 'MISSED: more than half'}); separate with num-threads=1: "
                  f"{sel['separate-1t']['fps_vs_separate']:.2f}x")
            if not (fps_ok and mem_ok):
                missed.append(f"{INPUTS[inp][0]} at {n} streams")
    print(f"\n{len(rows)} rows in {os.path.relpath(os.path.join(OUT, 'streams.jsonl'), ROOT)}; "
          f"took {time.time() - began:.0f} s")
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    busy = load_start  # at the end the load average counts this run's own work
    if busy > 1.5:
        # Measured here: one model thread with libtorch's 2 OpenMP threads took 9 ms per frame with
        # OMP_WAIT_POLICY=PASSIVE and 150-370 ms with the default (spinning) while other processes
        # kept the 2 cores busy; separate instances (more threads than cores) suffer less.
        print(f"note: load average {busy:.1f} on {os.cpu_count()} CPUs: other processes competed for the CPUs. "
              f"Configurations with more threads take a larger share of a busy machine, and with libgomp's "
              f"default spin-waiting a single model thread slows down many times over (OMP_WAIT_POLICY=PASSIVE "
              f"avoids that). Compare on a quiet machine.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
