//! Errors of the model crate: where in the input, what was found, what was expected.

use std::fmt;

use miette::{Diagnostic, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// The longest stretch of a line an error message quotes: a 10 MB line must not be echoed back.
const EXCERPT_MAX: usize = 160;

/// Input that could not be read as a ruleset. Displays as `source:line:column: message`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct ParseError {
    /// The input's name (a path, or `<stdin>`).
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
    /// A hint: the option meant, the form expected.
    pub help: Option<String>,
    excerpt: Box<Excerpt>,
}

impl ParseError {
    /// An error at byte `start..end` of `line_text`, which is line `line` of `source_name`.
    pub fn new(
        source_name: &str,
        line: usize,
        line_text: &str,
        start: usize,
        end: usize,
        message: impl Into<String>,
    ) -> ParseError {
        let start = floor_char(line_text, start.min(line_text.len()));
        let end = floor_char(line_text, end.clamp(start, line_text.len()));
        let column = line_text.get(..start).map_or(0, |p| p.chars().count()) + 1;
        ParseError {
            source_name: source_name.to_string(),
            line,
            column,
            message: shorten_quoted(&message.into()),
            help: None,
            excerpt: Box::new(Excerpt::new(
                source_name,
                line,
                line_text,
                start,
                end,
                column - 1,
            )),
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> ParseError {
        self.help = Some(shorten_quoted(&help.into()));
        self
    }
}

/// The longest piece of user input (between backticks) a message repeats.
const QUOTED_MAX: usize = 64;

/// Cuts every backticked piece of user input longer than [`QUOTED_MAX`] characters, so that a
/// message about a 10 MB token stays short.
fn shorten_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(1024));
    for (i, part) in msg.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > QUOTED_MAX {
            out.extend(part.chars().take(QUOTED_MAX));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    out
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Diagnostic for ParseError {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.excerpt.as_ref())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some("here".into()), self.excerpt.span),
        )))
    }
}

/// The part of the offending line an error shows, with its real line number.
#[derive(Debug, Clone)]
struct Excerpt {
    name: String,
    line: usize,
    /// 0-based column (in characters) of the span's start in the whole line.
    column: usize,
    text: String,
    span: SourceSpan,
}

impl Excerpt {
    fn new(
        name: &str,
        line: usize,
        line_text: &str,
        start: usize,
        end: usize,
        column: usize,
    ) -> Excerpt {
        // A span longer than the excerpt is cut: only its start is shown.
        let end = floor_char(line_text, end.min(start + EXCERPT_MAX / 2));
        let from = floor_char(line_text, start.saturating_sub(EXCERPT_MAX / 2));
        let to = floor_char(
            line_text,
            (end.max(start + 1) + EXCERPT_MAX / 2).min(line_text.len()),
        );
        let to = to.max(from);
        let raw = line_text.get(from..to).unwrap_or("");
        // Control characters (a NUL byte, say) would garble the terminal.
        // Each is replaced byte for byte so that the span stays put.
        let mut text = String::with_capacity(raw.len() + 3);
        for c in raw.chars() {
            if c.is_control() && c != '\t' {
                text.extend(std::iter::repeat_n('?', c.len_utf8()));
            } else {
                text.push(c);
            }
        }
        // Mark a cut-off start so the reader knows the line goes on to the left.
        let cut = if from > 0 { "..." } else { "" };
        text.insert_str(0, cut);
        let start = start + cut.len();
        let end = end + cut.len();
        let s = start - from;
        let e = (end - from).min(text.len()).max(s);
        let len = if e > s {
            e - s
        } else {
            usize::from(s < text.len())
        };
        let span_start = text_len_floor(&text, s);
        Excerpt {
            name: name.to_string(),
            line,
            column,
            text,
            span: (span_start, len).into(),
        }
    }
}

fn text_len_floor(text: &str, s: usize) -> usize {
    floor_char(text, s.min(text.len()))
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _context_lines_before: usize,
        _context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        if span.offset() + span.len() > self.text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            (0, self.text.len()).into(),
            self.line.saturating_sub(1),
            self.column,
            1,
        )))
    }
}
