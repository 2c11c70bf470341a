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

/// `valgrind --tool=lackey --trace-mem=yes` lines: `I  addr,size` (fetch),
/// ` L addr,size` (load), ` S addr,size` (store), ` M addr,size` (modify:
/// a load then a store). `==pid==` lines and blank lines are skipped.
pub fn parse_lackey(text: &[u8], first_line: u64, addrs: &mut Vec<u64>, ops: &mut Vec<u8>) -> Result<(), ParseError> {
    for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
        let line = trim(raw);
        if line.is_empty() || line.starts_with(b"==") {
            continue;
        }
        let err =
            |reason: &str| ParseError { line: first_line + n as u64, reason: format!("{reason}: {}", quote(raw)) };
        let (kind, rest) = line.split_first().ok_or_else(|| err("empty record"))?;
        let rest = trim(rest);
        let comma = rest.iter().position(|&c| c == b',').ok_or_else(|| err("expected ADDR,SIZE"))?;
        let addr = hex(&rest[..comma]).ok_or_else(|| err("bad hexadecimal address"))?;
        dec(trim(&rest[comma + 1..])).ok_or_else(|| err("bad size"))?;
        match kind {
            b'I' => {
                addrs.push(addr);
                ops.push(2);
            }
            b'L' => {
                addrs.push(addr);
                ops.push(0);
            }
            b'S' => {
                addrs.push(addr);
                ops.push(1);
            }
            b'M' => {
                addrs.extend([addr, addr]);
                ops.extend([0, 1]);
            }
            _ => return Err(err("unknown record type (expected I, L, S or M)")),
        }
    }
    Ok(())
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
    fn text_lines() {
        let (mut a, mut o) = (Vec::new(), Vec::new());
        parse_text(b"address,op\n0x1000,r\n4096 w\n# comment\n0X2000, X\n", 1, &mut a, &mut o).unwrap();
        assert_eq!(a, vec![0x1000, 4096, 0x2000]);
        assert_eq!(o, vec![0, 1, 2]);
        assert_eq!(parse_text(b"0x10 r\n0x20 q\n", 1, &mut a, &mut o).unwrap_err().line, 2);
        assert_eq!(parse_text(b"0x10 r\n12ab w\n", 5, &mut a, &mut o).unwrap_err().line, 6);
    }
}
