//! Partitions: a run's records split by a hash of their key, so that the run can match, classify
//! and follow one partition at a time and keep only the records behind its findings.
//!
//! Every record of a key, in every source, lands in the same partition, and so do keys that differ
//! only by case or surrounding spaces (the partition comes from a hash of the folded key), so each
//! partition is a complete little run: its matching, classification, flows and key-clash warnings
//! need nothing from the others. The findings of all partitions are then merged and sorted, so the
//! outputs do not depend on how many partitions there were.

pub mod spill;

use anyhow::Result;
use rayon::prelude::*;

use crate::classify::{self, Break, CheckResult, Side};
use crate::config::RunPlan;
use crate::flow::{self, FlowResults};
use crate::load::{Counts, Loaded};
use crate::matching;
use crate::model::Record;
use crate::normalize::key::folded_hash;
use crate::report::clash_pairs;
use crate::state::{self, CarriedRecord, FlowItem, Previous};

/// The partition of a key among `1 << bits`; unkeyed records are all in partition 0.
pub fn part_of(key: Option<&str>, bits: u32) -> usize {
    match key {
        Some(k) if bits > 0 => {
            // FNV's low bits mix well and its high bits less so: spread them before taking the top.
            let h = folded_hash(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (h >> (64 - bits)) as usize
        }
        _ => 0,
    }
}

/// Input bytes per partition when the count is left to recon: about 250 thousand rows of a
/// typical export. Fewer partitions load faster (each loader chunk fills a buffer per partition):
/// at 5M transactions 32 partitions loaded in 1.4 s where 128 took 1.75 s, and matched as fast,
/// in 290 MiB rather than 220; 1M ran 10% faster in 8 or 16 than in 32; 50M loaded in 26 s in
/// 256 or 512 partitions, in 31 s in 1024, in 1.2-1.4 GiB either way.
pub const AUTO_BYTES: u64 = 64 << 20;

/// How many bits of partition number a run uses: `requested` partitions, or else one per
/// [`AUTO_BYTES`] of input (`input` bytes in all), rounded up to a power of two, at most 4096.
pub fn bits_for(requested: Option<usize>, input: u64) -> u32 {
    let auto = || usize::try_from(input.div_ceil(AUTO_BYTES)).unwrap_or(usize::MAX);
    requested
        .unwrap_or_else(auto)
        .clamp(1, 1 << 12)
        .next_power_of_two()
        .trailing_zeros()
}

/// Every source's records, by partition, each partition's in file order.
pub struct Store {
    parts: usize,
    sources: Vec<Held>,
    /// Partitions taken so far, for the progress line.
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One source's records: in memory by partition, or encoded by the loader (see [`spill`]).
enum Held {
    Records(Vec<std::sync::Mutex<Vec<Record>>>),
    Spilled(Vec<spill::SpilledChunk>),
}

impl Store {
    /// Takes the loaded records (or the loader's encoded chunks) into their partitions; with one
    /// partition nothing is copied.
    pub fn new(loaded: &mut [Loaded], bits: u32) -> Store {
        let n = 1usize << bits;
        let sources = loaded
            .iter_mut()
            .map(|l| {
                let records = std::mem::take(&mut l.records);
                l.fresh = 0;
                if !l.spilled.is_empty() {
                    return Held::Spilled(std::mem::take(&mut l.spilled));
                }
                if n == 1 {
                    return Held::Records(vec![records.into()]);
                }
                let mut parts: Vec<Vec<Record>> = vec![Vec::new(); n];
                for r in records {
                    parts[part_of(r.key.as_deref(), bits)].push(r);
                }
                Held::Records(parts.into_iter().map(Into::into).collect())
            })
            .collect();
        Store {
            parts: n,
            sources,
            taken: Default::default(),
        }
    }

    /// The count of partitions taken so far (see [`Store::take`]), shared.
    pub fn taken(&self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        std::sync::Arc::clone(&self.taken)
    }

    pub fn len(&self) -> usize {
        self.parts
    }

    pub fn is_empty(&self) -> bool {
        self.parts == 0
    }

    /// Partition `p`'s records as one `Loaded` per source (records only, all of them fresh),
    /// leaving the partition empty.
    pub fn take(&self, p: usize) -> Result<Vec<Loaded>> {
        self.taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sources
            .par_iter()
            .map(|held| match held {
                Held::Records(parts) => {
                    let mut records = parts[p].lock().unwrap_or_else(|e| e.into_inner());
                    Ok(Loaded::of_records(std::mem::take(&mut *records)))
                }
                Held::Spilled(chunks) => {
                    let mut records = Vec::with_capacity(chunks.iter().map(|c| c.count(p)).sum());
                    for c in chunks.iter() {
                        c.read(p, &mut records)?;
                    }
                    Ok(Loaded::of_records(records))
                }
            })
            .collect()
    }
}

/// Matches, classifies and follows every partition of `store`, with what the previous night's
/// state carries in for its keys, and merges what they found: per check its result, and the flows.
/// Afterwards each source's `records` are the records behind the findings (which the results'
/// indices point into) and its `counts` are the whole run's.
pub fn match_all(
    plan: &RunPlan,
    loaded: &mut [Loaded],
    store: &Store,
    (previous, carried): (&Previous, &[CarriedRecord]),
    day: &classify::Day,
) -> Result<(Vec<CheckResult>, FlowResults)> {
    let bits = store.len().trailing_zeros();
    let mut carried_in: Vec<Vec<&CarriedRecord>> = vec![Vec::new(); store.len()];
    for r in carried {
        carried_in[part_of(Some(&r.key), bits)].push(r);
    }
    let mut flows_in: Vec<Vec<FlowItem>> = vec![Vec::new(); store.len()];
    for f in &previous.flows {
        flows_in[part_of(Some(&f.key), bits)].push(f.clone());
    }
    // One partition: what it found, its flows, its sources' counts and the records behind its
    // findings; its own records are dropped when it is done.
    let one = |p: usize| -> Result<_> {
        let mut part = store.take(p)?;
        let carried = state::place(plan, &mut part, &carried_in[p]);
        let hashes = part
            .iter()
            .map(|l| matching::key_hashes(&l.records[..l.fresh]))
            .collect::<Result<Vec<_>>>()?;
        // Checks one after the other, each split by key hash into parts matched in parallel.
        let mut found: Vec<CheckResult> = plan
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let side = |s: usize| (&part[s].records[..part[s].fresh], &hashes[s][..]);
                let joined = matching::join(side(c.from), side(c.to));
                let sides = (&part[c.from], &part[c.to]);
                let carried = (&carried[i], &previous.correctable[i]);
                classify::classify(i, c, &joined, carried, sides, day)
            })
            .collect::<Result<_>>()?;
        let flows = flow::follow(plan, &part, &flows_in[p], &carried);
        let counts: Vec<Counts> = part
            .par_iter()
            .map(|l| Counts::of(&l.records, l.fresh, clash_pairs(&l.records)))
            .collect();
        let mut kept = Kept::new(plan.sources.len());
        kept.absorb(plan, &part, &mut found);
        Ok((found, flows, counts, kept))
    };
    let mut results: Vec<CheckResult> = plan.checks.iter().map(|_| Default::default()).collect();
    let mut flows = FlowResults::default();
    let mut kept = Kept::new(plan.sources.len());
    // Merged in partition order, so the kept records' order does not depend on timing.
    let mut merge = |done: Vec<(Vec<CheckResult>, FlowResults, Vec<Counts>, Kept)>| {
        for (mut found, f, counts, k) in done {
            kept.append(plan, k, &mut found);
            for (r, x) in results.iter_mut().zip(found) {
                r.merge(x);
            }
            flows.merge(f);
            for (l, c) in loaded.iter_mut().zip(counts) {
                l.counts.merge(c);
            }
        }
    };
    // As many partitions at a time as there are threads (each is parallel inside too): the
    // threads rarely wait for one another, and only that many partitions are in memory at once.
    // A wave's results are merged while the next wave runs (merged between waves, the threads
    // waited for it: a tenth of the matching's wall time at 5M).
    let all: Vec<usize> = (0..store.len()).collect();
    let mut merged = Vec::new();
    for wave in all.chunks(rayon::current_num_threads()) {
        let (done, ()) = rayon::join(
            || wave.par_iter().map(|&p| one(p)).collect::<Result<Vec<_>>>(),
            || merge(std::mem::take(&mut merged)),
        );
        merged = done?;
    }
    merge(merged);
    for (l, records) in loaded.iter_mut().zip(kept.records) {
        l.fresh = records.len();
        l.records = records;
    }
    Ok((results, flows))
}

