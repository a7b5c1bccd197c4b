//! Loading: each source's files (CSV or JSONL) into canonical records, and every row that cannot be
//! used into a reject with file, line, field and reason. Sources and files load in parallel.

mod bytes;
mod delimited;
mod jsonl;
pub(crate) mod mapped;

use std::fs::File;
use std::io::{BufRead, BufReader};

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::config::{AmountSpec, CurrencySpec, FieldRef, Format, SourcePlan};
use crate::model::{Key, Minor, Origin, Record, Shared};
use crate::normalize::calendar::DayMemo;
use crate::normalize::currency::Currency;
use crate::normalize::money::{NumberFormat, parse_amount};
use crate::normalize::time::{DateMemo, Stamp, parse_time_with};
use crate::partition::spill::{ChunkWriter, SpillSpec, SpilledChunk};
use mapped::Mapped;

pub use delimited::read_csv_header;
pub use jsonl::MissingPath;

/// The id the interner gives a value it did not keep (see `Interner`).
pub(crate) const NOT_INTERNED: u32 = Interner::NOT_INTERNED;

/// The longest raw text kept in a reject; longer values are cut and marked, so that one broken
/// 10 MB line cannot bloat `rejects.csv`.
const MAX_RAW: usize = 1000;

/// One field's text in a row. A JSON number keeps its literal text and is read with `.` as the
/// decimal point whatever the source's `decimal` and `thousands` say (those describe strings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'v> {
    pub s: &'v str,
    pub json_number: bool,
}

impl<'v> Text<'v> {
    pub fn plain(s: &'v str) -> Self {
        Text {
            s,
            json_number: false,
        }
    }
}

/// Cuts a raw value to [`MAX_RAW`] characters, saying so.
fn clip(raw: &str) -> String {
    clip_to(raw, MAX_RAW)
}

/// Cuts `raw` to `max` characters, saying so: `abc…[5000 bytes in all]`.
pub(crate) fn clip_to(raw: &str, max: usize) -> String {
    match raw.char_indices().nth(max) {
        None => raw.to_string(),
        Some((i, _)) => format!("{}…[{} bytes in all]", &raw[..i], raw.len()),
    }
}

/// An input row that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reject {
    pub origin: Origin,
    pub field: String,
    pub reason: String,
    pub raw: String,
    /// The row's key after clean-up, when the key itself could be read: a later stage must not
    /// take a rejected row's key for an absent one.
    pub key: Option<Key>,
}

/// Rows read and rejected in one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    pub rows: u64,
    pub rejected: u64,
}

/// One source after loading: records in file order (files sorted by path, then line), whatever
/// the thread count. "Earliest" (time, then file and line) is decided where it matters, among the
/// records of a duplicated key.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// How many of `records` were read in this run; those after them are carried over from
    /// earlier runs (see [`crate::state`]) and take part only in the checks they are open in.
    pub fresh: usize,
    pub rejects: Vec<Reject>,
    pub files: Vec<FileStats>,
    /// JSONL only: objects parsed, and per slot how many of them had the field (null counts).
    json_present: Option<(u64, Vec<u64>)>,
    /// CSV only: where the header line appears again (concatenated files); not counted as rows.
    pub header_repeats: Vec<Origin>,
    /// Line ends read (a chunk's, while loading; see `load_file`).
    lines: u64,
    /// What the run counted of the records, partition by partition: once the partitions are done,
    /// `records` holds only those behind findings.
    pub counts: Counts,
    /// When the run is partitioned: the records, encoded by partition, one entry per chunk read
    /// (files in order, each file's chunks in order), instead of `records`.
    pub(crate) spilled: Vec<SpilledChunk>,
}

/// A source's records as the run counted them (see [`crate::partition`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Records read tonight.
    pub records: usize,
    /// Records brought in from `--state` (each file and line once).
    pub carried: usize,
    /// Tonight's records without a key.
    pub unkeyed: usize,
    /// Records with a key, tonight's and carried.
    pub keyed: usize,
    /// Pairs of keys that differ only by case or surrounding spaces, and the smallest such pair.
    pub clashes: usize,
    pub clash_example: Option<(String, String)>,
}

impl Counts {
    /// One partition's records: tonight's (`records[..fresh]`) and the carried ones after them.
    /// `clashes` is the count of clashing pairs and the smallest (see [`crate::report::clash_pairs`]).
    pub fn of(
        records: &[Record],
        fresh: usize,
        (clashes, clash_example): (usize, Option<(String, String)>),
    ) -> Counts {
        let unkeyed = records[..fresh].iter().filter(|r| r.key.is_none()).count();
        Counts {
            records: fresh,
            carried: records.len() - fresh,
            unkeyed,
            keyed: records.len() - unkeyed,
            clashes,
            clash_example,
        }
    }

    /// Adds another partition's counts.
    pub fn merge(&mut self, other: Counts) {
        self.records += other.records;
        self.carried += other.carried;
        self.unkeyed += other.unkeyed;
        self.keyed += other.keyed;
        self.clashes += other.clashes;
        if let Some(e) = other.clash_example
            && self.clash_example.as_ref().is_none_or(|x| e < *x)
        {
            self.clash_example = Some(e);
        }
    }
}

impl Loaded {
    /// An empty result for one file, with room reserved for `estimate` records.
    fn for_file() -> Loaded {
        Loaded {
            files: vec![FileStats::default()],
            ..Default::default()
        }
    }

    /// Records alone, all of them read tonight (one partition's share of a source).
    pub fn of_records(records: Vec<Record>) -> Loaded {
        Loaded {
            fresh: records.len(),
            records,
            ..Default::default()
        }
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
    pub fn rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rejected).sum()
    }
}

/// Loads one in-memory file as `source` would read it: for fuzzing and tests of the loaders.
pub fn load_bytes(source: &SourcePlan, bytes: &[u8]) -> Result<Loaded> {
    let mut sink = Sink::Grow(Vec::new());
    let mut l = match source.format {
        Format::Csv => delimited::load(source, 0, bytes, &mut sink, None, false),
        Format::Jsonl => jsonl::load(source, 0, bytes, &mut sink),
    }?;
    if let Sink::Grow(v) = sink {
        l.records = v;
    }
    l.fresh = l.records.len();
    Ok(l)
}

