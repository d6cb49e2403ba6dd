//! Fitting a Markdown report into a byte budget (`--max-bytes`), so that it can be posted as one
//! pull-request comment (GitHub refuses a comment over 65,536 characters).
//!
//! A renderer offers its renderings from the richest to the poorest (every class with its
//! Mermaid journeys first; then, step by step, the least important parts shortened); [`fit`]
//! takes the first that fits. Each shortened rendering says, right under its title, what it
//! shortened and where the whole report is ([`FULL_REPORT`]). The poorest rendering still names
//! every class (one table line each) and holds no code block or collapsed section, so that when
//! even it is too long, [`fit`] cuts it at a line boundary and closes with a line that says so:
//! the result never exceeds the budget. The budget counts bytes (UTF-8), which are never fewer
//! than GitHub's characters.

/// `--max-bytes` by default: GitHub's 65,536-character comment limit, less room for the marker
/// and the links the GitHub Action (`action.yml`) adds.
pub const DEFAULT_MAX_BYTES: usize = 60_000;

/// The least budget `--max-bytes` takes (other than 0, unlimited): room for a title, the note
/// on what was shortened and the closing line of a cut report.
pub const MIN_MAX_BYTES: usize = 2_000;

/// Where the whole report is, for a reader of a shortened one.
pub const FULL_REPORT: &str = "the whole report is the same command with `--max-bytes 0` \
     (posted by the GitHub Action: the run's `sidecar-verify-report` artifact)";

/// The first of `candidates` (richest first) no longer than `max` bytes (`None`: the first, whole
/// as it is). When none fits, the last one cut after its last line that fits, with a closing line
/// saying it was cut; never longer than `max` when `max` is at least [`MIN_MAX_BYTES`].
pub fn fit(max: Option<usize>, candidates: impl IntoIterator<Item = String>) -> String {
    let mut last = String::new();
    for c in candidates {
        match max {
            None => return c,
            Some(m) if c.len() <= m => return c,
            Some(_) => last = c,
        }
    }
    let Some(max) = max else { return last };
    cut(&last, max)
}

/// `text`'s whole lines that fit in `max` bytes with the closing line after them.
fn cut(text: &str, max: usize) -> String {
    let closing = format!("\n> ✂️ Cut here to fit {max} bytes: {FULL_REPORT}.\n");
    let room = max.saturating_sub(closing.len());
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if out.len() + line.len() > room {
            break;
        }
        out.push_str(line);
    }
    if out.len() + closing.len() <= max {
        out.push_str(&closing);
    }
    out
}

/// The note a shortened report carries under its title: what `shortened` and where the whole
/// report is.
pub fn note(max: usize, shortened: &[String]) -> String {
    format!(
        "> ✂️ Shortened to fit {max} bytes (a pull-request comment holds 65,536 characters): {}; \
         {FULL_REPORT}.\n",
        shortened.join("; ")
    )
}

/// `n`, `n / 2`, `n / 4`, …, `1`, `0`: how many of `n` items to keep, in shrinking steps.
pub fn halving(n: usize) -> impl Iterator<Item = usize> {
    let mut next = Some(n);
    std::iter::from_fn(move || {
        let k = next?;
        next = (k > 0).then_some(k / 2);
        Some(k)
    })
}

/// A Markdown table cell: `|` escaped, no line break.
pub fn cell(t: &str) -> String {
    t.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_that_fits_is_taken() {
        let c = || vec!["a".repeat(30), "b".repeat(20), "c".repeat(10)];
        assert_eq!(fit(Some(25), c()), "b".repeat(20));
        assert_eq!(fit(Some(30), c()), "a".repeat(30));
        assert_eq!(fit(None, c()), "a".repeat(30));
    }

    #[test]
    fn when_none_fits_the_last_is_cut_at_a_line() {
        let long: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = fit(Some(MIN_MAX_BYTES), ["x".repeat(5000), long.clone()]);
        assert!(out.len() <= MIN_MAX_BYTES, "{}", out.len());
        assert!(out.starts_with("line 0\nline 1\n"));
        assert!(out.contains("Cut here to fit 2000 bytes"));
        // Whole lines only, before the closing line.
        let body = out.split("\n> ✂️").next().unwrap();
        assert!(body.lines().all(|l| long.lines().any(|x| x == l)), "{body}");
    }

    #[test]
    fn halving_ends_at_zero() {
        assert_eq!(halving(10).collect::<Vec<_>>(), [10, 5, 2, 1, 0]);
        assert_eq!(halving(0).collect::<Vec<_>>(), [0]);
    }
}
