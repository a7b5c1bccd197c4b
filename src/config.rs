//! The config file: TOML in, a validated [`RunPlan`] out, before any data row is read.
//!
//! Every mistake found here names its key path (`source[1].amount.unit`) or the file and column, and
//! makes the run exit 2: a reconciliation built on a misread config cannot be trusted.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::load::read_csv_header;
use crate::normalize::calendar::{BusinessDay, Holidays, Window, expand_date};
use crate::normalize::currency::{Currencies, Currency};
use crate::normalize::key::KeyCleanup;
use crate::normalize::money::{NumberFormat, Unit, parse_amount};
use crate::normalize::time::{DstRule, TimeFormat, Zone};

// ---- the file as written ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The business calendar: zone, cut-off and holidays.
    run: Option<RawRun>,
    /// Currency exponents that differ from ISO 4217 in these exports, or codes it lacks.
    #[serde(default)]
    currencies: BTreeMap<String, u8>,
    #[serde(rename = "source", default)]
    sources: Vec<RawSource>,
    #[serde(rename = "check", default)]
    checks: Vec<RawCheck>,
    #[serde(rename = "flow", default)]
    flows: Vec<RawFlow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    timezone: Option<String>,
    cutoff: Option<String>,
    holidays: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    name: String,
    stages: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    format: Format,
    path: String,
    max_rejects: Option<toml::Value>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    allow_empty: bool,
    encoding: Option<String>,
    delimiter: Option<String>,
    decimal: Option<String>,
    thousands: Option<String>,
    key: RawKey,
    amount: Option<RawAmount>,
    currency: Option<RawCurrency>,
    time: Option<RawTime>,
    status: Option<RawColumn>,
    account: Option<RawColumn>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    column: String,
    #[serde(default)]
    trim: bool,
    #[serde(default)]
    lowercase: bool,
    strip_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawUnit {
    #[default]
    Major,
    Minor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAmount {
    column: Option<String>,
    debit: Option<String>,
    credit: Option<String>,
    #[serde(default)]
    unit: RawUnit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCurrency {
    column: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    column: String,
    #[serde(default = "rfc3339")]
    format: String,
    timezone: Option<String>,
    dst: Option<String>,
}

fn rfc3339() -> String {
    "rfc3339".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    column: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    from: String,
    to: String,
    compare: Option<Vec<String>>,
    amount_tolerance: Option<toml::Value>,
    #[serde(default)]
    status_map: BTreeMap<String, String>,
    window: Option<String>,
    lead: Option<String>,
}

/// What a check compares when its `compare` key is left out.
const DEFAULT_COMPARE: [&str; 2] = ["amount", "currency"];

// ---- the validated plan -------------------------------------------------------------------------

/// Everything a run needs, resolved and checked: files found, columns present, zones parsed.
#[derive(Debug)]
pub struct RunPlan {
    pub config_path: PathBuf,
    pub config_sha256: String,
    /// The business date D this run reconciles.
    pub date: NaiveDate,
    pub business_day: BusinessDay,
    pub holidays: Holidays,
    pub sources: Vec<SourcePlan>,
    pub checks: Vec<CheckPlan>,
    pub flows: Vec<FlowPlan>,
}

/// An ordered chain of sources a business flow passes through.
#[derive(Debug, Clone)]
pub struct FlowPlan {
    pub name: String,
    /// Source indices, first stage first.
    pub stages: Vec<usize>,
    /// For each pair of neighbouring stages, the check between them (either direction), if any.
    pub links: Vec<Option<usize>>,
}

/// One input file of a source.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The path as shown in every output: relative to the config file's folder, `/`-separated.
    pub display: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Not read in this run: the file of a record carried over from an earlier run's state.
    pub carried: bool,
}

/// A field of the input: a CSV column name, or a dotted path into a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    pub name: String,
    /// `payload.amount` as `["payload", "amount"]`; for CSV a single segment, the column name.
    pub path: Vec<String>,
    /// This field's index in [`SourcePlan::slots`]: where a loader keeps its value for a row.
    pub slot: usize,
}

#[derive(Debug, Clone)]
pub enum AmountSpec {
    Column(FieldRef),
    /// Two columns, one of which is filled: amount = credit - debit.
    DebitCredit {
        debit: FieldRef,
        credit: FieldRef,
    },
}

#[derive(Debug, Clone)]
pub enum CurrencySpec {
    Column(FieldRef),
    Fixed(Currency),
}

#[derive(Debug, Clone)]
pub struct TimeSpec {
    pub field: FieldRef,
    pub format: TimeFormat,
    pub zone: Option<Zone>,
    pub dst: DstRule,
}

