//! The last lines of a service's output, kept for `pidone logs` and its followers, as bytes in one
//! buffer: [`Lines`] collects the lines of one read of a pipe, [`LineRing`] keeps the last N of
//! them. One buffer, not a `String` per line: a service writing flat out costs no allocation per
//! line, and the ring's memory is reused as old lines make room for new ones.
//!
//! Lines are kept as they were read (without a prefix, each ending in its newline, invalid UTF-8
//! included); they become text only when asked for ([`LineRing::text`]), where each invalid
//! sequence is replaced by U+FFFD. A newline is never part of a UTF-8 sequence, so this replaces
//! exactly what converting each line on its own would.

use std::collections::VecDeque;

/// Lines in the order they came, each ending in its newline, in one buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines {
    text: Vec<u8>,
    /// Each line's length, newline included.
    lens: Vec<u32>,
}

impl Lines {
    /// Adds `line` (without its newline).
    pub fn push(&mut self, line: &[u8]) {
        self.text.extend_from_slice(line);
        self.text.push(b'\n');
        self.lens.push(u32::try_from(line.len() + 1).unwrap_or(u32::MAX));
    }

    /// Counts a line of `len` bytes (newline included) whose text [`Lines::push_counted`] adds
    /// later, with the others of its run: one copy per run, not per line.
    pub fn count(&mut self, len: usize) {
        self.lens.push(u32::try_from(len).unwrap_or(u32::MAX));
    }

    /// Adds the text of the lines counted since the last push: `run`, whole lines each ending
    /// in its newline, exactly as long as they were counted.
    pub fn push_counted(&mut self, run: &[u8]) {
        self.text.extend_from_slice(run);
    }

    /// Forgets the lines, keeping the room they took.
    pub fn clear(&mut self) {
        self.text.clear();
        self.lens.clear();
    }

    /// The bytes of room held.
    pub fn capacity(&self) -> usize {
        self.text.capacity() + 4 * self.lens.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The lines, each ending in its newline.
    pub fn bytes(&self) -> &[u8] {
        &self.text
    }
}

/// The last lines of a service's output, oldest first: one byte buffer that wraps around, and
/// each line's length so that the oldest line leaves whole.
#[derive(Debug, Default)]
pub struct LineRing {
    text: VecDeque<u8>,
    lens: VecDeque<u32>,
}

impl LineRing {
    /// Appends `lines`, then drops the oldest lines until at most `keep` are left.
    pub fn push(&mut self, lines: &Lines, keep: usize) {
        // Of a batch larger than the ring, only its last `keep` lines are copied in.
        let skip = lines.lens.len().saturating_sub(keep);
        let (gone, kept) = lines.lens.split_at(skip);
        let from: usize = gone.iter().map(|&n| n as usize).sum();
        self.text
            .extend(lines.text.get(from..).unwrap_or_default().iter());
        self.lens.extend(kept.iter());
        let excess = self.lens.len().saturating_sub(keep);
        let dropped: usize = self.lens.drain(..excess).map(|n| n as usize).sum();
        self.text.drain(..dropped.min(self.text.len()));
    }

    /// How many lines it holds.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// How many of the last `n` lines fit in `max` bytes (newlines included), and their bytes.
    pub fn fit(&self, n: usize, max: usize) -> (usize, usize) {
        let (mut lines, mut bytes) = (0, 0);
        for &len in self.lens.iter().rev().take(n) {
            if bytes + len as usize > max {
                break;
            }
            (lines, bytes) = (lines + 1, bytes + len as usize);
        }
        (lines, bytes)
    }

