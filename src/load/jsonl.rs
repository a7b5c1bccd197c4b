//! JSON Lines: one object per line. Only the mapped fields are extracted, straight from the bytes
//! (no document tree is built); a JSON number keeps its literal text, so money stays exact.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

use anyhow::Result;
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Loaded, Memo, RowBuilder, Sink, Text, Unreadable, skip_bom};
use crate::config::{FieldRef, SourcePlan};
use crate::model::{Key, Origin};

/// The mapped paths as a tree: which keys to descend into, and which hold a slot's value.
#[derive(Debug, Default)]
struct Node {
    children: Vec<(String, Child)>,
}

#[derive(Debug)]
enum Child {
    Leaf(usize),
    Branch(Node),
}

impl Node {
    fn build(slots: &[FieldRef]) -> Node {
        let mut root = Node::default();
        for f in slots {
            let mut node = &mut root;
            for (depth, seg) in f.path.iter().enumerate() {
                let last = depth + 1 == f.path.len();
                let i = match node.children.iter().position(|(k, _)| k == seg) {
                    Some(i) => i,
                    None => {
                        let child = if last {
                            Child::Leaf(f.slot)
                        } else {
                            Child::Branch(Node::default())
                        };
                        node.children.push((seg.clone(), child));
                        node.children.len() - 1
                    }
                };
                match &mut node.children[i].1 {
                    Child::Branch(n) => node = n,
                    Child::Leaf(_) => break, // paths are validated not to overlap
                }
            }
        }
        root
    }
}

/// One slot's value in one line.
#[derive(Debug, Clone, PartialEq)]
enum Slot<'a> {
    Absent,
    Null,
    Value(Cow<'a, str>, bool),
}

/// Fills `slots` from one JSON object, descending only into mapped keys.
struct ObjectSeed<'n, 'o, 'a> {
    node: &'n Node,
    slots: &'o mut [Slot<'a>],
    /// The key whose value this is (`None`: the line itself).
    under: Option<&'n str>,
}

impl<'de, 'n, 'o> DeserializeSeed<'de> for ObjectSeed<'n, 'o, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'n, 'o> Visitor<'de> for ObjectSeed<'n, 'o, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.under {
            None => f.write_str("a JSON object"),
            Some(key) => write!(f, "an object under {key:?}, which a mapped path goes into"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Branches met so far: an object on a mapped path given twice (`"p":{..},"p":{..}`) is as
        // ambiguous as a value given twice, whichever fields each copy holds.
        let mut seen = vec![false; self.node.children.len()];
        while let Some(i) = map.next_key_seed(KeySeed(self.node))? {
            if let Some(i) = i
                && matches!(self.node.children[i].1, Child::Branch(_))
                && std::mem::replace(&mut seen[i], true)
            {
                return Err(de::Error::custom(format_args!(
                    "the key {:?} appears twice",
                    self.node.children[i].0
                )));
            }
            match i.map(|i| &self.node.children[i]) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some((name, Child::Leaf(slot))) => {
                    if self.slots[*slot] != Slot::Absent {
                        return Err(de::Error::custom(format_args!(
                            "the key {name:?} appears twice"
                        )));
                    }
                    self.slots[*slot] = map.next_value_seed(ScalarSeed(name))?;
                }
                Some((name, Child::Branch(node))) => {
                    map.next_value_seed(ObjectSeed {
                        node,
                        slots: self.slots,
                        under: Some(name),
                    })?;
                }
            }
        }
        Ok(())
    }

    // A mapped path that runs into null stays absent, like a missing key.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Finds a key among a node's children without allocating it.
struct KeySeed<'n>(&'n Node);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.children.iter().position(|(k, _)| k == key))
    }
}

