//! Reading a ruleset from a path, from stdin (`-`), or the embedded default.

use sidecar_model::parse::read_bounded;
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

/// Loads `path` (`-` for stdin), or the embedded default when `None`. Reading stops once a line
/// exceeds [`sidecar_model::parse::MAX_LINE_BYTES`] (the parse then refuses it), so a huge line
/// is never held whole.
pub fn load(path: Option<&str>) -> Result<Loaded, LoadError> {
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
    let parsed = parse(&name, &bytes).map_err(Box::new)?;
    Ok(Loaded {
        name,
        bytes,
        parsed,
    })
}
