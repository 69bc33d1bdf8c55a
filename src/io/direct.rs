//! Formatted lines gathered for one write: the prefixed lines of one read of a service's pipe,
//! put one after the other into a buffer kept from read to read, to be written at once (in the
//! turn of the loop that read them) or queued in one piece. The output multiplexer (`output`)
//! decides which; this file only gathers the bytes.
//!
//! Why not `writev` straight from the read buffer (a prefix and a line per pair of slices, no
//! copy in pidone at all)? Measured on 1 GB of 100-byte lines to a file, the kernel spends about
//! 0.25 s more walking a thousand slices per call than it takes to copy the same bytes from one
//! buffer, while copying them in user space costs about 0.02 s: one copy into one buffer and one
//! `write` is the cheaper path. The copy is done sixteen bytes at a time by hand: every line is
//! short, and musl's `memcpy` is slow to start for short copies (it aligns its target one byte at
//! a time, then starts a `rep movsq`), and at `opt-level = "z"` each `extend_from_slice` of a
//! line was one such call.

use super::output::PIPE_BUF;

/// Formatted lines, whole, one after the other. Its buffer is allocated at the first line.
#[derive(Default)]
pub struct Batch {
    /// `buf[..len]` is gathered.
    buf: Vec<u8>,
    len: usize,
    /// The most bytes one write carries (a pipe's atomic size, or a file's batch).
    max: usize,
}

impl Batch {
    /// The most bytes one write of a batch carries: the formatted lines of one read of 64 KiB
    /// (about 69 KiB with 100-byte lines and their prefixes) go out in one write.
    pub const MAX: usize = 128 * 1024;

    /// Empties the batch and makes each write carry at most `max` bytes (at most
    /// [`Batch::MAX`]).
    pub fn start(&mut self, max: usize) {
        self.len = 0;
        self.max = max.min(Batch::MAX);
    }

    /// Adds one formatted line made of `parts` (the last ending in its newline; at most 4 KiB
    /// in all). False, adding nothing, when the batch has no room left for it: write it first.
    /// A line longer than `max` is taken alone into an empty batch.
    pub fn add(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.len > 0 && self.len + len > self.max {
            return false;
        }
        // Room for the largest batch and one line more than it, allocated (zeroed) once per
        // size: a pipe's batches take 8 KiB, a file's 132.
        let room = self.max + PIPE_BUF;
        if self.buf.len() < room {
            self.buf = vec![0; room];
        }
        let Some(room) = self.buf.get_mut(self.len..self.len + len) else {
            return false;
        };
        let mut at = 0;
        for part in parts {
            put(room.get_mut(at..).unwrap_or_default(), part);
            at += part.len();
        }
        self.len += len;
        true
    }

    /// The lines gathered.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Forgets the lines (written or queued).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Copies `src` to the start of `dst` (at least as long), sixteen bytes at a time (the last
/// sixteen overlapping the ones before), so that a short copy is a few moves, not a call.
fn put(dst: &mut [u8], src: &[u8]) {
    let Some(dst) = dst.get_mut(..src.len()) else {
        return;
    };
    let len = src.len();
    match len {
        0..4 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        // Two moves that overlap in the middle.
        4..8 => {
            copy::<4>(dst, src, 0);
            copy::<4>(dst, src, len - 4);
        }
        8..16 => {
            copy::<8>(dst, src, 0);
            copy::<8>(dst, src, len - 8);
        }
        _ => {
            let mut at = 0;
            while at + 16 <= len {
                copy::<16>(dst, src, at);
                at += 16;
            }
            copy::<16>(dst, src, len - 16);
        }
    }
}

/// Copies the `N` bytes of `src` at `at` to `dst` at `at`, as one move.
fn copy<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let from = src
        .get(at..at + N)
        .and_then(|s| <&[u8; N]>::try_from(s).ok());
    let to = dst
        .get_mut(at..at + N)
        .and_then(|d| <&mut [u8; N]>::try_from(d).ok());
    if let (Some(d), Some(s)) = (to, from) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_copies_every_length_exactly() {
        let src: Vec<u8> = (0..100u8).collect();
        for len in 0..=100 {
            let mut dst = vec![0xEE; 120];
            put(&mut dst, &src[..len]);
            assert_eq!(&dst[..len], &src[..len]);
            assert!(dst[len..].iter().all(|&b| b == 0xEE), "nothing past {len}");
        }
    }

    #[test]
    fn whole_lines_only_within_the_limit() {
        let mut batch = Batch::default();
        batch.start(10);
        assert!(batch.add(&[b"[a] ", b"abc\n"]));
        assert!(!batch.add(&[b"[a] ", b"def\n"]), "16 bytes > 10");
        assert_eq!(batch.bytes(), b"[a] abc\n");
        batch.clear();
        // Alone, a line longer than the limit still goes.
        assert!(batch.add(&[b"[a] ", b"a long line", b"\n"]));
        assert_eq!(batch.bytes(), b"[a] a long line\n");
        batch.start(usize::MAX);
        let line = [b'x'; 99];
        let mut lines = 0;
        while batch.add(&[b"[gen] ", &line, b"\n"]) {
            lines += 1;
        }
        assert_eq!(lines, Batch::MAX / 106);
        assert_eq!(batch.bytes().len(), lines * 106);
    }
}