/// Reads a mapped value as text: a string's content, a number's literal, `true`/`false`.
struct ScalarSeed<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_> {
    type Value = Slot<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot<'de>, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?.get();
        Ok(match raw.as_bytes()[0] {
            b'"' if !raw.contains('\\') => {
                Slot::Value(Cow::Borrowed(&raw[1..raw.len() - 1]), false)
            }
            b'"' => Slot::Value(
                Cow::Owned(serde_json::from_str::<String>(raw).map_err(de::Error::custom)?),
                false,
            ),
            b'n' => Slot::Null,
            b'-' | b'0'..=b'9' => Slot::Value(Cow::Borrowed(raw), true),
            b't' | b'f' => Slot::Value(Cow::Borrowed(raw), false),
            _ => {
                return Err(de::Error::custom(format_args!(
                    "{:?} holds an object or array where a single value is expected",
                    self.0
                )));
            }
        })
    }
}

/// The layout of the last line [`flat_object`] read in full: per value, the bytes that lead up to
/// it from the end of the value before (or from the line's start: whitespace, a comma or the brace,
/// the key with its quotes, the colon), and the slot it fills. Lines from one producer nearly
/// always repeat it, keys in the same order and spaced alike; such a line is read by comparing
/// those bytes, rather than by reading each key and looking it up.
#[derive(Debug, Default)]
struct Shape {
    /// The values' leading bytes, one after the other.
    bytes: Vec<u8>,
    /// Per value: where its leading bytes end in `bytes`, and its slot (`None`: not mapped).
    values: Vec<(usize, Option<usize>)>,
}

/// The common case read without serde: one flat object on a line, no escapes anywhere in it, no
/// object or array values. Returns `false`, leaving `slots` to be refilled, for anything else
/// (nested paths, escapes, malformed input), which the serde path then reads with its precise
/// errors. What it accepts, it reads exactly as the serde path does (unit tests compare the two on
/// generated lines). One pass first finds every quote (see [`super::bytes`]): with no backslash in
/// the line, each string runs from one quote to the next. A line laid out as the last one read
/// (`shape`) is read by that layout; any other is read key by key, and its layout kept.
fn flat_object<'a>(
    node: &Node,
    b: &'a [u8],
    slots: &mut [Slot<'a>],
    quotes: &mut Vec<usize>,
    shape: &mut Shape,
) -> bool {
    quotes.clear();
    let found = super::bytes::find_all(b, b'"', quotes);
    if found.backslash {
        return false;
    }
    let Some(line) = super::bytes::text(b, found.printable) else {
        return false;
    };
    let mut at = Cursor {
        b,
        line,
        quotes,
        printable: found.printable,
        i: 0,
        q: 0,
    };
    if !shape.values.is_empty() {
        if at.by_shape(shape, slots) {
            return true;
        }
        slots.fill(Slot::Absent);
        at.i = 0;
        at.q = 0;
    }
    shape.bytes.clear();
    shape.values.clear();
    let read = at.by_keys(node, slots, shape);
    if !read {
        shape.values.clear();
    }
    read
}

/// Whether two byte strings of one length are the same: eight bytes at a time, where a call to
/// `memcmp` for each value's leading bytes cost more than the comparing.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n < 8 || b.len() != n {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    // Whole words from the start, then the last eight bytes (which may overlap the word before).
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// A place in one line being read by [`flat_object`]: the byte `i`, before which the line holds
/// `q` quotes.
struct Cursor<'a, 'q> {
    b: &'a [u8],
    line: &'a str,
    /// Every quote's place in the line.
    quotes: &'q [usize],
    /// The line is printable ASCII: its strings need no check for control characters.
    printable: bool,
    i: usize,
    q: usize,
}

