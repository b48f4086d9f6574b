#!/usr/bin/env python3
"""Export a torchvision ImageNet classifier (default: int8 MobileNetV2) as TorchScript for torchclassify.

    export_model.py [--output PATH] [--labels PATH] [--arch NAME] [--random-weights]
                    [--engine {auto,qnnpack,x86}] [--optimize {none,freeze,optimize_for_inference}]

With no arguments: builds torchvision.models.quantization.mobilenet_v2(
weights="IMAGENET1K_QNNPACK_V1", quantize=True) (on x86-64 re-quantized for the x86 engine, see
--engine), scripts it with torch.jit.script and saves it to
the default model path, plus the model's 1000 category names (one per line, class-id order) from
the weights' metadata as imagenet_labels.txt next to it, and the model config file torchclassify
reads beside a model (see below). The weights come from $TORCH_HOME/hub/checkpoints when present
(offline), otherwise torchvision downloads them once.

--arch picks another model of the seed's table (mobilenet_v2, mobilenet_v3_large, resnet18,
resnet50, resnext101_32x8d, inception_v3, googlenet, shufflenet_v2_x0_5/x1_0/x1_5/x2_0):
torchvision's quantized (int8) variant with its published weights where
torchvision.models.quantization has the arch, the float model with its default weights otherwise.
Default output: <arch>_quantized.pt (or <arch>.pt for a float model) next to the default model.

--engine is the libtorch quantized engine the int8 model is calibrated for (default auto: x86 on
x86-64, qnnpack on ARM and elsewhere — what the element's engine=auto runs). An int8 model runs
under any engine, but only well under the one it was calibrated for: the x86/fbgemm kernels expect
7-bit activations (reduce_range) and saturate on full 8-bit ones — fbgemm's depthwise convolutions,
which x86 uses for depthwise layers of more than 100 channels, add u8*s8 products pairwise into
16 bits — while qnnpack-calibrated models use all 8 bits. When the published weights were
calibrated for the other engine (MobileNetV2's IMAGENET1K_QNNPACK_V1 for x86; every other arch's
FBGEMM weights for qnnpack), the model is re-quantized: the float model, fused, with the published
int8 weights dequantized (BatchNorm is already folded into them), quantized again with the
engine's default qconfig (per-channel weights, HistogramObserver activations; for x86 7-bit,
reduce_range), calibrated on 90 random crops of the demo clip data/cat-coffee-orange.webm (fixed
seed; decoded with gst-launch-1.0). For the published engine (qnnpack for MobileNetV2) the
published model is saved as is. --random-weights quantizes for the engine with torchvision's
recipe (calibrated on its dummy input). Float archs ignore --engine.
With an explicit --engine the default output is <arch>_quantized-<engine>.pt (-random too), so
models for both engines can live side by side; --engine auto keeps the names above.

--random-weights downloads nothing (weights=None; quantized archs are still quantized, calibrated
on torchvision's dummy input): for speed runs where the published weights are not available —
speed does not depend on the weight values; the labels are still the ImageNet categories. Its
default output is <arch>_quantized-random.pt / <arch>-random.pt, so it never replaces a real model.

--optimize applies torch.jit.freeze or torch.jit.optimize_for_inference to the scripted model
before saving (default none: on the int8 MobileNetV2 neither was measurably faster in the element).

Every saved model takes a [1, 3, S, S] float input (S = 299 for inception_v3, 224 otherwise: set
the element's input-size to S) and returns a [1, 1000] tensor of logits; this is checked before
anything is written, and the written file is loaded back and checked again. Every model is a
scripted wrapper whose method gst_torch_engine() -> str names the engine its quantization was
calibrated for ("qnnpack" or "x86"; "" for a float model), readable from libtorch. The file loads
under any engine: libtorch re-packs the weights for whatever engine is active when it is loaded.

Beside the model X.pt goes its model config X.json, which torchclassify reads by default: what
torchvision's classification models take — "labels" (the labels file's name when it sits in the
same folder, else its absolute path), "input-size" (S), ImageNet "mean" and "std" of 0..1 pixels
("pixel-scale" 1/255), "color-order" "rgb", "output" "softmax". It sets no "resize": the element's
default (stretch) stays the user's choice. Model, labels and config are each written atomically.
"""

import argparse
import json
import os
import platform
import sys
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclip  # noqa: E402  (tools/rawclip.py: the one clip decode recipe)

