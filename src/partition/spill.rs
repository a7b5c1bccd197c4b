//! Records waiting for their partition: encoded compactly (about 56 bytes for a typical row of the
//! benchmark, against about 140 as a [`Record`]; see [`encode`]) into segments per partition, kept
//! in memory or written to a temporary file that is unlinked as soon as it is created, so that a
//! killed run leaves nothing behind.
//!
//! Each loader chunk (a whole file, or one thread's share of it) writes its own segments and keeps
//! its own table of shared values (statuses, accounts, extra fields), so chunks never wait for one
//! another; a partition is read back chunk by chunk, in file order. The chunks of a run write into
//! one temporary file per thread, each segment at a place of its own, so that a run over thousands
//! of input files holds a few files open, not thousands, and no two threads wait on one file's
//! lock (with one shared file, 5% of the 5M benchmark's CPU went to spinning on that lock).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow};
use chrono::{Datelike, NaiveDate, NaiveTime};

use crate::model::{Key, Minor, Origin, Record, Shared};
use crate::normalize::Last;
use crate::normalize::currency::Currency;

/// Where and how finely the records of a run are partitioned.
#[derive(Debug, Clone)]
pub struct SpillSpec {
    /// `1 << bits` partitions.
    pub bits: u32,
    /// The run's temporary file; `None` keeps the segments in memory.
    file: Option<Arc<SpillFile>>,
    /// Records written so far by all chunks (a little behind: each chunk adds its count every
    /// [`REPORT_EVERY`] records), for the progress line.
    written: Arc<AtomicU64>,
}

/// How many records a chunk writes between two additions to [`SpillSpec::written`].
const REPORT_EVERY: u64 = 1 << 12;

impl SpillSpec {
    /// `1 << bits` partitions, waiting in a temporary file in `dir` (unlinked at once), or with
    /// no `dir` in memory.
    pub fn new(bits: u32, dir: Option<&Path>) -> io::Result<SpillSpec> {
        let file = match dir {
            None => None,
            Some(dir) => Some(Arc::new(SpillFile {
                files: (0..rayon::current_num_threads().max(1))
                    .map(|_| Ok((tempfile::tempfile_in(dir)?, AtomicU64::new(0))))
                    .collect::<io::Result<_>>()?,
                dir: dir.to_path_buf(),
            })),
        };
        Ok(SpillSpec {
            bits,
            file,
            written: Arc::default(),
        })
    }

    /// The count of records written so far, shared with the writers.
    pub fn written(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.written)
    }
}

/// The temporary files the chunks of a run write their segments into, one per thread.
#[derive(Debug)]
struct SpillFile {
    /// Each file, and the bytes handed out in it so far: each segment takes the next `len` bytes.
    files: Vec<(File, AtomicU64)>,
    /// Its folder, for messages.
    dir: std::path::PathBuf,
}

/// Bytes a partition's buffer collects before it becomes a segment.
const SEGMENT: usize = 64 << 10;

#[derive(Debug)]
enum Segment {
    Memory(Vec<u8>),
    Disk { file: u32, offset: u64, len: usize },
}

/// One chunk's records, being written.
pub struct ChunkWriter {
    bits: u32,
    buffers: Vec<Vec<u8>>,
    /// Per partition, the record written last in its current segment.
    last: Vec<Prev>,
    counts: Vec<usize>,
    segments: Vec<Vec<Segment>>,
    file: Option<Arc<SpillFile>>,
    /// The loader's shared values, by the ids the records were written with.
    symbols: Vec<Shared>,
    /// The first write error: reported by [`ChunkWriter::finish`].
    error: Option<io::Error>,
    /// Records put since the last addition to `written`.
    unreported: u64,
    written: Arc<AtomicU64>,
}