/// How many rejected rows a source may have before the run is untrustworthy (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxRejects {
    Count(u64),
    /// Thousandths of a percent of the rows read: `"0.5%"` is 500.
    PerHundredThousand(u64),
}

impl MaxRejects {
    pub fn allows(&self, rejected: u64, rows: u64) -> bool {
        match *self {
            MaxRejects::Count(n) => rejected <= n,
            MaxRejects::PerHundredThousand(p) => {
                (rejected as u128) * 100_000 <= (rows as u128) * (p as u128)
            }
        }
    }

    /// As the config would say it: `5`, `10%`, `0.125%`.
    pub fn describe(&self) -> String {
        match *self {
            MaxRejects::Count(n) => n.to_string(),
            MaxRejects::PerHundredThousand(p) => {
                let exact = crate::normalize::currency::format_scaled(p as i128, 3);
                format!("{}%", exact.trim_end_matches('0').trim_end_matches('.'))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub name: String,
    pub format: Format,
    pub files: Vec<InputFile>,
    pub delimiter: u8,
    pub number: NumberFormat,
    pub key: FieldRef,
    pub key_cleanup: KeyCleanup,
    pub amount: Option<AmountSpec>,
    pub currency: Option<CurrencySpec>,
    pub time: Option<TimeSpec>,
    pub status: Option<FieldRef>,
    pub account: Option<FieldRef>,
    /// Extra compared fields: (name used in `compare`, field).
    pub extra: Vec<(String, FieldRef)>,
    pub max_rejects: MaxRejects,
    /// The distinct fields the source reads, each once, in slot order.
    pub slots: Vec<FieldRef>,
    /// A system recon must not post to (a bank statement): its repairs become `investigate`.
    pub read_only: bool,
    /// Whether having no rows at all is normal for this source (otherwise the run is incomplete).
    pub allow_empty: bool,
    /// The run's currencies (ISO 4217 plus the config's `[currencies]`).
    pub currencies: Currencies,
    /// The text encoding of the files; `None` is UTF-8.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The run's zone and cut-off, which give each record its business date.
    pub business_day: BusinessDay,
}

impl SourcePlan {
    /// Gives every mapped field a slot, the same for fields that name the same column.
    fn assign_slots(&mut self) {
        let mut slots: Vec<FieldRef> = Vec::new();
        let mut assign = |f: &mut FieldRef| {
            f.slot = match slots.iter().position(|s| s.name == f.name) {
                Some(i) => i,
                None => {
                    slots.push(f.clone());
                    slots.len() - 1
                }
            };
            slots[f.slot].slot = f.slot;
        };
        assign(&mut self.key);
        match &mut self.amount {
            Some(AmountSpec::Column(f)) => assign(f),
            Some(AmountSpec::DebitCredit { debit, credit }) => {
                assign(debit);
                assign(credit);
            }
            None => {}
        }
        if let Some(CurrencySpec::Column(f)) = &mut self.currency {
            assign(f);
        }
        if let Some(t) = &mut self.time {
            assign(&mut t.field);
        }
        for f in [&mut self.status, &mut self.account].into_iter().flatten() {
            assign(f);
        }
        for (_, f) in &mut self.extra {
            assign(f);
        }
        self.slots = slots;
    }

    /// Every field the source maps, with the config key that maps it (for header checks).
    pub fn fields(&self) -> Vec<(String, &FieldRef)> {
        let mut out = vec![("key.column".to_string(), &self.key)];
        match &self.amount {
            Some(AmountSpec::Column(f)) => out.push(("amount.column".into(), f)),
            Some(AmountSpec::DebitCredit { debit, credit }) => {
                out.push(("amount.debit".into(), debit));
                out.push(("amount.credit".into(), credit));
            }
            None => {}
        }
        if let Some(CurrencySpec::Column(f)) = &self.currency {
            out.push(("currency.column".into(), f));
        }
        if let Some(t) = &self.time {
            out.push(("time.column".into(), &t.field));
        }
        if let Some(f) = &self.status {
            out.push(("status.column".into(), f));
        }
        if let Some(f) = &self.account {
            out.push(("account.column".into(), f));
        }
        for (name, f) in &self.extra {
            out.push((format!("extra.{name}"), f));
        }
        out
    }
}

/// A compared field of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Amount,
    Currency,
    Status,
    Account,
    /// An extra field: its name and its index in each side's `extra` list.
    Extra {
        name: String,
        from: usize,
        to: usize,
    },
}

impl Field {
    pub fn name(&self) -> &str {
        match self {
            Field::Amount => "amount",
            Field::Currency => "currency",
            Field::Status => "status",
            Field::Account => "account",
            Field::Extra { name, .. } => name,
        }
    }
}

/// An exact, non-negative decimal: `digits / 10^scale` in major units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tolerance {
    pub digits: i64,
    pub scale: u8,
}

impl Tolerance {
    /// The tolerance in a currency's minor units, truncated: 0.01 is 1 cent, and 0 yen.
    pub fn in_minor(&self, exponent: u8) -> i128 {
        let e = exponent as i32 - self.scale as i32;
        if e >= 0 {
            self.digits as i128 * 10i128.pow(e as u32)
        } else {
            self.digits as i128 / 10i128.pow((-e) as u32)
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckPlan {
    pub name: String,
    pub from: usize,
    pub to: usize,
    pub compare: Vec<Field>,
    pub tolerance: Tolerance,
    /// `from` status value -> the `to` status value that means the same state.
    pub status_map: BTreeMap<String, String>,
    /// How long `to` may lag `from`: a counterpart inside it is `late`, none yet is `pending`.
    pub window: Window,
    /// How long `to` may lead `from`: a `to` record inside it waits for its `from` (`pending`).
    pub lead: Window,
    /// Whether the config sets `window` or `lead`: only then are agreeing records on different
    /// business days reported as `late`.
    pub timed: bool,
}

// ---- resolution ---------------------------------------------------------------------------------

/// Reads, parses and validates a config file, then finds its input files for business date `date`
/// (default: yesterday in the run's zone) and checks their headers.
pub fn load_plan(config_path: &Path, date: Option<NaiveDate>) -> Result<RunPlan> {
    let bytes = fs::read(config_path)
        .with_context(|| format!("cannot read config {}", config_path.display()))?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| anyhow!("{}: the config is not valid UTF-8", config_path.display()))?;
    let raw = parse_raw(&text).map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let mut plan =
        resolve(raw, &base, date).map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    plan.config_path = config_path.to_path_buf();
    plan.config_sha256 = hex(&Sha256::digest(&bytes));
    check_headers(&plan)?;
    Ok(plan)
}

fn parse_raw(text: &str) -> Result<RawConfig> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.message().to_string();
        let at = inner
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        if path == "." || path.is_empty() {
            anyhow!("{msg}{at}")
        } else {
            anyhow!("{path}: {msg}{at}")
        }
    })
}