/// The bytes the run's input files hold once read, to size its partitions by: a plain file's
/// size, and for gzip files what they decompress to, estimated from the first [`GZIP_SAMPLE`]
/// bytes of the largest few (a 1.5 GB export compressed to 150 MB must not be taken for 150 MB
/// and held in memory as two partitions). A file that cannot be read counts its size: reading it
/// will say what is wrong.
pub fn content_bytes(sources: &[SourcePlan]) -> u64 {
    let files: Vec<&crate::config::InputFile> = sources
        .iter()
        .flat_map(|s| &s.files)
        .filter(|f| !f.carried)
        .collect();
    content_bytes_of(&files)
}

fn content_bytes_of(files: &[&crate::config::InputFile]) -> u64 {
    // A file that cannot be read counts as plain: reading it will say what is wrong.
    let gzip_file = |f: &crate::config::InputFile| {
        File::open(&f.path).is_ok_and(|x| is_gzip(&x).unwrap_or(false))
    };
    let mut gzipped: Vec<&&crate::config::InputFile> =
        files.iter().filter(|f| gzip_file(f)).collect();
    let all: u64 = files.iter().map(|f| f.bytes).sum::<u64>();
    if gzipped.is_empty() {
        return all;
    }
    let compressed: u64 = gzipped.iter().map(|f| f.bytes).sum();
    // The pooled ratio of the largest files, sampled, applied to all the gzip files' bytes.
    gzipped.sort_by_key(|f| std::cmp::Reverse(f.bytes));
    let (mut read, mut out) = (0u64, 0u64);
    for f in gzipped.iter().take(GZIP_SAMPLED_FILES) {
        if let Some((r, o)) = gzip_ratio(&f.path) {
            read += r;
            out += o;
        }
    }
    let ratio = |n: u64| match read {
        0 => n,
        _ => u64::try_from(u128::from(n) * u128::from(out) / u128::from(read)).unwrap_or(u64::MAX),
    };
    (all - compressed).saturating_add(ratio(compressed).max(compressed))
}

/// Compressed bytes sampled from each of the largest gzip files by [`content_bytes`].
const GZIP_SAMPLE: u64 = 256 << 10;
const GZIP_SAMPLED_FILES: usize = 8;

/// Whether a file starts with gzip's magic bytes.
fn is_gzip(file: &File) -> std::io::Result<bool> {
    let mut magic = [0u8; 2];
    Ok(read_at(file, 0, &mut magic)? == 2 && magic == [0x1f, 0x8b])
}

/// How many compressed bytes of a gzip file were read, and what they decompressed to: the whole
/// file if it is at most [`GZIP_SAMPLE`] bytes, else about that much of it. `None` if nothing
/// could be read.
fn gzip_ratio(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::io::Read;
    /// Counts the bytes the decoder takes from the file.
    struct Counted<R>(R, u64);
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    let file = File::open(path).ok()?.take(GZIP_SAMPLE);
    let mut decoder = flate2::read::MultiGzDecoder::new(Counted(file, 0));
    let mut out = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    // Ends at the sample's end (an error: the stream is cut there) or the file's.
    while let Ok(n @ 1..) = decoder.read(&mut buf) {
        out += n as u64;
    }
    let read = decoder.get_ref().1;
    (read > 0 && out > 0).then_some((read, out))
}

/// Loads every source in parallel. An unreadable file stops the run; a bad row does not.
pub fn load_all(sources: &[SourcePlan]) -> Result<Vec<Loaded>> {
    load_all_in(sources, MIN_CHUNK)
}

/// [`load_all`], splitting files into chunks of at least `min_chunk` bytes: small values let tests
/// split small files, and must give the same result as one chunk per file.
pub fn load_all_in(sources: &[SourcePlan], min_chunk: u64) -> Result<Vec<Loaded>> {
    in_order(
        sources
            .par_iter()
            .map(|s| load_source(s, min_chunk))
            .collect(),
    )
}

/// The results of work done in parallel, in their order, or the first error in that order: a
/// `collect` into one `Result` gives whichever error came first in time, and a run over two bad
/// files named one or the other by chance.
fn in_order<T, E>(results: Vec<Result<T, E>>) -> Result<Vec<T>, E> {
    results.into_iter().collect()
}

/// [`load_all`], with the records encoded into partitions as they are read (see
/// [`crate::partition`]) rather than collected: `Loaded::records` stays empty.
pub fn load_all_partitioned(sources: &[SourcePlan], spill: &SpillSpec) -> Result<Vec<Loaded>> {
    load_all_partitioned_in(sources, spill, MIN_CHUNK)
}

/// [`load_all_partitioned`] in chunks of at least `min_chunk` bytes (see [`load_all_in`]).
///
/// Every chunk of every file of every source is one read in a single list, taken largest first by
/// whichever thread is free (longest first, so the last reads are short ones and no thread waits
/// long for another at the end: read source by source, the last chunk of the large event log
/// kept one of two threads idle for a tenth of the 5M benchmark's load).
pub fn load_all_partitioned_in(
    sources: &[SourcePlan],
    spill: &SpillSpec,
    min_chunk: u64,
) -> Result<Vec<Loaded>> {
    // Per source and file: its chunks, or `None` for a file read whole.
    let split: Vec<Vec<Option<Vec<Chunk>>>> = in_order(
        sources
            .par_iter()
            .map(|s| {
                in_order(
                    s.files
                        .par_iter()
                        .map(|f| {
                            chunks(s, f, min_chunk, false)
                                .with_context(|| format!("cannot read {}", f.display))
                        })
                        .collect(),
                )
            })
            .collect(),
    )?;
    // The reads, in source, file and chunk order: (source, file, chunk), `None` for a whole file.
    let mut reads: Vec<(usize, usize, Option<&Chunk>)> = Vec::new();
    for (si, files) in split.iter().enumerate() {
        for (fi, chunks) in files.iter().enumerate() {
            match chunks {
                Some(cs) => reads.extend(cs.iter().map(|c| (si, fi, Some(c)))),
                None => reads.push((si, fi, None)),
            }
        }
    }
    let bytes = |&(si, fi, c): &(usize, usize, Option<&Chunk>)| {
        c.map_or(sources[si].files[fi].bytes, |c| c.len)
    };
    let mut order: Vec<usize> = (0..reads.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(bytes(&reads[i])));
    let read = |&(si, fi, c): &(usize, usize, Option<&Chunk>)| -> Result<Loaded> {
        let (source, f) = (&sources[si], &sources[si].files[fi]);
        let reader = match c {
            Some(c) => open_range(&f.path, c.start, c.len)?,
            None => open_input(&f.path, &f.display, source.encoding)?,
        };
        let (header, plain) = c.map_or((None, false), |c| (c.header.as_deref(), c.plain));
        let mut sink = Sink::Parts(ChunkWriter::new(spill));
        let mut l = read_chunk(source, fi as u32, reader, &mut sink, header, plain)?;
        if let Sink::Parts(w) = sink {
            l.spilled.push(w.finish()?);
        }
        Ok(l)
    };
    // `par_bridge` hands the reads out in this order, one at a time, to the free threads.
    let mut done: Vec<(usize, Result<Loaded>)> = order
        .into_iter()
        .par_bridge()
        .map(|i| (i, read(&reads[i])))
        .collect();
    done.sort_by_key(|(i, _)| *i);
    let mut done = done.into_iter().map(|(_, l)| l);
    let mut out = Vec::with_capacity(sources.len());
    for (source, files) in sources.iter().zip(&split) {
        let mut per_file = Vec::with_capacity(files.len());
        for (f, chunks) in source.files.iter().zip(files) {
            let n = chunks.as_ref().map_or(1, Vec::len);
            let loaded = (&mut done)
                .take(n)
                .collect::<Result<Vec<Loaded>>>()
                .and_then(|parts| {
                    let l = match chunks {
                        None => parts.into_iter().next().expect("one read"),
                        Some(_) => {
                            let (mut l, bases) = merge_chunks(source, parts);
                            for (chunk, base) in l.spilled.iter_mut().zip(bases) {
                                chunk.base = base;
                            }
                            l
                        }
                    };
                    unchanged(f)?;
                    Ok(l)
                });
            per_file.push(loaded.with_context(|| format!("cannot read {}", f.display))?);
        }
        out.push(combine(source, per_file)?);
    }
    Ok(out)
}

