//! Loading: each source's files (CSV or JSONL) into canonical records, and every row that cannot be
//! used into a reject with file, line, field and reason. Sources and files load in parallel.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use serde_json::Value;

use crate::config::{AmountSpec, CurrencySpec, FieldRef, Format, SourcePlan};
use crate::model::{Minor, Origin, Record};
use crate::normalize::currency::Currency;
use crate::normalize::money::parse_amount;
use crate::normalize::time::parse_time;

/// An input row that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reject {
    pub origin: Origin,
    pub field: String,
    pub reason: String,
    pub raw: String,
}

/// Rows read and rejected in one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    pub rows: u64,
    pub rejected: u64,
}

/// One source after loading: records sorted by (time, file, line), so the earliest comes first.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    pub rejects: Vec<Reject>,
    pub files: Vec<FileStats>,
}

impl Loaded {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
    pub fn rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rejected).sum()
    }
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
            let file = File::open(&f.path).with_context(|| format!("cannot open {}", f.display))?;
            let reader = BufReader::with_capacity(1 << 20, file);
            match source.format {
                Format::Csv => load_csv(source, origin_file, reader),
                Format::Jsonl => load_jsonl(source, origin_file, reader),
            }
            .with_context(|| format!("cannot read {}", f.display))
        })
        .collect::<Result<_>>()?;
    let mut out = Loaded::default();
    for part in per_file {
        out.records.extend(part.records);
        out.rejects.extend(part.rejects);
        out.files.extend(part.files);
    }
    out.records
        .par_sort_by(|a, b| (a.at, a.origin).cmp(&(b.at, b.origin)));
    out.rejects.sort();
    Ok(out)
}

/// Skips a UTF-8 byte-order mark at the very start of a stream.
fn skip_bom<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// The header of a CSV file, for checking a config's columns before the run.
pub fn read_csv_header(path: &Path, delimiter: u8) -> Result<Vec<String>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    skip_bom(&mut reader)?;
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(reader);
    let header = csv
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?;
    if header.is_empty() {
        return Err(anyhow!(
            "{}: the file is empty (no header line)",
            path.display()
        ));
    }
    Ok(header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect())
}

/// Collects one row's field values and the reasons it cannot be used.
struct RowBuilder<'a> {
    source: &'a SourcePlan,
    origin: Origin,
    rejects: Vec<Reject>,
}

