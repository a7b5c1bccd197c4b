//! Matching: per source, the records grouped by key; per check, the two groupings joined on key.
//! The result says, for every key of a check, which records each side holds.
//!
//! Keys are found by a 64-bit hash of their bytes, and a hash match is always confirmed by comparing
//! the keys themselves, so two keys that collide stay two keys. A group keeps its first record, its
//! count and the head of a chain through its records (`next`), so grouping allocates nothing per key
//! beyond one fixed-size entry; the full list of records is only walked for keys that occur more than
//! once (duplicates).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use anyhow::{Result, anyhow};

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

/// A source's keyed records grouped by key, in order of first appearance.
pub struct Grouped<'r> {
    records: &'r [Record],
    groups: Vec<Group>,
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// Per record: the previous record with the same key, or `NONE`.
    next: Vec<u32>,
}

impl<'r> Grouped<'r> {
    fn key(&self, g: &Group) -> &'r str {
        self.records[g.first as usize]
            .key
            .as_deref()
            .expect("only keyed records are grouped")
    }

    /// The group of `key`, if the source has it.
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

    /// Adds record `i`, whose key is `key` with hash `hash`.
    fn insert(&mut self, i: u32, key: &str, hash: u64) {
        match self.find(key, hash) {
            Some(at) => {
                let group = &mut self.groups[at as usize];
                self.next[i as usize] = group.last;
                group.last = i;
                group.n += 1;
            }
            None => {
                let at = self.groups.len() as u32;
                // A new key: first in its hash's chain of groups (almost always alone in it).
                let same_hash = self.index.insert(hash, at).unwrap_or(NONE);
                self.groups.push(Group {
                    hash,
                    first: i,
                    last: i,
                    n: 1,
                    same_hash,
                });
            }
        }
    }

    /// A group's record indices, earliest first (by time, then file and line), into `out`.
    fn indices(&self, g: &Group, out: &mut Vec<u32>) {
        out.clear();
        if g.n == 1 {
            out.push(g.first);
            return;
        }
        let mut i = g.last;
        while i != NONE {
            out.push(i);
            i = self.next[i as usize];
        }
        let recs = self.records;
        out.sort_by_key(|&i| (recs[i as usize].at, recs[i as usize].origin));
    }
}

pub fn group(records: &[Record]) -> Result<Grouped<'_>> {
    if u32::try_from(records.len()).is_err() || records.len() == NONE as usize {
        return Err(anyhow!("more than 4 billion records in one source"));
    }
    let mut g = Grouped {
        records,
        groups: Vec::new(),
        index: HashMap::default(),
        next: vec![NONE; records.len()],
    };
    g.index.reserve(records.len());
    for (i, r) in records.iter().enumerate() {
        if let Some(key) = r.key.as_deref() {
            g.insert(i as u32, key, key_hash(key));
        }
    }
    Ok(g)
}

/// For every key in either source of a check: the `from` and `to` record indices.
pub struct Joined<'g, 'r> {
    from: &'g Grouped<'r>,
    to: &'g Grouped<'r>,
}

pub fn join<'g, 'r>(from: &'g Grouped<'r>, to: &'g Grouped<'r>) -> Result<Joined<'g, 'r>> {
    Ok(Joined { from, to })
}

impl Joined<'_, '_> {
    /// Calls `f(key, from_indices, to_indices)` for every key: the `from` keys in order of first
    /// appearance, then the keys only `to` has.
    pub fn for_each(&self, mut f: impl FnMut(&str, &[u32], &[u32])) -> Result<()> {
        let mut seen = vec![false; self.to.groups.len()];
        let (mut fi, mut ti) = (Vec::new(), Vec::new());
        for g in &self.from.groups {
            let key = self.from.key(g);
            self.from.indices(g, &mut fi);
            match self.to.find(key, g.hash) {
                Some(t) => {
                    seen[t as usize] = true;
                    self.to.indices(&self.to.groups[t as usize], &mut ti);
                }
                None => ti.clear(),
            }
            f(key, &fi, &ti);
        }
        fi.clear();
        for (g, seen) in self.to.groups.iter().zip(seen) {
            if !seen {
                self.to.indices(g, &mut ti);
                f(self.to.key(g), &fi, &ti);
            }
        }
        Ok(())
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
        let (gf, gt) = (group(&from).unwrap(), group(&to).unwrap());
        let mut seen = Vec::new();
        join(&gf, &gt)
            .unwrap()
            .for_each(|k, f, t| seen.push((k.to_string(), f.to_vec(), t.to_vec())))
            .unwrap();
        let want = [
            ("a", vec![0, 3], vec![2]),
            ("b", vec![1], vec![]),
            ("c", vec![4], vec![0]),
            ("d", vec![], vec![1]),
        ];
        let want: Vec<(String, Vec<u32>, Vec<u32>)> = want
            .into_iter()
            .map(|(k, f, t)| (k.to_string(), f, t))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn colliding_hashes_stay_different_keys() {
        // Force every key into one hash chain: the chain walk must still tell them apart.
        let recs = vec![rec(Some("x"), 1), rec(Some("y"), 2), rec(Some("x"), 3)];
        let mut g = Grouped {
            records: &recs,
            groups: Vec::new(),
            index: HashMap::default(),
            next: vec![NONE; recs.len()],
        };
        for (i, r) in recs.iter().enumerate() {
            g.insert(i as u32, r.key.as_deref().unwrap(), 7);
        }
        assert_eq!(g.groups.len(), 2);
        assert_eq!(g.find("x", 7), Some(0));
        assert_eq!(g.find("y", 7), Some(1));
        assert_eq!(g.find("z", 7), None);
        let mut out = Vec::new();
        g.indices(&g.groups[0], &mut out);
        assert_eq!(out, [0, 2]);
    }
}
