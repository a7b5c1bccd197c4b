//! Files read where they lie in the page cache, mapped into memory.

use std::fs::File;
use std::io::BufRead;

/// A range of a file mapped into memory, read where it lies in the page cache: a buffered read
/// copies every byte out of the cache first, and that copy, with the read-ahead bookkeeping of
/// each call, was 7% of the 5M benchmark's CPU. The input files that are split into chunks are
/// mapped. (Mapping the partitions' temporary files to read them back saved 1.4% of CPU, but
/// every page read counted in the run's peak memory: 330 MiB became 750 MiB at 5M.)
///
/// The pages read are let go of every [`Mapped::RELEASE`] bytes, so that a mapped chunk of a
/// large file does not stay in the process's memory as it is read (the page cache keeps them).
///
/// A file that is truncated while it is mapped faults the process (SIGBUS) instead of failing a
/// read: the run dies before it publishes anything, as a killed run does (outputs are written
/// atomically), and exits non-zero.
pub(crate) struct Mapped {
    /// The mapping, which starts at the page holding the range's first byte.
    map: *mut std::ffi::c_void,
    map_len: usize,
    /// The range within the mapping: from `pos` (advanced as it is consumed) to `end`.
    pos: usize,
    end: usize,
    /// The pages before this offset were let go of.
    released: usize,
    /// The pages before this offset were mapped in ahead of the reader.
    populated: usize,
}

// SAFETY: the mapping is private to this value, read-only, and unmapped only on its drop.
unsafe impl Send for Mapped {}

impl Mapped {
    /// How much is read between two lettings go of the pages read.
    const RELEASE: usize = 16 << 20;

    /// Maps `len` bytes of `file` from `start`, to be read from start to end; `None` when it
    /// cannot be mapped (the caller then reads it as a stream).
    pub(crate) fn new(file: &File, start: u64, len: u64) -> Option<Mapped> {
        use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap};
        let page = rustix::param::page_size() as u64;
        let from = start - start % page;
        let skip = usize::try_from(start - from).ok()?;
        if len == 0 {
            return None;
        }
        let end = skip.checked_add(usize::try_from(len).ok()?)?;
        // SAFETY: a fresh read-only private mapping, placed by the kernel; the file's bytes are
        // only read through it, within `end` bytes of its start.
        let map = unsafe {
            mmap(
                std::ptr::null_mut(),
                end,
                ProtFlags::READ,
                MapFlags::PRIVATE,
                file,
                from,
            )
        }
        .ok()?;
        // A hint only: read ahead, and the pages behind the reader may go first.
        // SAFETY: the range is the mapping just made.
        let _ = unsafe { madvise(map, end, Advice::Sequential) };
        let mut mapped = Mapped {
            map,
            map_len: end,
            pos: skip,
            end,
            released: 0,
            populated: 0,
        };
        mapped.populate();
        Some(mapped)
    }

    /// Maps the next [`Mapped::RELEASE`] bytes' pages in one call, once the reader is within half
    /// that of the end of those mapped so far: faulting them in a few at a time as they are first
    /// read cost 4% of the 5M benchmark's CPU.
    fn populate(&mut self) {
        if self.populated >= self.end || self.pos + Self::RELEASE / 2 < self.populated {
            return;
        }
        let upto = (self.populated + Self::RELEASE).min(self.map_len);
        // Kernels before 5.14 do not know it. A range past a truncated file's end fails the
        // call, not the process.
        self.advise(self.populated..upto, rustix::mm::Advice::LinuxPopulateRead);
        self.populated = upto;
    }

    /// A hint about the mapping's bytes `range`, which start on a page: its outcome is not needed.
    fn advise(&self, range: std::ops::Range<usize>, advice: rustix::mm::Advice) {
        assert!(range.end <= self.map_len && range.start <= range.end);
        // SAFETY: whole pages within the mapping made in `new` (it starts on a page, and so
        // does `range`; the kernel rounds its end up to a page, within the mapping's last one).
        let _ = unsafe {
            rustix::mm::madvise(
                self.map.cast::<u8>().add(range.start).cast(),
                range.len(),
                advice,
            )
        };
    }

    /// The bytes not consumed yet: the whole range until [`BufRead::consume`] is called.
    pub(crate) fn rest(&self) -> &[u8] {
        // SAFETY: `map` holds `map_len` readable bytes for as long as `self` lives, and
        // `pos <= end == map_len`.
        unsafe {
            std::slice::from_raw_parts(self.map.cast::<u8>().add(self.pos), self.end - self.pos)
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mapped({} of {} bytes left)",
            self.end - self.pos,
            self.map_len
        )
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer borrowed (`rest` borrows `self`).
        let _ = unsafe { rustix::mm::munmap(self.map, self.map_len) };
    }
}

