//! From bytes to text: what is refused before any line is read (invalid UTF-8, a NUL byte, a line
//! longer than [`MAX_LINE_BYTES`]), and the reader that stops at that limit.

use crate::error::ParseError;

/// `input` as text, or the error at its first offending byte.
pub(super) fn text<'a>(source_name: &str, input: &'a [u8]) -> Result<&'a str, ParseError> {
    // The first offending byte wins: invalid UTF-8, a NUL byte, or the first byte past
    // [`MAX_LINE_BYTES`] of a line.
    const TEXT_HELP: &str = "a ruleset is text; is this a binary file?";
    let utf8 = std::str::from_utf8(input);
    // The common case in three fast scans (the memchr crate's): valid text, no NUL, no line
    // too long.
    if let Ok(text) = utf8 {
        if memchr::memchr(0, input).is_none()
            && (input.len() <= MAX_LINE_BYTES || first_overlong(input).is_none())
        {
            return Ok(text);
        }
    }
    let bad_utf8 = utf8.as_ref().err().map(|e| e.valid_up_to());
    let nul = input.iter().position(|b| *b == 0);
    let overlong = first_overlong(input);
    let first_bad = [
        bad_utf8.map(|p| (p, "invalid UTF-8 in input".to_string(), TEXT_HELP)),
        nul.map(|p| (p, "NUL byte in input".to_string(), TEXT_HELP)),
        overlong.map(|p| {
            (
                p,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
                "a ruleset line is a few hundred bytes; reading stops here",
            )
        }),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(p, _, _)| *p);
    if let Some((pos, msg, help)) = first_bad {
        let (line, col_start, text) = locate(input, pos);
        return Err(
            ParseError::new(source_name, line, &text, col_start, col_start + 1, msg)
                .with_help(help),
        );
    }
    Ok(utf8.unwrap_or_default())
}

/// The longest line the parser reads, in bytes (without its newline). Real rulesets have lines of
/// a few hundred bytes; the limit is far above that (a 10 MB line is still parsed and its errors
/// located) and bounds what a reader must hold: [`read_bounded`] stops reading at it, so a
/// gigabyte without a newline on stdin is refused after 16 MiB.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The offset of the first byte past [`MAX_LINE_BYTES`] of a line, if a line is that long: the
/// last newline within [`MAX_LINE_BYTES`] + 1 bytes of each line's start is looked for from the
/// window's end, so a file of short lines is passed over one window at a time.
fn first_overlong(input: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        let window = input.get(start..)?;
        if window.len() <= MAX_LINE_BYTES {
            return None;
        }
        match memchr::memrchr(b'\n', window.get(..=MAX_LINE_BYTES).unwrap_or(window)) {
            Some(i) => start += i + 1,
            None => return Some(start + MAX_LINE_BYTES),
        }
    }
}

/// Reads `reader` to its end, or only until a line exceeds [`MAX_LINE_BYTES`] by a few bytes:
/// [`parse`](super::parse()) refuses what was read then with the line's position, and the rest
/// of the input (a gigabyte on stdin, say) is never held in memory.
///
/// # Example
/// ```
/// let mut input: &[u8] = b"*nat\nCOMMIT\n";
/// let bytes = sidecar_model::parse::read_bounded(&mut input).unwrap();
/// assert_eq!(bytes, b"*nat\nCOMMIT\n");
/// ```
pub fn read_bounded(reader: &mut impl std::io::Read) -> std::io::Result<Vec<u8>> {
    // Past the limit by one UTF-8 character, so that a character cut by the end of what was read
    // never starts before the limit (it would be reported as invalid UTF-8 instead).
    const STOP: usize = MAX_LINE_BYTES + 4;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Bytes of the current (unfinished) line read so far.
    let mut line_len = 0usize;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = chunk.get(..n).unwrap_or(&[]);
        out.extend_from_slice(got);
        match (
            got.iter().position(|b| *b == b'\n'),
            got.iter().rposition(|b| *b == b'\n'),
        ) {
            (Some(first), Some(last)) => {
                if line_len + first > MAX_LINE_BYTES {
                    return Ok(out);
                }
                line_len = n - last - 1;
            }
            _ => line_len += n,
        }
        if line_len >= STOP {
            return Ok(out);
        }
    }
}

/// Line number, byte offset and text of the line holding byte `pos`: the part before `pos` is
/// decoded (so columns count characters), the rest (at most 256 bytes of it) has each
/// non-ASCII or control byte replaced by `?`.
fn locate(input: &[u8], pos: usize) -> (usize, usize, String) {
    let before = input.get(..pos).unwrap_or(input);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = input
        .get(pos..)
        .and_then(|r| r.iter().position(|b| *b == b'\n'))
        .map_or(input.len(), |i| pos + i)
        .min(pos.saturating_add(256));
    let head = String::from_utf8_lossy(input.get(line_start..pos).unwrap_or(&[])).into_owned();
    let tail: String = input
        .get(pos..line_end)
        .unwrap_or(&[])
        .iter()
        .map(|b| {
            if b.is_ascii() && !b.is_ascii_control() {
                char::from(*b)
            } else {
                '?'
            }
        })
        .collect();
    let col = head.len();
    (line, col, head + &tail)
}

#[cfg(test)]
mod tests {
    use super::{first_overlong, MAX_LINE_BYTES as MAX};

    /// Line by line, as the window search must agree.
    fn naive(input: &[u8]) -> Option<usize> {
        let mut start = 0;
        for line in input.split(|b| *b == b'\n') {
            if line.len() > MAX {
                return Some(start + MAX);
            }
            start += line.len() + 1;
        }
        None
    }

    #[test]
    fn the_window_search_finds_the_first_overlong_line() {
        let line = |n: usize| {
            let mut l = vec![b'x'; n];
            l.push(b'\n');
            l
        };
        let cases: Vec<Vec<u8>> = vec![
            [line(10), line(MAX), line(MAX)].concat(),
            [line(10), line(MAX + 1), line(5)].concat(),
            [line(MAX - 3), line(2), line(MAX + 1)].concat(),
            [line(MAX), vec![b'y'; MAX + 1]].concat(),
            [line(MAX), vec![b'y'; MAX]].concat(),
            line(100).repeat(3),
        ];
        let found: Vec<Option<usize>> = cases.iter().map(|c| first_overlong(c)).collect();
        let expected: Vec<Option<usize>> = cases.iter().map(|c| naive(c)).collect();
        assert_eq!(found, expected);
        assert_eq!(
            found,
            [
                None,
                Some(11 + MAX),
                Some(MAX - 2 + 3 + MAX),
                Some(MAX + 1 + MAX),
                None,
                None
            ]
        );
    }
}
