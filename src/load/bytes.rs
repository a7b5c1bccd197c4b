//! One pass over a line for what its parser needs: every place of one byte (a CSV line's
//! delimiters, a JSON line's quotes), whether the line is printable ASCII (then it is UTF-8 and no
//! field needs a check for control characters), and whether it holds a backslash (a JSON escape,
//! after which a quote may not end a string). Thirty-two bytes at a time on an x86_64 processor
//! with AVX2, sixteen on any other (SSE2, which every x86_64 processor has), eight at a time
//! elsewhere: fields are short, and a vectorised search started per field costs more than it
//! finds (memchr per JSON string took 6% of the 1M benchmark's instructions, and this whole pass
//! takes less).

/// What [`find_all`] learned of a line besides the places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Only bytes from space to DEL (0x20 to 0x7F).
    pub printable: bool,
    pub backslash: bool,
}

/// Appends the offset of every `byte` in `line` to `at`, in order.
pub(crate) fn find_all(line: &[u8], byte: u8, at: &mut Vec<usize>) -> Found {
    #[cfg(target_arch = "x86_64")]
    {
        // The processor's features are detected once and cached by the standard library.
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, just checked.
            return unsafe { avx2::find_all(line, byte, at) };
        }
        // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 processor has it.
        unsafe { sse2::find_all(line, byte, at) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        words::find_all(line, byte, at)
    }
}

/// A line as text, if it is UTF-8; `printable` (from [`find_all`]) saves the check.
pub(crate) fn text(line: &[u8], printable: bool) -> Option<&str> {
    if printable {
        // SAFETY: printable ASCII is valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(line) });
    }
    std::str::from_utf8(line).ok()
}

/// [`find_all`] a block of `$width` bytes at a time with one instruction set's intrinsics: the
/// SSE2 and AVX2 versions are this one body. The last few bytes are read in the block that ends
/// the line (overlapping the one before, whose bytes are masked off), or, in a line shorter than
/// a block, copied into a block of their own: no load reads past the line.
#[cfg(target_arch = "x86_64")]
macro_rules! find_all_by_blocks {
    ($module:ident, $feature:literal, $width:literal, $vector:ty,
     $load:ident, $splat:ident, $equal:ident, $greater:ident, $mask:ident) => {
        mod $module {
            use std::arch::x86_64::*;

            use super::Found;

            #[target_feature(enable = $feature)]
            pub(super) fn find_all(line: &[u8], byte: u8, at: &mut Vec<usize>) -> Found {
                // A bit for each byte of a block.
                const ALL: u32 = u32::MAX >> (32 - $width);
                let wanted = $splat(byte as i8);
                let backslash = $splat(b'\\' as i8);
                let space = $splat(0x20);
                let (mut odd, mut slashes) = (0u32, 0u32);
                // Room for every place the line can hold, so that each is written without a check.
                at.reserve(line.len());
                let had = at.len();
                let room = &mut at.spare_capacity_mut()[..line.len()];
                let mut n = 0;
                // The block at `base`, only the bytes of it that `valid` has bits for.
                let mut block = |v: $vector, valid: u32, base: usize| {
                    let mut found = $mask($equal(v, wanted)) as u32 & valid;
                    slashes |= $mask($equal(v, backslash)) as u32 & valid;
                    // Signed: below space, or 0x80 and up (negative).
                    odd |= $mask($greater(space, v)) as u32 & valid;
                    while found != 0 {
                        room[n].write(base + found.trailing_zeros() as usize);
                        n += 1;
                        found &= found - 1;
                    }
                };
                let mut blocks = line.chunks_exact($width);
                let mut base = 0;
                for b in blocks.by_ref() {
                    // SAFETY: `b` is a whole block; the load is unaligned.
                    let v = unsafe { $load(b.as_ptr().cast()) };
                    block(v, ALL, base);
                    base += $width;
                }
                let rest = blocks.remainder().len();
                if rest > 0 && line.len() >= $width {
                    let last = line.len() - $width;
                    // SAFETY: `line[last..]` is a whole block.
                    let v = unsafe { $load(line[last..].as_ptr().cast()) };
                    block(v, ALL << ($width - rest) & ALL, last);
                } else if rest > 0 {
                    let mut pad = [0u8; $width];
                    pad[..rest].copy_from_slice(blocks.remainder());
                    // SAFETY: `pad` is a whole block.
                    let v = unsafe { $load(pad.as_ptr().cast()) };
                    block(v, (1 << rest) - 1, base);
                }
                // SAFETY: the `n` places after the vector's first `had` were written above.
                unsafe { at.set_len(had + n) };
                Found {
                    printable: odd == 0,
                    backslash: slashes != 0,
                }
            }
        }
    };
}

// Sixteen bytes at a time (SSE2, which every x86_64 processor has).
#[cfg(target_arch = "x86_64")]
find_all_by_blocks!(
    sse2,
    "sse2",
    16,
    __m128i,
    _mm_loadu_si128,
    _mm_set1_epi8,
    _mm_cmpeq_epi8,
    _mm_cmpgt_epi8,
    _mm_movemask_epi8
);

