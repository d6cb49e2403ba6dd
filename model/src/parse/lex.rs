//! Splits one line into arguments the way iptables-restore does (`add_param_to_argv`).
//!
//! Whitespace separates arguments. A double quote opens a quoted part, inside which a backslash
//! takes the next character literally; the closing quote ends the argument. Outside quotes a
//! backslash is an ordinary character. Each argument remembers the byte range it came from.

/// One argument of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The argument after quote removal.
    pub text: String,
    /// Byte offset of its first character in the line.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
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
pub fn tokenize(line: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start: Option<usize> = None;
    let mut quote_at: Option<usize> = None;
    let mut escaped = false;
    // The start of the current run of ordinary characters outside quotes: copied into `buf` as
    // one slice when the run ends (at a quote, whitespace or the end of the line).
    let mut run: Option<usize> = None;
    let flush = |buf: &mut String, run: &mut Option<usize>, end: usize| {
        if let Some(r) = run.take() {
            buf.push_str(line.get(r..end).unwrap_or_default());
        }
    };
    for (i, c) in line.char_indices() {
        if let Some(_q) = quote_at {
            if escaped {
                buf.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quote_at = None;
                out.push(Token {
                    text: std::mem::take(&mut buf),
                    start: start.unwrap_or(i),
                    end: i + 1,
                });
                start = None;
            } else {
                buf.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                flush(&mut buf, &mut run, i);
                quote_at = Some(i);
                start.get_or_insert(i);
            }
            ' ' | '\t' | '\n' | '\r' => {
                flush(&mut buf, &mut run, i);
                if let Some(s) = start.take() {
                    out.push(Token {
                        text: std::mem::take(&mut buf),
                        start: s,
                        end: i,
                    });
                }
            }
            _ => {
                start.get_or_insert(i);
                run.get_or_insert(i);
            }
        }
    }
    if let Some(q) = quote_at {
        return Err(LexError {
            at: q,
            message: "unterminated quoted string".into(),
        });
    }
    flush(&mut buf, &mut run, line.len());
    if let Some(s) = start {
        out.push(Token {
            text: buf,
            start: s,
            end: line.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
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
}
