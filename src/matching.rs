//! Matching, columnar: per source a group-by on key (polars), per check a full outer join of the two
//! groupings. The result says, for every key of a check, which records each side holds; nothing is
//! turned into Rust structs here.
//!
//! The group-by keeps two numbers per key, the first record and the count, so that the join and the
//! walk over its result stay flat columns. The full list of records is only gathered for the few keys
//! that occur more than once (duplicates), in one pass over the source.

use std::collections::{HashMap, HashSet};

use anyhow::{Result, anyhow};
use polars::prelude::*;

use crate::model::Record;

/// A source's keyed records grouped by key: a frame of `key`, `first` (a record's index) and `n`
/// (how many records), plus every record index of the keys with `n > 1`, earliest first (by time,
/// then file and line).
pub struct Grouped {
    df: DataFrame,
    duplicates: HashMap<String, Vec<u32>>,
}

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
    let df = df
        .lazy()
        .group_by([col("key")])
        .agg([col("idx").min().alias("first"), len().alias("n")])
        .collect()
        .map_err(|e| anyhow!("grouping records by key: {e}"))?;

    let keys = df.column("key")?.as_materialized_series().str()?.clone();
    let counts = df.column("n")?.as_materialized_series().u32()?.clone();
    let repeated: HashSet<&str> = keys
        .iter()
        .zip(counts.iter())
        .filter(|(_, n)| n.unwrap_or(0) > 1)
        .filter_map(|(k, _)| k)
        .collect();
    let mut duplicates: HashMap<String, Vec<u32>> = HashMap::with_capacity(repeated.len());
    if !repeated.is_empty() {
        for (i, r) in records.iter().enumerate() {
            if let Some(k) = r.key.as_deref().filter(|k| repeated.contains(k)) {
                duplicates.entry(k.to_string()).or_default().push(i as u32);
            }
        }
        for list in duplicates.values_mut() {
            list.sort_by_key(|&i| (records[i as usize].at, records[i as usize].origin));
        }
    }
    Ok(Grouped { df, duplicates })
}

/// For every key in either source of a check: the `from` and `to` record indices (empty when absent).
pub struct Joined<'g> {
    df: DataFrame,
    from: &'g Grouped,
    to: &'g Grouped,
}

pub fn join<'g>(from: &'g Grouped, to: &'g Grouped) -> Result<Joined<'g>> {
    let left = from
        .df
        .clone()
        .lazy()
        .rename(["first", "n"], ["from_first", "from_n"], true);
    let right = to
        .df
        .clone()
        .lazy()
        .rename(["first", "n"], ["to_first", "to_n"], true);
    let df = left
        .join(
            right,
            [col("key")],
            [col("key")],
            JoinArgs::new(JoinType::Full),
        )
        .collect()
        .map_err(|e| anyhow!("joining two sources on key: {e}"))?;
    Ok(Joined { df, from, to })
}

impl Joined<'_> {
    /// Calls `f(key, from_indices, to_indices)` for every key, in the frame's (unspecified) order.
    pub fn for_each(&self, mut f: impl FnMut(&str, &[u32], &[u32])) -> Result<()> {
        let column = |name: &str| -> Result<Series> {
            Ok(self.df.column(name)?.as_materialized_series().clone())
        };
        // A full join keeps both key columns: `key` is null where only `to` has the key.
        let (keys, right_keys) = (column("key")?, column("key_right")?);
        let (keys, right_keys) = (keys.str()?, right_keys.str()?);
        let (from_first, from_n, to_first, to_n) = (
            column("from_first")?,
            column("from_n")?,
            column("to_first")?,
            column("to_n")?,
        );
        let (from_first, from_n, to_first, to_n) = (
            from_first.u32()?,
            from_n.u32()?,
            to_first.u32()?,
            to_n.u32()?,
        );
        let rows = keys
            .iter()
            .zip(right_keys.iter())
            .zip(from_first.iter().zip(from_n.iter()))
            .zip(to_first.iter().zip(to_n.iter()));
        for (((k, rk), (ff, fn_)), (tf, tn)) in rows {
            let k = k
                .or(rk)
                .ok_or_else(|| anyhow!("a null key reached the join"))?;
            let (mut one_f, mut one_t) = ([0u32], [0u32]);
            let from = side(self.from, k, ff, fn_, &mut one_f)?;
            let to = side(self.to, k, tf, tn, &mut one_t)?;
            f(k, from, to);
        }
        Ok(())
    }
}

/// One side's record indices for a key: none, the single `first`, or the duplicates' full list.
fn side<'a>(
    g: &'a Grouped,
    key: &str,
    first: Option<u32>,
    n: Option<u32>,
    one: &'a mut [u32; 1],
) -> Result<&'a [u32]> {
    Ok(match (first, n) {
        (Some(i), Some(1)) => {
            one[0] = i;
            one
        }
        (Some(_), Some(_)) => g
            .duplicates
            .get(key)
            .ok_or_else(|| anyhow!("duplicate key {key:?} lost its records"))?,
        _ => &[],
    })
}