ARCHS = ["mobilenet_v2", "mobilenet_v3_large", "resnet18", "resnet50", "resnext101_32x8d", "inception_v3",
         "googlenet", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"]
# The published weights for the default export (the enum's DEFAULT for every other arch).
DEFAULT_WEIGHTS = {"mobilenet_v2": "IMAGENET1K_QNNPACK_V1"}


ENGINES = ["auto", "qnnpack", "x86"]


def resolve_engine(engine: str) -> str:
    """The engine --engine names: auto = x86 on x86-64 (what the element's engine=auto runs), qnnpack elsewhere."""
    if engine != "auto":
        return engine
    return "x86" if platform.machine().lower() in ("x86_64", "amd64") else "qnnpack"


def data_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "gst-torch"


def default_output(arch: str = "mobilenet_v2", quantized: bool = True, random_weights: bool = False,
                   engine: str = "auto") -> Path:
    """<arch>_quantized[-<engine>][-random].pt; the engine only for an explicit --engine of an int8 model."""
    name = (arch + ("_quantized" if quantized else "") + (f"-{engine}" if quantized and engine != "auto" else "")
            + ("-random" if random_weights else ""))
    return data_dir() / f"{name}.pt"


# The repository's demo clip: the frames the x86 re-quantization calibrates on.
CALIBRATION_CLIP = Path(__file__).resolve().parent.parent / "data" / "cat-coffee-orange.webm"
CALIBRATION_IMAGES = 90
CALIBRATION_SEED = 20240612
# torchvision's ImageNet normalisation of 0..1 RGB pixels (the calibration inputs, the model config).
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def published_engine(weights) -> str:
    """The engine torchvision's published int8 weights were calibrated for (their "fbgemm" is x86's recipe)."""
    backend = weights.meta.get("backend", "fbgemm")
    return "x86" if backend in ("fbgemm", "x86") else backend


def calibration_images(size: int, count: int = CALIBRATION_IMAGES, clip: Path = CALIBRATION_CLIP):
    """`count` ImageNet-normalized [1, 3, size, size] inputs: random resized crops (25-100% of the area,
    squashed to size x size as the element does, half of them flipped) of the demo clip's frames,
    with a fixed seed. Frames are decoded with gst-launch-1.0 (tools/setup.sh deps installs it)."""
    import torch
    from torchvision.transforms import v2 as T

    if not clip.is_file():
        raise RuntimeError(f"calibration clip {clip} not found")
    width, height = 320, 240  # decoded at this size: crops of it are still larger than most of `size`
    data = rawclip.decode(str(clip), "RGB", width, height)
    frame_bytes = width * height * 3
    if not data or len(data) % frame_bytes:
        raise RuntimeError(f"decoding {clip} gave {len(data)} bytes, not whole {width}x{height} RGB frames")
    frames = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, height, width, 3).permute(0, 3, 1, 2)
    torch.manual_seed(CALIBRATION_SEED)
    crop = T.Compose([T.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True), T.RandomHorizontalFlip()])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    picks = torch.randint(len(frames), (count,))
    return [(crop(frames[i]).unsqueeze(0).float() / 255 - mean) / std for i in picks.tolist()]


def requantize(published, builder, engine: str, calibration, **float_kwargs) -> "torch.nn.Module":
    """`published` (an int8 torchvision model) quantized again for `engine`.

    The float quantizable model is fused (conv+BN(+ReLU) -> one conv, as in the int8 model, whose
    BatchNorms were folded into its conv weights before quantization) and given the int8 model's
    dequantized weights and biases, layer by layer by module name; then eager post-training
    quantization with the engine's default qconfig (per-channel weights, HistogramObserver
    activations — for x86 with reduce_range, i.e. 7-bit), calibrated on `calibration`. `float_kwargs`
    go to the float builder (the architecture options the published model was built with)."""
    import torch
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.intrinsic import _FusedModule

    model = builder(weights=None, quantize=False, **float_kwargs).eval()
    model.fuse_model()
    targets = dict(model.named_modules())
    copied = set()
    with torch.no_grad():
        for name, q in published.named_modules():
            if not isinstance(q, (nnq.Conv2d, nnq.Linear)):  # also covers the fused ConvReLU2d / LinearReLU
                continue
            target = targets.get(name)
            if isinstance(target, _FusedModule):
                target = target[0]  # ConvReLU2d(Conv2d, ReLU): the conv holds the (BN-folded) weights
            weight, bias = q.weight().dequantize(), q.bias()
            if not isinstance(target, (torch.nn.Conv2d, torch.nn.Linear)) or target.weight.shape != weight.shape:
                raise RuntimeError(f"re-quantization: int8 layer {name} ({type(q).__name__}, {tuple(weight.shape)}) "
                                   f"has no matching float layer ({type(target).__name__})")
            if (bias is None) != (target.bias is None):
                raise RuntimeError(f"re-quantization: int8 layer {name} and its float layer disagree on a bias")
            target.weight.copy_(weight)
            if bias is not None:
                target.bias.copy_(bias)
            copied.add(name)
    # Every float layer with weights must have got the int8 model's (BatchNorms are gone after fusion).
    left = [n for n, m in model.named_modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.modules.batchnorm._BatchNorm))
            and n not in copied and n.rsplit(".", 1)[0] not in copied]
    if left:
        raise RuntimeError(f"re-quantization: float layers without int8 weights: {', '.join(left[:5])}")

    torch.backends.quantized.engine = engine  # convert packs the weights for it
    model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    prepared = torch.ao.quantization.prepare(model)
    with torch.no_grad():
        for x in calibration:
            prepared(x)
    return torch.ao.quantization.convert(prepared)