fn resolve(raw: RawConfig, base: &Path, date: Option<NaiveDate>) -> Result<RunPlan> {
    if raw.sources.is_empty() {
        bail!("no [[source]] defined: a run needs at least two sources and one [[check]]");
    }
    if raw.checks.is_empty() {
        bail!("no [[check]] defined: say which source is compared with which (from, to)");
    }
    let entries: Vec<(String, u8)> = raw.currencies.into_iter().collect();
    let currencies = Currencies::new(&entries).map_err(|e| anyhow!("currencies: {e}"))?;
    let (business_day, holidays) = resolve_run(raw.run.as_ref(), base)?;
    let date = date.unwrap_or_else(|| business_day.yesterday());
    let mut names = HashSet::new();
    let mut sources = Vec::new();
    for (i, s) in raw.sources.into_iter().enumerate() {
        let at = format!("source[{i}]");
        if s.name.trim().is_empty() {
            bail!("{at}.name: must not be empty");
        }
        if !names.insert(s.name.clone()) {
            bail!("{at}.name: a source named {:?} is defined twice", s.name);
        }
        let days = (&business_day, date);
        sources.push(resolve_source(s, &at, Some((base, days)), &currencies)?);
    }
    let mut check_names = HashSet::new();
    let mut checks = Vec::new();
    for (i, c) in raw.checks.into_iter().enumerate() {
        let at = format!("check[{i}]");
        if !check_names.insert(c.name.clone()) {
            bail!("{at}.name: a check named {:?} is defined twice", c.name);
        }
        checks.push(resolve_check(c, &at, &sources)?);
    }
    for (i, s) in sources.iter().enumerate() {
        if !checks.iter().any(|c| c.from == i || c.to == i) {
            bail!("source[{i}] ({:?}): not used by any [[check]]", s.name);
        }
    }
    let mut flows: Vec<FlowPlan> = Vec::new();
    for (i, f) in raw.flows.into_iter().enumerate() {
        let at = format!("flow[{i}]");
        if f.name.trim().is_empty() {
            bail!("{at}.name: must not be empty");
        }
        if flows.iter().any(|x| x.name == f.name) {
            bail!("{at}.name: a flow named {:?} is defined twice", f.name);
        }
        if f.stages.len() < 2 {
            bail!("{at}.stages: a flow needs at least two stages");
        }
        let mut stages = Vec::new();
        for name in &f.stages {
            let s = sources
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| anyhow!("{at}.stages: no source named {name:?}"))?;
            if stages.contains(&s) {
                bail!("{at}.stages: {name:?} is listed twice");
            }
            stages.push(s);
        }
        let links = stages
            .windows(2)
            .map(|w| {
                checks
                    .iter()
                    .position(|c| (c.from, c.to) == (w[0], w[1]))
                    .or_else(|| checks.iter().position(|c| (c.from, c.to) == (w[1], w[0])))
            })
            .collect();
        flows.push(FlowPlan {
            name: f.name,
            stages,
            links,
        });
    }
    Ok(RunPlan {
        config_path: PathBuf::new(),
        config_sha256: String::new(),
        date,
        business_day,
        holidays,
        sources,
        checks,
        flows,
    })
}

