"""Device and precision choice: CUDA with AMP when present; on the CPU, bf16 where its matrix units
compute in bf16 natively (AVX512-BF16, AMX), fp32 elsewhere."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
            raise GanzooError(f"--device {spec} was asked for, but this machine has no usable CUDA GPU; "
                              f"use --device cpu (or auto).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GanzooError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif device.type != "cpu":
        raise GanzooError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}.")
    return device


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # /proc/cpuinfo's names for bf16 dot products in hardware


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX), so bf16 autocast
    is faster than fp32 there; elsewhere oneDNN emulates bf16 and it is slower. Linux: /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return bool(set(line.split(":", 1)[1].split()) & set(NATIVE_BF16_FLAGS))
    except OSError:
        pass
    return False


def select_precision(spec: str, device: torch.device) -> Precision:
    """auto: bf16 autocast on CUDA where supported (else fp16 + grad scaler); on the CPU, bf16 where the CPU
    has native bf16 (cpu_has_native_bf16), else fp32."""
    if spec == "auto":
        if device.type == "cuda":
            spec = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            spec = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if spec == "fp32":
        return Precision("fp32", None, False)
    if spec == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if spec == "fp16":
        if device.type != "cuda":
            raise GanzooError("--precision fp16 needs a CUDA device; on the CPU use fp32 or bf16.")
        return Precision("fp16", torch.float16, True)
    raise GanzooError(f"--precision must be auto, fp32, bf16 or fp16, got {spec!r}.")


def free_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on the device: CUDA's own count; on the CPU, MemAvailable capped by a container's
    cgroup limit (the one reading of free memory: preflight's check and the data's memory budget)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    free = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            free = min(free or 2 ** 63, int(limit) - used)
    if free is None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return free
