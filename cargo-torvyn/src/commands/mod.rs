//! One module per subcommand.

mod bench;
mod build;
mod check;
mod config;
mod doctor;
mod init;
mod inspect;
mod link;
mod live;
mod new;
mod pack;
mod publish;
mod run;
mod test;
mod top;
mod trace;

pub(crate) use bench::BenchCommand;
pub(crate) use build::BuildCommand;
pub(crate) use check::CheckCommand;
pub(crate) use config::ConfigCommand;
pub(crate) use doctor::DoctorCommand;
pub(crate) use init::InitCommand;
pub(crate) use inspect::InspectCommand;
pub(crate) use link::{LinkCommand, cache_root};
pub(crate) use new::NewCommand;
pub(crate) use pack::PackCommand;
pub(crate) use publish::PublishCommand;
pub(crate) use run::RunCommand;
pub(crate) use test::TestCommand;
pub(crate) use top::TopCommand;
pub(crate) use trace::TraceCommand;
