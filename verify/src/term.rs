//! The command line's terminal habits, in one place: `--quiet`, colour (`--color`, `NO_COLOR`),
//! the progress bar on stderr, and `--family`. The settings are the process's, made once by
//! [`init`] from the global options; everything reads them through [`settings`].
//!
//! - Progress: a bar (indicatif) on stderr, only when stderr is a terminal and `--quiet` is not
//!   given, shown once a phase has run for about a second ([`crate::progress`] says what the
//!   library is doing), cleared when the work ends. Pipes and CI logs never see it.
//! - Colour: statuses in `check`'s and `diff`'s text (VIOLATED red, holds green, vacuous and
//!   unknown yellow), only on a terminal stdout, never with `NO_COLOR` set or `--color never`;
//!   `--color always` forces it. Files written with `--output` are never coloured.
//! - `--quiet`: no progress and no notes on stderr (a live namespace's summary, warnings);
//!   errors are still printed.

use std::io::IsTerminal as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sidecar_model::Family;

/// What the global options asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `--quiet`.
    pub quiet: bool,
    /// Whether stdout gets colour.
    pub color: bool,
    /// `--family`: the family of headerless save/restore input.
    pub family: Option<Family>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Makes the process's settings from the global options (`color`: `auto`, `always` or
/// `never`) and installs the progress bar when stderr is a terminal and not `quiet`.
pub fn init(quiet: bool, color: &str, family: Option<Family>) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match color {
        "always" => true,
        "never" => false,
        _ => !no_color && std::io::stdout().is_terminal(),
    };
    let _ = SETTINGS.set(Settings {
        quiet,
        color,
        family,
    });
    if !quiet && std::io::stderr().is_terminal() {
        crate::progress::listen(Box::new(Bar::default()));
    }
}

/// The process's settings (the defaults before [`init`]).
pub fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or_default()
}

/// A note for a person on stderr, unless `--quiet`.
pub fn note(text: &str) {
    if !settings().quiet {
        eprintln!("{text}");
    }
}

/// The progress bar: made hidden when the first phase begins, drawn once the work has run for
/// a second (checked at each step), so a quick command never flickers one.
#[derive(Default)]
struct Bar {
    bar: Mutex<Option<(indicatif::ProgressBar, std::time::Instant, bool)>>,
}

impl crate::progress::Listener for Bar {
    fn phase(&self, what: &str, steps: u64) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        let (bar, _, _) = slot.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::hidden(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            (b, std::time::Instant::now(), false)
        });
        bar.set_message(what.to_string());
        bar.set_length(steps);
        bar.set_position(0);
    }

    fn advance(&self, n: u64) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some((b, start, shown)) = slot.as_mut() {
                if !*shown && start.elapsed() >= Duration::from_secs(1) {
                    b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(10));
                    b.enable_steady_tick(Duration::from_millis(200));
                    *shown = true;
                }
                b.inc(n);
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some((b, _, _)) = slot.take() {
                b.finish_and_clear();
            }
        }
    }
}

/// `text` with the statuses of a report's lines coloured, when stdout gets colour: a line's
/// first word when it is a status (`VIOLATED`, `holds`, `vacuous`, `UNKNOWN`, `unknown`).
pub fn paint(text: &str) -> String {
    if !settings().color {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let word = body.split(' ').next().unwrap_or("");
        let style = match word {
            "VIOLATED" => Some(anstyle::AnsiColor::Red.on_default().bold()),
            "holds" => Some(anstyle::AnsiColor::Green.on_default()),
            "vacuous" | "unknown" | "UNKNOWN" => Some(anstyle::AnsiColor::Yellow.on_default()),
            _ => None,
        };
        match style {
            Some(st) if indent > 0 && !word.is_empty() => {
                let (head, rest) = line.split_at(indent + word.len());
                let (pad, w) = head.split_at(indent);
                out.push_str(pad);
                out.push_str(&format!("{}{w}{}", st.render(), st.render_reset()));
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
    }
    out
}