    /// The last `bytes` bytes (which [`LineRing::fit`] gave: whole lines) as text, each invalid
    /// UTF-8 sequence replaced by U+FFFD, appended to `out`.
    pub fn text(&self, bytes: usize, out: &mut String) {
        let skip = self.text.len().saturating_sub(bytes);
        let (a, b) = self.text.as_slices();
        let joined;
        // Whole in one slice (usually), or copied once when the range wraps around.
        let range: &[u8] = match a.get(skip..) {
            Some(tail) if b.is_empty() => tail,
            None => b.get(skip.saturating_sub(a.len())..).unwrap_or_default(),
            Some(_) => {
                joined = self.text.range(skip..).copied().collect::<Vec<u8>>();
                &joined
            }
        };
        out.push_str(&String::from_utf8_lossy(range));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Lines {
        let mut l = Lines::default();
        for t in texts {
            l.push(t.as_bytes());
        }
        l
    }

    fn all(ring: &LineRing) -> String {
        let (_, bytes) = ring.fit(usize::MAX, usize::MAX);
        let mut out = String::new();
        ring.text(bytes, &mut out);
        out
    }

    #[test]
    fn the_oldest_lines_leave_whole() {
        let mut ring = LineRing::default();
        ring.push(&lines(&["one", "two", "three"]), 2);
        assert_eq!(all(&ring), "two\nthree\n");
        ring.push(&lines(&["four"]), 2);
        assert_eq!(all(&ring), "three\nfour\n");
        assert_eq!(ring.len(), 2);
        ring.push(&lines(&["a", "b", "c", "d", "e"]), 3);
        assert_eq!(all(&ring), "c\nd\ne\n", "a batch larger than the ring");
        ring.push(&lines(&["x"]), 0);
        assert_eq!((ring.len(), all(&ring).as_str()), (0, ""));
    }

    #[test]
    fn lines_read_back_whole_across_the_wrap_around() {
        let mut ring = LineRing::default();
        let mut expected = VecDeque::new();
        // Lengths vary and are prime to the buffer's size, so that lines straddle its end.
        for i in 0..5_000 {
            let line = format!("{i} {}", "é".repeat(i % 37));
            ring.push(&lines(&[&line]), 50);
            expected.push_back(line);
            if expected.len() > 50 {
                expected.pop_front();
            }
            let (n, bytes) = ring.fit(7, usize::MAX);
            let mut last = String::new();
            ring.text(bytes, &mut last);
            let want: Vec<&str> = expected.iter().skip(expected.len() - n).map(|s| &**s).collect();
            assert_eq!(last, want.join("\n") + "\n");
        }
        assert!(ring.text.capacity() <= 16 * 1024, "room reused, not grown");
    }

    #[test]
    fn a_line_longer_than_the_ring_holds_makes_room_for_itself() {
        let mut ring = LineRing::default();
        ring.push(&lines(&["short", "lines"]), 3);
        let long = "l".repeat(100_000);
        ring.push(&lines(&[&long]), 3);
        assert_eq!(all(&ring), format!("short\nlines\n{long}\n"));
        ring.push(&lines(&["next", "and", "last"]), 3);
        assert_eq!(all(&ring), "next\nand\nlast\n");
    }

    #[test]
    fn fit_counts_the_last_lines_within_a_size() {
        let mut ring = LineRing::default();
        ring.push(&lines(&["aaaa", "bb", "c"]), 10);
        assert_eq!(ring.fit(10, 5), (2, 5));
        assert_eq!(ring.fit(1, 100), (1, 2));
        assert_eq!(ring.fit(10, 100), (3, 10));
        assert_eq!(ring.fit(10, 1), (0, 0));
    }

    #[test]
    fn lines_counted_then_pushed_in_a_run_are_lines_like_the_others() {
        let mut l = Lines::default();
        l.count(4);
        l.count(3);
        l.push_counted(b"one\nt2\n");
        l.push(b"cut");
        let mut ring = LineRing::default();
        ring.push(&l, 10);
        assert_eq!(ring.fit(2, 100), (2, 7));
        assert_eq!(all(&ring), "one\nt2\ncut\n");
    }

    #[test]
    fn invalid_utf8_is_kept_and_replaced_only_when_read() {
        let mut l = Lines::default();
        l.push(b"ok \xff\xfe");
        l.push(b"\xe2\x82");
        assert_eq!(l.bytes(), b"ok \xff\xfe\n\xe2\x82\n");
        let mut ring = LineRing::default();
        ring.push(&l, 10);
        assert_eq!(all(&ring), "ok \u{fffd}\u{fffd}\n\u{fffd}\n");
    }
}