const NONE: u32 = u32::MAX;

/// The records behind the findings of the partitions done so far, per source: what the outputs,
/// the repair plan and the state need once the partitions' records are gone.
pub struct Kept {
    pub records: Vec<Vec<Record>>,
}

impl Kept {
    pub fn new(sources: usize) -> Kept {
        Kept {
            records: vec![Vec::new(); sources],
        }
    }

    /// Appends another partition's kept records, renumbering its results' record indices (which
    /// point into `other`) to match.
    pub fn append(&mut self, plan: &RunPlan, other: Kept, results: &mut [CheckResult]) {
        let offsets: Vec<u32> = self.records.iter().map(|r| r.len() as u32).collect();
        for (mine, theirs) in self.records.iter_mut().zip(other.records) {
            mine.extend(theirs);
        }
        renumber(plan, results, |s, i| *i += offsets[s]);
    }

    /// Copies every record that one partition's results name into the kept records, and renumbers
    /// the results' record indices to match.
    pub fn absorb(&mut self, plan: &RunPlan, part: &[Loaded], results: &mut [CheckResult]) {
        let mut map: Vec<Vec<u32>> = part.iter().map(|l| vec![NONE; l.records.len()]).collect();
        renumber(plan, results, |s, i| {
            let slot = &mut map[s][*i as usize];
            if *slot == NONE {
                *slot = self.records[s].len() as u32;
                self.records[s].push(part[s].records[*i as usize].clone());
            }
            *i = *slot;
        });
    }
}

