"""One front door: every option checked once, before any work; and the fix each error names works.

Issue 13: options were re-declared and re-checked by ``remove()``, the mask, the engine
and the model cache, and on dask some failed only at ``compute()``.
"""

from __future__ import annotations

import pathlib
import pickle
import re
import threading

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xcloudfree
from xcloudfree import cube as cube_module
from xcloudfree import masking, removal
from xcloudfree.errors import CubeError, OptionError
from xcloudfree.masking import spectral
from xcloudfree.options import EngineOptions, MaskOptions, RemovalOptions


@pytest.fixture(scope="module")
def small(sample):
    return sample.isel(time=slice(10, 16), y=slice(0, 64), x=slice(0, 64)).copy()


def _counting_cube(small, reads):
    """``small`` on dask, recording every chunk read: a bad option must fail before one."""

    def read(block, block_info=None):
        reads.append(block_info[0]["chunk-location"] if block_info else None)
        return block

    data = da.from_array(small.values, chunks=(-1, -1, 32, 32)).map_blocks(
        read, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32)
    )
    return small.copy(data=data)


# Each case: the bad keyword arguments, the error, a phrase of its message, and the fix
# the message names (the arguments to call with instead).
BAD_OPTIONS = {
    "unknown method": ({"method": "medain"}, OptionError, "choose one of", {"method": "median"}),
    "dtype": ({"dtype": "float8"}, OptionError, "dtype must be one of", {"dtype": "float32"}),
    "float16 on cpu": ({"dtype": "float16", "device": "cpu"}, OptionError, "needs a CUDA",
                       {"dtype": "bfloat16", "device": "cpu"}),
    "batch_size 0": ({"batch_size": 0}, OptionError, "leave it None", {"batch_size": None}),
    "batch_size float": ({"batch_size": 1.5}, OptionError, "integer >= 1", {"batch_size": 2}),
    "batch_size bool": ({"batch_size": True}, OptionError, "integer >= 1", {"batch_size": 1}),
    "bogus stage": ({"stages": ("stgan", "gan")}, OptionError, "pass \\('stgan', 'cyclegan'\\)",
                    {"stages": ("stgan", "cyclegan")}),
    "repeated stage": ({"stages": ("stgan", "stgan")}, OptionError, "\\('stgan',\\)",
                       {"stages": ("stgan",)}),
    "no stage": ({"stages": ()}, OptionError, "\\('cyclegan',\\)", {"stages": ("cyclegan",)}),
    "threshold > 1": ({"threshold": 1.5}, OptionError, "outside 0-1", {"threshold": 0.5}),
    "threshold text": ({"threshold": "0.5"}, OptionError, "pass a probability",
                       {"threshold": 0.5}),
    "dilate < 0": ({"dilate": -1}, OptionError, "whole number", {"dilate": 2}),
    "dilate float": ({"dilate": 1.5}, OptionError, "whole number", {"dilate": 2}),
    "unknown device": ({"device": "tpu"}, OptionError, "use 'auto', 'cpu'", {"device": "cpu"}),
    "cuda without gpu": ({"device": "cuda"}, OptionError, "use device='auto' or 'cpu'",
                         {"device": "auto"}),
    "unknown mask": ({"mask": "clouds"}, OptionError, "choose one of fused, temporal",
                     {"mask": "spectral"}),
    "mask of a wrong type": ({"mask": 0.5}, CubeError, "mask source name", {"mask": "temporal"}),
    "threshold with scl": ({"mask": "scl", "threshold": 0.5}, OptionError,
                           "does not apply to method='scl'", {"mask": "spectral",
                                                              "threshold": 0.5}),
    "threshold with a callable": ({"mask": lambda c: c.isel(band=0) > 0.3, "threshold": 0.5},
                                  OptionError, "inside the callable",
                                  {"mask": lambda c: c.isel(band=0) > 0.5}),
    "adapt with median": ({"method": "median", "adapt": True}, OptionError,
                          "use method='regression'", {"method": "regression", "adapt": True}),
    "model with nearest": ({"method": "nearest", "model": "x.pt"}, OptionError,
                           "drop them, or use method='hybrid'", {"method": "nearest"}),
    "model of a wrong type": ({"model": 3}, OptionError, "pass model=None", {"model": None}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_OPTIONS), ids=list(BAD_OPTIONS))
