"""``contentgen score``: raw transactions, events and attributes -> members and recommendations files.

Three passes over the data, each bounded by one partition of members:

1. **spread** (``raw.py``): check the attributes (ids, tiers), then stream every
   file once and write each row to its member's partition (scratch folder).
2. **features** (``features.py``): per partition, the segment features now and
   a week ago, the churn features and labels of three snapshots, co-purchase
   counts; a seeded sample of members is kept for fitting.
3. **score** (``segments.py``, ``churn.py``, ``affinity.py``): fit on the
   sample, then per partition assign segments, churn risk, the best hour and
   the recommendations with their evidence, and write them; evaluate on the
   way (segment stability, churn calibration by group, recall@10).

Outputs in ``--out``: ``members.csv`` (or .parquet) and
``recommendations.jsonl`` in the attribute file's order, ready for
``contentgen run``; ``score_report.json`` (every figure); ``score_quarantine.jsonl``
(bad raw rows); with ``--campaign``, ``campaign.yaml`` pointing at them.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, InputFileError
from ..models import SEGMENTS
from . import affinity as aff
from .churn import MIN_TENURE, TRAIN_CUTOFF, VALID_CUTOFF, evaluate_churn, fit_churn
from .features import (BROWSE, CHURN_FEATURES, SEGMENT_FEATURES, PartitionData, best_hour, churn_features,
                       churn_label, segment_features, tenure)
from .raw import (BLOCK, Partitions, Quarantine, RawInputs, read_attributes, release_memory, spread_activity,
                  spread_attributes)
from .segments import K, STABLE, fit_segments

__all__ = ["ScoreOptions", "run_score", "MEMBER_OUT_COLUMNS", "GROUP_DIMS"]

MEMBER_OUT_COLUMNS = ("member_id", "first_name", "email", "segment", "churn_risk", "opt_in_tier", "locale",
                      "status", "age", "stated_preferences", "timezone", "last_engaged_hour", "channels",
                      "preferred_channel")
GROUP_DIMS = ("age_band", "locale", "tier", "segment")
RECENT_DAYS = 30  # bought this recently: not recommended again (and listed for the planner)
EVAL_DAYS = 7


@dataclass
class ScoreOptions:
    out: Path
    catalog: Path | None = None
    as_of: dt.date | None = None
    campaign: Path | None = None
    fmt: str = "csv"
    k: int = K
    seed: int = 0
    block: int = BLOCK
    sample: int = 200_000
    top_n: int = aff.TOP_N
    scratch: Path | None = None
    threads: int = 1  # OpenMP/BLAS threads for the models (more than the free cores makes them spin, not run)


def age_band(age: np.ndarray) -> np.ndarray:
    """'16-24', '25-34', ..., '65+', 'unknown' (NaN)."""
    from ..fairness import age_bands

    return age_bands(age)


def _campaign_defaults(path: Path) -> tuple[dict[str, Any], dt.date | None, Path | None]:
    """The campaign file as written (no input needs to exist yet), its send date and catalog path."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the campaign file: {e}", file=str(path),
                          hint="pass a campaign .yaml (contentgen sample-data DIR writes one)") from None
    if not isinstance(raw, dict):
        raise ConfigError("campaign file must be a mapping of keys", file=str(path))
    send = raw.get("send_date")
    if isinstance(send, str):
        try:
            send = dt.date.fromisoformat(send)
        except ValueError:
            raise ConfigError("send_date is not a date", file=str(path), key="send_date",
                              hint="write the date as YYYY-MM-DD") from None
    cat = (raw.get("inputs") or {}).get("catalog")
    cat_path = (Path(path).resolve().parent / cat) if cat and not Path(cat).is_absolute() else (Path(cat) if cat
                                                                                                 else None)
    return raw, send if isinstance(send, dt.date) else None, cat_path