def build(arch: str, random_weights: bool, engine: str):
    """(model in eval mode, quantized?, categories, input size, engine it is calibrated for ("" if float))
    for `arch`; downloads nothing if random_weights."""
    import torchvision.models as tvm

    quantized = f"quantized_{arch}" in tvm.list_models(module=tvm.quantization)
    builder = getattr(tvm.quantization, arch) if quantized else getattr(tvm, arch)
    enum = tvm.get_model_weights(builder)
    reference = enum[DEFAULT_WEIGHTS[arch]] if arch in DEFAULT_WEIGHTS else enum.DEFAULT
    # The metadata (no download): same 1000 ImageNet categories and crop size with or without weights.
    categories, size = reference.meta["categories"], reference.transforms().crop_size[0]
    kwargs = {"quantize": True} if quantized else {}
    # What the published weights' builder sets for GoogLeNet / Inception3, minus the aux heads
    # (unused in eval): for random weights and for the float model of a re-quantization.
    aux_free = dict(aux_logits=False, transform_input=True) if arch in ("googlenet", "inception_v3") else {}
    if random_weights:
        weights = None
        if aux_free:
            kwargs.update(aux_free, init_weights=True)
        if quantized:
            # torchvision's recipe for the engine, calibrated on its dummy input (speed runs only).
            kwargs["backend"] = "qnnpack" if engine == "qnnpack" else "fbgemm"
    else:
        weights = reference
    model = builder(weights=weights, **kwargs).eval()
    if not quantized:
        return model, False, categories, size, ""
    if not random_weights and published_engine(reference) != engine:
        print(f"re-quantizing {arch} ({reference}, calibrated for {published_engine(reference)}) for the "
              f"{engine} engine on {CALIBRATION_IMAGES} crops of {CALIBRATION_CLIP.name}", file=sys.stderr)
        model = requantize(model, builder, engine, calibration_images(size), **aux_free).eval()
    return model, True, categories, size, engine


def with_engine(model, engine: str):
    """`model` (an nn.Module or a traced ScriptModule) scripted inside a wrapper that forwards to it and
    has gst_torch_engine() -> str: the engine the model was calibrated for ("" for a float model)."""
    import torch

    class GstTorchModel(torch.nn.Module):
        def __init__(self, model, engine: str):
            super().__init__()
            self.model = model
            self.engine = engine

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

        @torch.jit.export
        def gst_torch_engine(self) -> str:
            return self.engine

    return torch.jit.script(GstTorchModel(model, engine).eval())


def check(model, size: int, classes: int, engine: str, what: str):
    """The logits of `model` for a zero image; raises unless [1, classes] and gst_torch_engine() == engine."""
    import torch

    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RuntimeError(f"{what}: unexpected output {shape} for a [1, 3, {size}, {size}] input, not [1, {classes}]")
    recorded = model.gst_torch_engine()
    if recorded != engine:
        raise RuntimeError(f"{what}: gst_torch_engine() returns {recorded!r}, not {engine!r}")
    return out


# What torch 2.13 says on every export, about its own APIs (the eager quantization workflow that
# torchvision's int8 models and the re-quantization use, and the tensors that workflow makes):
# known and harmless here, so `make model` / `make demo` do not print them. Other warnings show.
KNOWN_WARNINGS = [
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation",
    r"torch\.ao\.quantization is deprecated",
    r"Please use quant_min and quant_max to specify the range for observers",
    r"must run observer before calling calculate_qparams",
    r"TypedStorage is deprecated",
]


