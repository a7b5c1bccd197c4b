#!/usr/bin/env python3
"""Turns recon's breaks.csv into the (idempotency_key, break_kind) shape of gen_data.py's truth.csv,
so that ../shared/bench/check.py can count found / missed / extra per fault kind.
Usage: to_truth_kinds.py breaks.csv out.csv"""
import csv
import sys

KINDS = {
    "missing": "missing_in_ledger",
    "unexpected": "missing_in_events",
    "duplicate": "duplicate_in_ledger",
    "conflicting_duplicate": "duplicate_in_ledger",
    "amount_mismatch": "amount_mismatch",
}

with open(sys.argv[1], newline="") as f, open(sys.argv[2], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["idempotency_key", "break_kind"])
    for row in csv.DictReader(f):
        kind = row["kind"]
        if kind == "field_mismatch":
            kind = "currency_mismatch" if "currency" in row["fields"].split(";") else "field_mismatch"
        else:
            kind = KINDS.get(kind, kind)
        if kind == "duplicate_in_ledger" and row["system"] != "ledger":
            kind = "duplicate_in_events"
        w.writerow([row["key"], kind])
