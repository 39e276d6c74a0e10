"""Reading the weights files of the networks: one place for the checks every file gets."""

from __future__ import annotations

import hashlib
import io
import os

import torch

__all__ = ["fingerprint", "read_weights"]


def read_weights(
    path: str | os.PathLike | io.BytesIO, *, fmt: str, version: int, writer: str, fix: str
) -> dict:
    """The dict saved at ``path``, checked to be an xcloudfree file of format ``fmt``.

    Parameters
    ----------
    path
        The file (or buffer).
    fmt, version
        The format tag the file must carry and the newest format version read here.
    writer
        What writes such files (named in the error), e.g. ``"HybridModel.save"``.
    fix
        What to pass instead, appended to the error for an unreadable file.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    xcloudfree.errors.ModelFileError
        If the file is unreadable, of another format, or from a newer version.

    Examples
    --------
    >>> buf = io.BytesIO(); torch.save({"format": "x", "format_version": 1}, buf); _ = buf.seek(0)
    >>> read_weights(buf, fmt="x", version=1, writer="w", fix="")["format"]
    'x'
    """
    from ..errors import ModelFileError

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{path!r} is not a readable xcloudfree model file (torch.load failed with "
            f"{type(exc).__name__}): pass a file written by {writer}{fix}"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ModelFileError(f"{path!r} is not an xcloudfree model (a {fmt} file by {writer})")
    if blob["format_version"] > version:
        raise ModelFileError(
            f"{path!r} was saved by a newer xcloudfree (format {blob['format_version']}): upgrade"
        )
    return blob


def fingerprint(net: torch.nn.Module) -> str:
    """A short hash of a network's weights, for the provenance attrs of a result.

    The same weights give the same fingerprint, whatever file or object they came from.

    Examples
    --------
    >>> a = torch.nn.Linear(2, 1); b = torch.nn.Linear(2, 1); b.load_state_dict(a.state_dict())
    <All keys matched successfully>
    >>> fingerprint(a) == fingerprint(b), len(fingerprint(a))
    (True, 12)
    """
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
