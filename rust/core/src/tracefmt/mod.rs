//! Fast parsers for text memory traces (the Python layer streams the file in
//! chunks and hands each chunk here): Valgrind lackey output and plain
//! "address op" lines. Each returns address and op-code arrays, or the line
//! number and reason of the first malformed line. `ChunkReader` streams a
//! file through them.

mod reader;

pub use reader::{ChunkReader, MAX_LINE};

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

/// A chunk parser: `(text, number of its first line, addrs out, ops out)`;
/// returns how many newlines it read past (so the caller need not count).
pub type Parser = fn(&[u8], u64, &mut Vec<u64>, &mut Vec<u8>) -> Result<u64, ParseError>;

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

/// Per byte of `x`, 0x80 where the byte is at least `m` (bytes below 0x80, m <= 0x80).
#[inline(always)]
const fn bytes_at_least(x: u64, m: u8) -> u64 {
    x.wrapping_add(ONES * (0x80 - m) as u64) & HIGHS
}

/// Per byte of `x`, 0x80 where the byte is at most `n` (bytes below 0x80).
#[inline(always)]
const fn bytes_at_most(x: u64, n: u8) -> u64 {
    (ONES * (0x80 + n) as u64).wrapping_sub(x) & HIGHS
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight ASCII hex digits (first digit in the lowest byte, as read from
/// memory) as their value, in a few word operations instead of a loop;
/// None if any byte is not a hex digit.
#[inline(always)]
fn hex8(x: u64) -> Option<u32> {
    let lower = x | (ONES * 0x20); // letters to lower case (digits keep their value)
    let digit = bytes_at_least(x, b'0') & bytes_at_most(x, b'9');
    let letter = bytes_at_least(lower, b'a') & bytes_at_most(lower, b'f');
    if x & HIGHS != 0 || (digit | letter) != HIGHS {
        return None;
    }
    // Each byte's value: its low nibble, plus 9 for a letter (bit 6 set).
    let mut v = (x & (ONES * 0x0f)) + ((x >> 6) & ONES) * 9;
    // Fold neighbouring digits together: 8 nibbles, 4 bytes, 2 halves, 1 word.
    v = ((v << 4) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    v = ((v << 8) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    v = ((v << 16) + (v >> 32)) & 0xffff_ffff;
    Some(v as u32)
}

/// The commonest lackey line, as valgrind prints it: a three-byte prefix
/// (`I  `, ` L `, ` S `, ` M `), at least eight hex digits, `,size` and a
/// newline, starting at `i`. The first eight digits are read as one word;
/// the rest is byte loops whose branches a real trace's regular shape makes
/// predictable, so the next line's start is known early. Returns the op
/// (3 for M), the address and where the next line starts; None for
/// anything else, which `lackey_line` then handles.
#[inline(always)]
fn lackey_record(b: &[u8], i: usize) -> Option<(u8, u64, usize)> {
    let &[first, second, gap] = b.get(i..)?.first_chunk::<3>()?;
    // `I  ` has the kind first, the others second.
    let (kind, space) = if first == b' ' { (second, first) } else { (first, second) };
    let op = LACKEY_OP[kind as usize];
    if op == 0xff || space != b' ' || gap != b' ' {
        return None;
    }
    let digits_at = i + 3;
    let mut addr = hex8(u64::from_le_bytes(*b.get(digits_at..)?.first_chunk::<8>()?))? as u64;
    let mut j = digits_at + 8;
    loop {
        let d = HEX[*b.get(j)? as usize];
        if d == 0xff {
            break;
        }
        addr = (addr << 4) | d as u64;
        j += 1;
    }
    if j - digits_at > 16 || b[j] != b',' {
        return None;
    }
    j += 1;
    let size_at = j;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    if j == size_at || *b.get(j)? != b'\n' {
        return None;
    }
    Some((op, addr, j + 1))
}

/// `valgrind --tool=lackey --trace-mem=yes` lines: `I  addr,size` (fetch),
/// ` L addr,size` (load), ` S addr,size` (store), ` M addr,size` (modify:
/// a load then a store). `==pid==` lines and blank lines are skipped.
pub fn parse_lackey(text: &[u8], first_line: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<u64, ParseError> {
    // Accesses gather in small local arrays, moved to the output in runs:
    // each line writes two slots and keeps the second only for M, so the
    // common path has no branch on the record kind and no Vec bookkeeping.
    let mut run = AccessRun::default();
    let (mut i, mut line_no) = (0, first_line);
    while i < text.len() {
        let (op, addr) = match lackey_record(text, i) {
            Some((op, addr, next)) => {
                i = next;
                (op, addr)
            }
            None => {
                let end = memchr::memchr(b'\n', &text[i..]).map_or(text.len(), |e| i + e);
                let raw = &text[i..end];
                i = end + 1;
                match lackey_line(raw.strip_suffix(b"\r").unwrap_or(raw)) {
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
        run.push_record(op, addr, addrs, ops);
        line_no += 1;
    }
    run.flush(addrs, ops);
    let unterminated = !text.is_empty() && !text.ends_with(b"\n");
    Ok(line_no - first_line - unterminated as u64)
}

/// Accesses parsed but not yet moved to the output vectors.
struct AccessRun {
    addrs: [u64; AccessRun::SLOTS],
    ops: [u8; AccessRun::SLOTS],
    len: usize,
}

impl Default for AccessRun {
    fn default() -> Self {
        AccessRun { addrs: [0; AccessRun::SLOTS], ops: [0; AccessRun::SLOTS], len: 0 }
    }
}

impl AccessRun {
    const SLOTS: usize = 256;

    /// One lackey record: op 0..=2, or 3 for M (a load, then a store).
    #[inline(always)]
    fn push_record(&mut self, op: u8, addr: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) {
        if self.len + 2 > Self::SLOTS {
            self.flush(addrs, ops);
        }
        let modify = op == 3;
        let n = self.len;
        self.addrs[n] = addr;
        self.addrs[n + 1] = addr;
        self.ops[n] = if modify { 0 } else { op };
        self.ops[n + 1] = 1;
        self.len = n + 1 + modify as usize;
    }

    fn flush(&mut self, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) {
        addrs.extend_from_slice(&self.addrs[..self.len]);
        ops.extend_from_slice(&self.ops[..self.len]);
        self.len = 0;
    }
}

/// Plain lines of `ADDRESS OP` or `ADDRESS,OP` (CSV): the address hex
/// (with 0x) or decimal, the op r/w/x (or R/W/X, read/write/exec, 0/1/2).
/// Blank lines and lines starting with `#` are skipped; so is a first line
/// that is a CSV header (starts with a letter).
pub fn parse_text(text: &[u8], first_line: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<u64, ParseError> {
    let mut pieces = 0;
    for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
        pieces = n as u64 + 1;
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
    Ok(pieces - 1) // the pieces between newlines, less one: the newlines
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

    /// The word-at-a-time hex reader against a byte loop, for every byte
    /// value in every position (and random words).
    #[test]
    fn hex8_agrees_with_the_byte_loop() {
        let naive = |x: u64| -> Option<u32> {
            x.to_le_bytes()
                .iter()
                .try_fold(0u32, |v, &c| (HEX[c as usize] != 0xff).then(|| (v << 4) | HEX[c as usize] as u32))
        };
        let base = u64::from_le_bytes(*b"0a1B2c3D");
        for pos in 0..8 {
            for c in 0..=255u64 {
                let x = (base & !(0xff << (pos * 8))) | (c << (pos * 8));
                assert_eq!(hex8(x), naive(x), "{:?}", x.to_le_bytes());
            }
        }
        let mut rng = crate::testing::XorShift::new(11);
        for _ in 0..100_000 {
            let digits = b"0123456789abcdefABCDEF,: gG/@`";
            let x = u64::from_le_bytes(std::array::from_fn(|_| digits[rng.below(digits.len() as u64) as usize]));
            assert_eq!(hex8(x), naive(x));
        }
    }

    /// Lines near the common shape: the word-at-a-time path either declines
    /// or reads exactly what the complete line parser reads.
    #[test]
    fn lackey_record_agrees_with_the_line_parser() {
        let mut rng = crate::testing::XorShift::new(12);
        let alphabet = b"ILSMX 0123456789abcdefF,\n\r=g";
        let mut accepted = 0;
        for _ in 0..200_000 {
            let mut line: Vec<u8> = match rng.below(3) {
                0 => format!(
                    "{}{:08x},{}\n",
                    ["I  ", " L ", " S ", " M "][rng.below(4) as usize],
                    rng.below(1 << 40),
                    rng.below(64)
                )
                .into_bytes(),
                1 => (0..rng.below(24)).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect(),
                _ => format!(" L {:x},8\n", rng.below(u64::MAX)).into_bytes(),
            };
            if rng.below(4) == 0 && !line.is_empty() {
                let at = rng.below(line.len() as u64) as usize;
                line[at] = alphabet[rng.below(alphabet.len() as u64) as usize];
            }
            line.extend_from_slice(b"........"); // what follows in a buffer
            let Some((op, addr, next)) = lackey_record(&line, 0) else { continue };
            let line = &line[..next - 1];
            {
                let full = lackey_line(line);
                assert!(
                    matches!(full, Ok(LackeyLine::Record { op: o, addr: a }) if (o, a) == (op, addr)),
                    "{:?}",
                    String::from_utf8_lossy(line)
                );
                accepted += 1;
            }
        }
        assert!(accepted > 50_000, "the common shape must take the word path ({accepted})");
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
