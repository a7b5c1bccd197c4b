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
/// with a visible character, so that trimming and lowercasing leave it as it is. Eight bytes at a
/// time (every key of a run is asked, twice): a key it says no to may be folded all the same (one
/// ending in a control character): callers then fold it, which costs time, never correctness.
pub fn is_folded(key: &str) -> bool {
    let b = key.as_bytes();
    let ends =
        b.first().is_some_and(u8::is_ascii_graphic) && b.last().is_some_and(u8::is_ascii_graphic);
    if b.len() < 8 {
        return ends && b.iter().all(|c| c.is_ascii() && !c.is_ascii_uppercase());
    }
    #[cfg(target_arch = "x86_64")]
    if b.len() >= 16 {
        // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 processor has it.
        return ends && unsafe { folded_sse2(b) };
    }
    // The last word overlaps the one before it where the length is not a multiple of eight:
    // bytes looked at twice change nothing.
    let words = b
        .chunks_exact(8)
        .map(|w| w.try_into().expect("eight bytes"));
    let last: [u8; 8] = b[b.len() - 8..].try_into().expect("eight bytes");
    let bad = words
        .chain([last])
        .fold(0, |bad, w| bad | not_folded(u64::from_le_bytes(w)));
    ends && bad == 0
}

/// Whether no byte of `b` (16 bytes or more) is non-ASCII or upper case, sixteen at a time (the
/// last block overlapping the one before): a 28-byte key in two blocks, where words take four
/// with twice the work each (every key is asked twice, and this was 1.4% of the 1M benchmark's
/// instructions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn folded_sse2(b: &[u8]) -> bool {
    use std::arch::x86_64::*;
    let (after_z, before_a) = (_mm_set1_epi8(b'Z' as i8 + 1), _mm_set1_epi8(b'A' as i8 - 1));
    // Non-ASCII bytes have their top bit; upper case ones are above `@` and below `[` (signed:
    // non-ASCII bytes are negative, so never in that range).
    let bad = |v: __m128i| {
        let upper = _mm_and_si128(_mm_cmpgt_epi8(v, before_a), _mm_cmpgt_epi8(after_z, v));
        _mm_or_si128(v, upper)
    };
    let mut any = _mm_setzero_si128();
    let mut blocks = b.chunks_exact(16);
    for block in blocks.by_ref() {
        // SAFETY: `block` is 16 bytes; the load is unaligned.
        any = _mm_or_si128(any, bad(unsafe { _mm_loadu_si128(block.as_ptr().cast()) }));
    }
    if !blocks.remainder().is_empty() {
        // SAFETY: `b` has 16 bytes or more, so its last 16 are in it.
        let last = unsafe { _mm_loadu_si128(b[b.len() - 16..].as_ptr().cast()) };
        any = _mm_or_si128(any, bad(last));
    }
    _mm_movemask_epi8(any) == 0
}

/// The top bit of each byte of `x` that is not ASCII or is upper case. Only the low seven bits
/// are added to, so that no sum carries into the next byte: `A` (0x41) plus 0x3f reaches 0x80, and
/// so does a byte past `Z` (0x5a) plus 0x25.
fn not_folded(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    let from_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let past_z = low + 0x2525_2525_2525_2525;
    (x | (from_a & !past_z)) & TOP
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
    fn folded_is_judged_byte_by_byte_at_every_place_and_length() {
        // What a byte-by-byte reading says.
        let naive = |b: &[u8]| {
            let graphic = |c: Option<&u8>| c.is_some_and(u8::is_ascii_graphic);
            graphic(b.first())
                && graphic(b.last())
                && b.iter().all(|c| c.is_ascii() && !c.is_ascii_uppercase())
        };
        for len in 1..40 {
            for at in 0..len {
                for odd in [
                    "A", "Z", "@", "[", "a", " ", "\u{7f}", "\0", "é", "\u{a0}", "€",
                ] {
                    let mut b: Vec<u8> = (0..len).map(|i| b"x0_z~"[i % 5]).collect();
                    b.splice(at..at + 1, odd.bytes());
                    let k = std::str::from_utf8(&b).unwrap();
                    assert_eq!(is_folded(k), naive(&b), "{k:?}");
                }
            }
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
