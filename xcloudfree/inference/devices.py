"""Devices: which one, how much to give it per forward, and one forward at a time.

Everything here is about running networks on a CPU or GPU, apart from what they
compute: resolving ``device="auto"``, the pixel budget of a batch, grouping
windows into batches, mixed precision, the per-device lock, and giving freed
memory back to the operating system.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections import defaultdict
from typing import Any

from ..errors import OptionError

__all__ = [
    "BATCH_PIXELS",
    "batch_pixels",
    "batches",
    "release_memory",
    "resolve_device",
    "running",
]

#: Pixels (windows x window area) per forward pass when ``batch_size`` is None. On a
#: CPU bigger batches buy no speed (measured on the sample: one 354 px window per pass
#: runs as fast as four) and cost memory, so the budget is one window of a 128 px
#: chunk with its halo (a bigger window still runs alone): ~0.16 GB of activations,
#: and peak RSS of remove() on the sample 1.20 -> 1.05 GB against 2**17. On a GPU ~20 GB.
BATCH_PIXELS = {"cpu": 2**16, "cuda": 2**23}
#: Bytes of activations per pixel of a batch (10 bands, float32; measured 2.4 kB on
#: the sample), to fit the CPU budget to the memory actually free.
BYTES_PER_PIXEL = 2_500
#: Share of the free memory one batch may take on a CPU.
MEMORY_SHARE = 0.25
_DEVICE_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)


@contextlib.contextmanager
def running(dev, dtype: str):
    """Inference mode, mixed precision, and one forward at a time per device.

    Dask may run several tasks in threads of one worker; on a GPU they take turns,
    as dask-cuda advises (one thread per GPU), instead of splitting its memory, and
    on a CPU likewise (torch's own threads already use every core).
    """
    import torch

    # On a CPU too: torch already spreads one forward over every core, and two at once
    # would only double the activations in memory.
    lock = _DEVICE_LOCKS[str(dev)]
    cast = (
        torch.autocast(device_type=dev.type, dtype=getattr(torch, dtype))
        if dtype != "float32"
        else contextlib.nullcontext()
    )
    with lock, cast, torch.inference_mode():
        yield


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on other C libraries."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Give the heap memory freed by a block back to the operating system.

    glibc keeps freed blocks below its mmap threshold (up to 32 MB, raised by every
    large free) in per-thread arenas, so after a block of a few hundred MB of windows
    and activations the process keeps that memory, and the next block of another
    thread adds its own: the process grows to several blocks' worth. Dask's
    distributed workers trim for the same reason (``MALLOC_TRIM_THRESHOLD_``); a
    threaded scheduler or a plain call does not, so each block trims at its end.
    Costs milliseconds against seconds of forwards; a no-op off glibc.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def batches(jobs: list, size: int | None, dev):
    """Jobs grouped by window shape, in batches of ``size`` (None: by the pixel budget)."""
    by_shape: dict[tuple[int, int], list] = defaultdict(list)
    for job in jobs:
        by_shape[job[0].shape].append(job)
    budget = batch_pixels(dev)
    for (h, w), group in by_shape.items():
        n = size or max(1, budget // (h * w))
        for i in range(0, len(group), n):
            yield group[i : i + n]


def batch_pixels(dev) -> int:
    """Pixels per forward pass when ``batch_size`` is None.

    A GPU gets :data:`BATCH_PIXELS` ``["cuda"]``; a CPU the smaller of
    :data:`BATCH_PIXELS` ``["cpu"]`` and :data:`MEMORY_SHARE` of the memory free now
    (at :data:`BYTES_PER_PIXEL`), so a laptop with little free memory gets smaller
    batches instead of swapping.

    Examples
    --------
    >>> import torch
    >>> 2**15 <= batch_pixels(torch.device("cpu")) <= BATCH_PIXELS["cpu"]
    True
    """
    if dev.type != "cpu":
        return BATCH_PIXELS.get(dev.type, BATCH_PIXELS["cpu"])
    import psutil

    free = psutil.virtual_memory().available
    return int(min(BATCH_PIXELS["cpu"], max(2**15, MEMORY_SHARE * free / BYTES_PER_PIXEL)))


def resolve_device(device: Any = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``.

    Raises
    ------
    xcloudfree.errors.OptionError
        For an unknown device string, or ``"cuda"`` on a machine without a GPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            f"device={device!r} but torch sees no CUDA GPU here (torch {torch.__version__}): "
            "use device='auto' or 'cpu', or install a CUDA build of torch"
        )
    return dev
