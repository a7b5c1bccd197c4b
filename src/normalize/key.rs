//! Idempotency-key clean-up: exactly the steps a source's config names, and nothing else.

use crate::model::Key;

/// The clean-up a source declares for its keys. Applied in a fixed order: trim, strip the prefix,
/// lowercase; so `strip_prefix` is matched case-sensitively against the trimmed text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCleanup {
    pub trim: bool,
    pub lowercase: bool,
    pub strip_prefix: Option<String>,
}

impl KeyCleanup {
    /// The key a raw value stands for; `None` when nothing is left (an `unkeyed` record).
    /// The text is never turned into a number: `000123` stays `000123`.
    pub fn apply(&self, raw: Option<&str>) -> Option<Key> {
        let mut s = raw?;
        if self.trim {
            s = super::trim(s);
        }
        if let Some(p) = &self.strip_prefix {
            s = s.strip_prefix(p.as_str()).unwrap_or(s);
        }
        if s.is_empty() {
            return None;
        }
        Some(if self.lowercase {
            Key::from(s.to_lowercase().as_str())
        } else {
            Key::from(s)
        })
    }
}

/// A hash of a key trimmed and lowercased: keys that differ only by case or surrounding spaces have
/// the same folded hash. A key already in folded form (the usual case) is hashed as it is.
pub fn folded_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::with_seed(0xf01d_2026);
    let t = super::trim(key);
    if t.is_ascii() {
        if !t.bytes().any(|b| b.is_ascii_uppercase()) {
            return hasher.hash_one(t.as_bytes());
        }
        return hasher.hash_one(t.to_ascii_lowercase().as_bytes());
    }
    hasher.hash_one(t.to_lowercase().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_table() {
        let none = KeyCleanup::default();
        let trim = KeyCleanup {
            trim: true,
            ..Default::default()
        };
        let all = KeyCleanup {
            trim: true,
            lowercase: true,
            strip_prefix: Some("SHOP/".into()),
        };
        let cases: &[(&KeyCleanup, Option<&str>, Option<&str>)] = &[
            (&none, Some(" ORD-1 "), Some(" ORD-1 ")),
            (&none, Some("000123"), Some("000123")),
            (&none, Some(""), None),
            (&none, None, None),
            (&trim, Some("  ORD-1\t"), Some("ORD-1")),
            (&trim, Some("   "), None),
            (&all, Some(" SHOP/ORD-1 "), Some("ord-1")),
            (&all, Some("shop/ORD-1"), Some("shop/ord-1")),
            (&all, Some("SHOP/"), None),
            (
                &all,
                Some("12345678901234567890123"),
                Some("12345678901234567890123"),
            ),
        ];
        for (cleanup, raw, want) in cases {
            assert_eq!(
                cleanup.apply(*raw).as_deref(),
                *want,
                "{cleanup:?} on {raw:?}"
            );
        }
    }
}
