//! One module per subcommand.

mod build;
mod new;
mod run;

pub(crate) use build::BuildCommand;
pub(crate) use new::NewCommand;
pub(crate) use run::RunCommand;
