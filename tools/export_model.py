#!/usr/bin/env python3
"""Export torchvision's int8 MobileNetV2 (ImageNet) as a TorchScript file for torchclassify.

    export_model.py [--output PATH] [--labels PATH]

Builds torchvision.models.quantization.mobilenet_v2(weights="IMAGENET1K_QNNPACK_V1",
quantize=True), scripts it with torch.jit.script and saves it, plus the model's 1000 category
names (one per line, class-id order) from the weights' metadata. The weights come from
$TORCH_HOME/hub/checkpoints when present (offline), otherwise torchvision downloads them once.

The saved file does not depend on the quantized engine used here: libtorch re-packs the weights
for whatever engine is active when the element loads it.
"""

import argparse
import os
import sys
from pathlib import Path


def default_output() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "gst-torch" / "mobilenet_v2_quantized.pt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=default_output(),
                    help="TorchScript file to write (default: %(default)s)")
    ap.add_argument("--labels", type=Path, default=None,
                    help="labels file to write (default: imagenet_labels.txt next to the model)")
    args = ap.parse_args()
    labels_path = args.labels or args.output.with_name("imagenet_labels.txt")

    import torch
    import torchvision
    from torchvision.models.quantization import MobileNet_V2_QuantizedWeights, mobilenet_v2

    weights = MobileNet_V2_QuantizedWeights.IMAGENET1K_QNNPACK_V1
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"TORCH_HOME={os.environ.get('TORCH_HOME', '(default)')}", file=sys.stderr)
    model = mobilenet_v2(weights=weights, quantize=True).eval()
    scripted = torch.jit.script(model)

    # Check the scripted model before writing anything: [1, 1000] logits for one image.
    with torch.no_grad():
        out = scripted(torch.zeros(1, 3, 224, 224))
    if tuple(out.shape) != (1, 1000):
        print(f"unexpected output shape {tuple(out.shape)}", file=sys.stderr)
        return 1

    categories = weights.meta["categories"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    scripted.save(str(tmp))
    tmp.replace(args.output)  # atomic: an interrupted export leaves no half-written model
    labels_path.write_text("".join(c + "\n" for c in categories))
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KiB) and {labels_path} "
          f"({len(categories)} labels)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