impl ChunkWriter {
    pub fn new(spec: &SpillSpec) -> ChunkWriter {
        let n = 1usize << spec.bits;
        ChunkWriter {
            bits: spec.bits,
            buffers: (0..n).map(|_| Vec::new()).collect(),
            last: vec![Prev::default(); n],
            counts: vec![0; n],
            segments: (0..n).map(|_| Vec::new()).collect(),
            file: spec.file.clone(),
            symbols: Vec::new(),
            error: None,
            unreported: 0,
            written: spec.written(),
        }
    }

    /// Adds one record to its key's partition. `ids` are the ids of its shared values (status,
    /// account, extra fields, those it has, in that order) in the table given to
    /// [`ChunkWriter::set_symbols`].
    pub fn put(&mut self, r: &Record, ids: &[u32]) {
        let p = super::part_of(r.key.as_deref(), self.bits);
        let mut buf = std::mem::take(&mut self.buffers[p]);
        encode(r, ids, &mut self.last[p], &mut buf);
        self.counts[p] += 1;
        self.unreported += 1;
        if self.unreported == REPORT_EVERY {
            self.written.fetch_add(REPORT_EVERY, Ordering::Relaxed);
            self.unreported = 0;
        }
        if buf.len() >= SEGMENT {
            self.flush(p, buf);
        } else {
            self.buffers[p] = buf;
        }
    }

    /// The table of shared values the records' ids point into (the loader's interner).
    pub fn set_symbols(&mut self, symbols: Vec<Shared>) {
        self.symbols = symbols;
    }

    fn flush(&mut self, p: usize, buf: Vec<u8>) {
        // Each segment is read back from its start: its first record is written against none.
        self.last[p] = Prev::default();
        let segment = match &self.file {
            None => Segment::Memory(buf),
            Some(f) => {
                // The writing thread's own file (any file would do: offsets are handed out
                // atomically, and the segment says where it went).
                let i = rayon::current_thread_index().unwrap_or(0) % f.files.len();
                let (file, len) = &f.files[i];
                let offset = len.fetch_add(buf.len() as u64, Ordering::Relaxed);
                if let Err(e) = file.write_all_at(&buf, offset)
                    && self.error.is_none()
                {
                    self.error = Some(e);
                }
                let s = Segment::Disk {
                    file: i as u32,
                    offset,
                    len: buf.len(),
                };
                // The buffer is reused for the partition's next segment.
                let mut buf = buf;
                buf.clear();
                self.buffers[p] = buf;
                s
            }
        };
        self.segments[p].push(segment);
    }

    /// The chunk's records, all written. `base` is added to every line when they are read back.
    pub fn finish(mut self) -> Result<SpilledChunk> {
        for p in 0..self.buffers.len() {
            let buf = std::mem::take(&mut self.buffers[p]);
            if !buf.is_empty() {
                self.flush(p, buf);
            }
        }
        self.written.fetch_add(self.unreported, Ordering::Relaxed);
        if let Some(e) = self.error {
            let dir = self.file.as_ref().map_or(Path::new(""), |f| &f.dir);
            return Err(anyhow!(
                "cannot write the temporary file in {} (--spill chooses the folder): {e}",
                dir.display()
            ));
        }
        // Only the partitions with records are listed: a run over thousands of small files into
        // thousands of partitions would otherwise keep files x partitions entries.
        let mut parts = Vec::new();
        let mut segments = Vec::new();
        for (p, (count, segs)) in self.counts.into_iter().zip(self.segments).enumerate() {
            if count > 0 {
                let first = segments.len();
                segments.extend(segs);
                parts.push((p as u32, count, first..segments.len()));
            }
        }
        Ok(SpilledChunk {
            file: self.file,
            symbols: self.symbols,
            parts,
            segments,
            base: 0,
        })
    }
}

