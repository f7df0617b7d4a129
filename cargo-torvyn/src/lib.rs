//! The Torvyn command line. `main.rs` and `bin/torvyn.rs` only call [`main`]; each
//! subcommand lives in `commands/<name>.rs` as a clap struct with one `exec`.
//!
//! Human output goes to stderr; machine output (`--message-format json`) to stdout, one
//! JSON object per line.
//!
//! | exit code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the command failed (bad input, a build error, a flow that failed) |
//! | 2 | the command line itself is wrong |
//! | 130 | interrupted twice (Ctrl-C) |

mod cargo;
mod cli;
mod command_build;
mod commands;
mod oci;
mod output;
mod project;
mod settings;
mod templates;
mod tools;

use clap::Parser;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The command failed.
pub const EXIT_FAILURE: i32 = 1;
/// The command line is wrong (clap's own code).
pub const EXIT_USAGE: i32 = 2;
/// Interrupted twice.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> i32 {
    // Diagnostics wrap to fit a terminal; written to a file or a pipe, a message stays on
    // one line so that logs can be searched.
    let wrap = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(wrap).build())
    }));
    let args = cli::normalise_args(std::env::args_os());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            };
            let _ = error.print();
            return code;
        }
    };
    settings::set_command_line(cli.config);
    match cli.command.exec() {
        Ok(()) => EXIT_OK,
        Err(report) => {
            eprintln!("{report:?}");
            EXIT_FAILURE
        }
    }
}
