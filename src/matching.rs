//! Matching, columnar: per source a group-by on key (polars), per check a full outer join of the two
//! groupings. The result says, for every key of a check, which records each side holds; nothing is
//! turned into Rust structs here.

use anyhow::{Result, anyhow};
use polars::prelude::*;

use crate::model::Record;

/// A source's keyed records grouped by key: columns `key` (str) and `idx` (list of record indices,
/// ascending, so the earliest record comes first).
pub struct Grouped(DataFrame);

pub fn group(records: &[Record]) -> Result<Grouped> {
    let mut keys: Vec<&str> = Vec::with_capacity(records.len());
    let mut idx: Vec<u32> = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        if let Some(k) = &r.key {
            keys.push(k);
            idx.push(
                u32::try_from(i)
                    .map_err(|_| anyhow!("more than 4 billion records in one source"))?,
            );
        }
    }
    let df = df!("key" => keys, "idx" => idx)?;
    let grouped = df
        .lazy()
        .group_by([col("key")])
        .agg([col("idx").sort(SortOptions::default())])
        .collect()
        .map_err(|e| anyhow!("grouping records by key: {e}"))?;
    Ok(Grouped(grouped))
}

/// For every key in either source of a check: the `from` and `to` record indices (empty when absent).
pub struct Joined {
    df: DataFrame,
}

pub fn join(from: &Grouped, to: &Grouped) -> Result<Joined> {
    let left = from.0.clone().lazy().rename(["idx"], ["from"], true);
    let right = to.0.clone().lazy().rename(["idx"], ["to"], true);
    let df = left
        .join(
            right,
            [col("key")],
            [col("key")],
            JoinArgs::new(JoinType::Full),
        )
        .collect()
        .map_err(|e| anyhow!("joining two sources on key: {e}"))?;
    Ok(Joined { df })
}

impl Joined {
    /// Calls `f(key, from_indices, to_indices)` for every key, in the frame's (unspecified) order.
    pub fn for_each(&self, mut f: impl FnMut(&str, &[u32], &[u32])) -> Result<()> {
        // A full join keeps both key columns: `key` is null where only `to` has the key.
        let keys = self
            .df
            .column("key")?
            .as_materialized_series()
            .str()?
            .clone();
        let right_keys = self
            .df
            .column("key_right")?
            .as_materialized_series()
            .str()?
            .clone();
        let from = self
            .df
            .column("from")?
            .as_materialized_series()
            .list()?
            .clone();
        let to = self
            .df
            .column("to")?
            .as_materialized_series()
            .list()?
            .clone();
        let indices = |s: Option<&Series>| -> Result<Vec<u32>> {
            Ok(match s {
                None => Vec::new(),
                Some(s) => s.u32()?.into_no_null_iter().collect(),
            })
        };
        for (((k, rk), a), b) in keys
            .iter()
            .zip(right_keys.iter())
            .zip(from.amortized_iter())
            .zip(to.amortized_iter())
        {
            let k = k
                .or(rk)
                .ok_or_else(|| anyhow!("a null key reached the join"))?;
            f(
                k,
                &indices(a.as_ref().map(|s| s.as_ref()))?,
                &indices(b.as_ref().map(|s| s.as_ref()))?,
            );
        }
        Ok(())
    }
}
