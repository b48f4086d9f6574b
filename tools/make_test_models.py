#!/usr/bin/env python3
"""Write the small TorchScript files the tests need into DIR (default target/test-models):

  not_classifier.pt   valid TorchScript, output [1, 3, 224, 224] (an image, not class scores)
  tuple_output.pt     valid TorchScript, output a tuple of tensors
  dict_output.pt      valid TorchScript, output a dict of tensors
  ten_classes.pt      float (non-quantized) classifier with 10 outputs
  ten_labels.txt      10 labels for it
  fixed_224.pt        float classifier that only takes 224x224 input (for `input-size` errors)
  input_shape.pt      1000 scores that tell the input's shape: class H scores highest, 500 + W next
  warns.pt            ten_classes.pt that raises a libtorch warning (TORCH_WARN) on every forward
  records_qnnpack.pt  ten_classes.pt with gst_torch_engine() -> "qnnpack", as tools/export_model.py
  records_x86.pt      records the engine a model was calibrated for; the same with "x86"
  not_torchscript.pt  random bytes

Deterministic (fixed seed); rewritten only when missing.
"""

import sys
import warnings
from pathlib import Path

from typing import Dict

import torch
from torch import nn


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


class Pair(nn.Module):
    def forward(self, x: torch.Tensor):
        return x.mean(), x.sum()


class Named(nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"logits": x.mean(dim=[2, 3])}


class TenClasses(nn.Module):
    """Scores 10 classes from the mean colour: enough to be a real (if poor) float classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class Warns(TenClasses):
    """TenClasses whose forward warns through libtorch (TorchScript compiles warnings.warn to
    aten::warn), as a model with a deprecated op would."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("gst-torch test warning from warns.pt")
        return self.fc(torch.flatten(self.pool(x), 1))


class Records(TenClasses):
    """TenClasses with the method tools/export_model.py gives every model it writes: the quantized
    engine the model was calibrated for, which the element's engine=auto then runs."""

    def __init__(self, engine: str) -> None:
        super().__init__()
        self.engine = engine

    @torch.jit.export
    def gst_torch_engine(self) -> str:
        return self.engine


class Fixed224(nn.Module):
    """10 classes from an 8x8 colour thumbnail: the Linear layer fixes the input at 224x224."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.avg_pool2d(x, 28), 1))


class InputShape(nn.Module):
    """1000 scores that say what the model was given, the same on every CPU: for a [1, 3, H, W]
    input, class H % 500 scores 2 and class 500 + W % 500 scores 1 (so top-1 is H, top-2 is
    500 + W when H != W % 500); any other shape is an error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(0) != 1 or x.size(1) != 3:
            raise RuntimeError("input_shape.pt takes [1, 3, H, W]")
        out = torch.zeros(1, 1000)
        out[0, x.size(2) % 500] += 2.0
        out[0, 500 + x.size(3) % 500] += 1.0
        return out


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/test-models")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, module in [("not_classifier.pt", Identity()), ("tuple_output.pt", Pair()),
                         ("dict_output.pt", Named()),
                         ("ten_classes.pt", TenClasses().eval()),
                         ("fixed_224.pt", Fixed224().eval()),
                         ("input_shape.pt", InputShape().eval()),
                         ("warns.pt", Warns().eval()),
                         ("records_qnnpack.pt", Records("qnnpack").eval()),
                         ("records_x86.pt", Records("x86").eval())]:
        path = out / name
        if not path.exists():
            torch.jit.script(module).save(str(path))
    labels = out / "ten_labels.txt"
    if not labels.exists():
        labels.write_text("".join(f"colour-{i}\n" for i in range(10)))
    junk = out / "not_torchscript.pt"
    if not junk.exists():
        junk.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    print(f"test models in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
