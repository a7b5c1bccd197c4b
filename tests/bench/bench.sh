#!/usr/bin/env bash
# Benchmark: recon against the peers a user would pick instead (DuckDB SQL, polars in Python), on
# the same generated data in the same run, alternating, several runs each.
#
#   tests/bench/bench.sh N [RUNS]      e.g. tests/bench/bench.sh 1000000 3
#
# Needs: python3 with `pip install duckdb polars pyarrow`; /usr/bin/time (Debian package `time`).
# The peer scripts and the ground-truth check are the team's kit in ../shared/bench (set BENCH_KIT
# to move it). Data comes from tests/bench/gen_data.rs, a Rust port of the kit's gen_data.py
# (BENCH_GEN=python uses the original, which needs about 10 GB and 20 minutes at 50M); it is
# generated once per N under ${BENCH_DATA:-/tmp/recon-bench}/N and reused.
# BENCH_TOOLS picks the tools (default "recon duckdb polars"; polars needs about 29 GB at 50M,
# more than the machine has: use BENCH_TOOLS="recon duckdb" there).
# Prints per tool: median wall seconds, CPU seconds (user+sys), peak RSS, the ratio recon/peer, and
# recon's found / missed / extra per fault kind against the generator's ground truth.
set -euo pipefail
n=${1:?usage: bench.sh N [RUNS]}
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kit=${BENCH_KIT:-$root/../shared/bench}
data=${BENCH_DATA:-/tmp/recon-bench}/$n
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recon-target}"

(cd "$root" && cargo build --release --quiet && cargo build --release --quiet --example gen_data)
recon="$CARGO_TARGET_DIR/release/recon"
if [ ! -f "$data/truth.csv" ]; then
  echo "generating $n transactions into $data" >&2
  if [ "${BENCH_GEN:-rust}" = python ]; then
    python3 "$kit/gen_data.py" "$n" "$data"
  else
    "$CARGO_TARGET_DIR/release/examples/gen_data" "$n" "$data"
  fi
fi
cp "$here/recon.toml" "$data/recon.toml"

declare -A cmd=(
  [recon]="$recon run --config $data/recon.toml --out $data/recon-out --quiet"
  [duckdb]="python3 $kit/peer_duckdb.py $data/events.jsonl $data/ledger.csv $data/duckdb.csv"
  [polars]="python3 $kit/peer_polars.py $data/events.jsonl $data/ledger.csv $data/polars.csv"
)
read -r -a tools <<< "${BENCH_TOOLS:-recon duckdb polars}"
# Warm the page cache, so that no tool pays for the first read from disk.
cat "$data/events.jsonl" "$data/ledger.csv" > /dev/null
results="$data/times.tsv"
: > "$results"
for ((r = 1; r <= runs; r++)); do
  for t in "${tools[@]}"; do
    # Exit 1 (breaks found) is recon's normal outcome here.
    /usr/bin/time -f "$t\t%e\t%U\t%S\t%M" -a -o "$results" ${cmd[$t]} > /dev/null || [ $? -le 1 ]
  done
done

python3 - "$results" "$n" <<'PY'
import statistics, sys
rows = [f for f in (l.rstrip("\n").split("\t") for l in open(sys.argv[1])) if len(f) == 5]  # skip time's notes
stats = {}
for t, wall, user, sys_, rss in rows:
    stats.setdefault(t, []).append((float(wall), float(user) + float(sys_), int(rss)))
med = {t: (statistics.median(w for w, _, _ in v), statistics.median(c for _, c, _ in v),
           max(m for _, _, m in v)) for t, v in stats.items()}
print(f"\n{int(sys.argv[2]):,} transactions, {len(stats['recon'])} runs each (median wall, median CPU, max peak RSS)")
print(f"{'tool':8} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}   recon/tool: wall  cpu  memory")
r = med["recon"]
for t, (w, c, m) in med.items():
    print(f"{t:8} {w:8.2f} {c:8.2f} {m / 1024:9.0f}   {r[0] / w:16.2f} {r[1] / c:4.2f} {r[2] / m:7.2f}")
for t, v in stats.items():
    print(f"  {t}: " + ", ".join(f"{w:.2f} s / {m / 1024:.0f} MiB" for w, _, m in v))
PY
python3 "$here/to_truth_kinds.py" "$data/recon-out/breaks.csv" "$data/recon-kinds.csv"
echo; echo "recon against the ground truth:"
python3 "$kit/check.py" "$data/truth.csv" "$data/recon-kinds.csv"