/// How many chunks [`load_all_in`] reads the `file`th file of `source` in (1: not split).
pub fn chunk_count(source: &SourcePlan, file: usize, min_chunk: u64) -> Result<usize> {
    Ok(chunks(source, &source.files[file], min_chunk, true)?.map_or(1, |c| c.len()))
}

fn load_source(source: &SourcePlan, min_chunk: u64) -> Result<Loaded> {
    let per_file: Vec<Loaded> = in_order(
        source
            .files
            .par_iter()
            .enumerate()
            .map(|(i, f)| {
                let loaded = load_file(source, i as u32, f, min_chunk).and_then(|l| {
                    unchanged(f)?;
                    Ok(l)
                });
                loaded.with_context(|| format!("cannot read {}", f.display))
            })
            .collect(),
    )?;
    combine(source, per_file)
}

/// A file still being written (or cut short) while it was read: its rows would be those of no
/// single moment, and a chunk's reader would stop at the size it was given. Nothing of it is used.
fn unchanged(f: &crate::config::InputFile) -> Result<()> {
    let now = std::fs::metadata(&f.path)?.len();
    if now != f.bytes {
        anyhow::bail!(
            "the file changed while it was read ({} bytes when the run began, {now} now); run again once it is complete",
            f.bytes
        );
    }
    Ok(())
}

