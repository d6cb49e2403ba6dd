//! Splits one line into arguments the way iptables-restore does (`add_param_to_argv`).
//!
//! Whitespace separates arguments. A double quote opens a quoted part, inside which a backslash
//! takes the next character literally; the closing quote ends the argument. Outside quotes a
//! backslash is an ordinary character. Each argument remembers the byte range it came from.

use std::borrow::Cow;

/// One argument of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The argument after quote removal.
    pub text: Text<'a>,
    /// Byte offset of its first character in the line.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// An argument's text: a slice of the line it was read from, or, when quotes were joined to
/// what stood before them or a backslash escaped a character, a string of its own. A line is
/// split without allocating for each argument: a ruleset of 150,000 lines has two million.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Text<'_>> for &str {
    fn eq(&self, other: &Text<'_>) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Text<'_>> for str {
    fn eq(&self, other: &Text<'_>) -> bool {
        *self == *other.0
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Text<'a> {
        Text(Cow::Borrowed(s))
    }
}

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

/// Why a line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits `line` into arguments.
pub fn tokenize(line: &str) -> Result<Vec<Token<'_>>, LexError> {
    let mut out = Vec::new();
    tokenize_into(line, &mut out)?;
    Ok(out)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The offset of the first white space or `"` in `b` from `i` on (`b.len()` when none): eight
/// bytes at a time, a word of which is first tested for any byte below `#` (0x23: the white
/// space, `"`, `!` and control characters), then looked at byte by byte from that byte.
fn word_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        // The lowest byte flagged is exactly the first below 0x23 (no borrow reaches it).
        let below = x.wrapping_sub(ONES * 0x23) & !x & HIGH;
        if below == 0 {
            i += 8;
            continue;
        }
        let j = i + (below.trailing_zeros() / 8) as usize;
        if b.get(j).is_some_and(|&c| is_space(c) || c == b'"') {
            return j;
        }
        i = j + 1;
    }
    while b.get(i).is_some_and(|&c| !is_space(c) && c != b'"') {
        i += 1;
    }
    i
}

/// [`tokenize`] into `out` (cleared first), so that a caller reading many lines reuses one
/// vector. Every delimiter is ASCII, so the byte offsets where it cuts are character
/// boundaries.
pub fn tokenize_into<'a>(line: &'a str, out: &mut Vec<Token<'a>>) -> Result<(), LexError> {
    out.clear();
    let b = line.as_bytes();
    let slice = |from: usize, to: usize| line.get(from..to).unwrap_or_default();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if is_space(c) {
            i += 1;
            continue;
        }
        let start = i;
        i = word_end(b, i);
        if b.get(i) != Some(&b'"') {
            out.push(Token {
                text: slice(start, i).into(),
                start,
                end: i,
            });
            continue;
        }
        // A quoted part, joined to the run of ordinary characters before it.
        let quote = i;
        let mut owned = (start < quote).then(|| slice(start, quote).to_string());
        i += 1;
        let mut seg = i;
        loop {
            // Straight to the next quote or backslash: the rest is the quoted text.
            i = memchr::memchr2(b'"', b'\\', b.get(i..).unwrap_or_default())
                .map_or(b.len(), |n| i + n);
            match b.get(i) {
                None => {
                    return Err(LexError {
                        at: quote,
                        message: "unterminated quoted string".into(),
                    })
                }
                Some(b'\\') => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(slice(seg, i));
                    i += 1;
                    let Some(ch) = line.get(i..).and_then(|r| r.chars().next()) else {
                        return Err(LexError {
                            at: quote,
                            message: "unterminated quoted string".into(),
                        });
                    };
                    s.push(ch);
                    i += ch.len_utf8();
                    seg = i;
                }
                Some(b'"') => {
                    let text = match owned.take() {
                        None => slice(seg, i).into(),
                        Some(mut s) => {
                            s.push_str(slice(seg, i));
                            s.into()
                        }
                    };
                    out.push(Token {
                        text,
                        start,
                        end: i + 1,
                    });
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text.as_str().to_owned())
            .collect()
    }

    #[test]
    fn splits_like_iptables_restore() {
        assert_eq!(texts("-A  X\t-j Y"), ["-A", "X", "-j", "Y"]);
        assert_eq!(
            texts(r#"--comment "envoy\'s \"rule\"""#),
            ["--comment", r#"envoy's "rule""#]
        );
        // Outside quotes a backslash is literal; a closing quote ends the argument.
        assert_eq!(texts(r"a\b"), [r"a\b"]);
        assert_eq!(texts(r#"a"b c"d"#), ["ab c", "d"]);
        assert_eq!(texts(r#""""#), [""]);
        let t = tokenize(r#"-m "x y" z"#).unwrap();
        assert_eq!((t[1].start, t[1].end), (3, 8));
        assert!(tokenize(r#"--comment "open"#).is_err());
    }

    /// The eight-bytes-at-a-time word scan ends where a byte-by-byte scan does, around `!`,
    /// control characters, non-ASCII text and the word's place in its eight bytes.
    #[test]
    fn word_end_agrees_with_a_byte_scan() {
        let words = [
            "",
            "a",
            "!",
            "é",
            "x\u{1}y",
            "ab!cd",
            "KUBE-SVC-ABCDEFGH",
            "0123456789abcdef!",
            "naïve-ünïcode-word",
            "\u{7f}\u{80}x",
            "#$%&",
            "é!é!é!é!é!",
        ];
        for w in words {
            for end in [" ", "\t", "\r", "\n", "\"", ""] {
                for lead in 0..9 {
                    let text = format!("{}{w}{end}tail", "y".repeat(lead));
                    let b = text.as_bytes();
                    let naive = b
                        .iter()
                        .position(|&c| is_space(c) || c == b'"')
                        .unwrap_or(b.len());
                    assert_eq!(word_end(b, 0), naive, "{text:?}");
                }
            }
        }
    }
}
