//! Fast parsers for text memory traces (the Python layer streams the file in
//! chunks and hands each chunk here): Valgrind lackey output and plain
//! "address op" lines. Each returns address and op-code arrays, or the line
//! number and reason of the first malformed line.

/// A malformed line: its number (1-based, counting from `first_line`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u64,
    pub reason: String,
}

/// A bad line as an error quotes it: at most 80 bytes, so a huge line is never echoed whole.
fn quote(raw: &[u8]) -> String {
    const SHOWN: usize = 80;
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(SHOWN)]);
    if raw.len() > SHOWN {
        format!("{shown:?}... ({} bytes)", raw.len())
    } else {
        format!("{shown:?}")
    }
}

/// A chunk parser: `(text, number of its first line, addrs out, ops out)`.
pub type Parser = fn(&[u8], u64, &mut Vec<u64>, &mut Vec<u8>) -> Result<(), ParseError>;

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Hex digit values, 0xff for a byte that is none.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// What each lackey record kind does: the op code, 3 for M (a load then a
/// store), 0xff for a byte that is no kind.
const LACKEY_OP: [u8; 256] = {
    let mut t = [0xffu8; 256];
    t[b'I' as usize] = 2;
    t[b'L' as usize] = 0;
    t[b'S' as usize] = 1;
    t[b'M' as usize] = 3;
    t
};

/// A parsed lackey line.
enum LackeyLine {
    Skip,
    Record { op: u8, addr: u64 },
}

/// One lackey line in one pass: the common shape is `I  0400d7d4,8` or
/// ` S 7ff000398,8`; blank and `==pid==` lines are skipped.
#[inline]
fn lackey_line(line: &[u8]) -> Result<LackeyLine, &'static str> {
    let mut i = 0;
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    let Some(&kind) = line.get(i) else { return Ok(LackeyLine::Skip) };
    if kind == b'=' || kind.is_ascii_whitespace() {
        return if (kind == b'=' && line.get(i + 1) == Some(&b'=')) || trim(line).is_empty() {
            Ok(LackeyLine::Skip)
        } else {
            Err("unknown record type (expected I, L, S or M)")
        };
    }
    let op = LACKEY_OP[kind as usize];
    if op == 0xff {
        return Err("unknown record type (expected I, L, S or M)");
    }
    i += 1;
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    let (mut addr, digits_at) = (0u64, i);
    while i < line.len() {
        let d = HEX[line[i] as usize];
        if d == 0xff {
            break;
        }
        addr = (addr << 4) | d as u64;
        i += 1;
    }
    if i == digits_at || i - digits_at > 16 {
        return Err("bad hexadecimal address");
    }
    if line.get(i) != Some(&b',') {
        return Err(if i < line.len() && line[i] != b' ' { "bad hexadecimal address" } else { "expected ADDR,SIZE" });
    }
    let size = trim(&line[i + 1..]);
    if size.is_empty() || !size.iter().all(u8::is_ascii_digit) {
        return Err("bad size");
    }
    Ok(LackeyLine::Record { op, addr })
}

/// The common lackey line (`I  0400d7d4,8` + newline) from `at`: its op
/// (3 for M), address and the index after its newline; None for anything
/// else, which `lackey_line` then handles (skips, odd spacing, errors).
#[inline(always)]
fn lackey_fast(b: &[u8], mut i: usize) -> Option<(u8, u64, usize)> {
    while *b.get(i)? == b' ' {
        i += 1;
    }
    let op = LACKEY_OP[*b.get(i)? as usize];
    if op == 0xff {
        return None;
    }
    i += 1;
    while *b.get(i)? == b' ' {
        i += 1;
    }
    let (mut addr, digits_at) = (0u64, i);
    loop {
        let d = HEX[*b.get(i)? as usize];
        if d == 0xff {
            break;
        }
        addr = (addr << 4) | d as u64;
        i += 1;
    }
    if i == digits_at || i - digits_at > 16 || b[i] != b',' {
        return None;
    }
    i += 1;
    let size_at = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == size_at || *b.get(i)? != b'\n' {
        return None;
    }
    Some((op, addr, i + 1))
}