/// One chunk's records, all written, by partition.
#[derive(Debug)]
pub struct SpilledChunk {
    file: Option<Arc<SpillFile>>,
    symbols: Vec<Shared>,
    /// The partitions holding records, ascending: each with its record count and its segments
    /// (a range of `segments`, in the order written).
    parts: Vec<(u32, usize, std::ops::Range<usize>)>,
    segments: Vec<Segment>,
    /// Added to every line read back: the line ends before the chunk in its file.
    pub base: u64,
}

impl SpilledChunk {
    /// How many records partition `p` holds.
    pub fn count(&self, p: usize) -> usize {
        self.part(p).map_or(0, |(_, n, _)| *n)
    }

    fn part(&self, p: usize) -> Option<&(u32, usize, std::ops::Range<usize>)> {
        let i = self.parts.binary_search_by_key(&p, |(q, _, _)| *q as usize);
        i.ok().map(|i| &self.parts[i])
    }

    /// Appends partition `p`'s records to `out`, in the order they were written.
    pub fn read(&self, p: usize, out: &mut Vec<Record>) -> Result<()> {
        let mut scratch = Vec::new();
        let mut state = Decoding::default();
        let segments = self
            .part(p)
            .map_or(&[][..], |(_, _, r)| &self.segments[r.clone()]);
        for s in segments {
            let bytes: &[u8] = match s {
                Segment::Memory(b) => b,
                Segment::Disk { file, offset, len } => {
                    scratch.resize(*len, 0);
                    let f = self.file.as_ref().expect("disk segments have a file");
                    f.files[*file as usize]
                        .0
                        .read_exact_at(&mut scratch, *offset)
                        .context("cannot read a temporary file back")?;
                    &scratch
                }
            };
            let mut at = 0;
            state.last = Prev::default();
            while at < bytes.len() {
                out.push(self.decode(bytes, &mut at, &mut state)?);
            }
        }
        Ok(())
    }

    fn decode(&self, b: &[u8], at: &mut usize, state: &mut Decoding) -> Result<Record> {
        let bad = || anyhow!("a temporary file was changed while the run read it");
        let flags = *b.get(*at).ok_or_else(bad)?;
        *at += 1;
        let mut next = || read_varint(b, at).ok_or_else(bad);
        let key = if flags & 1 != 0 {
            let len = next()? as usize;
            let text = b.get(*at..*at + len).ok_or_else(bad)?;
            *at += len;
            Some(Key::from_utf8(text).ok_or_else(bad)?)
        } else {
            None
        };
        let mut next = || read_varint(b, at).ok_or_else(bad);
        let amount = match flags & 2 != 0 {
            true => Some(Minor(unzigzag(next()?))),
            false => None,
        };
        let currency = match flags & 4 != 0 {
            true => {
                let c = b.get(*at..*at + 3).ok_or_else(bad)?;
                *at += 3;
                Some(Currency::from_bytes([c[0], c[1], c[2]]).ok_or_else(bad)?)
            }
            false => None,
        };
        let mut next = || read_varint(b, at).ok_or_else(bad);
        let mut day = None;
        let at_time = match flags & 8 != 0 {
            true => {
                let secs = state.last.secs.wrapping_add(unzigzag(next()?));
                state.last.secs = secs;
                let sub = next()?;
                let nanos = match sub & 1 {
                    0 => (sub >> 1).checked_mul(1_000_000),
                    _ => Some(sub >> 1),
                };
                let nanos = nanos.and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
                let d = secs.div_euclid(86_400);
                day = Some(d);
                let date = date_of_day(&mut state.times, d).ok_or_else(bad)?;
                let time = u32::try_from(secs.rem_euclid(86_400)).map_err(|_| bad())?;
                let time = NaiveTime::from_num_seconds_from_midnight_opt(time, nanos);
                Some(date.and_time(time.ok_or_else(bad)?).and_utc())
            }
            false => None,
        };
        let date = match flags & 16 != 0 {
            true => {
                let n = day
                    .unwrap_or(-DAYS_BEFORE_1970)
                    .wrapping_add(unzigzag(next()?));
                Some(date_of_day(&mut state.dates, n).ok_or_else(bad)?)
            }
            false => None,
        };
        let value = |at: &mut usize| -> Result<Shared> {
            let code = read_varint(b, at).ok_or_else(bad)?;
            if code & 1 == 0 {
                return self
                    .symbols
                    .get((code >> 1) as usize)
                    .cloned()
                    .ok_or_else(bad);
            }
            let len = (code >> 1) as usize;
            let text = b.get(*at..*at + len).ok_or_else(bad)?;
            *at += len;
            Ok(Shared::from(std::str::from_utf8(text).map_err(|_| bad())?))
        };
        let status = match flags & 32 != 0 {
            true => Some(value(at)?),
            false => None,
        };
        let account = match flags & 64 != 0 {
            true => Some(value(at)?),
            false => None,
        };
        let n = match flags & 128 != 0 {
            true => read_varint(b, at).ok_or_else(bad)? as usize,
            false => 0,
        };
        let mut extra = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let tag = *b.get(*at).ok_or_else(bad)?;
            *at += 1;
            extra.push(match tag {
                0 => None,
                _ => Some(value(at)?),
            });
        }
        let mut next = || read_varint(b, at).ok_or_else(bad);
        let file = u32::try_from(next()?).map_err(|_| bad())?;
        let line = state.last.line.wrapping_add(next()?);
        state.last.line = line;
        let line = line + self.base;
        Ok(Record {
            key,
            amount,
            currency,
            at: at_time,
            date,
            status,
            account,
            extra,
            origin: Origin { file, line },
        })
    }
}

