#!/usr/bin/env python3
"""Export a torchvision ImageNet classifier (default: int8 MobileNetV2) as TorchScript for torchclassify.

    export_model.py [--output PATH] [--labels PATH] [--arch NAME] [--random-weights]
                    [--optimize {none,freeze,optimize_for_inference}]

With no arguments: builds torchvision.models.quantization.mobilenet_v2(
weights="IMAGENET1K_QNNPACK_V1", quantize=True), scripts it with torch.jit.script and saves it to
the default model path, plus the model's 1000 category names (one per line, class-id order) from
the weights' metadata as imagenet_labels.txt next to it. The weights come from
$TORCH_HOME/hub/checkpoints when present (offline), otherwise torchvision downloads them once.

--arch picks another model of the seed's table (mobilenet_v2, mobilenet_v3_large, resnet18,
resnet50, resnext101_32x8d, inception_v3, googlenet, shufflenet_v2_x0_5/x1_0/x1_5/x2_0):
torchvision's quantized (int8) variant with its published weights where
torchvision.models.quantization has the arch, the float model with its default weights otherwise.
Default output: <arch>_quantized.pt (or <arch>.pt for a float model) next to the default model.

--random-weights downloads nothing (weights=None; quantized archs are still quantized, calibrated
on torchvision's dummy input): for speed runs where the published weights are not available —
speed does not depend on the weight values; the labels are still the ImageNet categories. Its
default output is <arch>_quantized-random.pt / <arch>-random.pt, so it never replaces a real model.

--optimize applies torch.jit.freeze or torch.jit.optimize_for_inference to the scripted model
before saving (default none: on the int8 MobileNetV2 neither was measurably faster in the element).

Every saved model takes a [1, 3, S, S] float input (S = 299 for inception_v3, 224 otherwise: set
the element's input-size to S) and returns a [1, 1000] tensor of logits; this is checked before
anything is written. The saved file does not depend on the quantized engine used here: libtorch
re-packs the weights for whatever engine is active when the element loads it.
"""

import argparse
import os
import sys
from pathlib import Path

ARCHS = ["mobilenet_v2", "mobilenet_v3_large", "resnet18", "resnet50", "resnext101_32x8d", "inception_v3",
         "googlenet", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"]
# The published weights for the default export (the enum's DEFAULT for every other arch).
DEFAULT_WEIGHTS = {"mobilenet_v2": "IMAGENET1K_QNNPACK_V1"}


def data_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "gst-torch"


def default_output(arch: str = "mobilenet_v2", quantized: bool = True, random_weights: bool = False) -> Path:
    name = arch + ("_quantized" if quantized else "") + ("-random" if random_weights else "")
    return data_dir() / f"{name}.pt"


def build(arch: str, random_weights: bool):
    """(model in eval mode, quantized?, categories, input size) for `arch`; downloads nothing if random_weights."""
    import torchvision.models as tvm

    quantized = f"quantized_{arch}" in tvm.list_models(module=tvm.quantization)
    builder = getattr(tvm.quantization, arch) if quantized else getattr(tvm, arch)
    enum = tvm.get_model_weights(builder)
    reference = enum[DEFAULT_WEIGHTS[arch]] if arch in DEFAULT_WEIGHTS else enum.DEFAULT
    kwargs = {"quantize": True} if quantized else {}
    if random_weights:
        weights = None
        if arch in ("googlenet", "inception_v3"):
            # What the published weights' builder sets, minus the aux heads (unused in eval).
            kwargs.update(aux_logits=False, transform_input=True, init_weights=True)
    else:
        weights = reference
    model = builder(weights=weights, **kwargs).eval()
    # The metadata (no download): same 1000 ImageNet categories and crop size with or without weights.
    return model, quantized, reference.meta["categories"], reference.transforms().crop_size[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=None,
                    help=f"TorchScript file to write (default: {default_output()}; for another arch "
                         "<arch>_quantized.pt or <arch>.pt in the same directory)")
    ap.add_argument("--labels", type=Path, default=None,
                    help="labels file to write (default: imagenet_labels.txt next to the model)")
    ap.add_argument("--arch", choices=ARCHS, default="mobilenet_v2", help="model (default: %(default)s)")
    ap.add_argument("--random-weights", action="store_true",
                    help="no download: random weights (still quantized where torchvision has an int8 variant), "
                         "for speed measurements only")
    ap.add_argument("--optimize", choices=["none", "freeze", "optimize_for_inference"], default="none",
                    help="graph optimization of the scripted model (default: %(default)s)")
    args = ap.parse_args()

    import torch
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"TORCH_HOME={os.environ.get('TORCH_HOME', '(default)')}", file=sys.stderr)
    model, quantized, categories, size = build(args.arch, args.random_weights)
    output = args.output or default_output(args.arch, quantized, args.random_weights)
    labels_path = args.labels or output.with_name("imagenet_labels.txt")

    if args.arch in ("googlenet", "inception_v3"):
        # Scripted GoogLeNet / Inception3 always return a namedtuple (logits, aux...) and warn on
        # every forward; traced (eval mode, no aux heads) they return the logits tensor.
        with torch.no_grad():
            scripted = torch.jit.trace(model, torch.zeros(1, 3, size, size))
    else:
        scripted = torch.jit.script(model)
    if args.optimize == "freeze":
        scripted = torch.jit.freeze(scripted)
    elif args.optimize == "optimize_for_inference":
        scripted = torch.jit.optimize_for_inference(scripted)

    # Check the scripted model before writing anything: [1, 1000] logits for one image.
    with torch.no_grad():
        out = scripted(torch.zeros(1, 3, size, size))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, len(categories)):
        what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        print(f"unexpected output {what} for a [1, 3, {size}, {size}] input, not [1, {len(categories)}]",
              file=sys.stderr)
        return 1

    output.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    scripted.save(str(tmp))
    tmp.replace(output)  # atomic: an interrupted export leaves no half-written model
    tmp = labels_path.with_suffix(labels_path.suffix + ".tmp")
    tmp.write_text("".join(c + "\n" for c in categories))
    tmp.replace(labels_path)
    kind = "int8" if quantized else "float32"
    weights = "random weights" if args.random_weights else "published weights"
    opt = "" if args.optimize == "none" else f", {args.optimize}"
    print(f"wrote {output} ({output.stat().st_size // 1024} KiB, {args.arch} {kind}, {weights}{opt}) and "
          f"{labels_path} ({len(categories)} labels); input 1x3x{size}x{size}: torchclassify input-size={size}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