/// A source's files, read, as one result.
fn combine(source: &SourcePlan, per_file: Vec<Loaded>) -> Result<Loaded> {
    let total: usize = per_file.iter().map(|p| p.records.len()).sum();
    let mut out = Loaded::default();
    let mut objects = 0;
    let mut present = vec![0u64; source.slots.len()];
    for mut part in per_file {
        if out.records.is_empty() {
            // One file (the usual case): keep its vector instead of copying it.
            std::mem::swap(&mut out.records, &mut part.records);
            out.records.reserve_exact(total - out.records.len());
        }
        out.records.append(&mut part.records);
        out.rejects.extend(part.rejects);
        out.files.extend(part.files);
        out.header_repeats.extend(part.header_repeats);
        out.spilled.extend(part.spilled);
        if let Some((n, p)) = part.json_present {
            objects += n;
            present.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
    }
    if source.format == Format::Jsonl {
        jsonl::check_present(source, objects, &present)?;
    }
    out.rejects.sort();
    out.fresh = out.records.len();
    Ok(out)
}

/// Loads one file: in chunks of whole lines read in parallel where it can be split (see
/// `chunks`), each into its share of one vector sized by the lines counted beforehand, so that
/// nothing is copied afterwards. Every chunk counts lines from its own start; the line ends
/// before it are added once all are read.
fn load_file(
    source: &SourcePlan,
    file: u32,
    f: &crate::config::InputFile,
    min_chunk: u64,
) -> Result<Loaded> {
    let read = |reader, sink: &mut Sink, header, plain| {
        read_chunk(source, file, reader, sink, header, plain)
    };
    let Some(chunks) = chunks(source, f, min_chunk, true)? else {
        let reader = open_input(&f.path, &f.display, source.encoding)?;
        // Rows are at least ~40 bytes in any export we reconcile: reserving that many records up
        // front costs nothing until used (untouched pages are never faulted in), and saves the
        // copy-and-fault of every doubling.
        let estimate = usize::try_from(f.bytes / 40).unwrap_or(0);
        let mut sink = Sink::Grow(Vec::with_capacity(estimate));
        let mut l = read(reader, &mut sink, None, false)?;
        if let Sink::Grow(v) = sink {
            l.records = v;
        }
        return Ok(l);
    };
    let room: usize = chunks.iter().map(|c| c.room).sum();
    let mut slots: Vec<Option<Record>> = Vec::with_capacity(room);
    slots.par_extend(rayon::iter::repeat_n(None, room));
    let parts: Vec<Result<Loaded>> = chunks
        .par_iter()
        .zip(shares(&mut slots, &chunks))
        .map(|(c, share)| {
            let mut sink = Sink::Slots {
                slots: share,
                used: 0,
                overflow: false,
            };
            let l = read(
                open_range(&f.path, c.start, c.len)?,
                &mut sink,
                c.header.as_deref(),
                c.plain,
            )?;
            match sink {
                Sink::Slots { overflow: true, .. } => {
                    anyhow::bail!(
                        "the file changed while it was read; run again once it is complete"
                    )
                }
                _ => Ok(l),
            }
        })
        .collect::<Vec<_>>();
    let parts = in_order(parts)?;
    let (mut out, bases) = merge_chunks(source, parts);
    shares(&mut slots, &chunks)
        .into_par_iter()
        .zip(bases)
        .for_each(|(share, base)| {
            share
                .iter_mut()
                .flatten()
                .for_each(|r| r.origin.line += base);
        });
    // The unused slots dropped in place: an `Option<Record>` is the size of a `Record`, so the
    // vector's memory is reused rather than copied.
    #[allow(clippy::filter_map_identity)] // `flatten` would allocate a new vector and copy
    let records = slots.into_iter().filter_map(|r| r).collect();
    out.records = records;
    Ok(out)
}

/// Reads one chunk of a file (or the whole file) into `sink`; `header` and `plain` describe the
/// chunk (see [`Chunk`]).
fn read_chunk(
    source: &SourcePlan,
    file: u32,
    reader: Box<dyn BufRead + Send>,
    sink: &mut Sink,
    header: Option<&[String]>,
    plain: bool,
) -> Result<Loaded> {
    match source.format {
        Format::Csv => delimited::load(source, file, reader, sink, header, plain),
        Format::Jsonl => jsonl::load(source, file, reader, sink),
    }
}

/// One file's chunks, read, as one result (without their records), and the line ends before each
/// chunk, to add to the line numbers it counted from its own start.
fn merge_chunks(source: &SourcePlan, parts: Vec<Loaded>) -> (Loaded, Vec<u64>) {
    let mut out = Loaded::for_file();
    let mut objects = 0;
    let mut present = vec![0u64; source.slots.len()];
    let mut bases = Vec::with_capacity(parts.len());
    let mut base = 0u64;
    for mut part in parts {
        part.rejects.iter_mut().for_each(|r| r.origin.line += base);
        part.header_repeats.iter_mut().for_each(|o| o.line += base);
        bases.push(base);
        base += part.lines;
        out.files[0].rows += part.files[0].rows;
        out.files[0].rejected += part.files[0].rejected;
        out.rejects.append(&mut part.rejects);
        out.header_repeats.append(&mut part.header_repeats);
        out.spilled.append(&mut part.spilled);
        if let Some((n, p)) = part.json_present {
            objects += n;
            present.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
    }
    if source.format == Format::Jsonl {
        out.json_present = Some((objects, present));
    }
    (out, bases)
}

/// A part of one file that one thread reads: whole lines, from `start` for `len` bytes.
struct Chunk {
    start: u64,
    len: u64,
    /// The most records the chunk can hold: its lines.
    room: usize,
    /// CSV chunks after the first: the file's header, which they do not contain.
    header: Option<Vec<String>>,
    /// CSV: the chunk holds no byte `EF` (which starts a byte-order mark) but in a mark at the
    /// file's start (nor, as every split CSV file, a quote or a lone `\r`), so each line is a
    /// record split at the delimiter.
    plain: bool,
}

/// Files smaller than this are read by one thread: splitting them gains little.
const MIN_CHUNK: u64 = 16 << 20;

/// Splits a file into chunks of whole lines for the threads to read in parallel, counting each
/// chunk's lines (its `room`) when `rooms` is asked for.
///
/// A line end always ends a record in JSON Lines (a JSON string cannot hold a raw newline). In CSV
/// a quoted field can, so a CSV file is split only when it holds no quote at all; a lone `\r` (an
/// old Mac line end) ends a CSV record too, so such files are not split either. Compressed and
/// transcoded files are read as one stream.
fn chunks(
    source: &SourcePlan,
    f: &crate::config::InputFile,
    min_chunk: u64,
    rooms: bool,
) -> Result<Option<Vec<Chunk>>> {
    let threads = rayon::current_num_threads() as u64;
    if threads < 2 || f.bytes < 2 * min_chunk || source.encoding.is_some() {
        return Ok(None);
    }
    let file = File::open(&f.path)?;
    if is_gzip(&file)? {
        return Ok(None);
    }
    // Guided: each chunk takes a share of what is left of the file (1 / 2·threads), but at
    // least `min_chunk`, so chunks shrink towards the end. The threads take the largest first
    // (see `load_all_partitioned_in`), and the last reads, short ones, end close together.
    let mut bounds = vec![0u64];
    let mut at = 0;
    while f.bytes - at >= 2 * min_chunk {
        at += ((f.bytes - at) / (2 * threads)).max(min_chunk);
        let b = next_line_start(&file, at, f.bytes)?;
        if b > *bounds.last().expect("starts with 0") && b < f.bytes {
            bounds.push(b);
        }
        at = at.max(b);
    }
    bounds.push(f.bytes);
    if bounds.len() == 2 {
        return Ok(None);
    }
    let csv = source.format == Format::Csv;
    // Records spilled to partitions need no room counted for them: JSON Lines is then split
    // without reading it twice (CSV is still scanned for quotes, lone CRs and byte-order marks,
    // but its lines are not counted).
    let scans = match rooms || csv {
        true => in_order(
            bounds
                .par_windows(2)
                .map(|w| scan(&file, w[0], w[1] - w[0], csv, rooms))
                .collect(),
        )?,
        false => vec![Some((0, false)); bounds.len() - 1],
    };
    let Some(rooms) = scans.into_iter().collect::<Option<Vec<(usize, bool)>>>() else {
        return Ok(None);
    };
    let header = match csv {
        false => None,
        true => match read_csv_header(&f.path, &f.display, source.delimiter, None)? {
            Some(h) => Some(h),
            None => return Ok(None),
        },
    };
    Ok(Some(
        bounds
            .windows(2)
            .zip(rooms)
            .enumerate()
            .map(|(i, (w, (room, plain)))| Chunk {
                start: w[0],
                len: w[1] - w[0],
                room,
                header: if i == 0 { None } else { header.clone() },
                plain: csv && plain,
            })
            .collect(),
    ))
}

/// Each chunk's share of the file's record slots.
fn shares<'s>(slots: &'s mut [Option<Record>], chunks: &[Chunk]) -> Vec<&'s mut [Option<Record>]> {
    let mut out = Vec::with_capacity(chunks.len());
    let mut rest = slots;
    for c in chunks {
        let (share, tail) = rest.split_at_mut(c.room);
        out.push(share);
        rest = tail;
    }
    out
}