/// The `[run]` table: the zone and cut-off that give every record its business date, and the
/// holiday file for windows counted in business days.
fn resolve_run(run: Option<&RawRun>, base: &Path) -> Result<(BusinessDay, Holidays)> {
    let mut day = BusinessDay::default();
    let Some(run) = run else {
        return Ok((day, Holidays::default()));
    };
    if let Some(z) = &run.timezone {
        day.zone = Zone::parse(z).ok_or_else(|| {
            anyhow!("run.timezone: {z:?} is not a time zone (use UTC, an IANA name like Asia/Shanghai, or +08:00)")
        })?;
    }
    if let Some(c) = &run.cutoff {
        day.cutoff = NaiveTime::parse_from_str(c.trim(), "%H:%M")
            .map_err(|_| anyhow!("run.cutoff: {c:?} is not a local time HH:MM (e.g. \"17:00\"; \"00:00\" ends the day at midnight)"))?;
    }
    let holidays = match &run.holidays {
        None => Holidays::default(),
        Some(p) => {
            let path = base.join(p);
            let text = fs::read_to_string(&path)
                .map_err(|e| anyhow!("run.holidays: cannot read {}: {e}", path.display()))?;
            Holidays::parse(&text).map_err(|e| anyhow!("run.holidays: {}: {e}", path.display()))?
        }
    };
    Ok((day, holidays))
}

/// Thousands separators seen in real exports: comma, dot, space, apostrophe (Swiss), no-break and
/// narrow no-break space (French). Anything else would clash with signs, exponents or parentheses.
const THOUSANDS: [char; 6] = [',', '.', ' ', '\'', '\u{a0}', '\u{202f}'];

fn one_char(value: &Option<String>, at: &str, default: Option<char>) -> Result<Option<char>> {
    match value.as_deref() {
        None => Ok(default),
        Some("") => Ok(None),
        Some(v) => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Some(c)),
                _ => bail!("{at}: must be a single character, found {v:?}"),
            }
        }
    }
}

fn field(name: &str, format: Format, at: &str) -> Result<FieldRef> {
    if name.is_empty() {
        bail!("{at}: must not be empty");
    }
    let path = match format {
        Format::Csv => vec![name.to_string()],
        Format::Jsonl => {
            let parts: Vec<String> = name.split('.').map(str::to_string).collect();
            if parts.iter().any(String::is_empty) {
                bail!("{at}: {name:?} is not a dotted field path (like payload.amount)");
            }
            parts
        }
    };
    Ok(FieldRef {
        name: name.to_string(),
        path,
        slot: usize::MAX,
    })
}

