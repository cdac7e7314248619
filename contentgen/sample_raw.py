"""Raw loyalty data with a known ground truth: the input of ``contentgen score``.

``contentgen sample-data DIR --raw`` writes, next to the usual files, a folder
``DIR/raw/`` that a CDP would export before any scoring: what members bought,
what they opened, clicked, browsed and complained about, and who they are.
The behaviour is simulated from the same members as ``members.csv``, whose
``segment`` and ``churn_risk`` are the hidden truth here:

==================== ==========================================================
attributes.csv       member_id, first_name, email, age, locale, timezone,
                     opt_in_tier, status, channels, preferred_channel,
                     stated_preferences, enrolled_on (no segment, no churn)
transactions.csv     order_id, member_id, ts (UTC, ISO 8601), product_id,
                     quantity, amount, discount (0/1), points, returned (0/1)
events.csv           member_id, ts, event (email_open, email_click, browse,
                     complaint), product_id (browse only)
truth_members.csv    per member: the true segment, whether the member was still
                     engaged on the send date, the true probability of
                     disengaging in the next 90 days, the realized 90-day label
                     (simulated, never written to the raw files), best hour
truth.json           the simulation's parameters and the planted disparity
==================== ==========================================================

(``--format parquet`` writes Parquet instead of CSV.)

How members behave, by true segment (``SEGMENTS`` order): weekly order rates,
items per order, weekly e-mail open probabilities and product views per week
are in the tables below. Routine Buyers order on a personal cycle of 20-40
days; Bargain Hunters mostly in promotion weeks, with a discount; Gift Givers
in the holiday season (and around Valentine's and Mother's Day); Lapsed VIPs
spent a lot until a personal change point 150-300 days ago and little since;
New Members enrolled less than 90 days ago; Browsers view many products and
rarely buy. Products come from a member's few favourites (30%), other brands
of a favourite's product type (30%) or their departments by popularity (40%),
so co-purchases carry signal a recommender can find.

Disengagement: an active member disengages at a constant rate whose 90-day
probability is ``CHURN_SCALE x churn_risk`` (members.csv). In the
``PRECURSOR_DAYS`` before, purchases and opens fade and complaints rise; after
it, activity drops to ``AFTER_DISENGAGED`` of normal. Planted disparity:
since ``ABRUPT_FROM`` days before the send date, en-CA members ALSO disengage
abruptly, with no warning signs, at ``ABRUPT_CA`` per 90 days; a churn model
that cannot see it under-predicts their risk, and the fairness audit's
calibration check should flag en-CA.

Everything is drawn from ``numpy.random.default_rng([seed, 200, chunk, part])``
so the same arguments give the same files.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .models import SEGMENTS

__all__ = ["RawWriter", "ATTRIBUTE_COLUMNS", "TRANSACTION_COLUMNS", "EVENT_COLUMNS", "EVENT_KINDS",
           "CHURN_SCALE", "ABRUPT_CA", "HISTORY_DAYS"]

ATTRIBUTE_COLUMNS = ("member_id", "first_name", "email", "age", "locale", "timezone", "opt_in_tier", "status",
                     "channels", "preferred_channel", "stated_preferences", "enrolled_on")
TRANSACTION_COLUMNS = ("order_id", "member_id", "ts", "product_id", "quantity", "amount", "discount", "points",
                       "returned")
EVENT_COLUMNS = ("member_id", "ts", "event", "product_id")
EVENT_KINDS = ("email_open", "email_click", "browse", "complaint")

HISTORY_DAYS = 399  # at least this much history before the send date (the grid starts on a Monday)
FUTURE_DAYS = 91  # simulated for the truth of the 90-day label, never written
BROWSE_DAYS = 182  # product views are kept for the last 26 weeks
SUB = 25_000  # members simulated together
ROW_GROUP = 250_000  # Parquet rows per row group: readers hold one row group at a time

# per true segment, in SEGMENTS order:
#                     Enth  Routine Bargain Lapsed New   Gift  Browsers
ORDER_RATE = np.array([0.30, 0.0, 0.05, 0.35, 0.22, 0.035, 0.03])  # orders/week (Routine Buyers: own cycle)
ITEMS_EXTRA = np.array([0.8, 0.3, 0.4, 1.0, 0.4, 0.6, 0.3])  # items per order = 1 + Poisson(this)
OPEN_P = np.array([0.55, 0.32, 0.30, 0.45, 0.45, 0.22, 0.35])  # weekly e-mail opened
BROWSE_RATE = np.array([1.2, 0.3, 0.6, 0.5, 0.9, 0.3, 2.5])  # product views/week
DISCOUNT_P = np.array([0.10, 0.08, 0.90, 0.10, 0.15, 0.15, 0.20])  # order with a discount, promo weeks (x0.3 else)
PROMO_BOOST = np.array([1.3, 1.0, 8.0, 1.2, 1.2, 1.2, 1.5])
HOLIDAY_BOOST = np.array([1.3, 1.1, 1.2, 1.0, 1.2, 12.0, 1.2])
CLICK_P = 0.2
COMPLAINT_P = 0.0015  # per week
PRECURSOR_COMPLAINT = 12.0
PRECURSOR_DAYS = 42
AFTER_DISENGAGED = 0.03
LAPSE_FACTOR = 0.12
CHURN_SCALE = 0.25
ABRUPT_CA = 0.30
ABRUPT_FROM = -270  # since about nine months before the send date
GIFTS = 5  # department index of "gifts" in sample_data.DEPARTMENTS
GIFT_GIVERS = SEGMENTS.index("Gift Givers")


def _holiday(dates: pd.DatetimeIndex) -> np.ndarray:
    m, d = dates.month.to_numpy(), dates.day.to_numpy()
    return (((m == 11) & (d >= 15)) | ((m == 12) & (d <= 24)) | ((m == 2) & (d <= 14)) | ((m == 5) & (d <= 12)))


class RawWriter:
    """Simulates and writes the raw files chunk by chunk, from the same chunks as ``members.csv``."""

    def __init__(self, out_dir: Path, *, cat: dict[str, Any], send_date: dt.date, seed: int, fmt: str,
                 bad_rows: bool) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fmt = "parquet" if fmt == "parquet" else "csv"
        self.cat = cat
        self.seed = seed
        self.bad_rows = bad_rows
        self.send_date = send_date
        start = send_date - dt.timedelta(days=HISTORY_DAYS)
        self.h = HISTORY_DAYS + start.weekday()  # the grid starts on a Monday, h days before the send date
        self.weeks = -(-(self.h + FUTURE_DAYS) // 7)
        self.week_start = -self.h + 7 * np.arange(self.weeks)  # day of each week's Monday (0 = send date)
        self.epoch0 = int(dt.datetime.combine(send_date, dt.time(0), tzinfo=dt.timezone.utc).timestamp())
        days = pd.date_range(send_date - dt.timedelta(days=self.h), periods=7 * self.weeks, freq="D")
        self.holiday_week = _holiday(days).reshape(self.weeks, 7).any(axis=1)
        self.promo_week = np.arange(self.weeks) % 5 == 3  # a members' sale every fifth week
        df = cat["df"]
        self.price = df["price"].to_numpy(dtype=float)
        self.product_ids = df["product_id"].to_numpy(dtype=object)
        type_key = np.array([f"{d}:{t}" for d, t in cat["type_of"]], dtype=object)
        _, self.type_id = np.unique(type_key, return_inverse=True)
        order = np.argsort(self.type_id, kind="stable")
        self.by_type = order
        self.type_start = np.searchsorted(self.type_id[order], np.arange(self.type_id.max() + 1))
        self.type_count = np.bincount(self.type_id)
        self.paths = {"attributes": self.dir / f"attributes.{self.fmt}",
                      "transactions": self.dir / f"transactions.{self.fmt}",
                      "events": self.dir / f"events.{self.fmt}",
                      "truth_members": self.dir / "truth_members.csv",
                      "truth": self.dir / "truth.json"}
        self._writers: dict[str, Any] = {}
        self._orders = 0
        self.counts = {"members": 0, "transactions": 0, "events": 0}
        self._bad_done = False

    # ------------------------------------------------------------------ writing

    def _write(self, name: str, table: pa.Table) -> None:
        w = self._writers.get(name)
        if name == "truth_members" or self.fmt == "csv":
            import pyarrow.csv as pcsv

            if w is None:
                w = self._writers[name] = pcsv.CSVWriter(str(self.paths[name]), table.schema,
                                                         write_options=pcsv.WriteOptions(quoting_style="needed"))
        else:
            import pyarrow.parquet as pq

            if w is None:
                w = self._writers[name] = pq.ParquetWriter(str(self.paths[name]), table.schema, compression="zstd")
        w.write_table(table, row_group_size=ROW_GROUP) if self.fmt == "parquet" and name != "truth_members" \
            else w.write_table(table)

    def close(self) -> dict[str, Path]:
        for w in self._writers.values():
            w.close()
        self._writers = {}
        truth = {
            "send_date": self.send_date.isoformat(),
            "history_days": self.h,
            "counts": self.counts,
            "churn": {"label": "no purchase and no e-mail open or click in the 90 days from the send date",
                      "true_probability": f"{CHURN_SCALE} x members.csv churn_risk for an engaged member",
                      "precursor_days": PRECURSOR_DAYS, "after_disengaged": AFTER_DISENGAGED},
            "planted_disparities": [
                {"kind": "churn calibration", "group": {"locale": "en-CA"},
                 "what": f"since day {ABRUPT_FROM}, en-CA members also disengage abruptly at {ABRUPT_CA} per 90 "
                         "days with no warning signs in their data; a model without locale under-predicts their "
                         "churn"},
            ],
            "segments": {s: {"order_rate_per_week": float(ORDER_RATE[i]), "open_p": float(OPEN_P[i]),
                             "browse_per_week": float(BROWSE_RATE[i])} for i, s in enumerate(SEGMENTS)},
        }
        self.paths["truth"].write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        return {f"raw_{k}": v for k, v in self.paths.items()}

    # ------------------------------------------------------------------ one chunk

    def add(self, ch) -> None:
        """Simulate the members of one sample_data chunk (``ch.cols``, ``ch.truth``) and append their rows."""
        c, t = ch.cols, ch.truth
        n = ch.n
        rng = np.random.default_rng([self.seed, 200, int(ch.idx[0]) if n else 0])
        ids = c["member_id"]
        has_id = np.array([x is not None for x in ids])
        dup = np.zeros(n, dtype=bool)
        dup[1:] = has_id[1:] & has_id[:-1] & (ids[1:] == ids[:-1])
        seg = t["seg"]
        # enrollment: New Members within the last 90 days, everyone else long before
        enrolled = np.where(seg == SEGMENTS.index("New Members"), -rng.integers(1, 90, n), -rng.integers(120, 1500, n))
        enrolled_on = (np.datetime64(self.send_date, "D") + enrolled).astype("datetime64[D]").astype(str)
        self._write("attributes", pa.table({
            "member_id": pa.array(ids, type=pa.string()),
            "first_name": pa.array(c["first_name"], type=pa.string()),
            "email": pa.array(c["email"], type=pa.string()),
            "age": pa.array(c["age"], mask=c["age_blank"], type=pa.int64()),
            "locale": pa.array(c["locale"], type=pa.string()),
            "timezone": pa.array(c["timezone"], type=pa.string()),
            "opt_in_tier": pa.array(c["opt_in_tier"], type=pa.int64()),
            "status": pa.array(c["status"], type=pa.string()),
            "channels": pa.array(c["channels"], type=pa.string()),
            "preferred_channel": pa.array(c["preferred_channel"], type=pa.string()),
            "stated_preferences": pa.array(c["stated_preferences"], type=pa.string()),
            "enrolled_on": pa.array(enrolled_on, type=pa.string()),
        }))
        self.counts["members"] += n
        live = np.flatnonzero(has_id & ~dup)  # rows whose behaviour we can attribute
        for a in range(0, len(live), SUB):
            self._simulate(rng, ch, live[a:a + SUB], enrolled)
        if self.bad_rows and not self._bad_done and n >= 200:
            self._bad_rows(ch)
            self._bad_done = True

    def _bad_rows(self, ch) -> None:
        """A few raw rows that `score` must quarantine with file, line and field."""
        mid = next(x for x in ch.cols["member_id"] if x is not None)
        ts = np.array([self.epoch0 - 86_400 * 3] * 2)
        tx = {"order_id": ["OBAD1", "OBAD2"], "member_id": ["M-GHOST-1", mid], "ts": ts,
              "product_id": [self.product_ids[0]] * 2, "quantity": [1, 1], "amount": [10.0, -5.0],
              "discount": [0, 0], "points": [10.0, 0.0], "returned": [0, 0]}
        ev = {"member_id": [mid, "M-GHOST-2"], "ts": ts, "event": ["teleport", "email_open"],
              "product_id": [None, None]}
        self._emit_tx(tx)
        self._emit_ev(ev)

    def _ts(self, secs: np.ndarray) -> pa.Array:
        """UTC times: ISO 8601 text in CSV (2026-11-03T14:05:09Z), a timestamp column in Parquet."""
        secs = np.asarray(secs, dtype=np.int64)
        if self.fmt == "parquet":
            return pa.array(secs.astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC"))
        return pa.array(np.char.add(np.datetime_as_string(secs.astype("datetime64[s]"), unit="s"), "Z"),
                        type=pa.string())

    def _emit_tx(self, cols: dict[str, Any]) -> None:
        self.counts["transactions"] += len(cols["order_id"])
        self._write("transactions", pa.table({
            "order_id": pa.array(cols["order_id"], type=pa.string()),
            "member_id": pa.array(cols["member_id"], type=pa.string()),
            "ts": self._ts(cols["ts"]),
            "product_id": pa.array(cols["product_id"], type=pa.string()),
            "quantity": pa.array(cols["quantity"], type=pa.int64()),
            "amount": pa.array(cols["amount"], type=pa.float64()),
            "discount": pa.array(cols["discount"], type=pa.int64()),
            "points": pa.array(cols["points"], type=pa.float64()),
            "returned": pa.array(cols["returned"], type=pa.int64()),
        }))

    def _emit_ev(self, cols: dict[str, Any]) -> None:
        self.counts["events"] += len(cols["member_id"])
        self._write("events", pa.table({
            "member_id": pa.array(cols["member_id"], type=pa.string()),
            "ts": self._ts(cols["ts"]),
            "event": pa.array(cols["event"], type=pa.string()),
            "product_id": pa.array(cols["product_id"], type=pa.string()),
        }))

    # ------------------------------------------------------------------ simulation

    def _products(self, rng, m: np.ndarray, fav: np.ndarray, depts: np.ndarray, mode: tuple[float, float],
                  gift: np.ndarray | None = None) -> np.ndarray:
        """One product per row: a favourite, another brand of a favourite's type, or a department pick."""
        cat = self.cat
        k = len(m)
        u = rng.random(k)
        f = fav[m, rng.integers(0, fav.shape[1], k)]
        same_t = self.type_id[f]
        other = self.by_type[self.type_start[same_t] + rng.integers(0, 1 << 30, k) % self.type_count[same_t]]
        r = rng.random(k)
        d = np.where(r < 0.5, depts[m, 0], np.where(r < 0.75, depts[m, 1], depts[m, 2]))
        if gift is not None:
            d = np.where(gift & (rng.random(k) < 0.6), GIFTS, d)
        pop = np.searchsorted(cat["cum"], d + rng.random(k), side="right")
        pop = np.minimum(pop, cat["starts"][d] + cat["counts"][d] - 1)
        return np.where(u < mode[0], f, np.where(u < mode[1], other, pop))

    def _local_to_epoch(self, local_s: np.ndarray, tz_codes: np.ndarray, tz_names: np.ndarray) -> np.ndarray:
        """Local wall-clock seconds (since 1970, naive) -> UTC epoch seconds, per time zone."""
        out = np.empty(len(local_s), dtype=np.int64)
        for code in np.unique(tz_codes):
            sel = tz_codes == code
            idx = pd.DatetimeIndex(local_s[sel].astype("datetime64[s]"))
            utc = idx.tz_localize(str(tz_names[code]), ambiguous="NaT", nonexistent="shift_forward")
            v = utc.asi8 // 10**9 if utc.unit == "ns" else utc.as_unit("s").asi8
            v = np.asarray(v, dtype=np.int64)
            nat = np.asarray(utc.isna())
            v[nat] = local_s[sel][nat]  # the repeated hour at the end of DST: take it as UTC-ish, rare
            out[sel] = v
        return out

    def _simulate(self, rng, ch, rows: np.ndarray, enrolled_all: np.ndarray) -> None:
        c, t = ch.cols, ch.truth
        S = len(rows)
        W = self.weeks
        ws = self.week_start
        seg = t["seg"][rows]
        churn = np.clip(t["churn"][rows], 0.0, 1.0)
        enrolled = enrolled_all[rows]
        ids = c["member_id"][rows]
        is_ca = c["locale"][rows] == "en-CA"
        active = c["status"][rows] == "active"
        how = c["last_engaged_hour"][rows]
        how_blank = c["how_blank"][rows]
        tz_names, tz_codes = np.unique(c["timezone"][rows].astype(str), return_inverse=True)
        # departments: primary, secondary, and a third from the segment's mix
        from .sample_data import _AFFINITY, _pick_rows

        third = _pick_rows(np.cumsum(_AFFINITY, axis=1), seg, rng.random(S)).clip(0, 5)
        depts = np.stack([t["primary"][rows], t["secondary"][rows], third], axis=1)
        fav_d = np.stack([depts[:, 0], depts[:, 0], depts[:, 0], depts[:, 1]], axis=1)
        cat = self.cat
        fav = np.searchsorted(cat["cum"], fav_d + rng.random((S, 4)), side="right")
        fav = np.minimum(fav, cat["starts"][fav_d] + cat["counts"][fav_d] - 1)

        # disengagement: constant hazard from the start of the history (or enrollment)
        start = np.maximum(enrolled, -self.h)
        h_grad = -np.log1p(-CHURN_SCALE * churn) / 90.0
        h_abr = np.where(is_ca, -np.log1p(-ABRUPT_CA) / 90.0, 0.0)
        h_tot = h_grad + h_abr
        d_grad = start + rng.exponential(1.0, S) / np.maximum(h_grad, 1e-9)
        d_abr = np.maximum(start, ABRUPT_FROM) + rng.exponential(1.0, S) / np.maximum(h_abr, 1e-12)
        abrupt = d_abr < d_grad
        D = np.minimum(d_grad, d_abr)
        lapsed = seg == SEGMENTS.index("Lapsed VIPs")
        change = -rng.integers(150, 300, S)

        wsb = ws[None, :]
        f = np.ones((S, W))
        ramp = 1.0 - 0.8 * np.clip((wsb - (D[:, None] - PRECURSOR_DAYS)) / PRECURSOR_DAYS, 0.0, 1.0)
        f = np.where(abrupt[:, None], f, ramp)
        f = np.where(wsb >= D[:, None], AFTER_DISENGAGED, f)
        f = np.where(wsb + 6 < enrolled[:, None], 0.0, f)
        precursor = (~abrupt[:, None]) & (wsb >= D[:, None] - PRECURSOR_DAYS) & (wsb < D[:, None])
        lapse = np.where(lapsed[:, None] & (wsb >= change[:, None]), LAPSE_FACTOR, 1.0)
        het = rng.gamma(4.0, 0.25, S)

        # ---- orders
        season = np.where(self.promo_week[None, :], PROMO_BOOST[seg][:, None], 1.0) * \
            np.where(self.holiday_week[None, :], HOLIDAY_BOOST[seg][:, None], 1.0)
        rate = ORDER_RATE[seg][:, None] * het[:, None] * f * lapse * season
        cnt = rng.poisson(rate)
        om, ow = np.nonzero(cnt)
        reps = cnt[om, ow]
        om, ow = np.repeat(om, reps), np.repeat(ow, reps)
        oday = ws[ow] + rng.integers(0, 7, len(om))
        routine = np.flatnonzero(seg == SEGMENTS.index("Routine Buyers"))
        if len(routine):
            period = rng.uniform(20, 40, len(routine))
            phase = rng.uniform(0, 1, len(routine)) * period
            K = int((self.h + FUTURE_DAYS) / 20) + 2
            days = (-self.h + phase[:, None] + period[:, None] * np.arange(K)[None, :]
                    + rng.normal(0, 1.5, (len(routine), K)))
            days = np.round(days).astype(np.int64)
            rm = np.repeat(routine, K)
            rd = days.ravel()
            ok = (rd >= -self.h) & (rd < FUTURE_DAYS)
            rm, rd = rm[ok], rd[ok]
            wk = (rd + self.h) // 7
            keep = rng.random(len(rm)) < np.minimum(1.0, f[rm, wk] * het[rm])
            om = np.concatenate([om, rm[keep]])
            oday = np.concatenate([oday, rd[keep]])
        ok = oday >= enrolled[om]
        om, oday = om[ok], oday[ok]
        oweek = (oday + self.h) // 7

        # ---- e-mail opens and clicks (status active, members who ever open)
        p_open = OPEN_P[seg][:, None] * rng.uniform(0.6, 1.4, S)[:, None] * f * \
            np.where(lapse < 1, 0.25, 1.0) * (active & ~how_blank)[:, None]
        em, ew = np.nonzero(rng.random((S, W)) < p_open)
        h_local = np.where(rng.random(len(em)) < 0.8, how[em] + np.round(rng.normal(0, 0.8, len(em))),
                           rng.integers(0, 168, len(em))).astype(np.int64) % 168
        local = (self.epoch0 + 86_400 * ws[ew]) + 3600 * (((h_local - 34) % 168) + 34) + rng.integers(0, 3600, len(em))
        open_ts = self._local_to_epoch(local, tz_codes[em], tz_names)
        ok = open_ts >= self.epoch0 + 86_400 * enrolled[em]
        em, open_ts = em[ok], open_ts[ok]
        click = rng.random(len(em)) < CLICK_P
        cm, click_ts = em[click], open_ts[click] + rng.integers(20, 600, int(click.sum()))

        # ---- truth: the 90 days from the send date (simulated, never written)
        end = self.epoch0 + 86_400 * 90
        fut = np.zeros(S, dtype=bool)
        fut[om[(oday >= 0) & (oday < 90)]] = True
        fut[em[(open_ts >= self.epoch0) & (open_ts < end)]] = True
        engaged_now = D > 0
        p_true = np.where(engaged_now, 1.0 - np.exp(-90.0 * h_tot), 1.0)
        self._write("truth_members", pa.table({
            "member_id": pa.array(ids, type=pa.string()),
            "segment": pa.array(np.array(SEGMENTS, dtype=object)[seg], type=pa.string()),
            "engaged_on_send_date": pa.array(engaged_now),
            "p_disengage_90d": pa.array(np.round(p_true, 4)),
            "churned_90d": pa.array(~fut),
            "best_hour_of_week": pa.array(how, mask=how_blank, type=pa.int64()),
            "locale": pa.array(c["locale"][rows], type=pa.string()),
        }))

        # ---- transactions (history only): one row per item
        hist = oday < 0
        om, oday, oweek = om[hist], oday[hist], oweek[hist]
        n_items = 1 + rng.poisson(ITEMS_EXTRA[seg[om]])
        order_no = self._orders + np.arange(len(om))
        self._orders += len(om)
        promo = self.promo_week[oweek]
        disc = rng.random(len(om)) < DISCOUNT_P[seg[om]] * np.where(promo, 1.0, 0.3)
        secs = self.epoch0 + 86_400 * oday + rng.integers(8 * 3600, 22 * 3600, len(om))
        im = np.repeat(np.arange(len(om)), n_items)
        prod = self._products(rng, om[im], fav, depts, (0.3, 0.6),
                              gift=self.holiday_week[oweek[im]] & (seg[om[im]] == GIFT_GIVERS))
        qty = 1 + (rng.random(len(im)) < 0.1)
        amount = np.round(self.price[prod] * qty * np.where(disc[im], 0.8, 1.0), 2)
        self._emit_tx({
            "order_id": np.char.add("O", order_no[im].astype(str)),
            "member_id": ids[om[im]],
            "ts": secs[im],
            "product_id": self.product_ids[prod],
            "quantity": qty,
            "amount": amount,
            "discount": disc[im].astype(np.int64),
            "points": np.floor(amount),
            "returned": (rng.random(len(im)) < 0.04).astype(np.int64),
        })

        # ---- events (history only): opens, clicks, product views (last 26 weeks), complaints
        hist_o = open_ts < self.epoch0
        hist_c = click_ts < self.epoch0
        recent = (ws >= -BROWSE_DAYS) & (ws < 0)
        brate = BROWSE_RATE[seg][:, None] * f * np.where(lapse < 1, 0.3, 1.0) * recent[None, :] * \
            np.where(self.holiday_week[None, :] & (seg == GIFT_GIVERS)[:, None], 4.0, 1.0)
        bcnt = rng.poisson(brate)
        bm, bw = np.nonzero(bcnt)
        reps = bcnt[bm, bw]
        bm, bw = np.repeat(bm, reps), np.repeat(bw, reps)
        blocal = (self.epoch0 + 86_400 * (ws[bw] + rng.integers(0, 7, len(bm)))
                  + 3600 * rng.integers(7, 23, len(bm)) + rng.integers(0, 3600, len(bm)))
        b_ts = self._local_to_epoch(blocal, tz_codes[bm], tz_names)
        ok = (b_ts < self.epoch0) & (b_ts >= self.epoch0 + 86_400 * enrolled[bm])
        bm, b_ts = bm[ok], b_ts[ok]
        bprod = self._products(rng, bm, fav, depts, (0.15, 0.7))
        p_c = COMPLAINT_P * np.where(precursor, PRECURSOR_COMPLAINT, 1.0) * np.minimum(f, 1.0) * (ws < 0)[None, :]
        qm, qw = np.nonzero(rng.random((S, W)) < p_c)
        q_ts = self.epoch0 + 86_400 * (ws[qw] + rng.integers(0, 7, len(qm))) + rng.integers(0, 86_400, len(qm))
        ok = (q_ts < self.epoch0) & (q_ts >= self.epoch0 + 86_400 * enrolled[qm])
        qm, q_ts = qm[ok], q_ts[ok]
        m_all = np.concatenate([em[hist_o], cm[hist_c], bm, qm])
        ts_all = np.concatenate([open_ts[hist_o], click_ts[hist_c], b_ts, q_ts])
        kind = np.concatenate([np.zeros(int(hist_o.sum()), dtype=np.int64), np.ones(int(hist_c.sum()), dtype=np.int64),
                               np.full(len(bm), 2), np.full(len(qm), 3)])
        prod_all = np.concatenate([np.full(int(hist_o.sum()) + int(hist_c.sum()), -1), bprod, np.full(len(qm), -1)])
        order = np.lexsort((ts_all, m_all))
        m_all, ts_all, kind, prod_all = m_all[order], ts_all[order], kind[order], prod_all[order]
        pid = np.where(prod_all >= 0, self.product_ids[np.maximum(prod_all, 0)], None)
        self._emit_ev({"member_id": ids[m_all], "ts": ts_all,
                       "event": np.array(EVENT_KINDS, dtype=object)[kind], "product_id": pid})
