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

/// Whether a key is surely in folded form already: ASCII with no upper case, starting and ending
/// with a visible character, so that trimming and lowercasing leave it as it is. Read in one pass
/// without an early exit, so that it is vectorised (every key of a run is asked, twice). A key it
/// says no to may be folded all the same (one ending in a control character): callers then fold
/// it, which costs time, never correctness.
pub fn is_folded(key: &str) -> bool {
    let b = key.as_bytes();
    // A byte that is not ASCII, or upper case, leaves a bit in `bad` (accumulated as a byte, not
    // a bool, so that the loop is vectorised).
    let bad = b.iter().fold(0u8, |bad, &c| {
        bad | (c & 0x80) | u8::from(c.wrapping_sub(b'A') < 26)
    });
    let plain = bad == 0;
    plain
        && b.first().is_some_and(u8::is_ascii_graphic)
        && b.last().is_some_and(u8::is_ascii_graphic)
}

/// A key trimmed and lowercased: keys that differ only by case or surrounding spaces have the same
/// folded form, which [`folded_hash`] hashes.
pub fn folded(key: &str) -> String {
    super::trim(key).to_lowercase()
}

/// A hash of a key trimmed and lowercased: keys that differ only by case or surrounding spaces have
/// the same folded hash. A key already in folded form (the usual case) is hashed as it is.
pub fn folded_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::with_seed(0xf01d_2026);
    if is_folded(key) {
        return hasher.hash_one(key.as_bytes());
    }
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
    fn folded_keys_are_those_that_trimming_and_lowercasing_leave_alone() {
        for k in [
            "idem_7c3c",
            "a",
            "ord-17",
            "x y",
            "~!",
            "0123456789abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(is_folded(k), "{k:?}");
            assert_eq!(folded(k), k);
        }
        // Not folded, or not surely: each still hashes as its folded form does.
        for k in [
            "", "Idem", " a", "a ", "\ta", "é", "a\u{a0}", "\u{1}a", "x\u{b}", "ORD-17", "a\u{7f}",
        ] {
            assert!(!is_folded(k), "{k:?}");
            assert_eq!(folded_hash(k), folded_hash(&folded(k)), "{k:?}");
        }
    }

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
