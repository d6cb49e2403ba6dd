//! Reading a ruleset from a path, from stdin (`-`), or the embedded default.

use std::io::Read as _;

use sidecar_model::{parse, ParseError, Parsed, DEFAULT_RULESET};

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
}

/// A loaded ruleset with the name it was read under and its raw text.
#[derive(Debug)]
pub struct Loaded {
    /// The path, `<stdin>`, or the default's name.
    pub name: String,
    /// The bytes read.
    pub bytes: Vec<u8>,
    /// The parse.
    pub parsed: Parsed,
}

/// Loads `path` (`-` for stdin), or the embedded default when `None`.
pub fn load(path: Option<&str>) -> Result<Loaded, LoadError> {
    let (name, bytes) = match path {
        None => (
            DEFAULT_NAME.to_string(),
            DEFAULT_RULESET.as_bytes().to_vec(),
        ),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|source| LoadError::Io {
                    path: "-".into(),
                    source,
                })?;
            ("<stdin>".to_string(), buf)
        }
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|source| LoadError::Io {
                path: p.to_string(),
                source,
            })?;
            (p.to_string(), bytes)
        }
    };
    let parsed = parse(&name, &bytes).map_err(Box::new)?;
    Ok(Loaded {
        name,
        bytes,
        parsed,
    })
}