impl<'a> Cursor<'a, '_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The string opening here, which is the `q`th quote (nothing read so far holds one), and
    /// closing at the next quote: its content's range, with the cursor moved past it. Its content
    /// must hold no control character.
    #[inline]
    fn string(&mut self) -> Option<(usize, usize)> {
        if self.quotes.get(self.q) != Some(&self.i) {
            return None;
        }
        let (start, end) = (self.i + 1, *self.quotes.get(self.q + 1)?);
        if !self.printable && self.b[start..end].iter().any(|c| *c < 0x20) {
            return None;
        }
        self.q += 2;
        self.i = end + 1;
        Some((start, end))
    }

    /// A JSON number here, skipped.
    fn number(&mut self) -> Option<()> {
        let b = self.b;
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i > s
        };
        let i = &mut self.i;
        if b.get(*i) == Some(&b'-') {
            *i += 1;
        }
        match b.get(*i) {
            Some(b'0') => *i += 1,
            Some(b'1'..=b'9') => {
                digits(i);
            }
            _ => return None,
        }
        if b.get(*i) == Some(&b'.') {
            *i += 1;
            digits(i).then_some(())?;
        }
        if matches!(b.get(*i), Some(b'e' | b'E')) {
            *i += 1;
            if matches!(b.get(*i), Some(b'+' | b'-')) {
                *i += 1;
            }
            digits(i).then_some(())?;
        }
        Some(())
    }

    /// The scalar value here (a string, number, `true`, `false` or `null`), read.
    #[inline]
    fn value(&mut self) -> Option<Slot<'a>> {
        let start = self.i;
        let line = self.line;
        Some(match self.b.get(start)? {
            b'"' => {
                let (s, e) = self.string()?;
                Slot::Value(Cow::Borrowed(&line[s..e]), false)
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Slot::Value(Cow::Borrowed(&line[start..self.i]), true)
            }
            _ => {
                let rest = &self.b[start..];
                let (w, null) = [("true", false), ("false", false), ("null", true)]
                    .into_iter()
                    .find(|(w, _)| rest.starts_with(w.as_bytes()))?;
                self.i += w.len();
                match null {
                    true => Slot::Null,
                    false => Slot::Value(Cow::Borrowed(&line[start..self.i]), false),
                }
            }
        })
    }

    /// The object's end: its closing brace, then nothing but whitespace.
    fn end(&mut self) -> bool {
        self.ws();
        if self.b.get(self.i) != Some(&b'}') {
            return false;
        }
        self.i += 1;
        self.ws();
        self.i == self.b.len()
    }

    /// Reads the line as laid out as `shape`: each value's leading bytes must be exactly those of
    /// the line it was learned from (so the same keys, each with its two quotes, fill the same
    /// slots, none twice), and each value is read as [`Cursor::by_keys`] reads it.
    fn by_shape(&mut self, shape: &Shape, slots: &mut [Slot<'a>]) -> bool {
        let mut from = 0;
        for &(to, slot) in &shape.values {
            let lead = &shape.bytes[from..to];
            from = to;
            match self.b.get(self.i..self.i + lead.len()) {
                Some(here) if same(here, lead) => self.i += lead.len(),
                _ => return false,
            }
            self.q += 2;
            let Some(v) = self.value() else {
                return false;
            };
            if let Some(slot) = slot {
                slots[slot] = v;
            }
        }
        self.end()
    }

    /// Reads the line key by key, keeping its layout in `shape` as it goes.
    fn by_keys(&mut self, node: &Node, slots: &mut [Slot<'a>], shape: &mut Shape) -> bool {
        let b = self.b;
        let mut led = 0;
        self.ws();
        if b.get(self.i) != Some(&b'{') {
            return false;
        }
        self.i += 1;
        self.ws();
        if b.get(self.i) == Some(&b'}') {
            return self.end();
        }
        loop {
            if b.get(self.i) != Some(&b'"') {
                return false;
            }
            let Some((ks, ke)) = self.string() else {
                return false;
            };
            let slot = match node
                .children
                .iter()
                .find(|(k, _)| k.as_bytes() == &b[ks..ke])
            {
                None => None,
                Some((_, Child::Leaf(slot))) => Some(*slot),
                Some((_, Child::Branch(_))) => return false,
            };
            self.ws();
            if b.get(self.i) != Some(&b':') {
                return false;
            }
            self.i += 1;
            self.ws();
            shape.bytes.extend_from_slice(&b[led..self.i]);
            shape.values.push((shape.bytes.len(), slot));
            let Some(value) = self.value() else {
                return false;
            };
            led = self.i;
            if let Some(slot) = slot {
                if slots[slot] != Slot::Absent {
                    return false;
                }
                slots[slot] = value;
            }
            self.ws();
            match b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                _ => return self.end(),
            }
        }
    }
}

