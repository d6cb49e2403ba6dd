//! Reading a ruleset from a path, from stdin (`-`), from a live network namespace
//! (`netns:NAME|PATH`, `pid:PID`: [`crate::live`]), or the embedded default.

use sidecar_model::parse::parse_with;
use sidecar_model::parse::read_bounded;
use sidecar_model::{ParseError, Parsed, DEFAULT_RULESET};

use crate::live;

/// The name errors give the embedded default ruleset.
pub const DEFAULT_NAME: &str = "<default: istio-classic.rules>";

/// Why a ruleset could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    /// The file or stdin could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The text is not a ruleset.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Parse(#[from] Box<ParseError>),
    /// A live network namespace's rules could not be read.
    #[error(transparent)]
    Live(#[from] live::LiveError),
    /// The input holds no table at all: an empty dump, most likely of the wrong backend.
    #[error("`{0}` holds no table: nothing to check (an empty dump? iptables-nft-save prints nothing in a namespace loaded with iptables-legacy, and the other way round; `nft list ruleset` lists nft and iptables-nft tables, not legacy ones)")]
    #[diagnostic(help("dump with the backend that wrote the rules: iptables-legacy-save, iptables-nft-save (and their ip6tables- forms) or nft list ruleset; or read the pod's namespace directly with --netns NAME or --pid PID"))]
    NoTables(String),
}

/// A loaded ruleset with the name it was read under and its raw text.
#[derive(Debug)]
pub struct Loaded {
    /// The path, `<stdin>`, `netns:NAME`, `pid:PID`, or the default's name.
    pub name: String,
    /// The bytes read.
    pub bytes: Vec<u8>,
    /// The parse.
    pub parsed: Parsed,
    /// For a live namespace, the backends found and read (the CLI prints it on stderr).
    pub live: Option<live::Summary>,
}

impl Loaded {
    /// The name reports give it in their titles: [`shown_name`] of [`Loaded::name`].
    pub fn shown_name(&self) -> String {
        shown_name(&self.name)
    }
}

/// A ruleset's name as a report shows it: an absolute path under the working directory becomes
/// relative to it (`/home/me/repo/corpus/x.rules` run from `/home/me/repo` is
/// `corpus/x.rules`); anything else (a relative path, a path outside the working directory,
/// `<stdin>`, the default's name) stays as given. Error messages keep the path as given.
pub fn shown_name(name: &str) -> String {
    match std::env::current_dir() {
        Ok(cwd) => relative_under(std::path::Path::new(name), &cwd).unwrap_or_else(|| name.into()),
        Err(_) => name.into(),
    }
}

/// `path` relative to `dir` when `path` is absolute and under `dir` (also when only their
/// canonical forms are, through a symbolic link); `None` otherwise.
fn relative_under(path: &std::path::Path, dir: &std::path::Path) -> Option<String> {
    if !path.is_absolute() {
        return None;
    }
    let strip = |p: &std::path::Path, d: &std::path::Path| {
        p.strip_prefix(d)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .and_then(|r| r.to_str().map(str::to_string))
    };
    strip(path, dir).or_else(|| {
        let p = std::fs::canonicalize(path).ok()?;
        let d = std::fs::canonicalize(dir).ok()?;
        strip(&p, &d)
    })
}

/// Loads `path` (`-` for stdin, `netns:NAME|PATH` or `pid:PID` for the rules of a live network
/// namespace), or the embedded default when `None`. Reading a file or stdin stops once a line
/// exceeds [`sidecar_model::parse::MAX_LINE_BYTES`] (the parse then refuses it), so a huge line
/// is never held whole. A namespace's dump is parsed under the namespace's label, so an error
/// points at the dump's line.
pub fn load(path: Option<&str>) -> Result<Loaded, LoadError> {
    if let Some(target) = path.and_then(live::Target::from_rules_arg) {
        let reading = live::read(&target?)?;
        return finish(
            reading.summary.label.clone(),
            reading.text,
            Some(reading.summary),
        );
    }
    let (name, bytes) = match path {
        None => (
            DEFAULT_NAME.to_string(),
            DEFAULT_RULESET.as_bytes().to_vec(),
        ),
        Some("-") => {
            let buf =
                read_bounded(&mut std::io::stdin().lock()).map_err(|source| LoadError::Io {
                    path: "-".into(),
                    source,
                })?;
            ("<stdin>".to_string(), buf)
        }
        Some(p) => {
            let io = |source| LoadError::Io {
                path: p.to_string(),
                source,
            };
            let bytes = read_bounded(&mut std::fs::File::open(p).map_err(io)?).map_err(io)?;
            (p.to_string(), bytes)
        }
    };
    finish(name, bytes, None)
}

/// Loads the ruleset a command checks when no RULES are given, for a profile built on the
/// built-in profile `base` ([`sidecar_model::pod::Profile::base`]): that mesh's own ruleset of
/// its generator's defaults ([`sidecar_model::profile::Builtin::rules`]); the classic Istio
/// ruleset, under its own name ([`DEFAULT_NAME`]), for istio, ambient and anything else.
pub fn load_default(base: &str) -> Result<Loaded, LoadError> {
    let builtin = sidecar_model::profile::BUILTIN
        .iter()
        .find(|b| b.name == base);
    match builtin.and_then(|b| b.rules) {
        Some((file, text)) => finish(format!("<default: {file}>"), text.as_bytes().to_vec(), None),
        None => load(None),
    }
}

/// Parses `bytes` read under `name` (with `--family`, [`crate::term::Settings::family`]); an
/// input without any table is refused ([`LoadError::NoTables`]).
fn finish(name: String, bytes: Vec<u8>, live: Option<live::Summary>) -> Result<Loaded, LoadError> {
    let opts = sidecar_model::parse::Options {
        family: crate::term::settings().family,
        ..Default::default()
    };
    let parsed = parse_with(&name, &bytes, &opts).map_err(Box::new)?;
    if parsed.ruleset.ipv4.is_empty() && parsed.ruleset.ipv6.is_empty() {
        return Err(LoadError::NoTables(name));
    }
    Ok(Loaded {
        name,
        bytes,
        parsed,
        live,
    })
}

#[cfg(test)]
mod tests {
    use super::relative_under;
    use std::path::Path;

    #[test]
    fn absolute_paths_under_the_directory_become_relative() {
        let d = Path::new("/home/me/repo");
        assert_eq!(
            relative_under(Path::new("/home/me/repo/corpus/x.rules"), d).as_deref(),
            Some("corpus/x.rules")
        );
        // Outside it, relative, or the directory itself: as given.
        assert_eq!(relative_under(Path::new("/home/me/other/x.rules"), d), None);
        assert_eq!(relative_under(Path::new("/home/me/repository"), d), None);
        assert_eq!(relative_under(Path::new("corpus/x.rules"), d), None);
        assert_eq!(relative_under(Path::new("/home/me/repo"), d), None);
    }

    #[test]
    fn a_link_to_the_directory_is_seen_through() {
        let base = std::env::temp_dir().join(format!("sv-shown-{}", std::process::id()));
        let real = base.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("x.rules"), "").unwrap();
        let link = base.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            relative_under(&link.join("x.rules"), &real).as_deref(),
            Some("x.rules")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
