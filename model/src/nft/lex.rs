//! The tokens of nft's language, each with the line and byte span it was written at.
//!
//! nft's grammar is not line-based (a `table … { … }` block spans lines), but a command or a
//! rule ends at a newline or a `;` outside braces, so newlines are tokens too. A backslash at
//! the end of a line joins it with the next; `#` starts a comment up to the end of the line.

use crate::error::ParseError;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word: a keyword, a name, a number, an address, a port range (`10.0.0.0/8`, `:15001`,
    /// `1000-2000`, `0x539`).
    Word,
    /// A double-quoted string (the text is without the quotes).
    Str,
    /// One of `{ } ; , & | == != < > <= >=`.
    Punct,
    /// The end of a line.
    Newline,
}

/// A token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    /// 1-based line.
    pub line: usize,
    /// Byte offsets in that line.
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    /// Whether this is the punctuation or word `s`.
    pub fn is(&self, s: &str) -> bool {
        matches!(self.kind, Kind::Word | Kind::Punct) && self.text == s
    }
}

/// The input split into tokens, and its lines for error excerpts.
pub(crate) struct Tokens<'a> {
    pub source: &'a str,
    pub lines: Vec<&'a str>,
    pub toks: Vec<Token<'a>>,
}

impl<'a> Tokens<'a> {
    /// An error at `tok`.
    pub fn error(&self, tok: &Token<'_>, message: impl Into<String>) -> ParseError {
        let line = self
            .lines
            .get(tok.line.saturating_sub(1))
            .copied()
            .unwrap_or("");
        ParseError::new(self.source, tok.line, line, tok.start, tok.end, message)
    }

    /// An error at the end of line `line`.
    pub fn error_at_end(&self, line: usize, message: impl Into<String>) -> ParseError {
        let text = self
            .lines
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or("");
        ParseError::new(self.source, line, text, text.len(), text.len(), message)
    }
}

fn is_punct_start(b: u8) -> bool {
    matches!(
        b,
        b'{' | b'}' | b';' | b',' | b'&' | b'|' | b'=' | b'!' | b'<' | b'>'
    )
}

/// Splits `text` (named `source` in errors) into tokens.
/// An error at `tok` while lexing (before the tokens exist).
fn error(source: &str, lines: &[&str], tok: &Token<'_>, message: impl Into<String>) -> ParseError {
    Tokens {
        source,
        lines: lines.to_vec(),
        toks: Vec::new(),
    }
    .error(tok, message)
}

pub(crate) fn lex<'a>(source: &'a str, text: &'a str) -> Result<Tokens<'a>, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut toks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let b = line.as_bytes();
        let mut at = 0;
        let mut joined = false;
        while let Some(&c) = b.get(at) {
            let start = at;
            match c {
                // Carriage returns and form feeds separate as blanks do.
                b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' => at += 1,
                b'#' => break,
                b'\\'
                    if b.get(at + 1..)
                        .is_some_and(|r| r.iter().all(|c| c.is_ascii_whitespace())) =>
                {
                    joined = true;
                    break;
                }
                b'"' => {
                    let close = b
                        .get(at + 1..)
                        .and_then(|r| r.iter().position(|&c| c == b'"'))
                        .map(|p| at + 1 + p);
                    let Some(close) = close else {
                        let tok = Token {
                            kind: Kind::Str,
                            text: "",
                            line: n,
                            start,
                            end: b.len(),
                        };
                        return Err(error(source, &lines, &tok, "unterminated string"));
                    };
                    toks.push(Token {
                        kind: Kind::Str,
                        text: line.get(at + 1..close).unwrap_or(""),
                        line: n,
                        start,
                        end: close + 1,
                    });
                    at = close + 1;
                }
                _ if is_punct_start(c) => {
                    let two = line.get(at..at + 2).unwrap_or("");
                    let len = if matches!(two, "==" | "!=" | "<=" | ">=") {
                        2
                    } else {
                        1
                    };
                    let text = line.get(at..at + len).unwrap_or("");
                    if text == "=" || text == "!" {
                        let tok = Token {
                            kind: Kind::Punct,
                            text,
                            line: n,
                            start,
                            end: at + 1,
                        };
                        return Err(error(source, &lines, &tok, format!("unexpected `{text}`")));
                    }
                    toks.push(Token {
                        kind: Kind::Punct,
                        text,
                        line: n,
                        start,
                        end: at + len,
                    });
                    at += len;
                }
                _ => {
                    while let Some(&c) = b.get(at) {
                        if matches!(c, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' | b'"' | b'#')
                            || is_punct_start(c)
                        {
                            break;
                        }
                        at += 1;
                    }
                    let tok = Token {
                        kind: Kind::Word,
                        text: line.get(start..at).unwrap_or(""),
                        line: n,
                        start,
                        end: at,
                    };
                    // A word ending in `\` (before a comment, say): printed at the end of a line,
                    // it would continue that line (fuzz regression nft-backslash-before-comment).
                    if tok.text.ends_with('\\') {
                        return Err(error(
                            source,
                            &lines,
                            &tok,
                            "a word ends in `\\`, which only continues a line at its end",
                        ));
                    }
                    toks.push(tok);
                }
            }
        }
        if !joined {
            toks.push(Token {
                kind: Kind::Newline,
                text: "",
                line: n,
                start: b.len(),
                end: b.len(),
            });
        }
    }
    Ok(Tokens {
        source,
        lines,
        toks,
    })
}