def model_config(config_path: Path, labels_path: Path, size: int) -> dict:
    """The model config torchclassify reads beside a model (config_path = the model's path with .json):
    what torchvision's classification models take. The labels by name when they sit beside the config
    (so the folder can move), else by absolute path. No "resize": that stays the element's default."""
    config_dir, labels = config_path.resolve().parent, labels_path.resolve()
    return {
        "labels": labels.name if labels.parent == config_dir else str(labels),
        "input-size": size,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "pixel-scale": 1 / 255,
        "color-order": "rgb",
        "output": "softmax",
    }


def write_atomically(path: Path, text: str) -> None:
    """`text` to `path` through a temporary file beside it: an interrupted run leaves no half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> int:
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=None,
                    help=f"TorchScript file to write (default: {default_output()}; for another arch "
                         "<arch>_quantized.pt or <arch>.pt in the same directory; with an explicit "
                         "--engine <arch>_quantized-<engine>.pt)")
    ap.add_argument("--labels", type=Path, default=None,
                    help="labels file to write (default: imagenet_labels.txt next to the model)")
    ap.add_argument("--arch", choices=ARCHS, default="mobilenet_v2", help="model (default: %(default)s)")
    ap.add_argument("--random-weights", action="store_true",
                    help="no download: random weights (still quantized where torchvision has an int8 variant), "
                         "for speed measurements only")
    ap.add_argument("--engine", choices=ENGINES, default="auto",
                    help="quantized engine the int8 model is calibrated for (default: %(default)s = "
                         f"{resolve_engine('auto')} here; ignored for float models)")
    ap.add_argument("--optimize", choices=["none", "freeze", "optimize_for_inference"], default="none",
                    help="graph optimization of the scripted model (default: %(default)s)")
    args = ap.parse_args()

    import torch
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"TORCH_HOME={os.environ.get('TORCH_HOME', '(default)')}", file=sys.stderr)
    try:
        model, quantized, categories, size, engine = build(args.arch, args.random_weights,
                                                           resolve_engine(args.engine))
    except RuntimeError as e:
        print(f"cannot export {args.arch}: {e}", file=sys.stderr)
        return 1
    output = args.output or default_output(args.arch, quantized, args.random_weights, args.engine)
    labels_path = args.labels or output.with_name("imagenet_labels.txt")
    config_path = output.with_suffix(".json")
    if config_path.resolve() in (output.resolve(), labels_path.resolve()):
        print(f"cannot export to {output} with labels {labels_path}: the model config {config_path} "
              "would overwrite one of them", file=sys.stderr)
        return 1

    if args.arch in ("googlenet", "inception_v3"):
        # Scripted GoogLeNet / Inception3 always return a namedtuple (logits, aux...) and warn on
        # every forward; traced (eval mode, no aux heads) they return the logits tensor.
        with torch.no_grad():
            model = torch.jit.trace(model, torch.zeros(1, 3, size, size))
    scripted = with_engine(model, engine)
    if args.optimize == "freeze":
        # Keeps gst_torch_engine: freeze drops methods that are not listed.
        scripted = torch.jit.freeze(scripted, preserved_attrs=["gst_torch_engine"])
    elif args.optimize == "optimize_for_inference":
        scripted = torch.jit.optimize_for_inference(scripted, other_methods=["gst_torch_engine"])

    # Check the scripted model before writing anything: [1, 1000] logits for one image, the engine.
    try:
        expected = check(scripted, size, len(categories), engine, "scripted model")
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1

    output.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    scripted.save(str(tmp))
    # Load the file back (as the element will) and check it again before it replaces anything.
    try:
        loaded = torch.jit.load(str(tmp))
        got = check(loaded, size, len(categories), engine, f"{tmp} loaded back")
        if not torch.allclose(got, expected):
            raise RuntimeError(f"{tmp} loaded back gives other logits than before saving")
    except RuntimeError as e:
        tmp.unlink(missing_ok=True)
        print(e, file=sys.stderr)
        return 1
    tmp.replace(output)  # atomic: an interrupted export leaves no half-written model
    write_atomically(labels_path, "".join(c + "\n" for c in categories))
    write_atomically(config_path, json.dumps(model_config(config_path, labels_path, size), indent=4) + "\n")
    kind = "int8" if quantized else "float32"
    weights = "random weights" if args.random_weights else "published weights"
    opt = "" if args.optimize == "none" else f", {args.optimize}"
    calibrated = f", for the {engine} engine" if engine else ""
    print(f"wrote {output} ({output.stat().st_size // 1024} KiB, {args.arch} {kind}{calibrated}, {weights}{opt}), "
          f"{labels_path} ({len(categories)} labels) and its model config {config_path}"
          f"; input 1x3x{size}x{size}: torchclassify input-size={size}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