/// Days from 0001-01-01 (chrono's "common era" count) to 1970-01-01.
const DAYS_BEFORE_1970: i64 = 719_163;

/// The date of the last day number decoded (days after 1970-01-01): turning a day number into a
/// date is most of what reading a time back costs.
type Days = Last<i64, NaiveDate>;

/// The date `n` days after 1970-01-01, from `days` if it was the last asked for.
fn date_of_day(days: &mut Days, n: i64) -> Option<NaiveDate> {
    days.get(n, || {
        NaiveDate::from_num_days_from_ce_opt(i32::try_from(n + DAYS_BEFORE_1970).ok()?)
    })
}

/// What a segment's records are written against: the time and line of the record before in the
/// same segment, which records in file order are close to.
#[derive(Debug, Clone, Copy, Default)]
struct Prev {
    secs: i64,
    line: u64,
}

/// What reading a segment carries from record to record.
#[derive(Default)]
struct Decoding {
    last: Prev,
    /// The last day of a time, and of a business date (the two differ where the zone does).
    times: Days,
    dates: Days,
}

/// One record, against the record before it in its segment (`last`, updated):
/// - flags: which fields it has (key, amount, currency, time, date, status, account, extra
///   fields: one bit each);
/// - the key (its length, then its text), the amount (zigzag varint), the currency (three bytes);
/// - the time: seconds since the last record's time (zigzag varint), then its fraction:
///   milliseconds, doubled, or nanoseconds doubled plus one;
/// - the business date: days since the time's UTC day (or since 0001-01-01 with no time);
/// - shared values: ids (doubled) or text (length doubled plus one, then the text);
/// - the extra fields, if any: their count, then a tag and a value each;
/// - the file, and the line after the last record's.
fn encode(r: &Record, ids: &[u32], last: &mut Prev, out: &mut Vec<u8>) {
    let flags = u8::from(r.key.is_some())
        | u8::from(r.amount.is_some()) << 1
        | u8::from(r.currency.is_some()) << 2
        | u8::from(r.at.is_some()) << 3
        | u8::from(r.date.is_some()) << 4
        | u8::from(r.status.is_some()) << 5
        | u8::from(r.account.is_some()) << 6
        | u8::from(!r.extra.is_empty()) << 7;
    out.push(flags);
    if let Some(k) = &r.key {
        varint(out, k.len() as u64);
        put_bytes(out, k.as_bytes());
    }
    if let Some(a) = r.amount {
        varint(out, zigzag(a.0));
    }
    if let Some(c) = r.currency {
        out.extend_from_slice(&c.to_bytes());
    }
    let mut day = -DAYS_BEFORE_1970;
    if let Some(at) = r.at {
        let secs = at.timestamp();
        varint(out, zigzag(secs.wrapping_sub(last.secs)));
        last.secs = secs;
        let nanos = at.timestamp_subsec_nanos();
        varint(
            out,
            match nanos % 1_000_000 {
                0 => u64::from(nanos / 1_000_000) << 1,
                _ => u64::from(nanos) << 1 | 1,
            },
        );
        day = secs.div_euclid(86_400);
    }
    if let Some(d) = r.date {
        let from_1970 = i64::from(d.num_days_from_ce()) - DAYS_BEFORE_1970;
        varint(out, zigzag(from_1970.wrapping_sub(day)));
    }
    // A shared value: its id, doubled, or (not interned) its length, doubled plus one, and its
    // text.
    let mut ids = ids.iter();
    let mut value = |out: &mut Vec<u8>, v: &Shared| {
        match *ids.next().expect("an id for every shared value") {
            crate::load::NOT_INTERNED => {
                varint(out, (v.len() as u64) << 1 | 1);
                put_bytes(out, v.as_bytes());
            }
            id => varint(out, u64::from(id) << 1),
        };
    };
    for v in [&r.status, &r.account].into_iter().flatten() {
        value(out, v);
    }
    if !r.extra.is_empty() {
        varint(out, r.extra.len() as u64);
    }
    for v in &r.extra {
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                value(out, v);
            }
        }
    }
    varint(out, r.origin.file as u64);
    // Lines only grow within a chunk's file (and wrap back exactly if they ever did not).
    varint(out, r.origin.line.wrapping_sub(last.line));
    last.line = r.origin.line;
}