/// Reads at an offset without moving a shared cursor (threads read one file at once).
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The offset just after the first `\n` at or after `at - 1`: where the line holding byte `at`
/// ends, or `at` itself when a line starts there.
fn next_line_start(file: &File, at: u64, size: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = at.saturating_sub(1);
    while pos < size {
        let n = read_at(file, pos, &mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(size)
}

/// The lines in a range of a file that are not blank (empty, or a lone `\r` before the `\n`), when
/// `count` asks for them (0 otherwise): the most records it can hold, for which a record's room is
/// set aside (blank lines hold none: a file of blank lines must not reserve gigabytes); and for
/// CSV whether the range is plain:
/// it holds no byte `EF` (which starts a byte-order mark, as files concatenated after the fact
/// carry) but for a mark at the file's very start. `None` for a CSV range that holds a quote or a
/// lone `\r` (an old Mac line end), where a record is not a line. CSV's three bytes are looked for
/// in one pass.
fn scan(
    file: &File,
    start: u64,
    len: u64,
    csv: bool,
    count: bool,
) -> std::io::Result<Option<(usize, bool)>> {
    let mut reader = range_reader(file.try_clone()?, start, len)?;
    let mut pos = start;
    let mut lines = NonBlank::default();
    let mut plain = true;
    loop {
        let block = reader.fill_buf()?;
        let n = block.len();
        if n == 0 {
            break;
        }
        if count {
            lines.add(block);
        }
        if csv {
            let skip = match pos == 0 && block.starts_with(b"\xEF\xBB\xBF") {
                true => 3,
                false => 0,
            };
            for i in memchr::memchr3_iter(b'"', b'\r', 0xEF, &block[skip..]).map(|i| i + skip) {
                match block[i] {
                    b'"' => return Ok(None),
                    0xEF => plain = false,
                    _ => {
                        // A `\r` is fine only right before a `\n` (one read further when it ends
                        // the block).
                        let next = match block.get(i + 1) {
                            Some(b) => Some(*b),
                            None => {
                                let mut one = [0u8];
                                (read_at(file, pos + n as u64, &mut one)? == 1).then_some(one[0])
                            }
                        };
                        if next != Some(b'\n') {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        pos += n as u64;
        reader.consume(n);
    }
    Ok(Some((lines.finish(), plain)))
}

/// Counts the lines of a stream of blocks that are not blank: that hold more than their line end
/// (`\n`, or `\r\n`). A range starts at a line's start.
struct NonBlank {
    lines: usize,
    /// Bytes since the last `\n` (or the start), and the byte before the current block.
    since: u64,
    before: u8,
}

impl Default for NonBlank {
    fn default() -> Self {
        NonBlank {
            lines: 0,
            since: 0,
            before: b'\n',
        }
    }
}

impl NonBlank {
    fn add(&mut self, block: &[u8]) {
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', block) {
            let len = self.since + (i - start) as u64;
            let prev = if i > 0 { block[i - 1] } else { self.before };
            self.lines += usize::from(len > 1 || (len == 1 && prev != b'\r'));
            self.since = 0;
            start = i + 1;
        }
        self.since += (block.len() - start) as u64;
        if let Some(&b) = block.last() {
            self.before = b;
        }
    }

    /// The count, with a last line that has no line end.
    fn finish(self) -> usize {
        let last = self.since > 1 || (self.since == 1 && self.before != b'\r');
        self.lines + usize::from(last)
    }
}

/// One chunk of a file as a byte stream: mapped into memory (see [`Mapped`]), or read through a
/// buffer where it cannot be mapped.
fn open_range(path: &std::path::Path, start: u64, len: u64) -> Result<Box<dyn BufRead + Send>> {
    Ok(range_reader(File::open(path)?, start, len)?)
}

/// `len` bytes of `file` from `start`, as [`open_range`] reads them.
fn range_reader(mut file: File, start: u64, len: u64) -> std::io::Result<Box<dyn BufRead + Send>> {
    use std::io::{Read, Seek, SeekFrom};
    if let Some(mapped) = Mapped::new(&file, start, len) {
        return Ok(Box::new(mapped));
    }
    file.seek(SeekFrom::Start(start))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, file.take(len))))
}

/// Opens an input file as a UTF-8 byte stream: gzip (recognised by its magic bytes, whatever the
/// file is called) is decompressed, and a declared legacy encoding is transcoded.
pub fn open_input(
    path: &std::path::Path,
    shown: &str,
    encoding: Option<&'static encoding_rs::Encoding>,
) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, file));
    if reader
        .fill_buf()
        .with_context(|| format!("cannot read {shown}"))?
        .starts_with(&[0x1f, 0x8b])
    {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        reader = Box::new(BufReader::with_capacity(1 << 20, gz));
    }
    if let Some(encoding) = encoding {
        // A UTF-8 BOM ahead of a legacy encoding would be decoded into text ("ï»¿").
        skip_bom(&mut reader)?;
        let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .build(reader);
        reader = Box::new(BufReader::with_capacity(1 << 20, decoded));
    }
    Ok(reader)
}

/// The lines of a byte stream, each without its line end (`\n` or `\r\n`). A line that lies
/// whole in the reader's buffer (all but about one in five thousand, with 1 MiB buffers) is handed
/// out where it lies, uncopied; one that straddles two fills is gathered in a buffer of its own.
/// Line ends are found with the vectorised `memchr` crate (the standard library's word-at-a-time
/// `read_until` took 4% of the 5M benchmark, and copying every line out 2%).
pub(crate) struct Lines<R> {
    reader: R,
    /// A line gathered across fills.
    joined: Vec<u8>,
    /// Bytes of the reader's buffer handed out in the last line, consumed on the next call.
    lent: usize,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Lines {
            reader,
            joined: Vec::new(),
            lent: 0,
        }
    }

    /// The next line; `None` at the end of the stream.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.reader.consume(std::mem::take(&mut self.lent));
        self.joined.clear();
        // The length of a line without its `\r`, if it ended in `\r\n`.
        let strip = |line: &[u8]| line.len() - usize::from(line.ends_with(b"\r"));
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match memchr::memchr(b'\n', available) {
                Some(i) if self.joined.is_empty() => {
                    let len = strip(&available[..i]);
                    self.lent = i + 1;
                    // Asked again, the reader returns the same bytes (nothing consumed, no read):
                    // the borrow checker does not let the first borrow out of the loop.
                    let available = self.reader.fill_buf()?;
                    return Ok(Some(&available[..len]));
                }
                Some(i) => {
                    self.joined.extend_from_slice(&available[..i]);
                    self.reader.consume(i + 1);
                    break;
                }
                None if available.is_empty() => {
                    if self.joined.is_empty() {
                        return Ok(None);
                    }
                    break;
                }
                None => {
                    let n = available.len();
                    self.joined.extend_from_slice(available);
                    self.reader.consume(n);
                }
            }
        }
        let len = strip(&self.joined);
        Ok(Some(&self.joined[..len]))
    }
}