/// `valgrind --tool=lackey --trace-mem=yes` lines: `I  addr,size` (fetch),
/// ` L addr,size` (load), ` S addr,size` (store), ` M addr,size` (modify:
/// a load then a store). `==pid==` lines and blank lines are skipped.
pub fn parse_lackey(text: &[u8], first_line: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<(), ParseError> {
    let mut line_no = first_line;
    let mut i = 0;
    while i < text.len() {
        let (op, addr) = match lackey_fast(text, i) {
            Some((op, addr, next)) => {
                i = next;
                (op, addr)
            }
            None => {
                let end = memchr::memchr(b'\n', &text[i..]).map_or(text.len(), |e| i + e);
                let raw = &text[i..end];
                i = end + 1;
                let line = raw.strip_suffix(b"\r").unwrap_or(raw);
                match lackey_line(line) {
                    Ok(LackeyLine::Record { op, addr }) => (op, addr),
                    Ok(LackeyLine::Skip) => {
                        line_no += 1;
                        continue;
                    }
                    Err(reason) => {
                        return Err(ParseError { line: line_no, reason: format!("{reason}: {}", quote(raw)) })
                    }
                }
            }
        };
        if op == 3 {
            addrs.extend([addr, addr]);
            ops.extend([0, 1]);
        } else {
            addrs.push(addr);
            ops.push(op);
        }
        line_no += 1;
    }
    Ok(())
}

/// Reads a text trace from any byte source in chunks of whole lines and
/// parses each: host memory stays bounded by the chunk size, however long
/// the file, and a line longer than `MAX_LINE` (a binary file, /dev/zero)
/// is an error rather than a growing buffer.
pub struct ChunkReader<R> {
    src: R,
    parser: Parser,
    buf: Vec<u8>,
    /// Bytes of `buf` holding an unfinished line carried to the next chunk.
    carried: usize,
    /// The number of the first line in `buf`.
    line: u64,
    done: bool,
}

/// The longest line a text trace may have.
pub const MAX_LINE: usize = 1 << 16;

impl<R: std::io::Read> ChunkReader<R> {
    pub fn new(src: R, parser: Parser, chunk_bytes: usize) -> Self {
        let size = chunk_bytes.max(MAX_LINE) + MAX_LINE;
        ChunkReader { src, parser, buf: vec![0; size], carried: 0, line: 1, done: false }
    }

    /// Parse the next chunk into `addrs` and `ops` (cleared first); false at the end.
    pub fn next_chunk(&mut self, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<bool, ParseError> {
        addrs.clear();
        ops.clear();
        if self.done {
            return Ok(false);
        }
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
        let cut = if self.done { len } else { memchr::memrchr(b'\n', &self.buf[..len]).map_or(0, |i| i + 1) };
        if !self.done && len - cut > MAX_LINE {
            let line = self.line + memchr::memchr_iter(b'\n', &self.buf[..cut]).count() as u64;
            return Err(ParseError {
                line,
                reason: format!("longer than {MAX_LINE} bytes: not a text or lackey trace"),
            });
        }
        let whole = &self.buf[..cut];
        addrs.reserve(whole.len() / 12);
        ops.reserve(whole.len() / 12);
        (self.parser)(whole, self.line, addrs, ops)?;
        self.line += memchr::memchr_iter(b'\n', whole).count() as u64;
        self.buf.copy_within(cut..len, 0);
        self.carried = len - cut;
        Ok(!self.done || !addrs.is_empty() || cut > 0)
    }
}

/// Plain lines of `ADDRESS OP` or `ADDRESS,OP` (CSV): the address hex
/// (with 0x) or decimal, the op r/w/x (or R/W/X, read/write/exec, 0/1/2).
/// Blank lines and lines starting with `#` are skipped; so is a first line
/// that is a CSV header (starts with a letter).
pub fn parse_text(text: &[u8], first_line: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<(), ParseError> {
    for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
        let line = trim(raw);
        let lineno = first_line + n as u64;
        if line.is_empty() || line.starts_with(b"#") || (lineno == 1 && line[0].is_ascii_alphabetic()) {
            continue;
        }
        let err = |reason: &str| ParseError { line: lineno, reason: format!("{reason}: {}", quote(raw)) };
        let sep = line
            .iter()
            .position(|&c| c == b',' || c.is_ascii_whitespace())
            .ok_or_else(|| err("expected ADDRESS OP"))?;
        let (a, o) = (trim(&line[..sep]), trim(&line[sep + 1..]));
        let addr = if let Some(h) = a.strip_prefix(b"0x").or_else(|| a.strip_prefix(b"0X")) { hex(h) } else { dec(a) }
            .ok_or_else(|| err("bad address (hex needs 0x)"))?;
        let op = match o.to_ascii_lowercase().as_slice() {
            b"r" | b"read" | b"0" | b"l" => 0,
            b"w" | b"write" | b"1" | b"s" => 1,
            b"x" | b"exec" | b"2" | b"i" => 2,
            _ => return Err(err("bad op (expected r, w or x)")),
        };
        addrs.push(addr);
        ops.push(op);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lackey_lines() {
        let text = b"==123== Lackey\nI  04016a10,3\n S 04222cac,8\n L 04222cb0,4\n M 0421d4e8,4\n\n";
        let (mut a, mut o) = (Vec::new(), Vec::new());
        parse_lackey(text, 1, &mut a, &mut o).unwrap();
        assert_eq!(a, vec![0x04016a10, 0x04222cac, 0x04222cb0, 0x0421d4e8, 0x0421d4e8]);
        assert_eq!(o, vec![2, 1, 0, 0, 1]);
        let bad = parse_lackey(b"I  0401,3\n Q 1,1\n", 10, &mut a, &mut o).unwrap_err();
        assert_eq!(bad.line, 11);
        assert!(parse_lackey(b" L zz,4\n", 1, &mut a, &mut o).is_err());
        assert!(parse_lackey(b" L 1000\n", 1, &mut a, &mut o).is_err());
    }

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
        let long = vec![b'1'; MAX_LINE * 3];
        let e = ChunkReader::new(&long[..], parse_text, 1).next_chunk(&mut a, &mut o).unwrap_err();
        assert!(e.reason.contains("longer than"), "{}", e.reason);
        let mut empty = ChunkReader::new(&b""[..], parse_text, 1);
        assert!(!empty.next_chunk(&mut a, &mut o).unwrap());
    }

    #[test]
    fn text_lines() {
        let (mut a, mut o) = (Vec::new(), Vec::new());
        parse_text(b"address,op\n0x1000,r\n4096 w\n# comment\n0X2000, X\n", 1, &mut a, &mut o).unwrap();
        assert_eq!(a, vec![0x1000, 4096, 0x2000]);
        assert_eq!(o, vec![0, 1, 2]);
        assert_eq!(parse_text(b"0x10 r\n0x20 q\n", 1, &mut a, &mut o).unwrap_err().line, 2);
        assert_eq!(parse_text(b"0x10 r\n12ab w\n", 5, &mut a, &mut o).unwrap_err().line, 6);
    }
}