/// An empty vector of slots for another line, on the same memory: one allocation per chunk rather
/// than one per line (the element type is the same but for the lifetime, so nothing is moved).
fn emptied<'b>(mut v: Vec<Slot<'_>>) -> Vec<Slot<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// Slots a line's values go to on the stack: more mapped fields than this are rare.
const FEW_SLOTS: usize = 12;

pub(super) fn load<R: BufRead>(
    source: &SourcePlan,
    file: u32,
    mut reader: R,
    sink: &mut Sink,
) -> Result<Loaded> {
    skip_bom(&mut reader)?;
    let tree = Node::build(&source.slots);
    let mut out = Loaded::for_file();
    let mut memo = Memo::for_sink(sink);
    let mut present = vec![0u64; source.slots.len()];
    let mut objects = 0u64;
    let mut spare: Vec<Slot> = Vec::new();
    let mut quotes = Vec::new();
    let mut shape = Shape::default();
    let mut line: u64 = 0;
    let mut lines = super::Lines::new(reader);
    while let Some(bytes) = lines.next_line()? {
        line += 1;
        // A BOM again mid-file, where files were concatenated.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.files[0].rows += 1;
        let mut b = RowBuilder::new(source, Origin { file, line }, &mut memo);
        let raw_line = || String::from_utf8_lossy(bytes).into_owned();
        // Borrows from this line's bytes, so it lives for one iteration: on the stack for a
        // config's usual few fields (clearing and refilling a vector per line was 3% of a run),
        // else on `spare`'s memory.
        let mut few = [const { Slot::Absent }; FEW_SLOTS];
        let mut many: Vec<Slot> = Vec::new();
        let slots: &mut [Slot] = match source.slots.len() {
            n if n <= FEW_SLOTS => &mut few[..n],
            n => {
                many = emptied(std::mem::take(&mut spare));
                many.resize(n, Slot::Absent);
                &mut many
            }
        };
        let first = bytes.iter().find(|c| !c.is_ascii_whitespace());
        let record = if first != Some(&b'{') {
            b.reject("", "not a JSON object", &raw_line());
            None
        } else {
            let fast = flat_object(&tree, bytes, slots, &mut quotes, &mut shape);
            let parsed = if fast {
                Ok(())
            } else {
                slots.fill(Slot::Absent);
                let mut de = serde_json::Deserializer::from_slice(bytes);
                ObjectSeed {
                    node: &tree,
                    slots,
                    under: None,
                }
                .deserialize(&mut de)
                .and_then(|()| de.end())
            };
            match parsed {
                Err(e) => {
                    b.key = readable_key(source, bytes);
                    // serde_json says "at line 1 column C" of the one-line document: keep the column.
                    let msg = e.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg);
                    let why = match e.classify() {
                        // Valid JSON that cannot be read as mapped: a key given twice, a value
                        // of another type than the mapped path needs.
                        serde_json::error::Category::Data => {
                            format!("{msg} (at column {})", e.column())
                        }
                        _ => format!("not valid JSON at column {}: {msg}", e.column()),
                    };
                    b.reject("", why, &raw_line());
                    None
                }
                Ok(()) => {
                    objects += 1;
                    for (n, s) in present.iter_mut().zip(&*slots) {
                        *n += u64::from(*s != Slot::Absent);
                    }
                    let get = |f: &FieldRef| -> Result<Option<Text>, Unreadable> {
                        Ok(match &slots[f.slot] {
                            Slot::Absent | Slot::Null => None,
                            Slot::Value(s, number) => Some(Text {
                                s,
                                json_number: *number,
                            }),
                        })
                    };
                    b.build(get)
                }
            }
        };
        b.finish(record, &mut out, sink);
        if many.capacity() > 0 {
            spare = emptied(many);
        }
    }
    out.json_present = Some((objects, present));
    out.lines = line;
    memo.finish(sink);
    Ok(out)
}

