//! The canonical types every stage shares: records with their origin, break kinds, repair actions.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::normalize::currency::Currency;

/// An amount in a currency's minor units (cents for USD, yen for JPY, fils for BHD).
///
/// Never a float: parsed from text straight into an integer, summed in `i128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor(pub i64);

/// Where a record came from: the index of the file within its source, and the 1-based line on which the
/// record starts (for CSV, the physical line, so a quoted field with newlines does not shift later lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: u32,
    pub line: u64,
}

/// A text value many records share (a status, an account). An interned value (see
/// [`Shared::interned`]) is one copy for the whole process, which records copy and drop for free;
/// a counted one ([`Shared::counted`]) is shared by reference count; a value of one record alone
/// (`Shared::from`) is its own copy. Compared, ordered and hashed as the text it holds.
///
/// Why not just `Arc<str>`: its count is an atomic, and at 10 million records the increments and
/// decrements of the loader, the spill's decoder and the drops took about 10% of a run; an
/// account field of 25,000 values (too many to intern) cost 4% in decrements alone.
#[derive(Clone)]
pub struct Shared(SharedRepr);

#[derive(Clone)]
enum SharedRepr {
    Interned(&'static str),
    Counted(std::sync::Arc<str>),
    /// Cloned by copying: records are cloned rarely (those behind findings, carried state).
    Own(Box<str>),
}

impl Shared {
    /// The process's one copy of `value`. The pool only grows: it is meant for values that recur
    /// (statuses, accounts, extra fields), which the loader's per-field interner caps.
    pub fn interned(value: &str) -> Shared {
        use std::collections::HashSet;
        use std::sync::{Mutex, OnceLock};
        static POOL: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let mut pool = POOL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let text = match pool.get(value) {
            Some(&t) => t,
            None => {
                let t: &'static str = Box::leak(value.into());
                pool.insert(t);
                t
            }
        };
        Shared(SharedRepr::Interned(text))
    }

    /// A copy of `value` for many holders, freed with the last.
    pub fn counted(value: &str) -> Shared {
        Shared(SharedRepr::Counted(value.into()))
    }
}

impl From<&str> for Shared {
    /// A copy of `value` for one holder.
    fn from(value: &str) -> Shared {
        Shared(SharedRepr::Own(value.into()))
    }
}

impl std::ops::Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            SharedRepr::Interned(t) => t,
            SharedRepr::Counted(t) => t,
            SharedRepr::Own(t) => t,
        }
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Shared) -> bool {
        **self == **other
    }
}

impl Eq for Shared {}

