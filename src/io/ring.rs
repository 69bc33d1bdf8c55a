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

/// Lines in the order they came, each ending in its newline, in one buffer, with each line's
/// length (so that the ring drops its oldest lines without searching for their newlines).
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
        self.lens.push(len32(line.len() + 1));
    }

    /// Counts a line of `len` bytes, newline included, whose bytes [`Lines::push_run`] adds
    /// later with the rest of its run.
    pub fn count(&mut self, len: usize) {
        self.lens.push(len32(len));
    }

    /// Adds the bytes of the lines counted since the last push: `run`, whole lines each ending
    /// in its newline, exactly as long as they were counted. One copy per run, not per line.
    pub fn push_run(&mut self, run: &[u8]) {
        self.text.extend_from_slice(run);
    }

    /// Forgets the lines, keeping the room they took.
    pub fn clear(&mut self) {
        self.text.clear();
        self.lens.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The lines, each ending in its newline.
    pub fn bytes(&self) -> &[u8] {
        &self.text
    }
}

/// A line's length as kept: a formatted line is at most a few KiB, pidone's own up to the size
/// of a message; longer counts as `u32::MAX` (which only the ring's arithmetic would see).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The last lines of a service's output, oldest first, in one byte buffer, with each line's
/// length. The oldest lines leave whole, by moving the start past them; the room they took is
/// given back to new lines (by moving the rest to the front) once it is half the buffer, so each
/// byte is moved at most once on average and the buffer stays within twice what the lines take.
/// Of a batch with more lines than are kept, only the kept ones are copied in.
#[derive(Debug, Default)]
pub struct LineRing {
    /// `text[start..]`: the lines, each ending in its newline.
    text: Vec<u8>,
    start: usize,
    lens: VecDeque<u32>,
}

impl LineRing {
    /// Appends `lines`, then drops the oldest lines until at most `keep` are left.
    pub fn push(&mut self, lines: &Lines, keep: usize) {
        let skip = lines.lens.len().saturating_sub(keep);
        let (gone, kept) = lines.lens.split_at_checked(skip).unwrap_or_default();
        let from: usize = gone.iter().map(|&n| n as usize).sum();
        self.text
            .extend_from_slice(lines.text.get(from..).unwrap_or_default());
        self.lens.extend(kept);
        let excess = self.lens.len().saturating_sub(keep);
        let dropped: usize = self.lens.drain(..excess).map(|n| n as usize).sum();
        self.start = (self.start + dropped).min(self.text.len());
        if self.start > self.text.len() / 2 {
            self.text.drain(..self.start);
            self.start = 0;
        }
    }

    /// How many lines it holds.
    pub fn lines(&self) -> usize {
        self.lens.len()
    }

    /// How many of the last `n` lines fit in `max` bytes (newlines included), and their bytes.
    pub fn fit(&self, n: usize, max: usize) -> (usize, usize) {
        let held = self.text.get(self.start..).unwrap_or_default();
        let (mut lines, mut begin) = (0, held.len());
        while lines < n && begin > 0 {
            // The line ending at `begin` starts after the newline before it.
            let before = held.get(..begin - 1).unwrap_or_default();
            let start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            if held.len() - start > max {
                break;
            }
            (lines, begin) = (lines + 1, start);
        }
        (lines, held.len() - begin)
    }

    /// The last `bytes` bytes (which [`LineRing::fit`] gave: whole lines) as text, each invalid
    /// UTF-8 sequence replaced by U+FFFD, appended to `out`.
    pub fn text(&self, bytes: usize, out: &mut String) {
        let from = self.text.len().saturating_sub(bytes).max(self.start);
        out.push_str(&String::from_utf8_lossy(
            self.text.get(from..).unwrap_or_default(),
        ));
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
        assert_eq!(ring.lines(), 2);
        ring.push(&lines(&["a", "b", "c", "d", "e"]), 3);
        assert_eq!(all(&ring), "c\nd\ne\n", "a batch larger than the ring");
        ring.push(&lines(&["x"]), 0);
        assert_eq!((ring.lines(), all(&ring).as_str()), (0, ""));
    }

    #[test]
    fn lines_read_back_whole_as_the_room_of_old_ones_is_reused() {
        let mut ring = LineRing::default();
        let mut expected = VecDeque::new();
        // Lengths vary, so that the room is given back at every place of a line.
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
            let want: Vec<&str> = expected
                .iter()
                .skip(expected.len() - n)
                .map(|s| &**s)
                .collect();
            assert_eq!(last, want.join("\n") + "\n");
        }
        assert!(ring.text.capacity() <= 16 * 1024, "room reused, not grown");
        assert!(
            ring.text.len() <= 2 * 50 * 78,
            "within twice what the lines take"
        );
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
    fn lines_counted_in_runs_leave_the_ring_whole() {
        // As the multiplexer fills it: runs of lines counted one by one, copied at once, with
        // a piece of a long line pushed on its own between them.
        let mut l = Lines::default();
        for line in ["a\n", "bb\n", "ccc\n"] {
            l.count(line.len());
        }
        l.push_run(b"a\nbb\nccc\n");
        l.push(b"piece");
        l.count(2);
        l.push_run(b"d\n");
        assert_eq!(l.bytes(), b"a\nbb\nccc\npiece\nd\n");
        let mut ring = LineRing::default();
        ring.push(&l, 3);
        assert_eq!(all(&ring), "ccc\npiece\nd\n");
        ring.push(&lines(&["e"]), 2);
        assert_eq!((ring.lines(), all(&ring).as_str()), (2, "d\ne\n"));
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
