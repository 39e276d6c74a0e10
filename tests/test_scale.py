"""Scale: seams, laziness, chunking policy, model references, dask clusters, devices."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import cloudpickle
import dask
import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr

import xcloudfree
from xcloudfree.chunking import apply_policy, suggest_chunks
from xcloudfree.errors import RechunkWarning
from xcloudfree.inference import engine, modelcache
from xcloudfree.inference.tiling import plan_windows
from xcloudfree.models import HybridModel, pretrained
from xcloudfree.options import EngineOptions


@pytest.fixture(scope="module")
def scene(sample):
    """Six real dates, 200 x 180 px: several chunks, odd sizes, real clouds."""
    return sample.isel(time=slice(12, 18), y=slice(0, 200), x=slice(20, 200))


@pytest.fixture(scope="module")
def whole(scene):
    return xcloudfree.remove(scene, progress=False)


def _max_diff(a: xr.DataArray, b: xr.DataArray) -> float:
    return float(np.nanmax(np.abs(a.values.astype("f4") - b.values.astype("f4"))))


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize("shape", [(300, 100), (97, 131), (1, 7), (1030, 64)])
@pytest.mark.parametrize("origin", [(0, 0), (51, 3)])
def test_windows_cover_the_core_with_weights_summing_to_one(shape, origin):
    windows = plan_windows(shape, tile=64, halo=20, feather=8, origin=origin)
    total = np.zeros(shape)
    for w in windows:
        total[w.keep] += w.weight
        ry = w.read[0]
        # an even global start, an even (padded) length, the kept part inside the read
        assert (origin[0] + ry.start - w.y.pad[0]) % 2 == 0
        assert all(n % 2 == 0 for n in w.shape)
        assert ry.start <= w.keep[0].start and w.keep[0].stop <= ry.stop
    np.testing.assert_allclose(total, 1, atol=1e-6)


def test_windows_read_the_halo_around_what_they_keep():
    for w in plan_windows((500, 500), core=((60, 440), (60, 440)), tile=128, halo=48):
        for read, keep in zip(w.read, w.keep, strict=True):
            assert keep.start - read.start >= 48 and read.stop - keep.stop >= 48


def test_window_options_are_checked():
    with pytest.raises(ValueError, match="feather must be an even"):
        plan_windows((10, 10), tile=64, halo=4, feather=3)
    with pytest.raises(ValueError, match="tile"):
        plan_windows((10, 10), tile=16, halo=4, feather=8)


# ---------------------------------------------------------------- seams


@pytest.mark.parametrize(
    "chunks",
    [{"y": 100, "x": 90}, {"y": 77, "x": 61}, {"y": 26, "x": 33}],
    ids=["even", "odd", "smaller-than-halo"],
)
def test_chunked_equals_whole(scene, whole, chunks):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RechunkWarning)
        lazy = xcloudfree.remove(scene.chunk(chunks), progress=False)
    assert lazy.reflectance.chunks is not None
    out = lazy.compute()
    for name in ("reflectance", "quality", "cloud_probability"):
        assert _max_diff(out[name], whole[name]) <= 1e-3, name
    xr.testing.assert_equal(out.cloud_mask, whole.cloud_mask)
    coords = out.reflectance.coords.to_dataset()
    xr.testing.assert_identical(coords, whole.reflectance.coords.to_dataset())


def test_small_windows_equal_the_whole_scene(scene, whole):
    cube = xcloudfree.cube.core_first(scene)
    refl, quality = engine.fill_with_model(
        cube, whole.cloud_mask, EngineOptions(tile=40), progress=False
    )
    order = [str(b) for b in scene.band.values]
    # The engine fills from other dates; what none can fill, remove() fills afterwards
    # from the same date's surroundings (fills.spatial), the same whatever the windows.
    dates = whole.fill_source != 2
    assert _max_diff(refl.sel(band=order).where(dates), whole.reflectance.where(dates)) <= 1e-3
    # quality counts the networks' departure from the base: float rounding only
    assert _max_diff(quality.where(dates), whole.quality.where(dates)) <= 1e-5


def test_feathering_hides_seams_a_short_halo_would_leave(scene, whole, monkeypatch):
    # With a halo below the receptive field (45 px) windows disagree near their
    # edges; blending their overlap must leave a smaller jump than a hard cut.
    short = HybridModel(dataclasses.replace(pretrained().config, halo=6))
    short.load_state_dict(pretrained().state_dict())
    cube = xcloudfree.cube.core_first(scene)

    def worst(feather):
        monkeypatch.setattr(engine, "FEATHER", feather)
        refl, _ = engine.fill_with_model(
            cube, whole.cloud_mask, EngineOptions(model=short, tile=64), progress=False
        )
        ref, _ = engine.fill_with_model(
            cube, whole.cloud_mask, EngineOptions(model=short), progress=False
        )
        return np.abs(refl.values - ref.values).max()

    hard, feathered = worst(0), worst(16)
    assert hard > 1e-3  # the short halo does leave seams
    assert feathered < hard


# ---------------------------------------------------------------- laziness, graph, policy


def test_remove_is_lazy_until_computed(scene):
    reads = []

    def read(block):
        reads.append(block.shape)
        return block

    data = dsa.from_array(scene.values, chunks=(6, 10, 100, 90)).map_blocks(
        read, dtype="f4", meta=np.array((), "f4")
    )
    cube = scene.copy(data=data)
    out = xcloudfree.remove(cube)
    assert reads == [] and out.reflectance.chunks is not None
    out.reflectance.isel(time=0, band=0, y=slice(0, 5), x=slice(0, 5)).compute()
    assert reads


@pytest.mark.parametrize("use_object", [False, True], ids=["shipped", "model-object"])
def test_graph_of_a_100_chunk_job_is_small(sample, tmp_path, use_object):
    cube = sample.isel(time=slice(14, 16)).pad(y=(0, 264), x=(0, 264), mode="reflect")
    # The sample's own pixel spacing: the default mask joins its detector at this size.
    step = float(sample.x[1] - sample.x[0])
    cube = cube.assign_coords(y=sample.y[0].item() - step * np.arange(520),
                              x=sample.x[0].item() + step * np.arange(520))  # fmt: skip
    cube.to_dataset(name="r").chunk({"y": 52, "x": 52}).to_zarr(tmp_path / "c.zarr")
    lazy = xr.open_zarr(tmp_path / "c.zarr")["r"]
    assert lazy.data.npartitions == 100
    model = copy.deepcopy(pretrained()) if use_object else None
    out = xcloudfree.remove(lazy, model=model)
    assert out.attrs["mask"].startswith("ukis-csmask joined with")
    size = len(cloudpickle.dumps(dict(out.__dask_graph__())))
    assert size < 1_000_000, f"graph pickles to {size / 1e6:.2f} MB"
    assert out.reflectance.data.npartitions == 100


def test_unsuitable_chunks_are_rechunked_with_a_warning(scene):
    with pytest.warns(RechunkWarning, match="dates were merged into one chunk"):
        out = apply_policy(scene.chunk({"time": 1}), halo=49)
    assert out.chunks[0] == (6,)
    with pytest.warns(RechunkWarning, match="narrower than the 49 px halo"):
        out = apply_policy(scene.chunk({"y": 20}), halo=49)
    assert min(out.chunks[2]) >= 49
    with dask.config.set({"xcloudfree.task-memory": "8MiB"}):
        with pytest.warns(RechunkWarning, match="over the task-memory budget"):
            out = apply_policy(scene.chunk(), halo=49)
    assert max(out.chunks[2]) < 200
    # good chunks, and a band merge alone, pass without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert apply_policy(scene.chunk({"band": 1, "y": 100}), halo=49).chunks[1] == (10,)
        assert apply_policy(scene, halo=49) is scene


def test_task_memory_budget_follows_the_workers_memory():
    """Unset, the budget is half the memory per thread of the client's workers (or of
    this machine), within 1-4 GiB; set, it is what the user said."""
    import distributed

    from xcloudfree.chunking import _budget

    assert 2**30 <= _budget() <= 4 * 2**30
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, memory_limit="6GiB", processes=False,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
    ):  # fmt: skip
        assert _budget() == 1.5 * 2**30
        with dask.config.set({"xcloudfree.task-memory": "3GiB"}):
            assert _budget() == 3 * 2**30


def test_suggested_chunks_pass_the_policy_silently(scene):
    chunks = suggest_chunks(dict(scene.sizes), size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = apply_policy(scene.chunk(chunks), halo=49)
    assert out.chunks[2] == chunks["y"]


# ---------------------------------------------------------------- models on workers


def test_a_model_object_becomes_a_small_token(scene):
    model = copy.deepcopy(pretrained())
    ref = modelcache.model_ref(model)
    assert isinstance(ref, str) and len(ref) < 80
    assert modelcache.model_ref(model) == ref  # same weights, same token
    before = modelcache.load_count()
    for _ in range(3):
        modelcache.get_model(ref, "cpu")
    assert modelcache.load_count() - before <= 1
    with pytest.raises(RuntimeError, match="not known in this process"):
        modelcache.get_model("xcloudfree-model:0000", "cpu")


def test_local_cluster_with_processes_equals_threads(scene, whole):
    distributed = pytest.importorskip("distributed")
    model = copy.deepcopy(pretrained())
    cube = scene.chunk({"y": 100, "x": 90})
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        shipped = xcloudfree.remove(cube).compute()
        own = xcloudfree.remove(cube, model=model).compute()
        loads = client.run(modelcache.load_count)
    for out in (shipped, own):
        assert _max_diff(out.reflectance, whole.reflectance) <= 1e-5
        xr.testing.assert_equal(out.cloud_mask, whole.cloud_mask)
    # each worker process loaded the shipped model and the user's model once
    assert all(n <= 2 for n in loads.values()), loads


# ---------------------------------------------------------------- devices and precision


def test_bfloat16_on_cpu_is_close_to_float32(scene, whole):
    small = scene.isel(y=slice(0, 64), x=slice(0, 64))
    ref = xcloudfree.remove(small, progress=False)
    bf16 = xcloudfree.remove(small, dtype="bfloat16", mask=ref.cloud_mask, progress=False)
    assert bf16.reflectance.dtype == np.float32
    assert _max_diff(bf16.reflectance, ref.reflectance) < 0.05


def test_device_and_precision_errors_name_the_fix(scene):
    with pytest.raises(ValueError, match="dtype must be one of"):
        xcloudfree.remove(scene, dtype="int8")
    with pytest.raises(ValueError, match="batch_size"):
        xcloudfree.remove(scene, batch_size=0)
    with pytest.raises(ValueError, match="unknown device"):
        xcloudfree.remove(scene, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            xcloudfree.remove(scene, device="cuda")
        with pytest.raises(ValueError, match="float16' needs a CUDA"):
            xcloudfree.remove(scene, dtype="float16", device="cpu")


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu.sh runs it there)"
)
def test_cuda_equals_cpu(scene, whole):
    out = xcloudfree.remove(scene, device="cuda", mask=whole.cloud_mask, progress=False)
    assert _max_diff(out.reflectance, whole.reflectance) < 1e-3
    bf16 = xcloudfree.remove(
        scene, device="cuda", dtype="bfloat16", mask=whole.cloud_mask, progress=False
    )
    assert _max_diff(bf16.reflectance, whole.reflectance) < 0.05


def test_eager_progress_bar(scene, capsys):
    xcloudfree.remove(scene.isel(time=slice(0, 4)), batch_size=1, progress=True)
    assert "filling" in capsys.readouterr().err