/// Skips a UTF-8 byte-order mark at the very start of a stream.
fn skip_bom<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// Where a loader puts its records: a growing vector, or a chunk's share of a vector sized in
/// advance for the whole file (so that chunks read in parallel need no copying afterwards).
pub(crate) enum Sink<'s> {
    Grow(Vec<Record>),
    /// Encoded into partitions (see [`crate::partition::spill`]).
    Parts(ChunkWriter),
    Slots {
        slots: &'s mut [Option<Record>],
        used: usize,
        /// More records than lines were counted: the file changed while it was read.
        overflow: bool,
    },
}

impl Sink<'_> {
    /// Adds a record; `ids` are the interner's ids of its shared values, for `Parts`.
    fn put(&mut self, r: Record, ids: &[u32]) {
        match self {
            Sink::Grow(v) => v.push(r),
            Sink::Parts(w) => w.put(&r, ids),
            Sink::Slots {
                slots,
                used,
                overflow,
            } => match slots.get_mut(*used) {
                Some(slot) => {
                    *slot = Some(r);
                    *used += 1;
                }
                None => *overflow = true,
            },
        }
    }
}

/// What a loader carries from row to row of one chunk: the shared values, the last business day
/// found, and the last date a time was read on.
pub(crate) struct Memo {
    interner: Interner,
    days: DayMemo,
    dates: DateMemo,
}

impl Memo {
    fn for_sink(sink: &Sink) -> Memo {
        Memo {
            interner: Interner::for_sink(sink),
            days: DayMemo::default(),
            dates: DateMemo::default(),
        }
    }

    fn finish(self, sink: &mut Sink) {
        self.interner.finish(sink);
    }
}

/// One copy of each distinct status, account or extra value a file holds, shared by its records:
/// a million rows with five statuses and a few thousand accounts allocate a few thousand strings.
/// Each field has its own table, and a field whose values are (nearly) all different stops being
/// interned past a size, and then, if its full table mostly misses, stops being looked up.
///
/// Every interned value also has an id, its place in `values`, and the ids of one row's values
/// are listed in `row` in the order they were asked for ([`Interner::NOT_INTERNED`] for a value
/// not interned): a partitioned run writes ids rather than text (see
/// [`crate::partition::spill`]). There a field stops being interned much sooner: writing a
/// value's text costs less than looking it up in a table too large for the CPU caches.
#[derive(Default)]
pub(crate) struct Interner {
    fields: Vec<FieldTable>,
    values: Vec<Shared>,
    row: Vec<u32>,
    /// Whether ids are wanted (and so whether `row` is filled), and the size a field's table
    /// stops growing at.
    ids: bool,
    max: usize,
}

/// One field's interned values, and how often a full table still finds the value asked for.
#[derive(Default)]
struct FieldTable {
    /// Values by their text, held as keys are (inline up to 30 bytes), so that a lookup compares
    /// bytes in the table rather than following a pointer per candidate.
    ids: std::collections::HashMap<Key, u32, foldhash::fast::FixedState>,
    /// Lookups, and hits, since the table filled up (up to [`Interner::TRIAL`] lookups).
    full: (u32, u32),
    /// Whether the field stopped being looked up: its table filled, and then mostly missed (a
    /// field of 25,000 accounts in a table of 4096), so each lookup cost more than it saved.
    given_up: bool,
    /// The first [`FieldTable::FEW`] values and their ids, also in `ids`: while a field has no
    /// more (a status), they are compared one by one, which costs less than hashing the value.
    few: Vec<(Key, u32)>,
}

impl Interner {
    /// Lookups into a full table after which a field that mostly misses is given up.
    const TRIAL: u32 = 1 << 16;

    /// The id of a value that was not interned: the spill writes its text.
    pub(crate) const NOT_INTERNED: u32 = u32::MAX;
    /// Values per field and chunk that go to [`Shared::interned`]'s pool.
    const POOLED: usize = 1 << 12;

    /// An interner for a sink: with ids, and small tables, for one that writes them.
    fn for_sink(sink: &Sink) -> Interner {
        let ids = matches!(sink, Sink::Parts(_));
        Interner {
            ids,
            max: if ids { 1 << 12 } else { 1 << 20 },
            ..Default::default()
        }
    }

    fn get(&mut self, field: usize, value: &str) -> Shared {
        if self.fields.len() <= field {
            self.fields.resize_with(field + 1, Default::default);
        }
        let table = &mut self.fields[field];
        let (v, id) = match table.lookup(value, self.max) {
            _ if table.given_up => (Shared::from(value), Self::NOT_INTERNED),
            Some(id) => (self.values[id as usize].clone(), id),
            None if table.ids.len() < self.max => {
                // A field's first values go to the process's pool, free to copy; past that the
                // field is one of (nearly) distinct values, which the pool must not keep forever.
                let v = match table.ids.len() < Self::POOLED {
                    true => Shared::interned(value),
                    false => Shared::counted(value),
                };
                let id = self.values.len() as u32;
                table.insert(value, id);
                self.values.push(v.clone());
                (v, id)
            }
            None => (Shared::from(value), Self::NOT_INTERNED),
        };
        if self.ids {
            self.row.push(id);
        }
        v
    }

    /// Hands the values with ids over to the sink that wrote them, at the end of a chunk.
    fn finish(self, sink: &mut Sink) {
        if let Sink::Parts(w) = sink {
            w.set_symbols(self.values);
        }
    }
}

impl FieldTable {
    const FEW: usize = 8;

    /// Adds a value with its id.
    fn insert(&mut self, value: &str, id: u32) {
        if self.few.len() < Self::FEW {
            self.few.push((Key::from(value), id));
        }
        self.ids.insert(Key::from(value), id);
    }

    /// The id of `value`, if interned; counts the hits of a full table (of `max` values), and
    /// gives the field up when it mostly misses. Nothing is looked up once given up.
    fn lookup(&mut self, value: &str, max: usize) -> Option<u32> {
        if self.given_up {
            return None;
        }
        if self.ids.len() <= Self::FEW {
            let found = self.few.iter().find(|(k, _)| k.as_str() == value);
            return found.map(|(_, id)| *id);
        }
        let id = self.ids.get(&Key::from(value)).copied();
        // Judged once, on the first lookups after the table filled.
        if self.ids.len() >= max && self.full.0 < Interner::TRIAL {
            self.full.0 += 1;
            self.full.1 += u32::from(id.is_some());
            if self.full.0 == Interner::TRIAL && self.full.1 < Interner::TRIAL / 2 {
                self.given_up = true;
            }
        }
        id
    }
}