def test_a_bad_option_fails_before_any_read_and_its_fix_works(small, case):
    import torch

    bad, error, phrase, fix = BAD_OPTIONS[case]
    bad = dict(bad)
    if case == "cuda without gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device='cuda' is valid here")
    reads: list = []
    lazy = _counting_cube(small, reads)
    method = bad.pop("method", "hybrid")
    with pytest.raises(error, match=phrase):
        xcloudfree.remove(lazy, method, **bad)
    assert reads == []  # refused before dask read anything, not at compute()
    # The fix the message names builds the (lazy) result, still without a read.
    fixed = dict(fix)
    out = xcloudfree.remove(lazy, fixed.pop("method", method), **fixed)
    assert out.reflectance.chunks is not None
    assert reads == []


def _count(monkeypatch, owner, name, calls):
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("hybrid", {}),
        ("regression", {"adapt": True}),
        ("median", {}),
        ("nearest", {"mask": "spectral"}),
        ("hybrid", {"mask": "model"}),
    ],
    ids=["hybrid", "regression+adapt", "median", "spectral mask", "model mask"],
)
def test_options_are_built_and_the_cube_checked_once(small, monkeypatch, method, kwargs):
    calls: list = []
    # as_cube is imported by name where it is used: count every binding of it.
    for owner in (removal, masking, spectral, cube_module):
        _count(monkeypatch, owner, "as_cube", calls)
    _count(monkeypatch, MaskOptions, "__post_init__", calls)
    _count(monkeypatch, RemovalOptions, "build", calls)
    lazy = small.chunk({"y": 32, "x": 32})
    xcloudfree.remove(lazy, method, **kwargs)
    assert calls.count("as_cube") == 1
    assert calls.count("build") == 1
    assert calls.count("__post_init__") == 1


def test_the_options_are_a_small_picklable_plan(sample):
    from xcloudfree.models import HybridModel, pretrained

    model = HybridModel(pretrained().config)
    model.load_state_dict(pretrained().state_dict())
    opts = RemovalOptions.build("hybrid", model=model, threshold=0.4, dilate=3)
    blob = pickle.dumps(opts)
    assert len(blob) < 2_000  # a reference to the model, never its weights
    assert pickle.loads(blob) == opts
    assert opts.engine.model.startswith("xcloudfree-model:")
    assert opts.mask == MaskOptions("fused", threshold=0.4, dilate=3)
    with pytest.raises(Exception, match="cannot assign"):
        opts.method = "median"  # frozen: what was checked cannot change afterwards


def test_engine_options_refuse_what_the_engine_could_not_run():
    for bad, phrase in [
        ({"tile": 8}, "tile must be an integer >= 32"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"stages": "stgan+cyclegan"}, "stages="),
    ]:
        with pytest.raises(OptionError, match=re.escape(phrase)):
            EngineOptions(**bad)
    assert EngineOptions(stages="stgan").stages == ("stgan",)


def test_mask_functions_share_the_front_doors_checks(small):
    for fn in (xcloudfree.mask_classes, xcloudfree.cloud_mask):
        with pytest.raises(OptionError, match="outside 0-1"):
            fn(small, threshold=2)
        with pytest.raises(OptionError, match="choose one of fused, temporal"):
            fn(small, "clouds")


