//! The `sidecar-verify` binary.

use std::process::ExitCode;

use clap::Parser as _;
use sidecar_verify::cli::{run, Cli};

/// mimalloc instead of the system's allocator: parsing a node's ruleset (150,000 lines, a million
/// small allocations) takes a third less time (docs/scale.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli))
}