/// Resolves one source; `base` is the config folder, or `None` to skip finding its files.
/// `base` is the config folder with the run's business day and date, for finding the files; `None`
/// resolves the source without files (fuzzing, loader tests).
fn resolve_source(
    s: RawSource,
    at: &str,
    base: Option<(&Path, (&BusinessDay, NaiveDate))>,
    currencies: &Currencies,
) -> Result<SourcePlan> {
    let fmt = s.format;
    if fmt == Format::Jsonl && s.delimiter.is_some() {
        bail!("{at}.delimiter: applies only to csv sources");
    }
    let delimiter = one_char(&s.delimiter, &format!("{at}.delimiter"), Some(','))?
        .ok_or_else(|| anyhow!("{at}.delimiter: must not be empty"))?;
    if !delimiter.is_ascii() {
        bail!("{at}.delimiter: must be an ASCII character, found {delimiter:?}");
    }
    let decimal = one_char(&s.decimal, &format!("{at}.decimal"), Some('.'))?
        .ok_or_else(|| anyhow!("{at}.decimal: must not be empty"))?;
    let thousands = one_char(&s.thousands, &format!("{at}.thousands"), None)?;
    if thousands == Some(decimal) {
        bail!("{at}.thousands: must differ from the decimal separator {decimal:?}");
    }
    if !['.', ','].contains(&decimal) {
        bail!("{at}.decimal: must be \".\" or \",\", found {decimal:?}");
    }
    if let Some(t) = thousands
        && !THOUSANDS.contains(&t)
    {
        bail!("{at}.thousands: must be one of {THOUSANDS:?} or empty, found {t:?}");
    }
    if [b'"', b'\n', b'\r'].contains(&(delimiter as u8)) {
        bail!("{at}.delimiter: {delimiter:?} cannot separate fields");
    }

    let key = field(&s.key.column, fmt, &format!("{at}.key.column"))?;
    let key_cleanup = KeyCleanup {
        trim: s.key.trim,
        lowercase: s.key.lowercase,
        strip_prefix: s.key.strip_prefix.filter(|p| !p.is_empty()),
    };

    let mut unit = Unit::Major;
    let amount = match s.amount {
        None => None,
        Some(a) => {
            unit = match a.unit {
                RawUnit::Major => Unit::Major,
                RawUnit::Minor => Unit::Minor,
            };
            Some(match (a.column, a.debit, a.credit) {
                (Some(c), None, None) => {
                    AmountSpec::Column(field(&c, fmt, &format!("{at}.amount.column"))?)
                }
                (None, Some(d), Some(c)) => AmountSpec::DebitCredit {
                    debit: field(&d, fmt, &format!("{at}.amount.debit"))?,
                    credit: field(&c, fmt, &format!("{at}.amount.credit"))?,
                },
                _ => bail!("{at}.amount: give either `column`, or both `debit` and `credit`"),
            })
        }
    };
    let currency = match s.currency {
        None => None,
        Some(RawCurrency {
            column: Some(c),
            value: None,
        }) => Some(CurrencySpec::Column(field(
            &c,
            fmt,
            &format!("{at}.currency.column"),
        )?)),
        Some(RawCurrency {
            column: None,
            value: Some(v),
        }) => Some(CurrencySpec::Fixed(currencies.parse(&v).ok_or_else(
            || {
                let why = crate::normalize::currency::why_not_a_currency(&v);
                anyhow!("{at}.currency.value: {v:?} is {why}")
            },
        )?)),
        Some(_) => bail!("{at}.currency: give either `column` or `value`, not both or neither"),
    };
    if amount.is_some() && currency.is_none() {
        bail!(
            "{at}.currency: required when `amount` is mapped (the minor unit depends on the currency)"
        );
    }
    let time = match s.time {
        None => None,
        Some(t) => {
            let format =
                TimeFormat::parse(&t.format).map_err(|e| anyhow!("{at}.time.format: {e}"))?;
            let zone = match &t.timezone {
                None => None,
                Some(z) => Some(Zone::parse(z).ok_or_else(|| {
                    anyhow!("{at}.time.timezone: {z:?} is not a time zone (use UTC, an IANA name like Europe/Berlin, or +02:00)")
                })?),
            };
            if matches!(format, TimeFormat::Date(_)) && zone.is_some() {
                bail!(
                    "{at}.time.timezone: format {:?} is a date without a time, which no zone shifts; remove timezone",
                    t.format
                );
            }
            if format.is_naive() && zone.is_none() {
                bail!(
                    "{at}.time.timezone: required, because format {:?} has no UTC offset",
                    t.format
                );
            }
            if !format.is_naive() && zone.is_some() {
                bail!(
                    "{at}.time.timezone: format {:?} carries its own offset; remove timezone",
                    t.format
                );
            }
            let dst = match t.dst.as_deref() {
                None => DstRule::Reject,
                Some(d) => DstRule::parse(d).ok_or_else(|| {
                    anyhow!(
                        "{at}.time.dst: expected \"reject\", \"earlier\" or \"later\", found {d:?}"
                    )
                })?,
            };
            if t.dst.is_some() && !format.is_naive() {
                bail!(
                    "{at}.time.dst: only naive local times can fall into a DST gap or overlap; format {:?} cannot",
                    t.format
                );
            }
            Some(TimeSpec {
                field: field(&t.column, fmt, &format!("{at}.time.column"))?,
                format,
                zone,
                dst,
            })
        }
    };
    let status = s
        .status
        .map(|c| field(&c.column, fmt, &format!("{at}.status.column")))
        .transpose()?;
    let account = s
        .account
        .map(|c| field(&c.column, fmt, &format!("{at}.account.column")))
        .transpose()?;
    let mut extra = Vec::new();
    for (name, column) in s.extra {
        if name.trim().is_empty() {
            bail!("{at}.extra: a field name must not be empty");
        }
        if ["amount", "currency", "status", "account", "key", "time"].contains(&name.as_str()) {
            bail!(
                "{at}.extra.{name}: {name:?} is a built-in field; give the extra field another name"
            );
        }
        extra.push((
            name.clone(),
            field(&column, fmt, &format!("{at}.extra.{name}"))?,
        ));
    }
    let max_rejects = match &s.max_rejects {
        None => MaxRejects::Count(0),
        Some(v) => parse_max_rejects(v).ok_or_else(|| {
            anyhow!("{at}.max_rejects: expected a count (5) or a percentage up to 100% (\"0.5%\"), found {v}")
        })?,
    };
    let encoding = match s.encoding.as_deref() {
        None => None,
        Some(label) => match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
            Some(e) if e == encoding_rs::UTF_8 => None,
            Some(e) => Some(e),
            None => bail!(
                "{at}.encoding: {label:?} is not a known encoding (e.g. utf-8, windows-1252, iso-8859-15)"
            ),
        },
    };
    let (files, business_day) = match base {
        Some((base, (day, date))) => {
            let path = expand_date(&s.path, date).map_err(|e| anyhow!("{at}.path: {e}"))?;
            let files = find_files(&path, base, s.allow_empty)
                .map_err(|e| anyhow!("{at}.path ({:?}): {e}", s.name))?;
            (files, day.clone())
        }
        None => (Vec::new(), BusinessDay::default()),
    };
    let mut plan = SourcePlan {
        name: s.name,
        format: fmt,
        files,
        delimiter: delimiter as u8,
        number: NumberFormat {
            decimal,
            thousands,
            unit,
        },
        key,
        key_cleanup,
        amount,
        currency,
        time,
        status,
        account,
        extra,
        max_rejects,
        slots: Vec::new(),
        read_only: s.read_only,
        allow_empty: s.allow_empty,
        encoding,
        currencies: currencies.clone(),
        business_day,
    };
    plan.assign_slots();
    if fmt == Format::Jsonl {
        check_paths_nest(&plan.slots).map_err(|e| anyhow!("{at}: {e}"))?;
    }
    Ok(plan)
}

