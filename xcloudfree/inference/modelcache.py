"""Models on workers: loaded once per process, referred to by a small picklable handle.

A task graph never carries a model. It carries a *reference*:

* ``None`` -- the shipped pretrained model, loaded from the package by each process;
* a path -- a saved model, loaded once per process and device;
* a token ``"xcloudfree-model:<sha1>"`` -- a :class:`~xcloudfree.models.HybridModel`
  object given by the user. The object is kept in this process's registry and, when
  a :class:`distributed.Client` is active, shipped once to every worker by a
  worker plugin (workers that join later get it too).

Every process keeps one copy per reference and device, however many tasks use it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from typing import Any

from distributed import WorkerPlugin

from ..errors import OptionError
from .devices import resolve_device

__all__ = ["ModelPlugin", "get_model", "load_count", "model_ref"]

_TOKEN_PREFIX = "xcloudfree-model:"
# token -> serialized model, in this process (client or worker).
_REGISTRY: dict[str, bytes] = {}
_LOCK = threading.Lock()
_LOADS = [0]


def load_count() -> int:
    """How many times this process has loaded a model from bytes or a file (for tests).

    Examples
    --------
    >>> n = load_count(); _ = get_model(None, "cpu"); load_count() - n <= 1
    True
    """
    return _LOADS[0]


def _file_version(ref: str) -> tuple[int, int]:
    """Modification time and size of a model file: part of the cache key, so a file
    rewritten at the same path is loaded again. ``(0, 0)`` for tokens and missing files
    (loading then raises the error that names the problem)."""
    if ref.startswith(_TOKEN_PREFIX):
        return (0, 0)
    try:
        st = os.stat(ref)
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def _load_cached(ref: str, device: str):
    return _load_version(ref, device, _file_version(ref))


@functools.lru_cache(maxsize=8)
def _load_version(ref: str, device: str, version: tuple[int, int]):
    from ..models.hybrid import for_inference, load_model

    _LOADS[0] += 1
    if ref.startswith(_TOKEN_PREFIX):
        try:
            blob = _REGISTRY[ref]
        except KeyError:
            raise RuntimeError(
                f"model {ref} is not known in this process: the distributed Client must exist "
                "before remove() is called (so the model can be sent to its workers), or pass "
                "model= as the path of a saved model that every worker can read"
            ) from None
        return for_inference(load_model(io.BytesIO(blob), device=device))
    return for_inference(load_model(ref, device=device))


def _not_a_model(obj: Any) -> OptionError:
    return OptionError(
        f"model must be None (the shipped model), a path or a HybridModel, got "
        f"{type(obj).__name__}: pass model=None, or load yours with xcloudfree.load_model(path)"
    )


def get_model(ref: Any, device: Any = "auto"):
    """The model a reference stands for, on ``device``, loaded once per process.

    ``ref`` is ``None`` (the shipped model), a path, a token from
    :func:`model_ref`, or a :class:`~xcloudfree.models.HybridModel` (used as is).

    Examples
    --------
    >>> get_model(None, "cpu") is get_model(None, "cpu")  # loaded once per process
    True
    """
    from ..models import HybridModel, pretrained

    dev = str(resolve_device(device))
    if ref is None:
        # the shipped model has its own per-process cache; count its loads too
        before = pretrained.cache_info().misses
        model = pretrained(dev)
        _LOADS[0] += pretrained.cache_info().misses - before
        return model
    if isinstance(ref, HybridModel):
        return ref.to(dev).eval()
    if isinstance(ref, (str, os.PathLike)):
        return _load_cached(os.fspath(ref), dev)
    raise _not_a_model(ref)


def _serialize(model) -> bytes:
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


class ModelPlugin(WorkerPlugin):
    """A worker plugin that installs one serialized model in each worker's registry.

    Examples
    --------
    >>> plugin = ModelPlugin("xcloudfree-model:abc", b"...")
    >>> plugin.setup(); _REGISTRY["xcloudfree-model:abc"]
    b'...'
    """

    idempotent = True  # registering the same model twice is a no-op

    def __init__(self, token: str, blob: bytes) -> None:
        self.token = token
        self.blob = blob
        self.name = token

    def setup(self, worker=None) -> None:
        _REGISTRY[self.token] = self.blob


def _active_client():
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        return None


def model_ref(model: Any) -> Any:
    """A small picklable reference to ``model`` for task graphs.

    ``None`` and paths are returned as they are (a path as ``str``). A
    :class:`~xcloudfree.models.HybridModel` is serialized once, registered in this
    process and, if a :class:`distributed.Client` is active, on its workers; the
    returned token is all a task needs.

    Examples
    --------
    >>> from xcloudfree.models import HybridModel
    >>> ref = model_ref(HybridModel())
    >>> ref.startswith("xcloudfree-model:"), type(get_model(ref, "cpu")).__name__
    (True, 'HybridModel')
    """
    from ..models import HybridModel

    if model is None:
        return None
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if not isinstance(model, HybridModel):
        raise _not_a_model(model)
    blob = _serialize(model)
    token = _TOKEN_PREFIX + hashlib.sha1(blob).hexdigest()
    with _LOCK:
        _REGISTRY[token] = blob
    client = _active_client()
    if client is not None:
        client.register_plugin(ModelPlugin(token, blob), name=token)
    return token
