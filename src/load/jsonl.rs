//! JSON Lines: one object per line. Only the mapped fields are extracted, straight from the bytes
//! (no document tree is built); a JSON number keeps its literal text, so money stays exact.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

use anyhow::{Result, bail};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Interner, Loaded, RowBuilder, Sink, Text, skip_bom};
use crate::config::{FieldRef, SourcePlan};
use crate::model::Origin;

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
    slots: &'o mut Vec<Slot<'a>>,
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
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(i) = map.next_key_seed(KeySeed(self.node))? {
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
                Some((_, Child::Branch(node))) => {
                    map.next_value_seed(ObjectSeed {
                        node,
                        slots: self.slots,
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

pub(super) fn load<R: BufRead>(
    source: &SourcePlan,
    file: u32,
    mut reader: R,
    sink: &mut Sink,
) -> Result<Loaded> {
    skip_bom(&mut reader)?;
    let tree = Node::build(&source.slots);
    let mut out = Loaded::for_file();
    let mut interner = Interner::default();
    let mut present = vec![0u64; source.slots.len()];
    let mut objects = 0u64;
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // A BOM again mid-file, where files were concatenated.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.files[0].rows += 1;
        let mut b = RowBuilder::new(source, Origin { file, line }, &mut interner);
        let raw_line = || String::from_utf8_lossy(bytes).into_owned();
        // Borrows from this line's bytes, so it lives for one iteration.
        let mut slots: Vec<Slot> = vec![Slot::Absent; source.slots.len()];
        let first = bytes.iter().find(|c| !c.is_ascii_whitespace());
        let record = if first != Some(&b'{') {
            b.reject("", "not a JSON object", &raw_line());
            None
        } else {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let parsed = ObjectSeed {
                node: &tree,
                slots: &mut slots,
            }
            .deserialize(&mut de)
            .and_then(|()| de.end());
            match parsed {
                Err(e) => {
                    b.key = readable_key(source, bytes);
                    // serde_json says "at line 1 column C" of the one-line document: keep the column.
                    let msg = e.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg);
                    b.reject(
                        "",
                        format!("not valid JSON at column {}: {msg}", e.column()),
                        &raw_line(),
                    );
                    None
                }
                Ok(()) => {
                    objects += 1;
                    for (n, s) in present.iter_mut().zip(&slots) {
                        *n += u64::from(*s != Slot::Absent);
                    }
                    let get = |f: &FieldRef| -> Result<Option<Text>, String> {
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
    }
    out.json_present = Some((objects, present));
    out.lines = line;
    Ok(out)
}

/// The key of a line that was rejected, when the line is JSON whose key path holds a scalar: so that
/// a replay of that key into this source is held back.
fn readable_key(source: &SourcePlan, bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut v = &value;
    for seg in &source.key.path {
        v = v.get(seg)?;
    }
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    source.key_cleanup.apply(Some(&text))
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
            bail!(
                "source {:?}: field {:?} ({key}) is in none of its {objects} JSON objects; check the path in the config",
                source.name,
                f.name
            );
        }
    }
    Ok(())
}