/// JSON paths must not overlap: `a.b` and `a.b.c` cannot both be read (one is a value, the other
/// looks inside it).
fn check_paths_nest(slots: &[FieldRef]) -> Result<()> {
    for a in slots {
        for b in slots {
            if a.path.len() < b.path.len() && b.path.starts_with(&a.path) {
                bail!(
                    "field paths {:?} and {:?} overlap: one would be read inside the other",
                    a.name,
                    b.name
                );
            }
        }
    }
    Ok(())
}

/// Expands a source's glob relative to the config folder, sorted so the run does not depend on the
/// order a file system lists them in.
/// Resolves the first `[[source]]` of a config text without looking for its files: for fuzzing and
/// tests of the loaders, which feed it bytes directly.
pub fn source_without_files(text: &str) -> Result<SourcePlan> {
    let raw = parse_raw(text)?;
    let s = raw.sources.into_iter().next().context("no [[source]]")?;
    let currencies = Currencies::new(&raw.currencies.into_iter().collect::<Vec<_>>())
        .map_err(|e| anyhow!("currencies: {e}"))?;
    let mut plan = resolve_source(s, "source[0]", None, &currencies)?;
    plan.files.clear();
    Ok(plan)
}

/// `allow_empty`: a source that may have no rows may also have no file (a bank issues no statement
/// on a Sunday).
fn find_files(pattern: &str, base: &Path, allow_empty: bool) -> Result<Vec<InputFile>> {
    let full = base.join(pattern);
    let full_text = full
        .to_str()
        .ok_or_else(|| anyhow!("path is not valid UTF-8"))?;
    // Like a shell, wildcards skip hidden files (editor locks, rsync temporaries, recon's own lock).
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..Default::default()
    };
    let paths = glob::glob_with(full_text, options)
        .map_err(|e| anyhow!("{pattern:?} is not a valid glob: {e}"))?;
    let mut files = Vec::new();
    for entry in paths {
        let path =
            entry.map_err(|e| anyhow!("cannot read {}: {}", e.path().display(), e.error()))?;
        let meta =
            fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            continue;
        }
        let display = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        files.push(InputFile {
            display,
            path,
            bytes: meta.len(),
            carried: false,
        });
    }
    if files.is_empty() && !allow_empty {
        bail!(
            "{pattern:?} matched no file (relative to {})",
            base.display()
        );
    }
    files.sort_by(|a, b| a.display.cmp(&b.display));
    same_file_twice(&files)?;
    Ok(files)
}