def run_score(inputs: RawInputs, opts: ScoreOptions, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    t_start = time.monotonic()
    from ..load import load_catalog

    campaign_raw = None
    as_of = opts.as_of
    catalog_path = opts.catalog
    if opts.campaign is not None:
        campaign_raw, send, cat = _campaign_defaults(opts.campaign)
        as_of = as_of or send
        catalog_path = catalog_path or cat
    if catalog_path is None:
        raise ConfigError("no catalog", hint="pass --catalog catalog.csv (or --campaign with inputs.catalog)")
    if not Path(catalog_path).is_file():
        raise InputFileError("catalog file not found", file=str(catalog_path),
                             hint="pass --catalog with the product catalog the campaign uses")
    catalog, bad_products = load_catalog(Path(catalog_path))
    if not catalog:
        raise InputFileError("the catalog has no valid products", file=str(catalog_path))
    products = list(catalog.values())
    product_index = {p.product_id: i for i, p in enumerate(products)}
    categories = sorted({p.category for p in products})
    item_cat = np.array([categories.index(p.category) for p in products])
    in_stock = np.array([p.in_stock and (p.stock is None or p.stock > 0) for p in products])
    plenty = np.array([p.in_stock and (p.stock is None or p.stock > 5) for p in products])
    n_items = len(products)

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="contentgen-score-", dir=opts.scratch))
    try:
        q = Quarantine()
        log("checking attributes")
        index, keep, member_of_row = read_attributes(inputs.attributes, q)
        release_memory()
        n = index.n
        if n == 0:
            raise InputFileError("no valid member rows in the attributes file", file=str(inputs.attributes),
                                 hint="see score_quarantine.jsonl for why rows were rejected")
        parts = Partitions(scratch, n, opts.block)
        log(f"spreading {n:,} members over {parts.count} partition(s)")
        spread_attributes(inputs.attributes, keep, member_of_row, parts)
        act = spread_activity(inputs, index, product_index, parts, q)
        parts.close()
        del keep, member_of_row
        release_memory()
        if as_of is None:
            if act.last_t is None:
                raise InputFileError("no activity to date the data by", file=str(inputs.transactions),
                                     hint="pass --as-of YYYY-MM-DD")
            as_of = dt.date(1970, 1, 1) + dt.timedelta(days=act.last_t // 86_400 + 1)
        from threadpoolctl import threadpool_limits

        state = _Pass(parts, as_of, opts, n_items, scratch, log)
        with threadpool_limits(limits=opts.threads):
            log(f"features as of {as_of} (pass 2 of 3)")
            state.features()
            log("fitting segments, churn and affinity models")
            models = state.fit()
            release_memory()
            log("scoring and writing (pass 3 of 3)")
            report = state.score(models, out, products, categories, item_cat, in_stock, plenty)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    qpath = out / "score_quarantine.jsonl"
    _atomic_text(qpath, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in q.records))
    report.update({
        "as_of": as_of.isoformat(),
        "inputs": {"attributes": str(inputs.attributes), "transactions": str(inputs.transactions),
                   "events": str(inputs.events), "catalog": str(catalog_path)},
        "rows": {"members": n, **dict(act.rows)},
        "quarantine": {"rows": q.total, "by_field": q.summary(), "file": str(qpath),
                       "catalog_rows": len(bad_products)},
        "activity": {"first": _iso_day(act.first_t), "last": _iso_day(act.last_t),
                     "unknown_products": act.unknown_products, "rows_on_or_after_as_of": state.future_rows,
                     "other_events": dict(act.other_events.most_common(10))},
    })
    if campaign_raw is not None:
        report["outputs"]["campaign"] = str(_write_campaign(campaign_raw, Path(opts.campaign), out, report))
    report["wall_s"] = round(time.monotonic() - t_start, 1)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    _atomic_text(out / "score_report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _iso_day(t: int | None) -> str | None:
    return None if t is None else (dt.date(1970, 1, 1) + dt.timedelta(days=t // 86_400)).isoformat()


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_campaign(raw: dict[str, Any], src: Path, out: Path, report: dict[str, Any]) -> Path:
    """The campaign file with inputs.members / recommendations pointing at score's outputs (absolute paths for the
    rest, resolved against the original campaign's folder)."""
    import yaml

    base = src.resolve().parent
    raw = dict(raw)
    inputs = dict(raw.get("inputs") or {})

    def absolute(p: Any) -> Any:
        return str(p if Path(p).is_absolute() else (base / p).resolve())

    for key in ("catalog", "offers"):
        if key in inputs:
            inputs[key] = absolute(inputs[key])
    if "suppression" in inputs:
        supp = inputs["suppression"]
        inputs["suppression"] = [absolute(p) for p in (supp if isinstance(supp, list) else [supp])]
    inputs["members"] = Path(report["outputs"]["members"]).name
    inputs["recommendations"] = Path(report["outputs"]["recommendations"]).name
    raw["inputs"] = inputs
    for key in ("prompts_dir",):
        if key in raw and (base / raw[key]).exists():
            raw[key] = absolute(raw[key])
    if "rules_dirs" in raw:
        raw["rules_dirs"] = [absolute(p) if (base / p).exists() else p for p in raw["rules_dirs"]]
    path = out / "campaign.yaml"
    header = (f"# {src.name} with the members and recommendations that `contentgen score` wrote here\n"
              f"# (as of {report['as_of'] if 'as_of' in report else ''}; see score_report.json)\n")
    _atomic_text(path, header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return path


class _Pass:
    """State shared by the features pass, the fit and the scoring pass."""

    def __init__(self, parts: Partitions, as_of: dt.date, opts: ScoreOptions, n_items: int, scratch: Path,
                 log: Callable[[str], None] = lambda s: None):
        self.log = log
        self.parts = parts
        self.as_of = as_of
        self.opts = opts
        self.n_items = n_items
        self.scratch = scratch
        self.rate = min(1.0, opts.sample / max(parts.n, 1))
        self.future_rows = 0
        self.co_final = aff.CoCounts(n_items)
        self.co_train = aff.CoCounts(n_items)
        self.samples: dict[str, list[np.ndarray]] = {}

    def _progress(self, what: str, p: int) -> None:
        count = self.parts.count
        if count >= 10 and (p + 1) % -(-count // 10) == 0 and p + 1 < count:  # about ten lines a pass
            done = min(self.parts.n, (p + 1) * self.parts.block)
            self.log(f"{what}: {done:,} of {self.parts.n:,} members")

    # ------------------------------------------------------------------ data of one partition

    def load(self, p: int) -> tuple[dict[str, np.ndarray], PartitionData]:
        parts = self.parts
        at = parts.read("attributes", p)
        m = at.column("m").to_numpy()
        if len(m) > 1 and (np.diff(m) < 0).any():  # written in file order, so normally sorted already
            at = at.sort_by("m")
        n = parts.size(p)
        attrs = {name: np.asarray(at.column(name).to_numpy(zero_copy_only=False), dtype=object)
                 for name in at.column_names if name not in ("m", "line")}
        if at.num_rows != n:  # pragma: no cover - every accepted member has exactly one row
            raise RuntimeError(f"partition {p}: {at.num_rows} attribute rows for {n} members")
        from .raw import _dates, _numbers

        enrolled = _dates(at.column("enrolled_on"), n)[0] if "enrolled_on" in at.column_names else np.full(n, np.nan)
        attrs["_tier"] = _numbers(at.column("opt_in_tier"), n)[0].astype(np.int64)
        attrs["_age"] = _numbers(at.column("age"), n)[0] if "age" in at.column_names else np.full(n, np.nan)
        d = PartitionData.build(parts.read("transactions", p), parts.read("events", p), parts.base(p), n,
                                self.as_of, enrolled)
        return attrs, d

    # ------------------------------------------------------------------ pass 2

    def features(self) -> None:
        add = self.samples.setdefault
        for p in range(self.parts.count):
            attrs, d = self.load(p)
            self.future_rows += d.future_rows
            f = {"seg0": segment_features(d, 0), "seg7": segment_features(d, -7), "ten0": tenure(d, 0),
                 "ten7": tenure(d, -7), f"seg{VALID_CUTOFF}": segment_features(d, VALID_CUTOFF),
                 f"ten{VALID_CUTOFF}": tenure(d, VALID_CUTOFF)}
            for c in (TRAIN_CUTOFF, VALID_CUTOFF, 0):
                f[f"churn{c}"] = churn_features(d, c)
            for c in (TRAIN_CUTOFF, VALID_CUTOFF):
                f[f"y{c}"] = churn_label(d, c)
                f[f"elig{c}"] = tenure(d, c) >= MIN_TENURE
            np.savez(self.scratch / f"features-{p:05d}.npz", **f)
            pick = np.random.default_rng([self.opts.seed, 31, p]).random(d.n) < self.rate
            add("seg0", []).append(f["seg0"][pick])
            add("ten0", []).append(f["ten0"][pick])
            add("seg7", []).append(f["seg7"][pick])
            add("ten7", []).append(f["ten7"][pick])
            for c in (TRAIN_CUTOFF, VALID_CUTOFF):
                s = pick & f[f"elig{c}"]
                add(f"x{c}", []).append(f[f"churn{c}"][s])
                add(f"y{c}", []).append(f[f"y{c}"][s])
            # co-purchase counts: the last 365 days (model) and the same window a week earlier (evaluation)
            buy = d.i_m
            w_final = (d.i_day >= -365)
            w_train = (d.i_day < -EVAL_DAYS) & (d.i_day >= -365 - EVAL_DAYS)
            ones = np.ones(len(buy))
            self.co_final.add(aff.interactions(buy[w_final], d.i_item[w_final], ones[w_final], d.n, self.n_items,
                                               binary=True))
            self.co_train.add(aff.interactions(buy[w_train], d.i_item[w_train], ones[w_train], d.n, self.n_items,
                                               binary=True))
            del d, attrs, f
            release_memory()
            self._progress("features", p)

    # ------------------------------------------------------------------ fit

    def fit(self) -> dict[str, Any]:
        s = {k: np.concatenate(v) for k, v in self.samples.items()}
        self.samples = {}
        k = self.opts.k
        try:
            seg_now = fit_segments(s["seg0"], s["ten0"], k=k, seed=self.opts.seed)
            seg_prev = fit_segments(s["seg7"], s["ten7"], k=k, seed=self.opts.seed)
        except ValueError as e:
            raise InputFileError(f"cannot form segments: {e}", hint="score needs a few hundred members with some "
                                 "history; or pass a smaller --k") from None
        xa, ya = s[f"x{TRAIN_CUTOFF}"], s[f"y{TRAIN_CUTOFF}"].astype(int)
        xb, yb = s[f"x{VALID_CUTOFF}"], s[f"y{VALID_CUTOFF}"].astype(int)
        if len(ya) < 20 or len(yb) < 20:
            raise InputFileError(f"too little history for the churn model ({len(ya)} members enrolled 210 days "
                                 f"before {self.as_of})", hint="score needs at least 270 days of data before the "
                                                               "as-of date")
        churn_valid = fit_churn(xa, ya, seed=self.opts.seed)
        validation = evaluate_churn(churn_valid, xb, yb)
        churn_now = fit_churn(xb, yb, seed=self.opts.seed)
        return {"seg_now": seg_now, "seg_prev": seg_prev, "churn_valid": churn_valid, "churn_now": churn_now,
                "validation": validation, "train": {"cutoff": TRAIN_CUTOFF, "n": int(len(ya)),
                                                    "base_rate": round(float(ya.mean()), 4)},
                "final": {"cutoff": VALID_CUTOFF, "n": int(len(yb)), "base_rate": round(float(yb.mean()), 4)},
                "s_final": self.co_final.similarity(), "s_train": self.co_train.similarity()}

    # ------------------------------------------------------------------ pass 3

    def score(self, models: dict[str, Any], out: Path, products, categories, item_cat, in_stock,
              plenty) -> dict[str, Any]:
        from .write import OutputWriter

        seg_now, seg_prev = models["seg_now"], models["seg_prev"]
        s_final, s_train = models["s_final"], models["s_train"]
        writer = OutputWriter(out, self.opts.fmt)
        confusion = np.zeros((len(SEGMENTS), len(SEGMENTS)), dtype=np.int64)
        groups: dict[tuple[str, str], np.ndarray] = {}
        tally = aff.RecallTally(k=10)
        churn_sum = 0.0
        churn_high = 0
        recs_members = 0
        recs_total = 0
        pop_train = s_train.buyers
        product_ids = np.array([p.product_id for p in products], dtype=object)
        try:
            for p in range(self.parts.count):
                attrs, d = self.load(p)
                f = dict(np.load(self.scratch / f"features-{p:05d}.npz"))
                seg = seg_now.predict(f["seg0"], f["ten0"])
                prev = seg_prev.predict(f["seg7"], f["ten7"])
                np.add.at(confusion, (prev, seg), 1)
                risk = np.round(models["churn_now"].predict_proba(f["churn0"])[:, 1], 3)
                churn_sum += float(risk.sum())
                churn_high += int((risk >= 0.6).sum())
                # calibration of the validation model by group (all members of the validation snapshot)
                e = f[f"elig{VALID_CUTOFF}"]
                if e.any():
                    pv = models["churn_valid"].predict_proba(f[f"churn{VALID_CUTOFF}"][e])[:, 1]
                    yv = f[f"y{VALID_CUTOFF}"][e].astype(float)
                    # the segment members were in at the snapshot (today's would know the outcome)
                    seg_then = seg_now.predict(f[f"seg{VALID_CUTOFF}"][e], f[f"ten{VALID_CUTOFF}"][e])
                    dims = {"age_band": age_band(attrs["_age"][e]), "locale": attrs.get("locale", np.full(d.n, ""))[e],
                            "tier": attrs["_tier"][e].astype(str),
                            "segment": np.array(SEGMENTS, dtype=object)[seg_then]}
                    for dim, vals in dims.items():
                        vals = np.where(vals == "", "unknown", vals).astype(str)
                        for g in np.unique(vals):
                            sel = vals == g
                            acc = groups.setdefault((dim, g), np.zeros(3))
                            acc += (sel.sum(), pv[sel].sum(), yv[sel].sum())
                tz = attrs.get("timezone", np.full(d.n, "", dtype=object))
                hour = best_hour(d, np.where(tz == "", "America/Los_Angeles", tz))
                writer.write_members(attrs, seg, risk, hour)
                ev_tally = self._recommend(d, attrs, s_final, categories, item_cat, in_stock, plenty, product_ids,
                                           writer)
                recs_members += ev_tally[0]
                recs_total += ev_tally[1]
                self._evaluate(d, s_train, pop_train, tally)
                del d, attrs, f
                release_memory()
                self._progress("scored", p)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        n = self.parts.n
        shares_now = confusion.sum(axis=0) / max(n, 1)
        shares_prev = confusion.sum(axis=1) / max(n, 1)
        agree = float(np.trace(confusion) / max(n, 1))
        by_seg = {SEGMENTS[i]: round(float(confusion[i, i] / confusion[i].sum()), 4)
                  for i in range(len(SEGMENTS)) if confusion[i].sum()}
        by_group: dict[str, list[dict[str, Any]]] = {dim: [] for dim in GROUP_DIMS}
        from ..report import wilson

        for (dim, g), (cnt, sp_, sy) in sorted(groups.items()):
            cnt_i = int(cnt)
            ci = wilson(int(round(sy)), cnt_i)
            by_group[dim].append({"group": g, "n": cnt_i, "mean_predicted": round(sp_ / cnt_i, 4),
                                  "observed": round(sy / cnt_i, 4),
                                  "observed_ci": [round(ci[0], 4), round(ci[1], 4)] if ci else None,
                                  "difference": round((sy - sp_) / cnt_i, 4)})
        return {
            "segments": {
                "k": self.opts.k, "features": list(SEGMENT_FEATURES),
                "shares": {s: round(float(shares_now[i]), 4) for i, s in enumerate(SEGMENTS)},
                "clusters": seg_now.describe(),
                "rules": {"new_members": "enrolled fewer than 90 days before the as-of date",
                          "signatures": __import__("contentgen.score.segments", fromlist=["SIGNATURES"]).SIGNATURES},
                "stability": {"agreement": round(agree, 4), "threshold": STABLE, "stable": agree >= STABLE,
                              "by_segment": by_seg,
                              "previous_shares": {s: round(float(shares_prev[i]), 4) for i, s in enumerate(SEGMENTS)},
                              "method": "segments as of a week earlier (features and k-means of that week) vs now; "
                                        "share of members in the same segment"},
            },
            "churn": {
                "label": "no purchase and no e-mail open or click in the next 90 days",
                "model": "HistGradientBoostingClassifier in CalibratedClassifierCV (isotonic, 3 folds)",
                "features": list(CHURN_FEATURES),
                "train": models["train"], "validation": {"cutoff": VALID_CUTOFF, **models["validation"]},
                "scoring_model": models["final"],
                "calibration_by_group": by_group,
                "scored": {"mean": round(churn_sum / max(n, 1), 4), "share_at_least_0_6": round(churn_high / max(n, 1), 4)},
            },
            "affinity": {
                "model": {"kind": "item-item cosine on co-purchases (scipy.sparse)", "shrink": aff.SHRINK,
                          "neighbours": aff.NEIGHBOURS, "browse_weight_tier3": aff.BROWSE_WEIGHT,
                          "window_days": 365, "products": self.n_items},
                f"recall_at_{tally.k}": {**tally.result(), "held_out": f"purchases of the last {EVAL_DAYS} days "
                                                                        "of products new to the member"},
                "members_with_recommendations": recs_members,
                "recommendations_per_member": round(recs_total / max(recs_members, 1), 2),
            },
            "outputs": {"members": str(writer.members_path), "recommendations": str(writer.recs_path),
                        "rows": n},
        }

    def _recommend(self, d: PartitionData, attrs, sim: aff.ItemSimilarity, categories, item_cat, in_stock,
                   plenty, product_ids, writer) -> tuple[int, int]:
        """Write each member's recommendations line (block by block: memory stays flat); returns
        (members with recommendations, recommendations)."""
        n, n_items = d.n, self.n_items
        tier = attrs["_tier"]
        ids = attrs["member_id"]
        lines = d.i_day >= -365
        decay = np.exp(d.i_day[lines] / aff.DECAY_DAYS)
        xp = aff.interactions(d.i_m[lines], d.i_item[lines], decay, n, n_items)
        bw = (d.e_kind == BROWSE) & (d.e_day >= -90) & (d.e_item >= 0) & (tier[d.e_m] >= 3)
        xb = aff.interactions(d.e_m[bw], d.e_item[bw], np.full(int(bw.sum()), aff.BROWSE_WEIGHT), n, n_items)
        rec_mask = d.i_day >= -RECENT_DAYS
        recent = aff.interactions(d.i_m[rec_mask], d.i_item[rec_mask], np.ones(int(rec_mask.sum())), n, n_items,
                                  binary=True)
        rmask = d.i_returned > 0
        returned = aff.interactions(d.i_m[rmask], d.i_item[rmask], np.ones(int(rmask.sum())), n, n_items,
                                    binary=True)
        stated = aff.preference_categories(attrs.get("stated_preferences", np.full(n, "", dtype=object)), categories)
        exclude = (recent + returned).tocsr()
        pid_json = [json.dumps(str(p), ensure_ascii=False) for p in product_ids]
        evidence_json: dict[tuple, str] = {}
        block = max(64, min(4096, 20_000_000 // max(n_items, 1)))
        s_dense = sim.s.toarray() if n_items <= 2000 else None
        members = total = 0
        for a in range(0, n, block):
            b = min(n, a + block)
            personal = tier[a:b] >= 2
            xpa = xp[a:b]
            x = xpa + xb[a:b]
            scores = np.asarray(x @ s_dense) if s_dense is not None else np.asarray((x @ sim.s).todense())
            best = scores.max(axis=1, keepdims=True)
            scores = scores + aff.PREFERENCE_BOOST * best * stated[a:b][:, item_cat] * (scores > 0)
            scores[~personal] = 0.0
            idx, vals = aff.top_k(scores, exclude[a:b], self.opts.top_n, allowed=in_stock)
            k = idx.shape[1]
            # the member's strongest contributing purchase for each recommendation
            coo = xpa.tocoo()
            qr = np.repeat(coo.row, k)
            qs = np.tile(np.arange(k), len(coo.row))
            qi = idx[qr, qs]
            ok = qi >= 0
            qr, qs, qi, qj = qr[ok], qs[ok], qi[ok], np.repeat(coo.col, k)[ok]
            contrib = np.repeat(coo.data, k)[ok] * sim.pair(qj, qi)
            best_j = np.full((b - a, k), -1, dtype=np.int64)
            pos = contrib > 0
            if pos.any():
                order = np.lexsort((contrib[pos], qs[pos], qr[pos]))
                r_, s_, j_ = qr[pos][order], qs[pos][order], qj[pos][order]
                last = np.ones(len(r_), dtype=bool)
                last[:-1] = (r_[1:] != r_[:-1]) | (s_[1:] != s_[:-1])
                best_j[r_[last], s_[last]] = j_[last]
            browsed_cat = np.zeros((b - a, len(categories)), dtype=bool)
            xbb = xb[a:b].tocoo()
            browsed_cat[xbb.row, item_cat[xbb.col]] = True
            top = vals.max(axis=1) if vals.size else np.zeros(b - a)
            rec_b, ret_b = recent[a:b], returned[a:b]
            out = []
            for r in range(b - a):
                head = '{"member_id": ' + json.dumps(str(ids[a + r]), ensure_ascii=False) + ', "recommendations": ['
                if not personal[r]:  # tier 1: no behavioural data used at all
                    out.append(head + "]}")
                    continue
                t3 = int(tier[a + r]) >= 3
                items = []
                for s_ in range(k):
                    i = idx[r, s_]
                    if i < 0:
                        break
                    ci, bj = int(item_cat[i]), int(best_j[r, s_])
                    key = (t3, ci, int(item_cat[bj]) if bj >= 0 else -1, bool(browsed_cat[r, ci]),
                           bool(stated[a + r, ci]), bool(plenty[i]))
                    ev = evidence_json.get(key)
                    if ev is None:
                        ev = evidence_json[key] = json.dumps(aff.explain(
                            3 if t3 else 2, categories[ci], categories[key[2]] if key[2] >= 0 else None, key[3],
                            key[4], key[5]), ensure_ascii=False)
                    if ev == "[]":
                        continue
                    score = round(float(vals[r, s_] / top[r]), 3) if top[r] > 0 else 0.0
                    items.append('{"product_id": ' + pid_json[i] + ', "score": ' + json.dumps(score)
                                 + ', "evidence": ' + ev + "}")
                if items:
                    members += 1
                    total += len(items)
                line = head + ", ".join(items) + "]"
                for name, x in (("recently_bought", rec_b), ("returned", ret_b)):
                    cols = x.indices[x.indptr[r]:x.indptr[r + 1]]
                    if len(cols):
                        line += f', "{name}": [' + ", ".join(pid_json[c] for c in sorted(cols)) + "]"
                out.append(line + "}")
            writer.write_recs(out)
        return members, total

    def _evaluate(self, d: PartitionData, sim: aff.ItemSimilarity, pop: np.ndarray, tally: aff.RecallTally) -> None:
        n, n_items = d.n, self.n_items
        tr = (d.i_day < -EVAL_DAYS) & (d.i_day >= -365 - EVAL_DAYS)
        decay = np.exp((d.i_day[tr] + EVAL_DAYS) / aff.DECAY_DAYS)
        xt = aff.interactions(d.i_m[tr], d.i_item[tr], decay, n, n_items)
        hist = xt.copy()
        hist.data = np.ones_like(hist.data)
        te = d.i_day >= -EVAL_DAYS
        held = aff.interactions(d.i_m[te], d.i_item[te], np.ones(int(te.sum())), n, n_items, binary=True)
        held = (held - held.multiply(hist)).tocsr()
        held.eliminate_zeros()
        rows = np.flatnonzero(np.diff(held.indptr) > 0)
        if not len(rows):
            return
        block = max(64, min(4096, 20_000_000 // max(n_items, 1)))
        for a in range(0, len(rows), block):
            r = rows[a:a + block]
            x = xt[r]
            scores = np.asarray((x @ sim.s).todense())
            rec, _ = aff.top_k(scores, hist[r], tally.k)
            popm = np.tile(pop.astype(float) + 1e-6, (len(r), 1))  # every product scores, so 10 are always picked
            pk, _ = aff.top_k(popm, hist[r], tally.k)
            tally.add(rec, pk, held[r])