/// A field whose text cannot be had: why, and what the file holds there (as near as it can be
/// shown), for rejects.csv. Boxed, so that the result of every field lookup stays small (this
/// happens rarely; lookups happen for every field of every row).
pub(crate) struct Unreadable(Box<(String, String)>);

impl Unreadable {
    fn new(reason: impl Into<String>, raw: impl Into<String>) -> Unreadable {
        Unreadable(Box::new((reason.into(), raw.into())))
    }
}

/// Collects one row's field values and the reasons it cannot be used.
struct RowBuilder<'a> {
    source: &'a SourcePlan,
    origin: Origin,
    rejects: Vec<Reject>,
    /// The row's cleaned key, once read.
    key: Option<Key>,
    memo: &'a mut Memo,
}

impl<'a> RowBuilder<'a> {
    fn new(source: &'a SourcePlan, origin: Origin, memo: &'a mut Memo) -> Self {
        memo.interner.row.clear();
        RowBuilder {
            source,
            origin,
            rejects: Vec::new(),
            key: None,
            memo,
        }
    }

    /// Adds this row's outcome to `out`: its record, or its rejects (a row counts once however many
    /// of its fields were bad).
    fn finish(mut self, record: Option<Record>, out: &mut Loaded, sink: &mut Sink) {
        if let Some(r) = record {
            sink.put(r, &self.memo.interner.row);
        }
        if !self.rejects.is_empty() {
            out.files[0].rejected += 1;
            for r in &mut self.rejects {
                r.key.clone_from(&self.key);
            }
            out.rejects.append(&mut self.rejects);
        }
    }
}