/// Calls `f(source, index)` on every record index the results hold.
fn renumber(plan: &RunPlan, results: &mut [CheckResult], mut f: impl FnMut(usize, &mut u32)) {
    for (c, res) in results.iter_mut().enumerate() {
        let check = &plan.checks[c];
        let (fs, ts) = (check.source(Side::From), check.source(Side::To));
        let mut both = |from: &mut Vec<u32>, to: &mut Vec<u32>| {
            from.iter_mut().for_each(|i| f(fs, i));
            to.iter_mut().for_each(|i| f(ts, i));
        };
        for Break { from, to, .. } in &mut res.breaks {
            both(from, to);
        }
        for x in &mut res.resolved {
            both(&mut x.from, &mut x.to);
        }
        for (_, from, to) in &mut res.open {
            both(from, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_space_variants_share_a_partition_and_keys_spread() {
        for bits in [1, 3, 8] {
            let p = part_of(Some("ORD-17"), bits);
            assert_eq!(part_of(Some(" ord-17 "), bits), p);
            assert_eq!(part_of(Some("Ord-17"), bits), p);
            assert!(p < 1 << bits);
        }
        assert_eq!(part_of(None, 5), 0);
        assert_eq!(part_of(Some("anything"), 0), 0);
        // 8 partitions, 8000 keys: each gets a fair share.
        let mut n = [0usize; 8];
        for i in 0..8000 {
            n[part_of(Some(&format!("idem_{i:024x}")), 3)] += 1;
        }
        assert!(n.iter().all(|&c| (800..1200).contains(&c)), "{n:?}");
    }

    #[test]
    fn partition_counts_round_up_to_powers_of_two() {
        assert_eq!(bits_for(Some(1), 1 << 40), 0);
        assert_eq!(bits_for(Some(3), 0), 2);
        assert_eq!(bits_for(Some(8), 0), 3);
        assert_eq!(bits_for(Some(1 << 20), 0), 12);
        // Left to recon: one partition per 64 MiB of input.
        assert_eq!(bits_for(None, 0), 0);
        assert_eq!(bits_for(None, AUTO_BYTES), 0);
        assert_eq!(bits_for(None, AUTO_BYTES + 1), 1);
        assert_eq!(bits_for(None, 1_558_708_553), 5); // the 5M benchmark: 23.2 -> 32
        assert_eq!(bits_for(None, 1 << 50), 12);
    }
}
