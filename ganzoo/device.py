"""Device and precision choice: CUDA with AMP when present, fp32 on the CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import GanzooError


@dataclass(frozen=True)
class Precision:
    name: str                      # fp32 | bf16 | fp16
    autocast_dtype: torch.dtype | None
    grad_scaler: bool


def select_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise GanzooError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GanzooError("--device cuda was asked for, but this machine has no usable CUDA GPU; "
                              "use --device cpu (or auto).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GanzooError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif device.type != "cpu":
        raise GanzooError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}.")
    return device


def select_precision(spec: str, device: torch.device) -> Precision:
    """auto: bf16 autocast on CUDA where supported (else fp16 + grad scaler), fp32 on the CPU."""
    if spec == "auto":
        if device.type != "cuda":
            spec = "fp32"
        else:
            spec = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if spec == "fp32":
        return Precision("fp32", None, False)
    if spec == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if spec == "fp16":
        if device.type != "cuda":
            raise GanzooError("--precision fp16 needs a CUDA device; on the CPU use fp32 or bf16.")
        return Precision("fp16", torch.float16, True)
    raise GanzooError(f"--precision must be auto, fp32, bf16 or fp16, got {spec!r}.")