impl std::io::Read for Mapped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest().len().min(buf.len());
        buf[..n].copy_from_slice(&self.rest()[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Mapped {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.rest())
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
        self.populate();
        if self.pos - self.released >= Self::RELEASE {
            let page = rustix::param::page_size();
            let upto = self.pos - self.pos % page;
            // Nothing before `pos` is borrowed any more, and a page let go of would be read again
            // from the page cache if it were.
            self.advise(self.released..upto, rustix::mm::Advice::LinuxDontNeed);
            self.released = upto;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_range_reads_as_the_file_s_bytes() {
        use std::io::{Read, Write};
        // Three pages and a bit, every byte telling its place.
        let bytes: Vec<u8> = (0..13_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        for (start, len) in [
            (0, 13_000),
            (1, 4095),
            (4095, 2),
            (4096, 4096),
            (5000, 8000),
        ] {
            let want = &bytes[start..start + len];
            let mut m = Mapped::new(&file, start as u64, len as u64).unwrap();
            assert_eq!(m.fill_buf().unwrap(), want, "{start}+{len}");
            m.consume(1);
            assert_eq!(m.fill_buf().unwrap(), &want[1..]);
            let mut rest = Vec::new();
            let mut small = [0u8; 1000];
            loop {
                match m.read(&mut small).unwrap() {
                    0 => break,
                    n => rest.extend_from_slice(&small[..n]),
                }
            }
            assert_eq!(rest, &want[1..]);
            m.consume(5);
            assert!(m.fill_buf().unwrap().is_empty());
        }
        assert!(Mapped::new(&file, 100, 0).is_none());
    }

    #[test]
    fn a_mapped_range_reads_on_after_it_lets_go_of_the_pages_read() {
        use std::io::{Read, Write};
        let size = Mapped::RELEASE * 2 + 12_345;
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let mut m = Mapped::new(&file, 77, (size - 77) as u64).unwrap();
        let mut at = 77;
        // Consumed and read by turns, a little over a MiB at a time: both let go of pages.
        let mut block = vec![0u8; (1 << 20) + 3];
        for turn in 0.. {
            // The pages ahead of the reader are mapped in before it gets there.
            let ahead = (m.pos + Mapped::RELEASE / 2).min(m.map_len);
            assert!(m.populated >= ahead, "{turn}");
            let rest = m.fill_buf().unwrap();
            assert_eq!(rest.len(), size - at);
            assert_eq!(rest[..rest.len().min(64)], bytes[at..(at + 64).min(size)]);
            if at == size {
                break;
            }
            let step = match turn % 2 {
                0 => {
                    m.consume(block.len());
                    block.len().min(size - at)
                }
                _ => {
                    let n = m.read(&mut block).unwrap();
                    assert_eq!(block[..n], bytes[at..at + n]);
                    n
                }
            };
            at += step;
        }
        assert!(m.released >= Mapped::RELEASE * 2);
        assert!(m.fill_buf().unwrap().is_empty());
        // Read alone (as the csv crate reads), too.
        let mut m = Mapped::new(&file, 0, size as u64).unwrap();
        let mut big = vec![0u8; Mapped::RELEASE + 1];
        assert_eq!(m.read(&mut big).unwrap(), big.len());
        assert_eq!(m.released, Mapped::RELEASE);
    }
}
