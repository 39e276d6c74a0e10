"""The mask on each site when the other sites choose it: leave one site out.

For every series in ../shared/data (the L1C ROI 146 series near Rome, the Hungary and
Sweden L2A cubes, and the WorldCereal Belgium L2A series, which stands for both Belgian
series: one site), real clouds of the site's own cloudy dates are laid over its clear
dates with their opacity (see :func:`lay`), and each mask source is scored there:

* **fill gap**: PSNR under the laid cloud of the ``local`` fill given the source's mask,
  minus the same fill given the reference mask (the laid cloud, plus the site's labels
  of its real clouds: spectral test on Rome, ``s2_dlmask`` on Hungary and Sweden, SCL on
  Belgium). Negative: the source costs that much. Where the reference labels miss real
  haze on other dates (Rome, Sweden, Belgium) the source may beat it;
* **opaque recall**: laid pixels of opacity above 0.5 that the mask covers;
* **clear-date loss**: on the dates the reference calls clear (cloud under 5 %), the
  share of its clear pixels that the mask flags; the mean and the worst date, and how
  many dates lose over 5 %. References miss haze (SCL on Belgium calls hazy and even
  overcast dates clear: looked at), so a loss here is not always a false alarm.

**Leave one site out**: for each site, the source the *other* sites choose is the one
scored on it, by two rules (:data:`RULES`): the best mean fill gap (set before any
figure), and the issue's floors first (opaque recall >= 0.995 and a fill gap of at
least -1 dB on every other site), then the fewest clear pixels lost (written after the
first table was seen: say so wherever it is quoted). The sources' own rules and
weights: the temporal network was trained on training dates of all four sites (see
``scripts/train_mask.py``), so its rows are not held out by site; ukis-csmask was
trained elsewhere (SPARCS, CloudSEN12+); :mod:`xcloudfree.masking.fused` fits nothing.

    python benchmarks/mask_sites.py [--out benchmarks/results/mask_sites.md] [--sites ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shared_data as sd

import xcloudfree
from xcloudfree.masking.classes import from_scl
from xcloudfree.masking.spectral import dilate_mask

SOURCES = ("temporal", "fused", "csmask")
#: Blue a fully opaque laid cloud adds over the ground (opacity = added blue / this).
OPAQUE_BLUE = 0.25
SEED = 0
TARGETS = 6


def worldcereal() -> tuple[xr.DataArray, xr.DataArray]:
    """The 118-date WorldCereal series (B02 B03 B04 B08, 10 m) and its SCL classes."""
    d = sd.require() / "worldcereal_belgium_l2a"
    ds = xr.open_dataset(d / "belgium_31UDS_10m.nc")
    scl20 = xr.open_dataset(d / "belgium_31UDS_20m.nc", mask_and_scale=False)["SCL"].values
    bands = ["B02", "B03", "B04", "B08"]
    coords = {"time": ds["timestamp"].values, "y": ds["y"].values, "x": ds["x"].values}
    cube = xr.DataArray(
        np.stack([ds[b].values for b in bands], 1).astype(np.float32),
        dims=("time", "band", "y", "x"), coords={**coords, "band": bands},
        attrs={"product": "Sentinel-2 L2A"},
    )  # fmt: skip
    scl = from_scl(scl20.repeat(2, 1).repeat(2, 2))  # 20 m classes onto the 10 m grid
    return cube, xr.DataArray(scl, dims=("time", "y", "x"), coords=coords)


def sites():
    """(name, cube, reference classes) per site."""
    rome = sd.series()
    spectral = xcloudfree.mask_classes(rome, "spectral", dilate=0, progress=False)
    yield "Rome (L1C)", rome, spectral["mask_class"]
    for label, name in [
        ("Hungary (L2A)", "hungary_romania_34TET"),
        ("Sweden (L2A)", "sweden_34VCL"),
    ]:
        cube, _ = sd.l2a(name)
        dl = sd.l2a_dlmask(name).values.copy()
        if name.startswith("sweden"):  # it calls dark forest shadow on clear dates
            clearish = np.isin(dl, (1, 2)).mean((1, 2)) < 0.05
            dl[clearish[:, None, None] & (dl == 3)] = 0
        yield label, cube, xr.DataArray(dl, dims=("time", "y", "x"))
    yield "Belgium (L2A)", *worldcereal()


def lay(cube: xr.DataArray, ref: np.ndarray, clear: np.ndarray, rng) -> dict:
    """Real clouds of the site's partly cloudy dates over some of its clear dates.

    A donor pixel is ``(1 - a) * ground + a * cloud``; its ground is the median of the
    three clear dates nearest the donor, its opacity ``a`` the blue it adds over that
    ground / :data:`OPAQUE_BLUE` (at most 1). Laid on a target:
    ``donor + (1 - a) * (target - ground)``: the donor itself where the cloud is opaque,
    the target plus the cloud's added light where it is thin, so a faint edge that a
    mask misses costs what its light costs, not the change of the ground between dates.
    """
    v = cube.values
    frac = np.isin(ref, (1, 2)).mean((1, 2))
    donors = np.flatnonzero((frac >= 0.15) & (frac <= 0.8))
    targets = np.sort(rng.choice(clear, size=min(TARGETS, clear.size), replace=False))
    blue = [str(b) for b in cube["band"].values].index("B02")
    days = cube["time"].values.astype("datetime64[D]").astype(np.int64)
    cloudy = v.copy()
    laid = np.zeros(ref.shape, bool)
    alpha = np.zeros(ref.shape, np.float32)
    for t in targets:
        d = rng.choice(donors)
        ground = np.nanmedian(v[clear[np.argsort(np.abs(days[clear] - days[d]))[:3]]], 0)
        where = np.isin(ref[d], (1, 2, 3))
        a = np.clip((v[d, blue] - ground[blue]) / OPAQUE_BLUE, 0, 1)
        cloudy[t][:, where] = (v[d] + (1 - a) * (v[t] - ground))[:, where]
        laid[t], alpha[t] = where, np.where(where, a, 0)
    return {"cloudy": cube.copy(data=cloudy), "laid": laid, "alpha": alpha, "targets": targets}


def _flags(cube, source) -> np.ndarray:
    return xcloudfree.cloud_mask(cube, source, progress=False).values


def _psnr_under(cube, truth, mask, laid) -> float:
    given = xr.DataArray(mask, dims=("time", "y", "x"),
                         coords={k: cube[k] for k in ("time", "y", "x")})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xcloudfree.UnfilledWarning)
        out = xcloudfree.remove(cube, method="local", mask=given, progress=False)
    err = (out["reflectance"].values - truth)[np.broadcast_to(laid[:, None], truth.shape)]
    err = err[np.isfinite(err)]
    return float(10 * np.log10(1.0 / np.mean(err**2)))


def score_site(name, cube, ref) -> list[dict]:
    ref = np.asarray(ref.values if hasattr(ref, "values") else ref)
    rng = np.random.default_rng(SEED)
    clear = np.flatnonzero(np.isin(ref, (1, 2)).mean((1, 2)) <= 0.05)
    sim = lay(cube, ref, clear, rng)
    laid, cloudy = sim["laid"], sim["cloudy"]
    opaque = laid & (sim["alpha"] > 0.5)
    reference = dilate_mask(
        xr.DataArray(laid | np.isin(ref, (1, 2, 3)), dims=("time", "y", "x")), 2
    )
    ref_db = _psnr_under(cloudy, cube.values, reference.values, laid)
    ground = np.isin(ref, (0, 4))
    rows = []
    for source in SOURCES:
        on_clear = _flags(cube, source)
        loss = np.array([on_clear[t][ground[t]].mean() for t in clear])
        flags = _flags(cloudy, source)
        db = _psnr_under(cloudy, cube.values, flags, laid)
        rows.append({
            "site": name, "source": source, "fill gap dB": round(db - ref_db, 2),
            "own dB": round(db, 2), "reference dB": round(ref_db, 2),
            "opaque recall": round(float(flags[opaque].mean()), 4),
            "laid recall": round(float(flags[laid].mean()), 3),
            "clear loss mean": round(float(loss.mean()), 3),
            "clear loss worst": round(float(loss.max()), 3),
            "dates over 5 %": f"{int((loss > 0.05).sum())} of {loss.size}",
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


#: The floors of issue 29 that a source must hold on every site that chooses it.
FLOORS = {"opaque recall": 0.995, "fill gap dB": -1.0}


def _choose(others: pd.DataFrame, rule: str) -> str:
    """The source the other sites choose: by mean fill gap, or floors first."""
    mean = others.groupby("source")[["fill gap dB", "clear loss mean"]].mean()
    if rule == "floors, then fewest clear pixels lost":
        worst = others.groupby("source")[list(FLOORS)].min()
        held = [s for s in mean.index if all(worst.loc[s, k] >= v for k, v in FLOORS.items())]
        if held:
            return str(mean.loc[held, "clear loss mean"].idxmin())
    return str(mean["fill gap dB"].idxmax())


#: Selection rules: the first was set before any figure; the second after the first
#: table (it reads the issue's floors, which the first ignores).
RULES = ("best mean fill gap", "floors, then fewest clear pixels lost")


def leave_one_site_out(frame: pd.DataFrame) -> pd.DataFrame:
    """Per site and rule, the source the *other* sites choose, scored on this one."""
    rows = []
    for rule in RULES:
        for site in frame["site"].unique():
            pick = _choose(frame[frame["site"] != site], rule)
            row = frame[(frame["site"] == site) & (frame["source"] == pick)].iloc[0]
            keep = ("fill gap dB", "opaque recall", "clear loss mean", "clear loss worst",
                    "dates over 5 %")  # fmt: skip
            rows.append({"rule": rule, "held-out site": site, "chosen on the others": pick,
                         **{k: row[k] for k in keep}})  # fmt: skip
    return pd.DataFrame(rows).set_index(["rule", "held-out site"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/mask_sites.md"))
    ap.add_argument("--sites", nargs="*", default=None, help="names starting with these")
    ap.add_argument(
        "--from-json",
        action="store_true",
        help="re-rank the rows of the last run (--out's .json) without rerunning",
    )
    args = ap.parse_args()
    rows = []
    if args.from_json:
        rows = json.loads(args.out.with_suffix(".json").read_text())["rows"]
        rows = [{k: v for k, v in r.items() if k != "s per MP-date"} for r in rows]
    for name, cube, ref in [] if args.from_json else sites():
        if args.sites and not any(name.lower().startswith(s.lower()) for s in args.sites):
            continue
        rows += score_site(name, cube, ref)
    frame = pd.DataFrame(rows)
    loso = leave_one_site_out(frame)
    lines = [
        "# The mask per site, leave one site out (`benchmarks/mask_sites.py`)", "",
        __doc__.split("\n\n")[1].strip().replace("\n", " "), "",
        "Held out by site: ukis-csmask (trained elsewhere) and the join's rules (fitted on "
        "nothing). Not held out: the temporal network's weights, trained on training dates "
        "of all four sites; the laid clouds and targets here include those dates. The "
        "reference labels miss real haze on other dates (Rome, Sweden, Belgium), so a mask "
        "can beat them; on Belgium, SCL calls hazy and overcast dates clear (looked at), so "
        "its clear-date loss counts real haze too.", "",
        "## Every source on every site", "", sd.markdown(frame.set_index(["site", "source"])), "",
        "## Leave one site out: the source the other sites choose, scored on the held-out site",
        "", sd.markdown(loso), "",
    ]  # fmt: skip
    loso_rows = loso.reset_index().to_dict("records")
    sd.write_report(args.out, lines, {"rows": rows, "loso": loso_rows})


if __name__ == "__main__":
    main()
