//! Any text as a `Torvyn.toml`: it parses or is refused, and what parses is planned (with
//! roles guessed from the node names) or refused, never with a panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use torvyn_runtime::{ProjectManifest, Role, plan_flow};

fuzz_target!(|text: &str| {
    let Ok(project) = ProjectManifest::parse(Path::new("Torvyn.toml"), text.to_owned()) else {
        return;
    };
    let Ok(flows) = project.select_flows(&[]) else {
        return;
    };
    let role = |name: &str| Role::ALL[name.len() % Role::ALL.len()];
    for (flow, decl) in flows {
        let _ = plan_flow(&project, flow, decl, role);
    }
});