/// Appends `b`: up to 32 bytes (a key, an account) in copies of a fixed size, two overlapping,
/// which compile to a few moves, where a copy of the slice's own length is a call to memcpy (two
/// per record, 6% of the 5M benchmark's time with the other copies of that size).
#[inline]
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if !(8..=32).contains(&n) {
        out.extend_from_slice(b);
        return;
    }
    let at = out.len();
    out.resize(at + 32, 0);
    let room: &mut [u8; 32] = (&mut out[at..at + 32]).try_into().expect("32 bytes");
    if n >= 16 {
        room[..16].copy_from_slice(&b[..16]);
        room[n - 16..n].copy_from_slice(&b[n - 16..]);
    } else {
        room[..8].copy_from_slice(&b[..8]);
        room[n - 8..n].copy_from_slice(&b[n - 8..]);
    }
    out.truncate(at + n);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    const VALUES: [&str; 5] = ["posted", "pending", "acct-0", "acct-1", "acct-2"];

    /// Record `i` of a varied stream, and the ids of its shared values in [`VALUES`].
    fn record(i: u64, table: &[Shared]) -> (Record, Vec<u32>) {
        let status = i % 2;
        let account = 2 + i % 3;
        let mut ids = Vec::new();
        let has_status = !i.is_multiple_of(4);
        if has_status {
            ids.push(status as u32);
        }
        // Every eleventh account was not interned (a field of distinct values): written as text.
        let unique = i.is_multiple_of(11);
        let account_id = if unique {
            crate::load::NOT_INTERNED
        } else {
            account as u32
        };
        ids.extend([account_id, status as u32]);
        let r = Record {
            key: (!i.is_multiple_of(7)).then(|| Key::from(format!("key-{i}").as_str())),
            amount: (!i.is_multiple_of(5)).then_some(Minor(i as i64 * -1_000_003)),
            currency: Currency::parse(if i.is_multiple_of(3) { "JPY" } else { "BHD" }),
            // Every thirteenth before 1970, where seconds and days count down (and the next
            // record's time jumps forward again); every seventeenth has a date and no time; most
            // fractions are whole milliseconds, every nineteenth is not.
            at: (!i.is_multiple_of(17))
                .then(|| {
                    DateTime::from_timestamp(
                        match i % 13 {
                            0 => -31_536_000 - i as i64 * 7_919,
                            _ => 1_764_547_200 + i as i64,
                        },
                        match i % 19 {
                            0 => 999_999_999 - i as u32,
                            _ => (i as u32 % 1000) * 1_000_000,
                        },
                    )
                })
                .flatten(),
            // Business dates near the time's day and far from it.
            date: NaiveDate::from_ymd_opt(2026, 12, 1 + (i % 28) as u32),
            status: has_status.then(|| table[status as usize].clone()),
            account: Some(match unique {
                true => Shared::from(format!("unique-{i}").as_str()),
                false => table[account as usize].clone(),
            }),
            extra: vec![None, Some(table[status as usize].clone())],
            origin: Origin {
                file: (i % 3) as u32,
                line: i * 1000 + 2,
            },
        };
        (r, ids)
    }

    #[test]
    fn records_read_back_exactly_from_memory_and_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let table: Vec<Shared> = VALUES.iter().map(|v| Shared::from(*v)).collect();
        for spill in [None, Some(dir.path().to_path_buf())] {
            let spec = SpillSpec::new(2, spill.as_deref()).unwrap();
            let mut w = ChunkWriter::new(&spec);
            // Enough records for several segments per partition.
            let records: Vec<(Record, Vec<u32>)> = (0..20_000).map(|i| record(i, &table)).collect();
            records.iter().for_each(|(r, ids)| w.put(r, ids));
            w.set_symbols(table.clone());
            let mut chunk = w.finish().unwrap();
            chunk.base = 10;
            let mut back = Vec::new();
            for p in 0..4 {
                let before = back.len();
                chunk.read(p, &mut back).unwrap();
                assert_eq!(back.len() - before, chunk.count(p));
            }
            let mut want: Vec<Record> = records
                .into_iter()
                .map(|(mut r, _)| {
                    r.origin.line += 10;
                    r
                })
                .collect();
            let order = |r: &Record| (r.origin.file, r.origin.line);
            want.sort_by_key(order);
            back.sort_by_key(order);
            assert_eq!(back, want);
        }
    }

    #[test]
    fn a_small_chunk_lists_only_the_partitions_it_has_records_of() {
        let table: Vec<Shared> = VALUES.iter().map(|v| Shared::from(*v)).collect();
        let spec = SpillSpec::new(12, None).unwrap();
        let mut w = ChunkWriter::new(&spec);
        for i in 1..4 {
            let (r, ids) = record(i, &table);
            w.put(&r, &ids);
        }
        w.set_symbols(table);
        let chunk = w.finish().unwrap();
        // Three keyed records: at most three of 4096 partitions, in order, with all of them.
        assert!((1..=3).contains(&chunk.parts.len()), "{:?}", chunk.parts);
        assert!(chunk.parts.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!((0..4096).map(|p| chunk.count(p)).sum::<usize>(), 3);
    }

    #[test]
    fn bytes_of_any_length_are_appended_whole() {
        let b: Vec<u8> = (1..=40u8).collect();
        for n in 0..=40 {
            let mut out = vec![0xEE; 3];
            put_bytes(&mut out, &b[..n]);
            assert_eq!(out[..3], [0xEE; 3]);
            assert_eq!(out[3..], b[..n], "{n} bytes");
        }
    }

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            varint(&mut b, zigzag(v));
            let mut at = 0;
            assert_eq!(unzigzag(read_varint(&b, &mut at).unwrap()), v);
            assert_eq!(at, b.len());
        }
    }
}
