//! Matching: for every key of a check, which records each side holds.
//!
//! Each side's keyed records become (hash of the key, record index) entries, sorted (bucketed by
//! the hash's top bits, or for one large partition in parallel); the two sorted lists are then
//! walked side by side, in parts (ranges of the hash space) matched in parallel. A key's records
//! on both sides share a hash, so they meet in the same part at the same place. A hash match is
//! always confirmed by comparing the keys themselves: two keys that collide stay two keys. The walk
//! reads the records only where hashes meet or repeat, and in order of hash, so no hash table is
//! built or probed per record.

use std::hash::{BuildHasher, Hasher};

use anyhow::{Result, anyhow};
use rayon::prelude::*;

use crate::model::{Key, Record};
/// The hash of a key's bytes: fixed seed, so the same on every run and machine.
fn key_hash(key: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5eed_2026).hash_one(key)
}

/// A hasher for keys that are already hashes: passes the u64 through.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed with Prehashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One keyed record of a side: its key's hash and its index in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    hash: u64,
    id: u32,
}

/// One side of a check: its records, and the keyed ones' entries sorted by (hash, index).
struct Sorted<'r> {
    records: &'r [Record],
    entries: Vec<Entry>,
}

impl<'r> Sorted<'r> {
    fn new(records: &'r [Record], hashes: &[u64]) -> Sorted<'r> {
        let mut entries: Vec<Entry> = records
            .par_iter()
            .zip(hashes)
            .enumerate()
            .filter(|(_, (r, _))| r.key.is_some())
            .map(|(i, (_, &hash))| Entry { hash, id: i as u32 })
            .collect();
        match entries.len() {
            // A partition's share (tens of thousands): bucketed by the top bits of the hash.
            n if n <= BUCKETED_UP_TO => entries = bucket_sort(entries),
            // One partition of a large run: in parallel.
            _ => entries.par_sort_unstable(),
        }
        Sorted { records, entries }
    }

    fn key(&self, e: &Entry) -> &'r str {
        self.key_of(e).as_str()
    }

    /// The key itself, which compares inline keys without a call to memcmp (see [`Key`]).
    fn key_of(&self, e: &Entry) -> &'r Key {
        self.records[e.id as usize]
            .key
            .as_ref()
            .expect("only keyed records have entries")
    }

    /// Asks the CPU to bring an entry's record into cache (a hint only; no effect elsewhere).
    #[inline]
    fn prefetch(&self, e: Option<&Entry>) {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = e.and_then(|e| self.records.get(e.id as usize)) {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE, which
            // it needs, is part of every x86_64 CPU.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const Record).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = e;
    }

    /// The entries whose hash falls in `hashes`, a range of the hash space.
    fn range(&self, from: u64, to: Option<u64>) -> &[Entry] {
        let a = self.entries.partition_point(|e| e.hash < from);
        let b = to.map_or(self.entries.len(), |t| {
            self.entries.partition_point(|e| e.hash < t)
        });
        &self.entries[a..b]
    }
}

/// Entries sorted by [`bucket_sort`] rather than by rayon's parallel sort, up to this many: a
/// partitioned run's partitions are matched side by side, one per thread, so a partition's sort
/// gains nothing from threads of its own.
const BUCKETED_UP_TO: usize = 1 << 20;