impl PartialOrd for Shared {
    fn partial_cmp(&self, other: &Shared) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Shared {
    fn cmp(&self, other: &Shared) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Shared {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (**self).hash(h)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// An idempotency key after clean-up. Keys of up to [`Key::INLINE`] bytes (nearly all: UUIDs,
/// `idem_` + 24 hex digits, order numbers) are stored inside the record itself, so that matching
/// compares bytes already in cache instead of chasing a pointer per record into the heap, and
/// ten million keys cost no allocation; longer keys live on the heap. Compared, ordered and hashed
/// as the text it holds.
#[derive(Clone)]
pub struct Key(KeyRepr);

#[derive(Clone)]
enum KeyRepr {
    Inline { len: u8, bytes: [u8; Key::INLINE] },
    Heap(Box<str>),
}

impl Key {
    /// The longest key stored inline: what fits beside the length in 32 bytes.
    pub const INLINE: usize = 30;

    pub fn as_str(&self) -> &str {
        match &self.0 {
            KeyRepr::Inline { len, bytes } => {
                // SAFETY: the representation is private, and only `From<&str>` and
                // `Key::from_utf8` build an inline key, copying into `bytes[..len]` a whole `&str`
                // or bytes checked to be UTF-8 (ASCII or by `from_utf8`): that prefix is valid
                // UTF-8. (Checking it again on every comparison cost measurable time in matching.)
                unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) }
            }
            KeyRepr::Heap(s) => s,
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::inline(s.as_bytes()).unwrap_or_else(|| Key(KeyRepr::Heap(s.into())))
    }
}

impl Key {
    /// The key whose text is `b`, if `b` is UTF-8: a short ASCII key (nearly every key read back
    /// from a spill) is taken as it is, without `from_utf8`'s checks, costly on short strings.
    pub fn from_utf8(b: &[u8]) -> Option<Key> {
        if is_ascii(b) {
            return Key::inline(b).or_else(|| std::str::from_utf8(b).ok().map(Key::from));
        }
        std::str::from_utf8(b).ok().map(Key::from)
    }

    /// An inline key of `b`, which the caller has checked to be UTF-8; `None` if too long.
    fn inline(b: &[u8]) -> Option<Key> {
        if b.len() > Key::INLINE {
            return None;
        }
        let n = b.len();
        let mut bytes = [0u8; Key::INLINE];
        // Copies of a fixed size, two overlapping in the middle, which compile to a few moves:
        // a copy of the key's own length is a call to memcpy, and every record's key is copied
        // this way twice (read, and read back from its partition).
        match n {
            16.. => {
                bytes[..16].copy_from_slice(&b[..16]);
                bytes[n - 16..n].copy_from_slice(&b[n - 16..]);
            }
            8.. => {
                bytes[..8].copy_from_slice(&b[..8]);
                bytes[n - 8..n].copy_from_slice(&b[n - 8..]);
            }
            _ => bytes[..n].iter_mut().zip(b).for_each(|(x, y)| *x = *y),
        }
        Some(Key(KeyRepr::Inline {
            len: n as u8,
            bytes,
        }))
    }
}

/// Whether `b` is ASCII: a key of 16 to 32 bytes (UUIDs, `idem_` and 24 hex digits) in two
/// overlapping 16-byte blocks (SSE2, the x86_64 baseline), where `<[u8]>::is_ascii` aligns and
/// steps through words.
fn is_ascii(b: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if (16..=32).contains(&b.len()) {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
        // SAFETY: both loads read 16 bytes within `b`, which has 16 to 32; SSE2 is part of
        // every x86_64 processor.
        return unsafe {
            let first = _mm_loadu_si128(b.as_ptr().cast::<__m128i>());
            let last = _mm_loadu_si128(b[b.len() - 16..].as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_or_si128(first, last)) == 0
        };
    }
    b.is_ascii()
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (&self.0, &other.0) {
            // The bytes after `len` are always zero, so whole arrays compare as their texts do,
            // with no call to memcmp.
            (KeyRepr::Inline { len: a, bytes: x }, KeyRepr::Inline { len: b, bytes: y }) => {
                a == b && x == y
            }
            _ => self.as_str() == other.as_str(),
        }
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input row after normalisation: the canonical record of DESIGN.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The idempotency key after the source's clean-up; `None` when empty or null (an `unkeyed` record).
    pub key: Option<Key>,
    pub amount: Option<Minor>,
    pub currency: Option<Currency>,
    pub at: Option<DateTime<Utc>>,
    /// The business date: from `at` with the run's zone and cut-off, or a date-only value as it
    /// stands; `None` when the source maps no time (the run's date is assumed).
    pub date: Option<NaiveDate>,
    pub status: Option<Shared>,
    pub account: Option<Shared>,
    /// Extra compared fields, in the order of the source's `extra` table.
    pub extra: Vec<Option<Shared>>,
    pub origin: Origin,
}

impl Record {
    /// A record with only a key (or none) and a line: what the tests of matching need.
    #[cfg(test)]
    pub(crate) fn bare(key: Option<&str>, line: u64) -> Record {
        Record {
            key: key.map(Key::from),
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

    /// Whether two records of one source carry the same payload: a replay rather than a conflict.
    /// Times and origins are deliberately left out: a redelivery happens at another time.
    pub fn same_payload(&self, other: &Record) -> bool {
        self.amount == other.amount
            && self.currency == other.currency
            && self.status == other.status
            && self.account == other.account
            && self.extra == other.extra
    }

    /// What orders a key's records earliest first: the time, then the business date, then the
    /// file and line. A record without either (its source maps no time) was read tonight unless
    /// carried over, and a carried one holds the date of the night that read it, so it comes
    /// first: across nights, the posting kept is the first one made.
    pub fn earliness(&self) -> (Option<DateTime<Utc>>, NaiveDate, Origin) {
        (self.at, self.date.unwrap_or(NaiveDate::MAX), self.origin)
    }
}

/// One finding about one key in one check. The names are stable: they appear in every output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BreakKind {
    /// In `from`, absent from `to`.
    ///
    /// Why it matters: the receiving system never applied an event the system of record has: money
    /// captured but never posted, or posted but never paid out.
    /// Example: order ORD-9001 paid 25.00 EUR, no payment-provider record with that key.
    /// Repair: `replay` the `from` record into `to` (safe when `to` de-duplicates by key).
    Missing,
    /// In `to`, with no `from` record: an orphan posting.
    ///
    /// Why it matters: money moved that the system of record knows nothing about: a test payment, a
    /// posting under a mistyped key, or a lost event upstream.
    /// Example: bank line for SHOP/ORD-9002 and no ledger entry ORD-9002.
    /// Repair: `investigate`: a person decides whether to book it upstream or reverse it.
    Unexpected,
    /// The key appears more than once in one source with the same payload: a replayed delivery that was
    /// not de-duplicated.
    ///
    /// Why it matters: the amount was applied twice (or more).
    /// Example: two ledger postings of 12.50 EUR under ORD-9003.
    /// Repair: `reverse` the extra postings, keeping the earliest.
    Duplicate,
    /// The key appears more than once in one source with different payloads: idempotency was violated.
    ///
    /// Why it matters: no record can be trusted as the truth for that key.
    /// Example: two payment-provider rows for ORD-9004, one for 30.00 and one for 3.00.
    /// Repair: `investigate`.
    ConflictingDuplicate,
    /// One record on each side, the amounts differ beyond the check's tolerance and nothing else differs.
    ///
    /// Why it matters: the systems disagree about how much money moved.
    /// Example: order 40.00 EUR, ledger 4.00 EUR.
    /// Repair: `adjust`: post the signed difference (`from` minus `to`) in `to`.
    AmountMismatch,
    /// One record on each side, and currency, status, account or an extra compared field differs.
    ///
    /// Why it matters: the same key describes a different operation in the two systems; the amount
    /// cannot be adjusted mechanically.
    /// Example: order paid in EUR, payment captured in USD.
    /// Repair: `investigate`.
    FieldMismatch,
    /// A record whose key is empty or null: it can never be paired, not even with another unkeyed record.
    ///
    /// Why it matters: the record cannot be reconciled at all; its money is unaccounted for.
    /// Example: a ledger row with an empty reference.
    /// Repair: `investigate`.
    Unkeyed,
    /// In `from`, no counterpart in `to` yet, and the check's settlement window is still open.
    ///
    /// Not a break: carried to the next run (with `--state`) and re-checked; it becomes `missing`
    /// when the window closes. Also a `to` record waiting, inside the check's `lead`, for its `from`.
    /// Repair: `wait`.
    Pending,
    /// One record each side, in agreement, the `to` record on a later business day than `from`.
    ///
    /// Not a break: a timing difference, reported so that an operator can see settlement lag.
    Late,
    /// A later stage of a flow has the key while an earlier stage does not.
    ///
    /// Repair: `investigate`: the earlier system lost an event the later one acted on.
    OutOfOrder,
}

impl BreakKind {
    pub const ALL: [BreakKind; 10] = [
        BreakKind::Missing,
        BreakKind::Unexpected,
        BreakKind::Duplicate,
        BreakKind::ConflictingDuplicate,
        BreakKind::AmountMismatch,
        BreakKind::FieldMismatch,
        BreakKind::Unkeyed,
        BreakKind::Pending,
        BreakKind::Late,
        BreakKind::OutOfOrder,
    ];

    /// The kinds a check reports: all but the last, `out_of_order`, which flows report.
    pub const CHECK: &[BreakKind] = Self::ALL.split_at(9).0;

    /// Whether a finding of this kind is a break (makes the run exit 1). `pending` and `late` are
    /// timing, not breaks.
    pub fn is_break(self) -> bool {
        !matches!(self, BreakKind::Pending | BreakKind::Late)
    }

    pub fn name(self) -> &'static str {
        match self {
            BreakKind::Missing => "missing",
            BreakKind::Unexpected => "unexpected",
            BreakKind::Duplicate => "duplicate",
            BreakKind::ConflictingDuplicate => "conflicting_duplicate",
            BreakKind::AmountMismatch => "amount_mismatch",
            BreakKind::FieldMismatch => "field_mismatch",
            BreakKind::Unkeyed => "unkeyed",
            BreakKind::Pending => "pending",
            BreakKind::Late => "late",
            BreakKind::OutOfOrder => "out_of_order",
        }
    }

    pub fn from_name(name: &str) -> Option<BreakKind> {
        BreakKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The repair every finding of this kind gets.
    pub fn action(self) -> Action {
        match self {
            BreakKind::Late => Action::None,
            BreakKind::Pending => Action::Wait,
            BreakKind::Missing => Action::Replay,
            BreakKind::Duplicate => Action::Reverse,
            BreakKind::AmountMismatch => Action::Adjust,
            BreakKind::Unexpected
            | BreakKind::ConflictingDuplicate
            | BreakKind::FieldMismatch
            | BreakKind::Unkeyed
            | BreakKind::OutOfOrder => Action::Investigate,
        }
    }

    /// The explanation `recon explain` prints; kept beside the variants' doc comments above.
    pub fn explanation(self) -> &'static str {
        match self {
            BreakKind::Missing => {
                "In `from` (the system of record), absent from `to`.\n\
                 Why it matters: the receiving system never applied an event the system of record has.\n\
                 Example: order ORD-9001 paid 25.00 EUR; no payment-provider record with that key.\n\
                 Repair: replay the `from` record into `to` (safe when `to` de-duplicates by key)."
            }
            BreakKind::Unexpected => {
                "In `to`, with no `from` record: an orphan posting.\n\
                 Why it matters: money moved that the system of record knows nothing about.\n\
                 Example: a bank line for SHOP/ORD-9002 and no ledger entry ORD-9002.\n\
                 Repair: investigate; a person decides whether to book it upstream or reverse it."
            }
            BreakKind::Duplicate => {
                "The key appears more than once in one source with the same payload (amount, currency,\n\
                 status, account, extra fields; times may differ): a replay that was not de-duplicated.\n\
                 Why it matters: the amount was applied more than once.\n\
                 Example: two ledger postings of 12.50 EUR under ORD-9003.\n\
                 Repair: reverse the extra postings, keeping the earliest (by time, then business date, then file and line)."
            }
            BreakKind::ConflictingDuplicate => {
                "The key appears more than once in one source with different payloads: idempotency violated.\n\
                 Why it matters: no record can be trusted as the truth for that key.\n\
                 Example: two payment-provider rows for ORD-9004, one for 30.00 and one for 3.00.\n\
                 Repair: investigate."
            }
            BreakKind::AmountMismatch => {
                "One record on each side; the amounts differ beyond the check's tolerance, nothing else differs.\n\
                 Why it matters: the systems disagree about how much money moved.\n\
                 Example: order 40.00 EUR, ledger 4.00 EUR.\n\
                 Repair: adjust: post the signed difference (`from` minus `to`) in `to`."
            }
            BreakKind::FieldMismatch => {
                "One record on each side, and currency, status, account or an extra compared field differs\n\
                 (the amount may differ too; the `fields` column lists every difference).\n\
                 Why it matters: the key describes a different operation in the two systems.\n\
                 Example: order paid in EUR, payment captured in USD.\n\
                 Repair: investigate."
            }
            BreakKind::Unkeyed => {
                "A record whose idempotency key is empty or null after clean-up. It is never paired, not even\n\
                 with another unkeyed record.\n\
                 Why it matters: the record cannot be reconciled; its money is unaccounted for.\n\
                 Example: a ledger row with an empty reference.\n\
                 Repair: investigate."
            }
            BreakKind::Pending => {
                "In `from`, no counterpart in `to` yet, while the check's settlement window (`window`) is\n\
                 still open; or in `to`, waiting inside the check's `lead` for its `from` record.\n\
                 Not a break: with --state it is carried to the next run and re-checked; when the window\n\
                 closes without a counterpart it becomes `missing` (or `unexpected`).\n\
                 Why it matters: it is tomorrow's `missing` if the counterpart never comes; the summary\n\
                 ages it so that an item waiting too long is seen.\n\
                 Example: a card payment captured at 23:58 on D; the bank pays out on D+2 (window 2bd).\n\
                 Repair: wait."
            }
            BreakKind::Late => {
                "One record on each side, in agreement, on different business days (the `to` record later\n\
                 than the `from` record, or earlier) in a check with a `window` or `lead`: a timing\n\
                 difference, reported, not a break. The `timing` column says whether it was inside the\n\
                 window (or lead) or beyond it.\n\
                 Why it matters: it is not money at risk, but a system that settles later and later, or\n\
                 beyond its window, is a process to look at.\n\
                 Example: order on 1 Dec, bank credit on 2 Dec, window 2d.\n\
                 Repair: none."
            }
            BreakKind::OutOfOrder => {
                "In a flow (`[[flow]] stages = [...]`), a later stage has the key while an earlier stage\n\
                 does not: the earlier system lost an event that the later one acted on.\n\
                 Why it matters: money moved further down the flow than its origin can account for.\n\
                 Example: a ledger posting and a bank line for ORD-7, and no payment record.\n\
                 Repair: investigate."
            }
        }
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a repair instruction asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Replay,
    Reverse,
    Adjust,
    Investigate,
    /// Nothing yet: the settlement window is open; re-check next run.
    Wait,
    /// Nothing at all (a `late` finding).
    None,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Replay => "replay",
            Action::Reverse => "reverse",
            Action::Adjust => "adjust",
            Action::Investigate => "investigate",
            Action::Wait => "wait",
            Action::None => "none",
        }
    }

    /// How safe it is to apply the instruction without a person looking at it.
    pub fn automation(self) -> &'static str {
        match self {
            Action::Replay | Action::Wait | Action::None => "safe",
            Action::Reverse | Action::Adjust => "review",
            Action::Investigate => "manual",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_bytes_are_those_of_their_text_and_only_of_utf8() {
        let long = "k".repeat(40);
        for t in [
            "",
            "idem_7c3c",
            "ORD-ü-17",
            long.as_str(),
            "ümlaut-key-longer-than-thirty-bytes",
        ] {
            assert_eq!(Key::from_utf8(t.as_bytes()), Some(Key::from(t)), "{t:?}");
        }
        for b in [&b"\xff"[..], b"ok\xc3", b"\xed\xa0\x80"] {
            assert_eq!(Key::from_utf8(b), None, "{b:?}");
        }
        // One non-ASCII byte anywhere in keys of 15 to 33 bytes.
        for n in 15..=33 {
            for at in 0..n {
                let mut b = vec![b'k'; n];
                assert!(is_ascii(&b));
                b[at] = 0x80;
                assert!(!is_ascii(&b), "{n} {at}");
                assert_eq!(Key::from_utf8(&b), None, "{n} {at}");
            }
        }
    }

    #[test]
    fn inline_keys_of_every_length_hold_their_text_and_nothing_after() {
        let text: String = (0..Key::INLINE as u8)
            .map(|i| (b'a' + i % 26) as char)
            .collect();
        for n in 0..=Key::INLINE {
            let k = Key::from(&text[..n]);
            assert_eq!(k.as_str(), &text[..n]);
            let KeyRepr::Inline { len, bytes } = &k.0 else {
                panic!("{n} bytes are inline")
            };
            assert_eq!((*len as usize, &bytes[..n]), (n, &text.as_bytes()[..n]));
            assert!(bytes[n..].iter().all(|&b| b == 0), "{n}: {bytes:?}");
            // Taken from a longer buffer, as a spill reads it back.
            let wider = format!("{}~~~~", &text[..n]);
            assert_eq!(Key::from_utf8(&wider.as_bytes()[..n]), Some(k));
        }
    }

    #[test]
    fn keys_read_back_and_order_as_their_text_inline_or_not() {
        let texts = [
            "",
            "A01",
            "idem_000000000000000000000000",
            "exactly-thirty-bytes-long-key!",
            "thirty-one-bytes-long-key-here!",
            "ключ-ключ-ключ-ключ",
            "a much longer key that can only live on the heap, 60+ bytes",
        ];
        assert_eq!(texts[3].len(), Key::INLINE);
        assert_eq!(texts[4].len(), Key::INLINE + 1);
        let keys: Vec<Key> = texts.iter().map(|t| Key::from(*t)).collect();
        for (k, t) in keys.iter().zip(texts) {
            assert_eq!(k.as_str(), t);
            assert_eq!(format!("{k}"), t);
        }
        for (a, ta) in keys.iter().zip(texts) {
            for (b, tb) in keys.iter().zip(texts) {
                assert_eq!(a.cmp(b), ta.cmp(tb), "{ta:?} vs {tb:?}");
                assert_eq!(a == b, ta == tb);
            }
        }
        // Stored in the record: no larger than a `String` plus the length, and never a pointer
        // for a 29-byte generated key.
        assert_eq!(std::mem::size_of::<Option<Key>>(), 32);
        assert!(matches!(keys[2].0, KeyRepr::Inline { .. }));
        assert!(matches!(keys[4].0, KeyRepr::Heap(_)));
    }
}