/// The key of a line that was rejected, when the line is JSON whose key path holds a scalar: so that
/// a replay of that key into this source is held back.
fn readable_key(source: &SourcePlan, bytes: &[u8]) -> Option<Key> {
    // Read as the loader reads, following the key's path only: a key that appears twice (the
    // row may belong to either value) or holds an object is not readable.
    let tree = Node::build(std::slice::from_ref(&source.key));
    let mut slots = vec![Slot::Absent; source.slots.len()];
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = ObjectSeed {
        node: &tree,
        slots: &mut slots,
        under: None,
    };
    seed.deserialize(&mut de).and_then(|()| de.end()).ok()?;
    match &slots[source.key.slot] {
        Slot::Value(text, _) => source.key_cleanup.apply(Some(text)),
        Slot::Absent | Slot::Null => None,
    }
}

/// After a whole source is read: a mapped path that no line has is a config mistake (a typo in
/// `payload.amount`), not a million missing values.
pub(super) fn check_present(source: &SourcePlan, objects: u64, present: &[u64]) -> Result<()> {
    if objects == 0 {
        return Ok(());
    }
    for (f, n) in source.slots.iter().zip(present) {
        if *n == 0 {
            let key = source
                .fields()
                .into_iter()
                .find(|(_, g)| g.slot == f.slot)
                .map_or(String::new(), |(k, _)| k);
            return Err(MissingPath {
                source: source.name.clone(),
                key,
                path: f.name.clone(),
                objects,
            }
            .into());
        }
    }
    Ok(())
}

/// A mapped JSON path that none of a source's objects has: a mistake in the config, which the
/// run reports as it reports the others, naming the config file and the source's place in it
/// (see [`MissingPath::in_plan`]).
#[derive(Debug)]
pub struct MissingPath {
    source: String,
    /// The mapping's key path (`amount.column`).
    key: String,
    path: String,
    objects: u64,
}

impl MissingPath {
    /// The message, with the config file and the source's place in it (sources have distinct
    /// names): `recon.toml: source[0] "orders" key.column: ...`.
    pub fn in_plan(&self, plan: &crate::config::RunPlan) -> String {
        let (name, key) = (&self.source, &self.key);
        let i = plan
            .sources
            .iter()
            .position(|s| s.name == *name)
            .unwrap_or_default();
        format!(
            "{}: source[{i}] {name:?} {key}: {self}",
            plan.config_path.display()
        )
    }
}

impl fmt::Display for MissingPath {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let absent = match self.objects {
            1 => "is not in its one JSON object".to_string(),
            n => format!("is in none of the source's {n} JSON objects"),
        };
        let path = &self.path;
        write!(f, "the path {path:?} {absent}; check the path")
    }
}

