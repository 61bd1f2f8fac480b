"""How a model's weights run on the CPU: float32, bfloat16 or int8 linear layers."""

from __future__ import annotations

import warnings

#: How a model's weights run: ``auto`` is bfloat16 on CPUs that multiply it in hardware, else float32.
PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX). There bfloat16 weights
    run about twice as fast as float32 (docs/results.md); elsewhere bfloat16 is emulated and slower.
    Read from /proc/cpuinfo where there is one (no torch import: the query path does without it)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers of torch; without them, assume no
        return False


def resolve_precision(precision: str) -> str:
    """``precision`` checked, with ``auto`` made concrete for this machine."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


def to_precision(model, precision: str):
    """``model`` (float32) in ``precision``: bfloat16 weights, or int8 linear layers with a scale per
    output channel (one scale per matrix cost the NER model 1.8 F1 on CoNLL test; per channel, 0.4,
    at the same speed). Half precision (float16) is left out: it is slow on CPUs."""
    import torch

    if precision == "bfloat16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        with warnings.catch_warnings():  # torch marks its quantized tensor constructors as deprecated
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return model
