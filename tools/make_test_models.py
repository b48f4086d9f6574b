#!/usr/bin/env python3
"""Write the small TorchScript files the tests need into DIR (default target/test-models):

  not_classifier.pt   valid TorchScript, output [1, 3, 224, 224] (an image, not class scores)
  tuple_output.pt     valid TorchScript, output a tuple of tensors
  dict_output.pt      valid TorchScript, output a dict of tensors
  ten_classes.pt      float (non-quantized) classifier with 10 outputs
  ten_labels.txt      10 labels for it
  fixed_224.pt        float classifier that only takes 224x224 input (for `input-size` errors)
  not_torchscript.pt  random bytes

Deterministic (fixed seed); rewritten only when missing.
"""

import sys
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


class Fixed224(nn.Module):
    """10 classes from an 8x8 colour thumbnail: the Linear layer fixes the input at 224x224."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.avg_pool2d(x, 28), 1))


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/test-models")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, module in [("not_classifier.pt", Identity()), ("tuple_output.pt", Pair()),
                         ("dict_output.pt", Named()),
                         ("ten_classes.pt", TenClasses().eval()),
                         ("fixed_224.pt", Fixed224().eval())]:
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