impl std::error::Error for MissingPath {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The serde path on one line: the slots, or `None` where it reports an error.
    fn by_serde<'a>(tree: &Node, line: &'a str, n: usize) -> Option<Vec<Slot<'a>>> {
        let mut slots = vec![Slot::Absent; n];
        let mut de = serde_json::Deserializer::from_str(line);
        ObjectSeed {
            node: tree,
            slots: &mut slots,
            under: None,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .ok()?;
        Some(slots)
    }

    #[test]
    fn an_object_on_a_mapped_path_given_twice_is_ambiguous() {
        let tree = tree(&["k", "p.q"]);
        let one = by_serde(&tree, r#"{"k":"A","p":{"q":"1"},"x":{"q":2},"x":3}"#, 2);
        assert_eq!(
            one.unwrap()[1],
            Slot::Value(Cow::Borrowed("1"), false),
            "an unmapped key may repeat"
        );
        for line in [
            r#"{"k":"A","p":{"q":"1"},"p":{"x":1}}"#,
            r#"{"k":"A","p":{"q":"1"},"p":null}"#,
            r#"{"k":"A","p":{},"p":{"q":"1"}}"#,
        ] {
            assert_eq!(by_serde(&tree, line, 2), None, "{line}");
        }
    }

    fn tree(paths: &[&str]) -> Node {
        let fields: Vec<FieldRef> = paths
            .iter()
            .enumerate()
            .map(|(slot, p)| FieldRef {
                name: p.to_string(),
                path: p.split('.').map(str::to_string).collect(),
                slot,
            })
            .collect();
        Node::build(&fields)
    }

    /// Pieces of JSON lines, well-formed and not: the fast path must read what it accepts exactly
    /// as serde does, and leave the rest to serde.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "{",
            "}",
            "{",
            "}",
            ",",
            ",",
            ":",
            ":",
            " ",
            "\t",
            "\"k\"",
            "\"k\"",
            "\"amount\"",
            "\"currency\"",
            "\"other\"",
            "\"p\"",
            "\"k\\u0041\"",
            "\"A\"",
            "\"12.50\"",
            "12.50",
            "-0",
            "0",
            "01",
            "1e5",
            "-1.5E-3",
            "1.",
            "-",
            "true",
            "false",
            "null",
            "nul",
            "truex",
            "{\"a\":1}",
            "[1,2]",
            "\"a\\\"b\"",
            "\"\u{1}\"",
            "\"é€\"",
            "\"\"",
            "x",
        ])
    }

    proptest! {
        #![proptest_config(crate::proptest_config(20_000, "tests/jsonl.proptest-regressions"))]
        #[test]
        fn the_fast_path_reads_what_serde_reads(parts in prop::collection::vec(piece(), 0..14)) {
            let line = parts.concat();
            let tree = tree(&["k", "amount", "currency", "p.q"]);
            let mut slots = vec![Slot::Absent; 4];
            if flat_object(&tree, line.as_bytes(), &mut slots, &mut Vec::new(), &mut Shape::default()) {
                prop_assert_eq!(Some(slots), by_serde(&tree, &line, 4), "line {}", line);
            }
        }
    }

    /// JSON values, scalar and not, well-formed and not.
    fn values() -> Vec<&'static str> {
        vec![
            "\"K-1\"",
            "12.50",
            "-0.5e2",
            "0",
            "true",
            "false",
            "null",
            "\"\"",
            "\"€\"",
            "{\"q\":1}",
            "[]",
            "\"a\\nb\"",
            "1.",
            "01",
            "\"\u{1}\"",
            "nul",
            "\"",
        ]
    }

    /// Objects built pair by pair, with at most one stray piece spliced in somewhere.
    fn object() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["k", "amount", "currency", "p", "other", "", "é"]);
        let value = prop::sample::select(values());
        let pair = (key, " ?", value).prop_map(|(k, s, v)| format!("\"{k}\"{s}:{s}{v}"));
        (
            prop::collection::vec(pair, 0..6),
            any::<prop::sample::Index>(),
            piece(),
            any::<bool>(),
        )
            .prop_map(|(pairs, at, stray, splice)| {
                let line = format!("{{{}}}", pairs.join(","));
                if !splice {
                    return line;
                }
                let mut at = at.index(line.len() + 1);
                while !line.is_char_boundary(at) {
                    at -= 1;
                }
                format!("{}{stray}{}", &line[..at], &line[at..])
            })
    }

    proptest! {
        #![proptest_config(crate::proptest_config(20_000, "tests/jsonl.proptest-regressions"))]
        #[test]
        fn the_fast_path_reads_built_objects_as_serde_does(line in object()) {
            let tree = tree(&["k", "amount", "currency", "p.q"]);
            let mut slots = vec![Slot::Absent; 4];
            if flat_object(&tree, line.as_bytes(), &mut slots, &mut Vec::new(), &mut Shape::default()) {
                prop_assert_eq!(Some(slots), by_serde(&tree, &line, 4), "line {}", line);
            } else if let Some(ok) = by_serde(&tree, &line, 4) {
                // Declined although serde reads it: only for what the fast path leaves alone.
                prop_assert!(
                    line.contains('\\') || line.contains('{') && line.matches('{').count() > 1
                        || line.contains('[') || line.contains("\"p\""),
                    "fast path declined {} (serde: {:?})", line, ok
                );
            }
        }
    }

    /// Two lines of the same keys, spaced alike, with values of their own, and whether they are
    /// laid out alike: the second may instead have a stray piece spliced in, a pair left out, or
    /// a key changed for one as long.
    fn same_shape() -> impl Strategy<Value = (String, String, bool)> {
        let key = prop::sample::select(vec!["k", "amount", "currency", "p", "other", "k", "x"]);
        // A key of the same length, mapped or not, for another layout as long as the first.
        let other = |k: &str| match k {
            "k" => "x",
            "x" => "k",
            "amount" => "Amount",
            "currency" => "curr_ncy",
            "p" => "k",
            _ => "OTHER",
        };
        let value = || prop::sample::select(values());
        let pair = (key, " ?", value(), value());
        (
            " ?",
            prop::collection::vec(pair, 1..6),
            any::<prop::sample::Index>(),
            piece(),
            0..4u8,
        )
            .prop_map(move |(lead, pairs, at, stray, change)| {
                // The `change`th pair left out (`Some(false)`) or its key changed (`Some(true)`).
                let line = |second: bool, change: Option<(usize, bool)>| {
                    let pairs: Vec<String> = pairs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| change != Some((*i, false)))
                        .map(|(i, (k, s, a, b))| {
                            let k = if change == Some((i, true)) {
                                other(k)
                            } else {
                                k
                            };
                            format!("\"{k}\"{s}:{s}{}", if second { b } else { a })
                        })
                        .collect();
                    format!("{lead}{{{}}}", pairs.join(","))
                };
                let first = line(false, None);
                let second = match change {
                    0 => line(true, None),
                    1 => line(true, Some((at.index(pairs.len()), false))),
                    2 => line(true, Some((at.index(pairs.len()), true))),
                    _ => {
                        let line = line(true, None);
                        let mut at = at.index(line.len() + 1);
                        while !line.is_char_boundary(at) {
                            at -= 1;
                        }
                        format!("{}{stray}{}", &line[..at], &line[at..])
                    }
                };
                (first, second, change == 0)
            })
    }

    /// `line` read by `shape` alone: its slots, or `None` where the shape does not fit.
    fn by_shape<'a>(shape: &Shape, line: &'a str, n: usize) -> Option<Vec<Slot<'a>>> {
        let mut quotes = Vec::new();
        let found = super::super::bytes::find_all(line.as_bytes(), b'"', &mut quotes);
        assert!(
            !found.backslash,
            "flat_object reads no line with a backslash by its shape"
        );
        let mut at = Cursor {
            b: line.as_bytes(),
            line,
            quotes: &quotes,
            printable: found.printable,
            i: 0,
            q: 0,
        };
        let mut slots = vec![Slot::Absent; n];
        at.by_shape(shape, &mut slots).then_some(slots)
    }

    proptest! {
        #![proptest_config(crate::proptest_config(20_000, "tests/jsonl.proptest-regressions"))]
        #[test]
        fn a_line_read_by_the_last_one_s_shape_reads_as_serde_reads_it(
            (first, second, same) in same_shape()
        ) {
            let tree = tree(&["k", "amount", "currency", "p.q"]);
            let mut shape = Shape::default();
            let mut slots = vec![Slot::Absent; 4];
            let learned = flat_object(&tree, first.as_bytes(), &mut slots, &mut Vec::new(), &mut shape);
            prop_assert_eq!(learned, !shape.values.is_empty() || first.trim() == "{}");
            let mut keys_only = vec![Slot::Absent; 4];
            let by_keys = flat_object(
                &tree, second.as_bytes(), &mut keys_only, &mut Vec::new(), &mut Shape::default(),
            );
            let shaped = match learned && !second.contains('\\') {
                true => by_shape(&shape, &second, 4),
                false => None,
            };
            if let Some(slots) = shaped {
                // What the shape reads, reading key by key reads too, and serde.
                prop_assert!(by_keys, "line {}", second);
                prop_assert_eq!(&slots, &keys_only, "line {}", second);
                prop_assert_eq!(Some(slots), by_serde(&tree, &second, 4), "line {}", second);
            } else if same && learned && by_keys {
                // Laid out alike, and readable: the shape must take it.
                prop_assert!(false, "the shape of {} did not take {}", first, second);
            }
        }
    }

    #[test]
    fn same_compares_every_byte_whatever_the_length() {
        let a: Vec<u8> = (0..40u8).collect();
        for n in 0..=40 {
            assert!(same(&a[..n], &a[..n]), "{n}");
            for at in 0..n {
                let mut b = a[..n].to_vec();
                b[at] ^= 0x20;
                assert!(!same(&a[..n], &b), "{n} bytes, differing at {at}");
            }
        }
        assert!(!same(b"abcdefghij", b"abcdefghi"));
    }

    /// `line` read by [`flat_object`] with `shape`: its slots, or `None` where it declines.
    fn fast<'a>(tree: &Node, line: &'a str, shape: &mut Shape, n: usize) -> Option<Vec<Slot<'a>>> {
        let mut slots = vec![Slot::Absent; n];
        flat_object(tree, line.as_bytes(), &mut slots, &mut Vec::new(), shape).then_some(slots)
    }

    #[test]
    fn a_line_laid_out_as_the_last_is_read_by_its_shape() {
        let tree = tree(&["k", "amount", "currency"]);
        let mut shape = Shape::default();
        let first = r#"{"id":"e1","k":"K-1","amount":12.50,"currency":"EUR","ok":true}"#;
        assert!(fast(&tree, first, &mut shape, 3).is_some());
        assert_eq!(shape.values.len(), 5);
        assert_eq!(&shape.bytes[..shape.values[1].0], br#"{"id":,"k":"#);
        let mapped: Vec<Option<usize>> = shape.values.iter().map(|v| v.1).collect();
        assert_eq!(mapped, [None, Some(0), Some(1), Some(2), None]);
        // Read by the shape (which stays as it was), then a line of other keys read key by key
        // (whose shape is kept instead).
        let second = r#"{"id":"e22","k":"K-22","amount":"7","currency":null,"ok":false} "#;
        assert_eq!(
            fast(&tree, second, &mut shape, 3).unwrap(),
            [
                Slot::Value(Cow::Borrowed("K-22"), false),
                Slot::Value(Cow::Borrowed("7"), false),
                Slot::Null
            ]
        );
        assert_eq!(shape.values.len(), 5);
        let third = r#"{"k":"K-3","amount":1}"#;
        assert_eq!(fast(&tree, third, &mut shape, 3).unwrap()[2], Slot::Absent);
        assert_eq!(shape.bytes, br#"{"k":,"amount":"#);
        // A mapped key given twice is never read by a shape: none is learned from it.
        assert_eq!(fast(&tree, r#"{"k":"K","k":"L"}"#, &mut shape, 3), None);
        assert!(shape.values.is_empty());
    }

    #[test]
    fn the_fast_path_takes_the_usual_lines_and_leaves_the_rest() {
        let tree = tree(&["k", "amount", "currency"]);
        let mut slots = vec![Slot::Absent; 3];
        let line = r#" {"id":"e1", "k":"K-1","amount":12.50,"currency":null,"ok":true,"n":-1e3} "#;
        assert!(flat_object(
            &tree,
            line.as_bytes(),
            &mut slots,
            &mut Vec::new(),
            &mut Shape::default()
        ));
        assert_eq!(
            slots,
            [
                Slot::Value(Cow::Borrowed("K-1"), false),
                Slot::Value(Cow::Borrowed("12.50"), true),
                Slot::Null
            ]
        );
        assert_eq!(Some(slots), by_serde(&tree, line, 3));
        for other in [
            r#"{"k":"a\"b"}"#,
            r#"{"k":"K","meta":{"a":1}}"#,
            r#"{"k":"K","k":"L"}"#,
            r#"{"k":"K"} x"#,
            r#"{"k":01}"#,
            r#"{"k":"K",}"#,
        ] {
            let mut slots = vec![Slot::Absent; 3];
            let fast = flat_object(
                &tree,
                other.as_bytes(),
                &mut slots,
                &mut Vec::new(),
                &mut Shape::default(),
            );
            assert!(!fast, "{other}");
        }
    }
}
