//! Matching: for every key of a check, which records each side holds.
//!
//! Each check's records are split by the top bits of a 64-bit hash of their key into parts of about
//! 64K records, so that one part's hash tables stay in the CPU caches; the parts are matched in
//! parallel, and a key's records on both sides always fall in the same part. Within a part, each
//! side's records are grouped by key: a group keeps its first record, its count and the head of a
//! chain through its records, so grouping allocates nothing per key beyond one fixed-size entry.
//! A hash match is always confirmed by comparing the keys themselves: two keys that collide stay
//! two keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use anyhow::{Result, anyhow};
use rayon::prelude::*;

use crate::model::Record;

const NONE: u32 = u32::MAX;

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

/// The records of one key in one source.
#[derive(Debug, Clone, Copy)]
struct Group {
    hash: u64,
    /// The record that came first in file order (and holds the key text used for comparisons).
    first: u32,
    /// The record added last: the head of the chain through `Grouped::next`.
    last: u32,
    n: u32,
    /// The next group whose key has the same hash (a collision), or `NONE`.
    same_hash: u32,
}

/// Some keyed records of one source grouped by key, in order of first appearance. `ids` are the
/// records' indices in the source, in file order; groups and chains use positions in `ids`.
struct Grouped<'a> {
    records: &'a [Record],
    ids: &'a [u32],
    groups: Vec<Group>,
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// Per position: the previous position with the same key, or `NONE`.
    next: Vec<u32>,
}

impl<'a> Grouped<'a> {
    fn new(records: &'a [Record], hashes: &'a [u64], ids: &'a [u32]) -> Grouped<'a> {
        let mut g = Grouped {
            records,
            ids,
            groups: Vec::new(),
            index: HashMap::default(),
            next: vec![NONE; ids.len()],
        };
        g.index.reserve(ids.len());
        for (pos, &id) in ids.iter().enumerate() {
            g.insert(pos as u32, hashes[id as usize]);
        }
        g
    }

    /// The key of the record at position `pos`.
    fn key_at(&self, pos: u32) -> &'a str {
        self.records[self.ids[pos as usize] as usize]
            .key
            .as_deref()
            .expect("only keyed records are partitioned")
    }

    fn key(&self, g: &Group) -> &'a str {
        self.records[self.ids[g.first as usize] as usize]
            .key
            .as_deref()
            .expect("only keyed records are grouped")
    }

    /// The group of `key`, if there is one.
    fn find(&self, key: &str, hash: u64) -> Option<u32> {
        let mut g = *self.index.get(&hash)?;
        while g != NONE {
            let group = &self.groups[g as usize];
            if self.key(group) == key {
                return Some(g);
            }
            g = group.same_hash;
        }
        None
    }

    /// Adds the record at position `pos`, whose key has hash `hash`. The key itself is only read
    /// when the hash is already known: for most records it is not, and reading it would cost a
    /// cache miss into the record and another into its key.
    fn insert(&mut self, pos: u32, hash: u64) {
        let found = if self.index.contains_key(&hash) {
            self.find(self.key_at(pos), hash)
        } else {
            None
        };
        match found {
            Some(at) => {
                let group = &mut self.groups[at as usize];
                self.next[pos as usize] = group.last;
                group.last = pos;
                group.n += 1;
            }
            None => {
                let at = self.groups.len() as u32;
                // A new key: first in its hash's chain of groups (almost always alone in it).
                let same_hash = self.index.insert(hash, at).unwrap_or(NONE);
                self.groups.push(Group {
                    hash,
                    first: pos,
                    last: pos,
                    n: 1,
                    same_hash,
                });
            }
        }
    }

    /// A group's record indices in the source, earliest first (by time, then file and line).
    fn indices(&self, g: &Group, out: &mut Vec<u32>) {
        out.clear();
        if g.n == 1 {
            out.push(self.ids[g.first as usize]);
            return;
        }
        let mut p = g.last;
        while p != NONE {
            out.push(self.ids[p as usize]);
            p = self.next[p as usize];
        }
        let recs = self.records;
        out.sort_by_key(|&i| (recs[i as usize].at, recs[i as usize].origin));
    }
}