// Thirty-two bytes at a time: a JSON line of 200 bytes takes 7 blocks instead of 13.
#[cfg(target_arch = "x86_64")]
find_all_by_blocks!(
    avx2,
    "avx2",
    32,
    __m256i,
    _mm256_loadu_si256,
    _mm256_set1_epi8,
    _mm256_cmpeq_epi8,
    _mm256_cmpgt_epi8,
    _mm256_movemask_epi8
);

/// The portable [`find_all`], eight bytes at a time (and the reference the SSE2 one is tested
/// against on x86_64).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod words {
    use super::Found;

    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP: u64 = 0x8080_8080_8080_8080;

    /// The top bit of each byte of `x` that is zero, exactly: adding 0x7f to the low seven bits
    /// carries into the top bit unless they are all zero, and never past it.
    fn zeros(x: u64) -> u64 {
        !(((x & LOW7) + LOW7) | x | LOW7)
    }

    /// The top bit of each byte of `x` below 0x20 or from 0x80.
    fn odd(x: u64) -> u64 {
        // Bytes below 0x80 plus 0x60 reach 0x80 exactly from 0x20 on; bytes from 0x80 have it.
        (!((x & LOW7) + 0x6060_6060_6060_6060) | x) & TOP
    }

    pub(super) fn find_all(line: &[u8], byte: u8, at: &mut Vec<usize>) -> Found {
        let wanted = u64::from_ne_bytes([byte; 8]);
        let backslash = u64::from_ne_bytes([b'\\'; 8]);
        let (mut bad, mut slashes) = (0u64, 0u64);
        let mut words = line.chunks_exact(8);
        let mut base = 0;
        for w in words.by_ref() {
            let x = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            bad |= odd(x);
            slashes |= zeros(x ^ backslash);
            let mut found = zeros(x ^ wanted);
            while found != 0 {
                at.push(base + found.trailing_zeros() as usize / 8);
                found &= found - 1;
            }
            base += 8;
        }
        let rest = words.remainder();
        at.extend(
            (0..rest.len())
                .filter(|&i| rest[i] == byte)
                .map(|i| base + i),
        );
        Found {
            printable: bad == 0 && rest.iter().all(|&c| (0x20..0x80).contains(&c)),
            backslash: slashes != 0 || rest.contains(&b'\\'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Find = fn(&[u8], u8, &mut Vec<usize>) -> Found;

    /// What a byte-by-byte reading finds.
    fn naive(line: &[u8], byte: u8) -> (Vec<usize>, Found) {
        let at = (0..line.len()).filter(|&i| line[i] == byte).collect();
        let found = Found {
            printable: line.iter().all(|&c| (0x20..0x80).contains(&c)),
            backslash: line.contains(&b'\\'),
        };
        (at, found)
    }

    #[test]
    fn every_place_and_flag_is_found_at_every_offset_and_length() {
        // Bytes around the wanted one that a carry or a signed compare could confuse with it or
        // with printable text: its neighbours, NUL, space, DEL, 0x80 and 0xFF.
        for byte in [b',', b'"', b';', b'\t', 0x01, 0x80, 0xff] {
            let fill = [byte ^ 1, byte.wrapping_add(1), b'x', 0x20, 0x7f];
            for len in 0..80 {
                for at in 0..len {
                    for odd in [
                        None,
                        Some(0u8),
                        Some(0x1f),
                        Some(0x80),
                        Some(0xff),
                        Some(b'\\'),
                    ] {
                        let mut line: Vec<u8> = (0..len).map(|i| fill[i % fill.len()]).collect();
                        line[at] = byte;
                        if at + 2 < len {
                            line[at + 2] = byte;
                        }
                        if let Some(o) = odd {
                            line[(at * 7 + 3) % len] = o;
                        }
                        let want = naive(&line, byte);
                        let mut each: Vec<Find> = vec![find_all, words::find_all];
                        #[cfg(target_arch = "x86_64")]
                        {
                            // SAFETY: every x86_64 processor has SSE2.
                            each.push(|l, b, at| unsafe { sse2::find_all(l, b, at) });
                            if std::is_x86_feature_detected!("avx2") {
                                // SAFETY: the processor has AVX2, just checked.
                                each.push(|l, b, at| unsafe { avx2::find_all(l, b, at) });
                            }
                        }
                        for f in each {
                            let mut got = vec![99];
                            let found = f(&line, byte, &mut got);
                            assert_eq!((got[1..].to_vec(), found), want, "{line:?} {byte}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn text_trusts_printable_and_checks_the_rest() {
        assert_eq!(text(b"a,b", true), Some("a,b"));
        assert_eq!(text("é".as_bytes(), false), Some("é"));
        assert_eq!(text(b"\xff", false), None);
    }
}