def test_concurrent_removals_in_threads_equal_one_at_a_time(sample):
    # Two notebook cells (or a dask-threaded caller) running the hybrid at once share
    # one cached model and one device lock: each result must equal its run alone.
    crops = [
        sample.isel(time=slice(10, 16), y=slice(0, 64), x=slice(0, 64)),
        sample.isel(time=slice(12, 18), y=slice(64, 128), x=slice(32, 96)),
    ]
    alone = [xcloudfree.remove(c, progress=False).reflectance.values for c in crops]
    results: list = [None, None]
    errors: list = []

    def run(i):
        try:
            results[i] = xcloudfree.remove(crops[i], progress=False).reflectance.values
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for got, want in zip(results, alone, strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_package_imports_no_private_dask_module():
    # The halo graph once built on dask._task_spec, which changes between releases.
    root = pathlib.Path(xcloudfree.__file__).parent
    private = re.compile(r"^\s*(from|import)\s+(dask|distributed)(\.\w+)*\._", re.M)
    offenders = [
        str(p.relative_to(root)) for p in root.rglob("*.py") if private.search(p.read_text())
    ]
    assert offenders == []


def test_the_halo_graph_equals_dask_overlap(sample):
    # The public-API halo graph against dask's own overlap on the same block function.
    import functools

    from xcloudfree.inference.halo import with_halo

    def block_sum(block, *, origin, core):
        (y0, y1), (x0, x1) = core
        s = block.sum(axis=(0, 1))
        padded = np.pad(s, 2, mode="edge")
        out = sum(padded[2 + dy : 2 + dy + s.shape[0], 2 + dx : 2 + dx + s.shape[1]]
                  for dy in (-2, 0, 2) for dx in (-2, 0, 2))  # fmt: skip
        return out[y0:y1, x0:x1].astype(np.float32)

    values = sample.isel(time=slice(0, 3)).values
    arr = da.from_array(values, chunks=(-1, -1, 50, 70))
    ours = with_halo(functools.partial(block_sum), [arr], 2, out_chunks=arr.chunks[2:])
    whole = block_sum(values, origin=(0, 0), core=((0, values.shape[2]), (0, values.shape[3])))
    np.testing.assert_array_equal(ours.compute(scheduler="threads"), whole)
    # and once more through re-read (lazy) input, as the fill reads its chunks
    lazy = arr.map_blocks(lambda b: b + 0, dtype=arr.dtype)
    again = with_halo(
        functools.partial(block_sum), [lazy], 2, out_chunks=arr.chunks[2:], inline_first=True
    )
    np.testing.assert_array_equal(again.compute(scheduler="sync"), whole)
    assert isinstance(xr.DataArray(ours).data, da.Array)


def test_halo_strips_run_before_fills_on_a_cluster(sample):
    # A neighbour's halo strip is a cheap copy that another worker waits for; queued on
    # its worker behind a long fill, it idled the other worker for a whole fill. The
    # strips are one layer with a scheduler priority, and the result is unchanged.
    import functools

    import distributed

    from xcloudfree.inference.halo import with_halo

    def first_plus_second(a, b, *, origin, core):
        (y0, y1), (x0, x1) = core
        return (a.sum(axis=(0, 1)) + b[0, 0])[y0:y1, x0:x1].astype(np.float32)

    values = sample.isel(time=slice(0, 2)).values
    first = da.from_array(values, chunks=(-1, -1, 128, 128)).map_blocks(lambda b: b + 0)
    second = da.from_array(values[:1, :1] * 2, chunks=(-1, -1, 128, 128))
    second = second.map_blocks(lambda b: b + 0)
    lazy = with_halo(
        functools.partial(first_plus_second), [first, second], 8,
        out_chunks=first.chunks[2:], inline_first=True,
    )  # fmt: skip
    graph = lazy.__dask_graph__()
    (strips,) = [name for name in graph.layers if name.endswith("-strip")]
    assert graph.layers[strips].annotations == {"priority": 100}
    # each of 4 chunks reads 3 neighbours of both arrays (in-memory input is not inlined)
    assert len(graph.layers[strips]) == 2 * 4 * 3
    expected = values.sum(axis=(0, 1)) + values[0, 0] * 2
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        np.testing.assert_allclose(client.compute(lazy).result(), expected, rtol=1e-6)


def test_a_rechunk_warning_points_at_the_callers_line(small):
    from xcloudfree.errors import RechunkWarning

    lazy = small.chunk({"y": 32, "x": 32})  # narrower than the model's halo
    for method in ("hybrid", "nearest"):
        with pytest.warns(RechunkWarning) as record:
            xcloudfree.remove(lazy, method)
        assert {w.filename for w in record} == {__file__}, method
