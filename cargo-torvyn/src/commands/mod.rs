//! One module per subcommand.

mod build;
mod check;
mod doctor;
mod link;
mod new;
mod run;
mod test;

pub(crate) use build::BuildCommand;
pub(crate) use check::CheckCommand;
pub(crate) use doctor::DoctorCommand;
pub(crate) use link::LinkCommand;
pub(crate) use new::NewCommand;
pub(crate) use run::RunCommand;
pub(crate) use test::TestCommand;