impl RowBuilder<'_> {
    fn reject(&mut self, field: &str, reason: impl Into<String>, raw: &str) {
        self.rejects.push(Reject {
            origin: self.origin,
            field: field.to_string(),
            reason: reason.into(),
            raw: clip(raw),
            key: None,
        });
    }

    /// Builds the record from a lookup of field text (`Ok(None)` = absent or null). Returns `None` and
    /// keeps the reasons when any field is unusable.
    fn build<'v>(
        &mut self,
        get: impl Fn(&FieldRef) -> Result<Option<Text<'v>>, Unreadable>,
    ) -> Option<Record> {
        let s = self.source;
        let mut text = |f: &FieldRef, me: &mut Self| -> Option<Option<Text<'v>>> {
            match get(f) {
                // Decoding a declared encoding turns bytes that are not valid in it into U+FFFD:
                // two different keys could merge, so the field is rejected instead.
                Ok(Some(t)) if s.encoding.is_some() && t.s.contains('\u{fffd}') => {
                    let why = format!("not valid {}", s.encoding.map_or("", |e| e.name()));
                    me.reject(&f.name, why, t.s);
                    None
                }
                Ok(v) => Some(v),
                Err(Unreadable(why)) => {
                    let (reason, raw) = *why;
                    me.reject(&f.name, reason, &raw);
                    None
                }
            }
        };
        let key = text(&s.key, self).map(|raw| s.key_cleanup.apply(raw.map(|t| t.s)));
        let currency = match &s.currency {
            None => Some(None),
            Some(CurrencySpec::Fixed(c)) => Some(Some(*c)),
            Some(CurrencySpec::Column(f)) => match text(f, self) {
                None => None,
                Some(raw) => match raw.and_then(|t| s.currencies.parse(t.s)) {
                    Some(c) => Some(Some(c)),
                    None => {
                        let raw = raw.map_or("", |t| t.s);
                        let why = crate::normalize::currency::why_not_a_currency(raw);
                        self.reject(&f.name, why, raw);
                        None
                    }
                },
            },
        };
        let amount = match (&s.amount, currency) {
            (None, _) => Some(None),
            (Some(_), None) => None,
            (Some(spec), Some(cur)) => {
                let cur = cur.expect("a source with an amount has a currency (validated)");
                self.amount(spec, cur, &mut text).map(Some)
            }
        };
        let at = match &s.time {
            None => Some(None),
            Some(t) => match text(&t.field, self) {
                None => None,
                Some(raw) => {
                    let value = raw.map_or("", |t| t.s);
                    match parse_time_with(
                        value,
                        &t.format,
                        t.zone.as_ref(),
                        t.dst,
                        &mut self.memo.dates,
                    ) {
                        Ok(at) => Some(Some(at)),
                        Err(e) => {
                            self.reject(&t.field.name, e.to_string(), raw.map_or("", |t| t.s));
                            None
                        }
                    }
                }
            },
        };
        let plain = |f: Option<&FieldRef>, me: &mut Self| match f {
            None => Some(None),
            Some(f) => text(f, me).map(|v| {
                v.map(|t| crate::normalize::trim(t.s))
                    .filter(|v| !v.is_empty())
                    .map(|v| me.memo.interner.get(f.slot, v))
            }),
        };
        let status = plain(s.status.as_ref(), self);
        let account = plain(s.account.as_ref(), self);
        // Every extra field is read (each may add a reject) before any is given up on.
        let extra: Option<Vec<Option<Shared>>> = match s.extra.is_empty() {
            true => Some(Vec::new()),
            false => {
                let each: Vec<_> = s.extra.iter().map(|(_, f)| plain(Some(f), self)).collect();
                each.into_iter().collect()
            }
        };
        if !self.rejects.is_empty() {
            // Rejected: keep the key (when it could be read) for the rejects.
            self.key = key.flatten();
            return None;
        }
        let (at, date) = match at? {
            None => (None, None),
            Some(Stamp::At(at)) => {
                let date = s.business_day.date_of_memo(at, &mut self.memo.days);
                (Some(at), Some(date))
            }
            Some(Stamp::Date(d)) => (None, Some(d)),
        };
        Some(Record {
            key: key?,
            amount: amount?,
            currency: currency?,
            at,
            date,
            status: status?,
            account: account?,
            extra: extra?,
            origin: self.origin,
        })
    }

    fn amount<'v>(
        &mut self,
        spec: &AmountSpec,
        cur: Currency,
        text: &mut impl FnMut(&FieldRef, &mut Self) -> Option<Option<Text<'v>>>,
    ) -> Option<Minor> {
        let number = self.source.number;
        let parse = |f: &FieldRef, raw: Text, me: &mut Self| {
            let format = if raw.json_number {
                NumberFormat {
                    decimal: '.',
                    thousands: None,
                    unit: number.unit,
                }
            } else {
                number
            };
            match parse_amount(raw.s, &format, cur.exponent()) {
                Ok(v) => Some(v),
                Err(e) => {
                    me.reject(&f.name, format!("{e} ({cur})"), raw.s);
                    None
                }
            }
        };
        let filled = |t: Option<Text<'v>>| t.filter(|t| !t.s.trim().is_empty());
        let negate = |f: &FieldRef, raw: Text, v: i64, me: &mut Self| match v.checked_neg() {
            Some(n) => Some(Minor(n)),
            None => {
                me.reject(
                    &f.name,
                    format!("out of range (beyond 64-bit minor units) ({cur})"),
                    raw.s,
                );
                None
            }
        };
        match spec {
            AmountSpec::Column(f) => {
                let raw = text(f, self)?.unwrap_or(Text::plain(""));
                parse(f, raw, self).map(Minor)
            }
            AmountSpec::DebitCredit { debit, credit } => {
                let d = filled(text(debit, self)?);
                let c = filled(text(credit, self)?);
                let both = format!("{}/{}", debit.name, credit.name);
                match (d, c) {
                    (None, None) => {
                        self.reject(&both, "both debit and credit are empty", "");
                        None
                    }
                    (Some(d), None) => {
                        let v = parse(debit, d, self)?;
                        negate(debit, d, v, self)
                    }
                    (None, Some(c)) => parse(credit, c, self).map(Minor),
                    (Some(d), Some(c)) => {
                        let (dv, cv) = (parse(debit, d, self)?, parse(credit, c, self)?);
                        match (dv, cv) {
                            (0, v) => Some(Minor(v)),
                            (v, 0) => negate(debit, d, v, self),
                            _ => {
                                let raw = format!("{}/{}", d.s, c.s);
                                self.reject(&both, "both debit and credit are filled", &raw);
                                None
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_not_counted_wherever_the_blocks_split_them() {
        let text = b"\n\r\nk,1\r\n\n\n{}\n \n\r\n\r\nlast\r";
        // Not blank: "k,1", "{}", " ", "last\r" (a lone \r ends no line here).
        for size in 1..text.len() + 1 {
            let mut n = NonBlank::default();
            text.chunks(size).for_each(|b| n.add(b));
            assert_eq!(n.finish(), 4, "blocks of {size}");
        }
        let mut n = NonBlank::default();
        n.add(b"\n\n\r\n\r");
        assert_eq!(n.finish(), 0);
    }

    #[test]
    fn a_gzip_file_counts_what_it_decompresses_to() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            crate::config::InputFile {
                display: name.into(),
                path,
                bytes: bytes.len() as u64,
                carried: false,
            }
        };
        let gzip = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        // Lines of pseudo-random hex: about 2 to 1, so the large file is sampled, not read whole.
        let mut x = 7u64;
        let mut text = String::new();
        while text.len() < 8 << 20 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(&format!("K{:016x},{}.{:02},EUR\n", x, x % 1000, x % 97));
        }
        let large = file("large.csv.gz", &gzip(text.as_bytes()));
        assert!(large.bytes > 4 * GZIP_SAMPLE, "{}", large.bytes);
        let small = file("small.csv.gz", &gzip(&text.as_bytes()[..100_000]));
        let plain = file("plain.csv", &text.as_bytes()[..5000]);
        // The small file is read whole: exact; the large one within a few per cent.
        assert_eq!(content_bytes_of(&[&small, &plain]), 105_000);
        let percent = content_bytes_of(&[&large]) * 100 / text.len() as u64;
        assert!(
            (95..=105).contains(&percent),
            "{percent}% of the text's size"
        );
        // Cut short or not gzip at all behind its magic bytes: counted as it lies.
        let cut = gzip(text.as_bytes());
        let cut = file("cut.csv.gz", &cut[..1000]);
        assert!(content_bytes_of(&[&cut]) >= 1000);
        let bad = file("bad.csv.gz", b"\x1f\x8bnot gzip");
        assert_eq!(content_bytes_of(&[&bad]), 10);
    }

    #[test]
    fn lines_come_out_whole_wherever_the_reader_s_fills_end() {
        let input = b"a,1\r\nbb,22\n\n\r\nccc\r\r\nlast\r";
        let want: Vec<&[u8]> = vec![b"a,1", b"bb,22", b"", b"", b"ccc\r", b"last"];
        for capacity in 1..input.len() + 2 {
            let mut lines = Lines::new(BufReader::with_capacity(capacity, &input[..]));
            let mut got = Vec::new();
            while let Some(l) = lines.next_line().unwrap() {
                got.push(l.to_vec());
            }
            assert_eq!(got, want, "fills of {capacity} bytes");
        }
        let mut none = Lines::new(&b""[..]);
        assert_eq!(none.next_line().unwrap(), None);
    }

    #[test]
    fn a_field_that_mostly_misses_a_full_table_is_given_up_and_one_that_hits_is_not() {
        let mut i = Interner {
            ids: true,
            max: 1 << 12,
            ..Default::default()
        };
        let trial = Interner::TRIAL as usize;
        // Field 0: an account of ever new values; field 1: a status of three.
        for n in 0..(1 << 12) + trial + 10 {
            let account = format!("acct-{n}");
            assert_eq!(&*i.get(0, &account), account);
            let status = ["posted", "pending", "void"][n % 3];
            assert_eq!(&*i.get(1, status), status);
            let ids = &i.row[i.row.len() - 2..];
            // The first 4096 accounts have ids; later ones are written as text.
            assert_eq!(ids[0] == Interner::NOT_INTERNED, n >= 1 << 12, "{n}");
            assert_ne!(ids[1], Interner::NOT_INTERNED, "{n}");
        }
        assert!(i.fields[0].given_up);
        assert!(!i.fields[1].given_up);
        // Given up, even a value it holds is written as text, read back the same.
        assert_eq!(&*i.get(0, "acct-7"), "acct-7");
        assert_eq!(i.row.last(), Some(&Interner::NOT_INTERNED));
    }
}