/// The hash of every record's key (0 for an unkeyed record, which is never grouped), in parallel.
pub fn key_hashes(records: &[Record]) -> Result<Vec<u64>> {
    if records.len() >= NONE as usize {
        return Err(anyhow!("more than 4 billion records in one source"));
    }
    Ok(records
        .par_iter()
        .map(|r| r.key.as_deref().map_or(0, key_hash))
        .collect())
}

/// Records per partition, so that one partition's hash tables stay in the CPU caches.
const PART_RECORDS: usize = 1 << 16;

/// One part of a check's keys (those whose hash falls in it): the record indices of each side.
pub struct Part {
    from: Vec<u32>,
    to: Vec<u32>,
}

/// A check's two sides split by key hash into parts that can be matched independently (and in
/// parallel): a key's records on both sides always land in the same part.
pub struct Joined<'r> {
    from: (&'r [Record], &'r [u64]),
    to: (&'r [Record], &'r [u64]),
    pub parts: Vec<Part>,
}

pub fn join<'r>(from: (&'r [Record], &'r [u64]), to: (&'r [Record], &'r [u64])) -> Joined<'r> {
    let total = from.0.len() + to.0.len();
    let bits = (total / PART_RECORDS)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .min(12);
    let split = |(records, hashes): (&[Record], &[u64])| {
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); 1 << bits];
        for (i, r) in records.iter().enumerate() {
            if r.key.is_some() {
                // The top bits choose the part; the hash tables inside use all of them.
                let p = if bits == 0 {
                    0
                } else {
                    (hashes[i] >> (64 - bits)) as usize
                };
                parts[p].push(i as u32);
            }
        }
        parts
    };
    let (f, t) = rayon::join(|| split(from), || split(to));
    let parts = f
        .into_iter()
        .zip(t)
        .map(|(from, to)| Part { from, to })
        .collect();
    Joined { from, to, parts }
}

impl Joined<'_> {
    /// Calls `f(key, from_indices, to_indices)` for every key of one part: the `from` keys in order
    /// of first appearance, then the keys only `to` has.
    pub fn for_each(&self, part: &Part, mut f: impl FnMut(&str, &[u32], &[u32])) {
        let from = Grouped::new(self.from.0, self.from.1, &part.from);
        let to = Grouped::new(self.to.0, self.to.1, &part.to);
        let mut seen = vec![false; to.groups.len()];
        let (mut fi, mut ti) = (Vec::new(), Vec::new());
        for g in &from.groups {
            let key = from.key(g);
            from.indices(g, &mut fi);
            match to.find(key, g.hash) {
                Some(t) => {
                    seen[t as usize] = true;
                    to.indices(&to.groups[t as usize], &mut ti);
                }
                None => ti.clear(),
            }
            f(key, &fi, &ti);
        }
        fi.clear();
        for (g, seen) in to.groups.iter().zip(seen) {
            if !seen {
                to.indices(g, &mut ti);
                f(to.key(g), &fi, &ti);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;

    fn rec(key: Option<&str>, line: u64) -> Record {
        Record {
            key: key.map(str::to_string),
            amount: None,
            currency: None,
            at: None,
            date: None,
            status: None,
            account: None,
            extra: Vec::new(),
            origin: Origin { file: 0, line },
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
            rec(Some("a"), 1),
            rec(Some("b"), 2),
            rec(None, 3),
            rec(Some("a"), 4),
            rec(Some("c"), 5),
        ];
        let to = vec![rec(Some("c"), 1), rec(Some("d"), 2), rec(Some("a"), 3)];
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
            .map(|i| rec(Some(&format!("k{}", i / 2)), i as u64))
            .collect();
        let to: Vec<Record> = (0..n / 2)
            .map(|i| rec(Some(&format!("k{}", i + n / 4)), i as u64))
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
        // Give every key the same hash: the chain walk must still tell them apart.
        let recs = vec![rec(Some("x"), 1), rec(Some("y"), 2), rec(Some("x"), 3)];
        let hashes = vec![7; 3];
        let ids = [0, 1, 2];
        let g = Grouped::new(&recs, &hashes, &ids);
        assert_eq!(g.groups.len(), 2);
        assert_eq!(g.find("x", 7), Some(0));
        assert_eq!(g.find("y", 7), Some(1));
        assert_eq!(g.find("z", 7), None);
        let mut out = Vec::new();
        g.indices(&g.groups[0], &mut out);
        assert_eq!(out, [0, 2]);
    }
}
