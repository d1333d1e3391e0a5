"""Real credit_data rows written the way a lender's loan extract looks (the shape of the SBA 7(a) loan file):

    LoanNr        unique text id "LN0000012345"
    ApprovalDate  dd-Mon-yy ("15-Mar-68"): two-digit years, 1968–2012, so a guess reads 1968 as 2068
    Status        "CHGOFF" (credit_data's bad) or "P I F" (good); a share of rows left blank (not yet known)
    Income, Assets, Debt, Amount, Price   money text: "$1,234.00 " (trailing space as in the extract)
    ChgOffPrinGr  charged-off principal, "$0.00" unless the loan defaulted: it leaks the label (the config drops it)
    BankBranch    one of 400 branch codes, Zipf-distributed: a high-cardinality text column (the config caps it)

Every other column is credit_data's, unchanged. Only ApprovalDate and BankBranch are synthetic (random, carrying no
signal): injected to exercise the cleaning, on top of real rows. Resampled (more rows than the 4454 real ones), the
money amounts are also jittered by up to ±5% (to the cent), so a million rows are not 4454 rows repeated: a model
cannot memorise rows that reappear in the test split, and amounts are as varied as a real extract's.

    python -m bench.messy_credit --rows 1500 --out data/credit_data_messy/credit_data_messy.csv   # the fixture
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "data" / "credit_data" / "credit_data.csv"
MONEY = ("Income", "Assets", "Debt", "Amount", "Price")
FIRST_DAY, LAST_DAY = dt.date(1968, 1, 1), dt.date(2012, 12, 31)
BRANCHES = 400


def _money(values: pd.Series) -> pd.Series:
    """"$1,234.00 " text; missing stays empty."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([f"${float(v):,.2f} " for v in uniques] + [""], dtype=object)
    return pd.Series(texts[codes], index=values.index)


def messy_credit(rows: int, *, seed: int = 20261122, unlabeled_share: float = 0.01,
                 resample: bool = False) -> pd.DataFrame:
    """`rows` credit_data rows (a sample without replacement, or resampled with replacement when `resample`),
    formatted as the loan extract above."""
    source = pd.read_csv(SOURCE)
    rng = np.random.default_rng(seed)
    index = rng.choice(len(source), size=rows, replace=resample or rows > len(source))
    data = source.iloc[index].reset_index(drop=True)
    out = pd.DataFrame({"LoanNr": [f"LN{i:010d}" for i in range(1, rows + 1)]})
    days = rng.integers(0, (LAST_DAY - FIRST_DAY).days + 1, size=rows)
    day_codes, day_values = pd.factorize(days)
    labels = np.array([(FIRST_DAY + dt.timedelta(days=int(d))).strftime("%d-%b-%y") for d in day_values], dtype=object)
    out["ApprovalDate"] = labels[day_codes]
    bad = (data["Status"] == "bad").to_numpy()
    status = np.where(bad, "CHGOFF", "P I F").astype(object)
    status[rng.random(rows) < unlabeled_share] = ""
    out["Status"] = status
    for column in ("Seniority", "Home", "Time", "Age", "Marital", "Records", "Job", "Expenses"):
        out[column] = data[column]
    for column in MONEY:
        values = data[column]
        if resample or rows > len(source):
            values = (values * rng.uniform(0.95, 1.05, size=rows)).round(2)
        out[column] = _money(values)
    charged_off = np.where(bad, np.round(data["Amount"].to_numpy() * rng.uniform(0.2, 0.9, size=rows), 2), 0.0)
    out["ChgOffPrinGr"] = _money(pd.Series(charged_off))
    weights = 1.0 / np.arange(1, BRANCHES + 1)
    branch = rng.choice(BRANCHES, size=rows, p=weights / weights.sum())
    out["BankBranch"] = np.array([f"BR{b:04d}" for b in range(BRANCHES)], dtype=object)[branch]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--resample", action="store_true", help="sample with replacement (more rows than the source)")
    args = parser.parse_args(argv)
    frame = messy_credit(args.rows, seed=args.seed, resample=args.resample)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"{len(frame)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