/// Sorts entries by (hash, index), as `sort_unstable` would (they are all distinct): one pass
/// counts them into buckets by the top bits of their hash (uniform: a hash), one places them, and
/// each bucket, a couple of entries, is then put in order on its own. That is three quick passes
/// where a comparison sort of 40,000 entries makes fifteen. (With eight entries a bucket, their
/// insertion sorts took a quarter of the sorting; with two, the buckets' counts still fit the
/// CPU's cache.)
fn bucket_sort(entries: Vec<Entry>) -> Vec<Entry> {
    if entries.len() < 256 {
        let mut entries = entries;
        entries.sort_unstable();
        return entries;
    }
    // About two entries per bucket.
    let bits = (entries.len().ilog2() - 1).min(22);
    let bucket = |e: &Entry| (e.hash >> (64 - bits)) as usize;
    let mut starts = vec![0u32; (1 << bits) + 1];
    for e in &entries {
        starts[bucket(e) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![Entry { hash: 0, id: 0 }; entries.len()];
    for e in &entries {
        let at = &mut next[bucket(e)];
        out[*at as usize] = *e;
        *at += 1;
    }
    for w in starts.windows(2) {
        let run = &mut out[w[0] as usize..w[1] as usize];
        match run.len() {
            0 | 1 => {}
            2 => {
                if run[1] < run[0] {
                    run.swap(0, 1);
                }
            }
            _ => run.sort_unstable(),
        }
    }
    out
}

/// The hash of every record's key (0 for an unkeyed record, which is never matched), in parallel.
pub fn key_hashes(records: &[Record]) -> Result<Vec<u64>> {
    if records.len() >= u32::MAX as usize {
        return Err(anyhow!("more than 4 billion records in one source"));
    }
    Ok(records
        .par_iter()
        .map(|r| r.key.as_deref().map_or(0, key_hash))
        .collect())
}

/// How many entries ahead of the walk records are prefetched.
const AHEAD: usize = 8;

/// Records per part, so that there are parts enough for every thread and each is small.
const PART_RECORDS: usize = 1 << 16;

/// One part of a check's keys: a range of the hash space, `[start, end)`, `end` open at the top.
pub struct Part {
    start: u64,
    end: Option<u64>,
}

/// A check's two sides sorted by key hash, and split into parts that can be matched
/// independently (and in parallel).
pub struct Joined<'r> {
    from: Sorted<'r>,
    to: Sorted<'r>,
    pub parts: Vec<Part>,
}

pub fn join<'r>(from: (&'r [Record], &'r [u64]), to: (&'r [Record], &'r [u64])) -> Joined<'r> {
    let (from, to) = rayon::join(|| Sorted::new(from.0, from.1), || Sorted::new(to.0, to.1));
    let total = from.entries.len() + to.entries.len();
    let bits = (total / PART_RECORDS)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .min(12);
    let parts = (0u64..1 << bits)
        .map(|p| Part {
            start: if bits == 0 { 0 } else { p << (64 - bits) },
            end: (p + 1 < 1 << bits).then(|| (p + 1) << (64 - bits)),
        })
        .collect();
    Joined { from, to, parts }
}

impl Joined<'_> {
    /// Calls `f(key, from_indices, to_indices)` once for every key of one part, with each side's
    /// records of the key earliest first (by time, then file and line).
    pub fn for_each(&self, part: &Part, mut f: impl FnMut(&str, &[u32], &[u32])) {
        let from = self.from.range(part.start, part.end);
        let to = self.to.range(part.start, part.end);
        let (mut fi, mut ti) = (Vec::new(), Vec::new());
        let (mut a, mut b) = (0, 0);
        while a < from.len() || b < to.len() {
            // The walk reads the records in hash order, that is at random: ask for the ones a few
            // steps ahead now, so that they are in cache when their turn comes.
            self.from.prefetch(from.get(a + AHEAD));
            self.to.prefetch(to.get(b + AHEAD));
            let hf = from.get(a).map(|e| e.hash);
            let ht = to.get(b).map(|e| e.hash);
            let h = match (hf, ht) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) => x,
                (None, Some(y)) => y,
                (None, None) => break,
            };
            let run = |s: &[Entry], at: &mut usize| {
                let start = *at;
                while *at < s.len() && s[*at].hash == h {
                    *at += 1;
                }
                start..*at
            };
            let rf = &from[run(from, &mut a)];
            let rt = &to[run(to, &mut b)];
            if rf.len() <= 1 && rt.len() <= 1 {
                // The usual case: one record per side, or one side only.
                match (rf.first(), rt.first()) {
                    (Some(x), Some(y)) if self.from.key_of(x) == self.to.key_of(y) => {
                        f(self.from.key(x), &[x.id], &[y.id]);
                    }
                    (x, y) => {
                        if let Some(x) = x {
                            f(self.from.key(x), &[x.id], &[]);
                        }
                        if let Some(y) = y {
                            f(self.to.key(y), &[], &[y.id]);
                        }
                    }
                }
                continue;
            }
            // Several records under one hash: the same key repeated (a duplicate), or, very
            // rarely, different keys whose hashes collide. Group them by key.
            let mut keys: Vec<&str> = Vec::new();
            for (side, s) in [(&self.from, rf), (&self.to, rt)] {
                for e in s {
                    let k = side.key(e);
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            for k in keys {
                let pick = |side: &Sorted, s: &[Entry], out: &mut Vec<u32>| {
                    out.clear();
                    out.extend(s.iter().filter(|e| side.key(e) == k).map(|e| e.id));
                    let recs = side.records;
                    out.sort_by_key(|&i| recs[i as usize].earliness());
                };
                pick(&self.from, rf, &mut fi);
                pick(&self.to, rt, &mut ti);
                f(k, &fi, &ti);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sort_orders_as_sort_unstable_does() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 255, 256, 1000, 40_000] {
            // Hashes spread, and some repeated (keys on several records) or clustered.
            let entries: Vec<Entry> = (0..n)
                .map(|i| {
                    let hash = match i % 5 {
                        0 => 42,
                        1 => next() >> 60,
                        _ => next(),
                    };
                    Entry {
                        hash,
                        id: (n - i) as u32,
                    }
                })
                .collect();
            let mut want = entries.clone();
            want.sort_unstable();
            assert_eq!(bucket_sort(entries), want, "{n}");
        }
    }

    fn all_keys(from: &[Record], to: &[Record]) -> Vec<(String, Vec<u32>, Vec<u32>)> {
        let (hf, ht) = (key_hashes(from).unwrap(), key_hashes(to).unwrap());
        let joined = join((from, &hf), (to, &ht));
        let mut seen = Vec::new();
        for part in &joined.parts {
            joined.for_each(part, |k, f, t| {
                seen.push((k.to_string(), f.to_vec(), t.to_vec()))
            });
        }
        seen.sort();
        seen
    }

    #[test]
    fn groups_and_joins_every_key_once() {
        let from = vec![
            Record::bare(Some("a"), 1),
            Record::bare(Some("b"), 2),
            Record::bare(None, 3),
            Record::bare(Some("a"), 4),
            Record::bare(Some("c"), 5),
        ];
        let to = vec![
            Record::bare(Some("c"), 1),
            Record::bare(Some("d"), 2),
            Record::bare(Some("a"), 3),
        ];
        let want: Vec<(String, Vec<u32>, Vec<u32>)> = [
            ("a", vec![0, 3], vec![2]),
            ("b", vec![1], vec![]),
            ("c", vec![4], vec![0]),
            ("d", vec![], vec![1]),
        ]
        .into_iter()
        .map(|(k, f, t)| (k.to_string(), f, t))
        .collect();
        assert_eq!(all_keys(&from, &to), want);
    }

    #[test]
    fn many_parts_lose_no_key() {
        // Enough records for several parts: every key is seen once, with all its records.
        let n = 3 * PART_RECORDS;
        let from: Vec<Record> = (0..n)
            .map(|i| Record::bare(Some(&format!("k{}", i / 2)), i as u64))
            .collect();
        let to: Vec<Record> = (0..n / 2)
            .map(|i| Record::bare(Some(&format!("k{}", i + n / 4)), i as u64))
            .collect();
        let seen = all_keys(&from, &to);
        assert_eq!(seen.len(), n / 2 + n / 4);
        assert!(seen.iter().all(|(_, f, t)| f.len() <= 2 && t.len() <= 1));
        let paired = seen
            .iter()
            .filter(|(_, f, t)| !f.is_empty() && !t.is_empty())
            .count();
        assert_eq!(paired, n / 4);
    }

    #[test]
    fn colliding_hashes_stay_different_keys() {
        // Give every key the same hash: the walk must still tell them apart, on both sides.
        let from = vec![
            Record::bare(Some("x"), 1),
            Record::bare(Some("y"), 2),
            Record::bare(Some("x"), 3),
        ];
        let to = vec![Record::bare(Some("z"), 1), Record::bare(Some("y"), 2)];
        let joined = join((&from, &[7; 3]), (&to, &[7; 2]));
        let mut seen = Vec::new();
        for part in &joined.parts {
            joined.for_each(part, |k, f, t| {
                seen.push((k.to_string(), f.to_vec(), t.to_vec()))
            });
        }
        seen.sort();
        let want = [
            ("x", vec![0, 2], vec![]),
            ("y", vec![1], vec![1]),
            ("z", vec![], vec![0]),
        ];
        let want: Vec<_> = want
            .into_iter()
            .map(|(k, f, t)| (k.to_string(), f, t))
            .collect();
        assert_eq!(seen, want);
        // One record a side under one hash, different keys: two keys, not a pair.
        let (a, b) = (
            vec![Record::bare(Some("p"), 1)],
            vec![Record::bare(Some("q"), 1)],
        );
        let joined = join((&a, &[9]), (&b, &[9]));
        let mut n = 0;
        for part in &joined.parts {
            joined.for_each(part, |k, f, t| {
                n += 1;
                assert!(f.is_empty() != t.is_empty(), "{k}: {f:?} {t:?}");
            });
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn a_duplicated_key_lists_its_records_earliest_first() {
        let mut from = vec![
            Record::bare(Some("k"), 1),
            Record::bare(Some("k"), 2),
            Record::bare(Some("k"), 3),
        ];
        let t = |s| chrono::DateTime::from_timestamp(s, 0);
        (from[0].at, from[1].at, from[2].at) = (t(30), t(10), t(20));
        let all = all_keys(&from, &[]);
        assert_eq!(all, [("k".to_string(), vec![1, 2, 0], vec![])]);
    }
}
