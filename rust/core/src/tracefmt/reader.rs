//! Streaming a text trace through a parser: blocks of whole lines read into
//! a cache-sized buffer, each block split between this thread and a helper
//! thread (lines are independent: only their order and numbering tie the
//! halves together), the accesses gathered into chunks.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::{ParseError, Parser};

/// The longest line a text trace may have.
pub const MAX_LINE: usize = 1 << 16;
/// Bytes read at a time (cache-sized), besides room for one longest line.
const READ_BLOCK: usize = 1 << 20;
/// Blocks with less text than this are parsed on this thread alone (a
/// handover costs more than it saves).
const MIN_SPLIT: usize = 64 << 10;

/// Reads a text trace from any byte source in blocks of whole lines and
/// parses each: host memory stays bounded, however long the file, and a line
/// longer than `MAX_LINE` (a binary file, /dev/zero) is an error rather than
/// a growing buffer. A chunk handed out gathers many blocks.
pub struct ChunkReader<R> {
    src: R,
    parser: Parser,
    /// Bytes of text a chunk gathers, at least.
    chunk_bytes: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` holding an unfinished line carried to the next block.
    carried: usize,
    /// The number of the first line in `buf`.
    line: u64,
    done: bool,
    /// The second parser, started with the first block worth splitting;
    /// None on a single CPU or if no thread could be started.
    helper: Option<Helper>,
    helper_tried: bool,
    /// The buffers of the last half-block the helper parsed, for reuse.
    spare: Option<HalfBlock>,
}

impl<R: std::io::Read> ChunkReader<R> {
    pub fn new(src: R, parser: Parser, chunk_bytes: usize) -> Self {
        ChunkReader {
            src,
            parser,
            chunk_bytes,
            buf: vec![0; READ_BLOCK + MAX_LINE],
            carried: 0,
            line: 1,
            done: false,
            helper: None,
            helper_tried: false,
            spare: None,
        }
    }

    /// Parse the next chunk into `addrs` and `ops` (cleared first); false at the end.
    pub fn next_chunk(&mut self, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<bool, ParseError> {
        addrs.clear();
        ops.clear();
        if self.done {
            return Ok(false);
        }
        // Room for the chunk's accesses up front (a 14-byte line is one or,
        // for M, two accesses): growing a large vector copies it.
        let expected = (self.chunk_bytes + READ_BLOCK) / 7;
        addrs.reserve(expected);
        ops.reserve(expected);
        let mut consumed = 0;
        while !self.done && consumed < self.chunk_bytes {
            consumed += self.parse_block(addrs, ops)?;
        }
        Ok(!self.done || !addrs.is_empty() || consumed > 0)
    }

    /// Fill the buffer, parse its whole lines onto `addrs`/`ops`, keep the
    /// unfinished last line; returns the bytes parsed.
    fn parse_block(&mut self, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<usize, ParseError> {
        let mut len = self.carried;
        // Fill the buffer (a read may return less than asked).
        while len < self.buf.len() {
            match self.src.read(&mut self.buf[len..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ParseError { line: self.line, reason: format!("read error: {e}") }),
            }
        }
        let whole_lines = memchr::memrchr(b'\n', &self.buf[..len]).map_or(0, |i| i + 1);
        if len - whole_lines > MAX_LINE {
            let line = self.line + memchr::memchr_iter(b'\n', &self.buf[..whole_lines]).count() as u64;
            return Err(ParseError {
                line,
                reason: format!("longer than {MAX_LINE} bytes: not a text or lackey trace"),
            });
        }
        // At the end of the source an unterminated last line is parsed too.
        let cut = if self.done { len } else { whole_lines };
        self.line += self.parse_text(cut, addrs, ops)?;
        self.buf.copy_within(cut..len, 0);
        self.carried = len - cut;
        Ok(cut)
    }

    /// Parse `buf[..cut]`: its second half on the helper thread while this
    /// thread parses the first. Returns the newlines read past.
    fn parse_text(&mut self, cut: usize, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<u64, ParseError> {
        let (parser, line) = (self.parser, self.line);
        let worth_splitting = cut >= 2 * MIN_SPLIT && self.helper_ready();
        let text = &self.buf[..cut];
        let split = if worth_splitting {
            // Halves: measured fastest, though this thread also reads and
            // moves the helper's text and results.
            memchr::memrchr(b'\n', &text[..text.len() / 2]).map(|i| i + 1)
        } else {
            None
        };
        let (Some(mid), Some(helper)) = (split, &self.helper) else {
            return parser(text, line, addrs, ops);
        };
        let (first, second) = text.split_at(mid);
        let first_lines = memchr::memchr_iter(b'\n', first).count() as u64;
        let mut half = self.spare.take().unwrap_or_default();
        half.text.clear();
        half.text.extend_from_slice(second);
        half.first_line = line + first_lines;
        if helper.jobs.send(half).is_err() {
            self.helper = None; // the helper is gone: parse alone from now on
            return parser(text, line, addrs, ops);
        }
        let mine = parser(first, line, addrs, ops);
        let received = helper.results.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ()));
        let Ok(theirs) = received else {
            self.helper = None;
            mine?;
            return parser(second, line + first_lines, addrs, ops).map(|n| n + first_lines);
        };
        // The first half's error comes first, as a single pass would report it.
        let second_lines = mine.and(theirs.result)?;
        addrs.extend_from_slice(&theirs.half.addrs);
        ops.extend_from_slice(&theirs.half.ops);
        self.spare = Some(theirs.half);
        Ok(first_lines + second_lines)
    }

    /// Whether the helper thread runs: started on first use where there is
    /// a second CPU.
    fn helper_ready(&mut self) -> bool {
        if !self.helper_tried {
            self.helper_tried = true;
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            self.helper = if cpus > 1 { Helper::start(self.parser) } else { None };
        }
        self.helper.is_some()
    }
}

/// Half a block of text for the helper, with its output buffers (they
/// travel back and forth, so the helper allocates nothing per block).
#[derive(Default)]
struct HalfBlock {
    text: Vec<u8>,
    first_line: u64,
    addrs: Vec<u64>,
    ops: Vec<u8>,
}

struct Parsed {
    half: HalfBlock,
    result: Result<u64, ParseError>,
}

/// A thread that parses the half-blocks sent to it, in order. It ends when
/// its reader drops the sending side.
struct Helper {
    jobs: SyncSender<HalfBlock>,
    /// Behind a lock only so that a reader can be shared between threads
    /// (a Python object must be); one thread uses it at a time.
    results: Mutex<Receiver<Parsed>>,
}

impl Helper {
    fn start(parser: Parser) -> Option<Helper> {
        let (jobs, todo) = sync_channel::<HalfBlock>(1);
        let (finished, results) = sync_channel::<Parsed>(1);
        let work = move || {
            for mut half in todo {
                half.addrs.clear();
                half.ops.clear();
                let result = parser(&half.text, half.first_line, &mut half.addrs, &mut half.ops);
                if finished.send(Parsed { half, result }).is_err() {
                    break;
                }
            }
        };
        std::thread::Builder::new().name("vmsim-trace-parse".into()).spawn(work).ok()?;
        Some(Helper { jobs, results: Mutex::new(results) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_lackey, parse_text};
    use super::*;

    #[test]
    fn chunks_cut_at_line_ends_and_count_lines_across_them() {
        let mut text = Vec::new();
        for i in 0..40_000u64 {
            text.extend(format!(" L {:x},8\r\n", 0x1000 + i).bytes());
        }
        text.extend(b"I  zz,4\n");
        let mut r = ChunkReader::new(&text[..], parse_lackey, 1);
        let (mut a, mut o, mut all) = (Vec::new(), Vec::new(), Vec::new());
        let err = loop {
            match r.next_chunk(&mut a, &mut o) {
                Ok(true) => all.extend_from_slice(&a),
                Ok(false) => panic!("the bad last line was not reported"),
                Err(e) => break e,
            }
        };
        assert!(all.len() < 40_000 || all == (0..40_000).map(|i| 0x1000 + i).collect::<Vec<_>>());
        assert_eq!(err.line, 40_001);
        // A chunk gathers read blocks until it holds chunk_bytes of text.
        let good = &text[..text.len() - 8];
        let mut r = ChunkReader::new(good, parse_lackey, 16 << 20);
        assert!(good.len() > MIN_SPLIT && r.next_chunk(&mut a, &mut o).unwrap());
        assert_eq!(a, (0..40_000).map(|i| 0x1000 + i).collect::<Vec<_>>());
        assert!(!r.next_chunk(&mut a, &mut o).unwrap());
        // A line too long to carry is refused, also as the last line.
        for long in [vec![b'1'; READ_BLOCK + MAX_LINE * 3], vec![b'1'; MAX_LINE * 3]] {
            let e = ChunkReader::new(&long[..], parse_text, 1).next_chunk(&mut a, &mut o).unwrap_err();
            assert!(e.reason.contains("longer than"), "{}", e.reason);
        }
        let mut empty = ChunkReader::new(&b""[..], parse_text, 1);
        assert!(!empty.next_chunk(&mut a, &mut o).unwrap());
    }

    /// Blocks split between the two threads give what one pass gives: the
    /// same accesses in order, and the first bad line by its number,
    /// whichever half it falls in.
    #[test]
    fn split_blocks_parse_as_one_pass() {
        let mut text = Vec::new();
        for i in 0..300_000u64 {
            let kind = ["I  ", " L ", " S ", " M "][(i % 4) as usize];
            text.extend(format!("{kind}{:08x},{}\n", 0x40_0000 + i * 64, 1 + i % 16).bytes());
        }
        let (mut one, mut one_ops) = (Vec::new(), Vec::new());
        let lines = parse_lackey(&text, 1, &mut one, &mut one_ops).unwrap();
        assert_eq!(lines, 300_000);
        let mut r = ChunkReader::new(&text[..], parse_lackey, 1 << 20);
        let (mut a, mut o, mut all, mut all_ops) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while r.next_chunk(&mut a, &mut o).unwrap() {
            all.extend_from_slice(&a);
            all_ops.extend_from_slice(&o);
        }
        assert!(r.helper.is_some() || std::thread::available_parallelism().unwrap().get() == 1);
        assert_eq!((all, all_ops), (one, one_ops));
        for bad_line in [7u64, 150_000, 299_999] {
            let mut broken = text.clone();
            let at = memchr::memchr_iter(b'\n', &broken).nth(bad_line as usize - 2).unwrap() + 1;
            broken[at + 3] = b'z';
            let mut r = ChunkReader::new(&broken[..], parse_lackey, 16 << 20);
            let err = loop {
                match r.next_chunk(&mut a, &mut o) {
                    Ok(true) => {}
                    Ok(false) => panic!("line {bad_line} was not reported"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.line, bad_line, "{}", err.reason);
        }
    }
}