/// Refuses one file matched by two paths (a `latest` link beside the dated exports, say): read
/// twice, each of its rows would be a duplicate of itself.
fn same_file_twice(files: &[InputFile]) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mut seen: BTreeMap<(u64, u64), &str> = BTreeMap::new();
        for f in files {
            let meta =
                fs::metadata(&f.path).with_context(|| format!("cannot read {}", f.display))?;
            if let Some(first) = seen.insert((meta.dev(), meta.ino()), &f.display) {
                bail!(
                    "{first} and {} are one file (a link?): the path would read it twice; make the path match it once",
                    f.display
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = files;
    Ok(())
}

fn resolve_check(c: RawCheck, at: &str, sources: &[SourcePlan]) -> Result<CheckPlan> {
    let known = || {
        sources
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str, key: &str| {
        sources.iter().position(|s| s.name == name).ok_or_else(|| {
            anyhow!(
                "{at}.{key}: no source named {name:?} (sources: {})",
                known()
            )
        })
    };
    if c.name.trim().is_empty() {
        bail!("{at}.name: must not be empty");
    }
    let from = find(&c.from, "from")?;
    let to = find(&c.to, "to")?;
    if from == to {
        bail!(
            "{at}: `from` and `to` are both {:?}; a check compares two different sources",
            c.from
        );
    }
    let (fs, ts) = (&sources[from], &sources[to]);
    let defaulted = c.compare.is_none();
    let names = c
        .compare
        .unwrap_or_else(|| DEFAULT_COMPARE.map(String::from).to_vec());
    let mut compare = Vec::new();
    for name in &names {
        let mapped = |s: &SourcePlan| match name.as_str() {
            "amount" => s.amount.is_some(),
            "currency" => s.currency.is_some(),
            "status" => s.status.is_some(),
            "account" => s.account.is_some(),
            _ => s.extra.iter().any(|(n, _)| n == name),
        };
        for s in [fs, ts] {
            if !mapped(s) {
                let hint = if defaulted {
                    " (compare defaults to [\"amount\", \"currency\"]; set it, e.g. compare = [])"
                } else {
                    ""
                };
                bail!(
                    "{at}.compare: {name:?} is not mapped in source {:?}{hint}",
                    s.name
                );
            }
        }
        let f = match name.as_str() {
            "amount" => Field::Amount,
            "currency" => Field::Currency,
            "status" => Field::Status,
            "account" => Field::Account,
            _ => Field::Extra {
                name: name.clone(),
                from: fs
                    .extra
                    .iter()
                    .position(|(n, _)| n == name)
                    .expect("checked"),
                to: ts
                    .extra
                    .iter()
                    .position(|(n, _)| n == name)
                    .expect("checked"),
            },
        };
        if compare.contains(&f) {
            bail!("{at}.compare: {name:?} is listed twice");
        }
        compare.push(f);
    }
    let tolerance = match &c.amount_tolerance {
        None => Tolerance::default(),
        Some(v) => parse_tolerance(v).map_err(|e| anyhow!("{at}.amount_tolerance: {e}"))?,
    };
    if !c.status_map.is_empty() && !compare.contains(&Field::Status) {
        bail!("{at}.status_map: given, but \"status\" is not in compare");
    }
    if c.amount_tolerance.is_some() && !compare.contains(&Field::Amount) {
        bail!("{at}.amount_tolerance: given, but \"amount\" is not in compare");
    }
    // Amounts in two currencies cannot be compared as numbers: comparing amounts always compares
    // currencies too (every source with an amount has a currency).
    if compare.contains(&Field::Amount) && !compare.contains(&Field::Currency) {
        let i = compare
            .iter()
            .position(|f| *f == Field::Amount)
            .expect("present");
        compare.insert(i + 1, Field::Currency);
    }
    let window = |v: &Option<String>, key: &str| -> Result<Window> {
        match v {
            None => Ok(Window::default()),
            Some(t) => Window::parse(t).ok_or_else(|| {
                anyhow!("{at}.{key}: expected days such as \"2d\", or business days such as \"3bd\", at most 999, found {t:?}")
            }),
        }
    };
    Ok(CheckPlan {
        name: c.name,
        from,
        to,
        compare,
        tolerance,
        status_map: c.status_map,
        window: window(&c.window, "window")?,
        lead: window(&c.lead, "lead")?,
        timed: c.window.is_some() || c.lead.is_some(),
    })
}

fn parse_max_rejects(v: &toml::Value) -> Option<MaxRejects> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok().map(MaxRejects::Count),
        toml::Value::String(t) => {
            let pct = t.trim().strip_suffix('%')?;
            if !pct.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            match parse_amount(pct, &NumberFormat::default(), 3) {
                Ok(v) if (0..=100_000).contains(&v) => {
                    Some(MaxRejects::PerHundredThousand(v as u64))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn parse_tolerance(v: &toml::Value) -> Result<Tolerance> {
    let text = match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(_) => {
            bail!("write the tolerance as a string (\"0.01\") so that it stays exact")
        }
        other => bail!(
            "expected a decimal string such as \"0.01\", found {}",
            other.type_str()
        ),
    };
    let t = text.trim();
    if !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        bail!("{t:?} is not a plain non-negative decimal such as \"0.01\"");
    }
    let scale = t.split_once('.').map_or(0, |(_, f)| f.len());
    if scale > 18 {
        bail!("{t:?} has too many decimals");
    }
    let digits = parse_amount(t, &NumberFormat::default(), scale as u8)
        .map_err(|e| anyhow!("{t:?}: {e}"))?;
    if digits < 0 {
        bail!("{t:?} is negative");
    }
    Ok(Tolerance {
        digits,
        scale: scale as u8,
    })
}

/// A header's names for a message, cut where a file that is no CSV (or has a 50 MB first line)
/// would make it unreadable: each name to [`SHOWN_NAME`] characters, and [`SHOWN_NAMES`] names.
fn shown_header(header: &[String]) -> String {
    // Control characters (a binary file read as CSV) shown escaped, not as nothing.
    let visible = |name: &str| -> String {
        name.chars()
            .map(|c| match c.is_control() {
                true => c.escape_debug().to_string(),
                false => c.to_string(),
            })
            .collect()
    };
    let cut = |name: &String| visible(&crate::load::clip_to(name, SHOWN_NAME));
    let mut shown: Vec<String> = header.iter().take(SHOWN_NAMES).map(cut).collect();
    if header.len() > SHOWN_NAMES {
        shown.push(format!("… and {} more", header.len() - SHOWN_NAMES));
    }
    shown.join(", ")
}

/// The longest column name a message shows whole, and the most names it lists.
const SHOWN_NAME: usize = 80;
const SHOWN_NAMES: usize = 50;

/// Reads each CSV file's header and checks every mapped column is in it, before any data is read.
fn check_headers(plan: &RunPlan) -> Result<()> {
    for (i, s) in plan.sources.iter().enumerate() {
        if s.format != Format::Csv {
            continue;
        }
        for file in &s.files {
            let Some(header) = read_csv_header(&file.path, &file.display, s.delimiter, s.encoding)?
            else {
                continue;
            };
            for (key, f) in s.fields() {
                let count = header.iter().filter(|h| **h == f.name).count();
                if count == 0 {
                    bail!(
                        "{}: column {:?} (source[{i}] {:?} {key}) is not in the header; the header has: {}{}",
                        file.display,
                        f.name,
                        s.name,
                        shown_header(&header),
                        delimiter_hint(&header, s.delimiter)
                    );
                }
                if count > 1 {
                    bail!(
                        "{}: column {:?} (source[{i}] {:?} {key}) appears {count} times in the header; which one is meant is ambiguous",
                        file.display,
                        f.name,
                        s.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// When a header came out as one column holding another likely separator, say so.
fn delimiter_hint(header: &[String], delimiter: u8) -> String {
    let [only] = header else { return String::new() };
    match [',', ';', '\t', '|']
        .into_iter()
        .find(|c| *c as u8 != delimiter && only.contains(*c))
    {
        Some(c) => format!(
            " (one column only, holding {c:?}: is the source's `delimiter` right? it is {:?})",
            delimiter as char
        ),
        None => String::new(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_exact() {
        let t = parse_tolerance(&toml::Value::String("0.01".into())).unwrap();
        assert_eq!((t.in_minor(2), t.in_minor(0), t.in_minor(3)), (1, 0, 10));
        let t = parse_tolerance(&toml::Value::Integer(2)).unwrap();
        assert_eq!((t.in_minor(2), t.in_minor(0)), (200, 2));
        assert!(parse_tolerance(&toml::Value::Float(0.01)).is_err());
        assert!(parse_tolerance(&toml::Value::String("-1".into())).is_err());
    }

    #[test]
    fn max_rejects_percentages() {
        let half = MaxRejects::PerHundredThousand(500);
        assert!(half.allows(5, 1000));
        assert!(!half.allows(6, 1000));
        assert!(MaxRejects::Count(0).allows(0, 10));
        assert!(!MaxRejects::Count(0).allows(1, 10));
        assert_eq!(half.describe(), "0.5%");
        let said = [
            (10_000, "10%"),
            (125, "0.125%"),
            (0, "0%"),
            (100_000, "100%"),
        ];
        for (p, text) in said {
            assert_eq!(MaxRejects::PerHundredThousand(p).describe(), text);
        }
        assert_eq!(MaxRejects::Count(20).describe(), "20");
    }
}
