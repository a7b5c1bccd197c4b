//! Loading: each source's files (CSV or JSONL) into canonical records, and every row that cannot be
//! used into a reject with file, line, field and reason. Sources and files load in parallel.

mod delimited;
mod jsonl;

use std::fs::File;
use std::io::{BufRead, BufReader};

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::config::{AmountSpec, CurrencySpec, FieldRef, Format, SourcePlan};
use crate::model::{Minor, Origin, Record, Shared};
use crate::normalize::currency::Currency;
use crate::normalize::money::{NumberFormat, parse_amount};
use crate::normalize::time::{Stamp, parse_time};

pub use delimited::read_csv_header;

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
    match raw.char_indices().nth(MAX_RAW) {
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
    pub key: Option<String>,
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
}

impl Loaded {
    /// An empty result for one file, with room reserved for `estimate` records.
    fn for_file(estimate: usize) -> Loaded {
        Loaded {
            files: vec![FileStats::default()],
            records: Vec::with_capacity(estimate),
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
    match source.format {
        Format::Csv => delimited::load(source, 0, bytes, 0),
        Format::Jsonl => jsonl::load(source, 0, bytes, 0),
    }
    .map(|mut l| {
        l.fresh = l.records.len();
        l
    })
}

/// Loads every source in parallel. An unreadable file stops the run; a bad row does not.
pub fn load_all(sources: &[SourcePlan]) -> Result<Vec<Loaded>> {
    sources.par_iter().map(load_source).collect()
}

fn load_source(source: &SourcePlan) -> Result<Loaded> {
    let per_file: Vec<Loaded> = source
        .files
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let origin_file = i as u32;
            // Rows are at least ~40 bytes in any export we reconcile: reserving that many records up
            // front costs nothing until used (untouched pages are never faulted in), and saves the
            // copy-and-fault of every doubling, which dominated the profile at a million rows.
            let estimate = usize::try_from(f.bytes / 40).unwrap_or(0);
            let reader = open_input(&f.path, &f.display, source.encoding)?;
            match source.format {
                Format::Csv => delimited::load(source, origin_file, reader, estimate),
                Format::Jsonl => jsonl::load(source, origin_file, reader, estimate),
            }
            .with_context(|| format!("cannot read {}", f.display))
        })
        .collect::<Result<_>>()?;
    let total: usize = per_file.iter().map(|p| p.records.len()).sum();
    let mut out = Loaded {
        records: Vec::with_capacity(total),
        ..Loaded::default()
    };
    let mut objects = 0;
    let mut present = vec![0u64; source.slots.len()];
    for mut part in per_file {
        if out.records.is_empty() {
            // One file (the usual case): keep its vector instead of copying it.
            std::mem::swap(&mut out.records, &mut part.records);
        }
        out.records.append(&mut part.records);
        out.rejects.extend(part.rejects);
        out.files.extend(part.files);
        out.header_repeats.extend(part.header_repeats);
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

/// Skips a UTF-8 byte-order mark at the very start of a stream.
fn skip_bom<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// One copy of each distinct status, account or extra value a file holds, shared by its records:
/// a million rows with five statuses and a few thousand accounts allocate a few thousand strings.
/// A field whose values are (nearly) all different stops being interned past a size.
#[derive(Default)]
pub(crate) struct Interner(std::collections::HashSet<Shared, foldhash::fast::FixedState>);

impl Interner {
    const MAX: usize = 1 << 16;

    fn get(&mut self, value: &str) -> Shared {
        if let Some(v) = self.0.get(value) {
            return v.clone();
        }
        let v: Shared = Shared::from(value);
        if self.0.len() < Self::MAX {
            self.0.insert(v.clone());
        }
        v
    }
}

/// Collects one row's field values and the reasons it cannot be used.
struct RowBuilder<'a> {
    source: &'a SourcePlan,
    origin: Origin,
    rejects: Vec<Reject>,
    /// The row's cleaned key, once read.
    key: Option<String>,
    interner: &'a mut Interner,
}

impl<'a> RowBuilder<'a> {
    fn new(source: &'a SourcePlan, origin: Origin, interner: &'a mut Interner) -> Self {
        RowBuilder {
            source,
            origin,
            rejects: Vec::new(),
            key: None,
            interner,
        }
    }

    /// Adds this row's outcome to `out`: its record, or its rejects (a row counts once however many
    /// of its fields were bad).
    fn finish(mut self, record: Option<Record>, out: &mut Loaded) {
        if let Some(r) = record {
            out.records.push(r);
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
        get: impl Fn(&FieldRef) -> Result<Option<Text<'v>>, String>,
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
                Err(reason) => {
                    me.reject(&f.name, reason, "");
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
                        let why = if raw.trim().is_empty() {
                            "empty currency"
                        } else {
                            "not an ISO 4217 currency code"
                        };
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
                    match parse_time(value, &t.format, t.zone.as_ref(), t.dst) {
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
                v.map(|t| t.s.trim())
                    .filter(|v| !v.is_empty())
                    .map(|v| me.interner.get(v))
            }),
        };
        let status = plain(s.status.as_ref(), self);
        let account = plain(s.account.as_ref(), self);
        let extra: Vec<Option<Option<Shared>>> =
            s.extra.iter().map(|(_, f)| plain(Some(f), self)).collect();
        if !self.rejects.is_empty() {
            // Rejected: keep the key (when it could be read) for the rejects.
            self.key = key.flatten();
            return None;
        }
        let (at, date) = match at? {
            None => (None, None),
            Some(Stamp::At(at)) => (Some(at), Some(s.business_day.date_of(at))),
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
            extra: extra.into_iter().collect::<Option<Vec<_>>>()?,
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