impl RowBuilder<'_> {
    fn reject(&mut self, field: &str, reason: impl Into<String>, raw: &str) {
        self.rejects.push(Reject {
            origin: self.origin,
            field: field.to_string(),
            reason: reason.into(),
            raw: raw.to_string(),
        });
    }

    /// Builds the record from a lookup of field text (`Ok(None)` = absent or null). Returns `None` and
    /// keeps the reasons when any field is unusable.
    fn build<'v>(
        &mut self,
        get: impl Fn(&FieldRef) -> Result<Option<&'v str>, String>,
    ) -> Option<Record> {
        let s = self.source;
        let mut text = |f: &FieldRef, me: &mut Self| -> Option<Option<&'v str>> {
            match get(f) {
                Ok(v) => Some(v),
                Err(reason) => {
                    me.reject(&f.name, reason, "");
                    None
                }
            }
        };
        let key = text(&s.key, self).map(|raw| s.key_cleanup.apply(raw));
        let currency = match &s.currency {
            None => Some(None),
            Some(CurrencySpec::Fixed(c)) => Some(Some(*c)),
            Some(CurrencySpec::Column(f)) => match text(f, self) {
                None => None,
                Some(raw) => match raw.and_then(Currency::parse) {
                    Some(c) => Some(Some(c)),
                    None => {
                        let raw = raw.unwrap_or("");
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
                Some(raw) => match parse_time(raw.unwrap_or(""), &t.format, t.zone.as_ref()) {
                    Ok(at) => Some(Some(at)),
                    Err(e) => {
                        self.reject(&t.field.name, e.to_string(), raw.unwrap_or(""));
                        None
                    }
                },
            },
        };
        let plain = |f: Option<&FieldRef>, me: &mut Self| match f {
            None => Some(None),
            Some(f) => text(f, me).map(|v| {
                v.map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            }),
        };
        let status = plain(s.status.as_ref(), self);
        let account = plain(s.account.as_ref(), self);
        let extra: Vec<Option<Option<String>>> =
            s.extra.iter().map(|(_, f)| plain(Some(f), self)).collect();
        if !self.rejects.is_empty() {
            return None;
        }
        Some(Record {
            key: key?,
            amount: amount?,
            currency: currency?,
            at: at?,
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
        text: &mut impl FnMut(&FieldRef, &mut Self) -> Option<Option<&'v str>>,
    ) -> Option<Minor> {
        let number = &self.source.number;
        let parse = |f: &FieldRef, raw: &str, me: &mut Self| match parse_amount(
            raw,
            number,
            cur.exponent(),
        ) {
            Ok(v) => Some(v),
            Err(e) => {
                me.reject(&f.name, format!("{e} ({cur})"), raw);
                None
            }
        };
        match spec {
            AmountSpec::Column(f) => {
                let raw = text(f, self)?.unwrap_or("");
                parse(f, raw, self).map(Minor)
            }
            AmountSpec::DebitCredit { debit, credit } => {
                let d = text(debit, self)?.map(str::trim).filter(|v| !v.is_empty());
                let c = text(credit, self)?.map(str::trim).filter(|v| !v.is_empty());
                match (d, c) {
                    (None, None) => {
                        self.reject(
                            &format!("{}/{}", debit.name, credit.name),
                            "both debit and credit are empty",
                            "",
                        );
                        None
                    }
                    (Some(d), None) => parse(debit, d, self)
                        .and_then(|v| v.checked_neg())
                        .map(Minor),
                    (None, Some(c)) => parse(credit, c, self).map(Minor),
                    (Some(d), Some(c)) => {
                        let (dv, cv) = (parse(debit, d, self)?, parse(credit, c, self)?);
                        match (dv, cv) {
                            (0, v) => Some(Minor(v)),
                            (v, 0) => v.checked_neg().map(Minor),
                            _ => {
                                self.reject(
                                    &format!("{}/{}", debit.name, credit.name),
                                    "both debit and credit are filled",
                                    &format!("{d}/{c}"),
                                );
                                None
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Records the byte offset of every newline that passes through a reader, so that a record's start
/// byte can be turned into the line a text editor shows. The csv crate's own line count slips by one
/// per record on CRLF files (rust-csv issue 395), while its byte offsets are right.
struct NewlineTracker<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<VecDeque<u64>>>,
}

impl<R: Read> Read for NewlineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut q = self.newlines.borrow_mut();
        q.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| self.offset + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

/// Answers "which line does byte B start on" for increasing B, forgetting newlines already passed,
/// so it holds no more than the csv reader's read-ahead.
struct LineIndex {
    newlines: Rc<RefCell<VecDeque<u64>>>,
    passed: u64,
}

impl LineIndex {
    fn line_of(&mut self, byte: u64) -> u64 {
        let mut q = self.newlines.borrow_mut();
        // `<=`: on CRLF files the csv crate ends a record at the `\r`, so the next one "starts" at the
        // `\n` that still belongs to the previous line. No record starts with its own newline.
        while q.front().is_some_and(|&o| o <= byte) {
            q.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

fn load_csv<R: BufRead>(source: &SourcePlan, file: u32, mut reader: R) -> Result<Loaded> {
    skip_bom(&mut reader)?;
    let newlines = Rc::new(RefCell::new(VecDeque::new()));
    let mut lines = LineIndex {
        newlines: Rc::clone(&newlines),
        passed: 0,
    };
    let tracked = NewlineTracker {
        inner: reader,
        offset: 0,
        newlines,
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(source.delimiter)
        .flexible(true)
        .from_reader(tracked);
    let header: Vec<String> = csv
        .byte_headers()?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let column = |f: &FieldRef| header.iter().position(|h| *h == f.name);
    let mut out = Loaded {
        files: vec![FileStats::default()],
        ..Default::default()
    };
    let stats = &mut out.files[0];
    let mut row = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // The csv crate only fails on I/O here (flexible rows are allowed): stop the run.
                return Err(anyhow!(e));
            }
        }
        let line = lines.line_of(row.position().map_or(0, |p| p.byte()));
        stats.rows += 1;
        let mut b = RowBuilder {
            source,
            origin: Origin { file, line },
            rejects: Vec::new(),
        };
        if row.len() != header.len() {
            let raw: Vec<String> = row
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            b.reject(
                "",
                format!("expected {} fields, found {}", header.len(), row.len()),
                &raw.join(","),
            );
        } else {
            let get = |f: &FieldRef| -> Result<Option<&str>, String> {
                let i = column(f)
                    .ok_or_else(|| format!("column {:?} is not in this file's header", f.name))?;
                std::str::from_utf8(&row[i])
                    .map(Some)
                    .map_err(|_| "not valid UTF-8".to_string())
            };
            if let Some(rec) = b.build(get) {
                out.records.push(rec);
            }
        }
        if !b.rejects.is_empty() {
            stats.rejected += 1;
            out.rejects.extend(b.rejects);
        }
    }
    Ok(out)
}

/// The text of a JSON scalar: a string as is, a number as its literal (exact) text, null as absent.
fn json_text<'v>(root: &'v Value, path: &[String]) -> Result<Option<&'v str>, String> {
    let mut v = root;
    for seg in path {
        match v {
            Value::Object(m) => match m.get(seg) {
                Some(next) => v = next,
                None => return Ok(None),
            },
            Value::Null => return Ok(None),
            _ => return Err(format!("{:?} is not an object", seg)),
        }
    }
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str())),
        Value::Number(n) => Ok(Some(number_text(n))),
        Value::Bool(true) => Ok(Some("true")),
        Value::Bool(false) => Ok(Some("false")),
        Value::Array(_) | Value::Object(_) => {
            Err("expected a single value, found an array or object".into())
        }
    }
}

/// With serde_json's `arbitrary_precision`, a number keeps the literal text it was written with.
fn number_text(n: &serde_json::Number) -> &str {
    n.as_str()
}

fn load_jsonl<R: BufRead>(source: &SourcePlan, file: u32, mut reader: R) -> Result<Loaded> {
    skip_bom(&mut reader)?;
    let mut out = Loaded {
        files: vec![FileStats::default()],
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        if reader.by_ref().read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let stats = &mut out.files[0];
        stats.rows += 1;
        let mut b = RowBuilder {
            source,
            origin: Origin { file, line },
            rejects: Vec::new(),
        };
        let raw_line = || {
            String::from_utf8_lossy(bytes)
                .chars()
                .take(200)
                .collect::<String>()
        };
        match serde_json::from_slice::<Value>(bytes) {
            Err(e) => {
                // serde_json says "at line 1 column C" of the one-line document: keep only the column.
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg);
                b.reject(
                    "",
                    format!("not valid JSON at column {}: {msg}", e.column()),
                    &raw_line(),
                )
            }
            Ok(v @ Value::Object(_)) => {
                if let Some(rec) = b.build(|f| json_text(&v, &f.path)) {
                    out.records.push(rec);
                }
            }
            Ok(_) => b.reject("", "not a JSON object", &raw_line()),
        }
        if !b.rejects.is_empty() {
            stats.rejected += 1;
            out.rejects.extend(b.rejects);
        }
    }
    Ok(out)
}
