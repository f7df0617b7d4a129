//! `cargo torvyn doctor`: checks that this machine can build and run components.

use std::path::Path;
use std::process::Command;

use clap::Args;
use miette::bail;
use serde_json::json;
use torvyn_runtime::{ProjectManifest, ToolSpec};

use crate::cargo::{self, WASM_TARGET};
use crate::cli::{ManifestArgs, OutputArgs};
use crate::output::{self, counted, status};
use crate::project::{self, Project};
use crate::tools;

/// Check the Rust toolchain and target, the project, its build tools and the compile cache
///
/// Checks Cargo, rustc, the `wasm32-wasip2` target, the project's manifest and SDK, the
/// tools its components build with, and the compile cache. Prints one line per check and
/// exits with 1 when any fails. `--fix` installs what can be installed: the
/// `wasm32-wasip2` target, and the tools (such as componentize-py) that the project's
/// components name in `[components.NAME.build] tools`.
#[derive(Debug, Args)]
pub(crate) struct DoctorCommand {
    /// Install what is missing instead of only reporting it
    #[arg(long)]
    fix: bool,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    output: OutputArgs,
}

/// The result of one check: what was found, or what is wrong and how to fix it.
type Check = Result<String, (String, String)>;

impl DoctorCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let mut checks: Vec<(&str, Check)> = vec![
            ("cargo", version_of(&cargo::cargo(), "cargo")),
            ("rustc", rustc()),
            ("target", self.wasm_target()),
        ];
        checks.extend(project_checks(&self.manifest, self.fix));
        checks.push(("cache", cache()));
        let mut failed = 0;
        for (name, check) in &checks {
            let (verb, detail, help) = match check {
                Ok(found) => ("ok", found.as_str(), None),
                Err((wrong, help)) => {
                    failed += 1;
                    ("FAILED", wrong.as_str(), Some(help.as_str()))
                }
            };
            status(verb, format!("{name}: {detail}"));
            if let Some(help) = help {
                status("", format!("help: {help}"));
            }
            output::json(
                self.output.message_format,
                &json!({
                    "reason": "doctor-check",
                    "check": name,
                    "ok": check.is_ok(),
                    "detail": detail,
                    "help": help,
                }),
            );
        }
        if failed > 0 {
            bail!("{failed} of {} failed", counted(checks.len(), "check"));
        }
        Ok(())
    }

    fn wasm_target(&self) -> Check {
        let installed = cargo::wasm_target_installed().map_err(|e| (e.to_string(), rustup()))?;
        if installed {
            return Ok(format!("{WASM_TARGET} is installed"));
        }
        if self.fix {
            cargo::install_wasm_target().map_err(|e| (e.to_string(), rustup()))?;
            return Ok(format!("{WASM_TARGET} installed now"));
        }
        Err((
            format!("the {WASM_TARGET} target is not installed"),
            format!("run `cargo torvyn doctor --fix`, or `rustup target add {WASM_TARGET}`"),
        ))
    }
}

fn rustup() -> String {
    format!("install Rust with rustup (https://rustup.rs), then `rustup target add {WASM_TARGET}`")
}

/// `PROGRAM --version`, or why it cannot be run.
fn version_of(program: &Path, name: &str) -> Check {
    let output = Command::new(program).arg("--version").output();
    match output {
        Ok(output) if output.status.success() => {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        }
        Ok(output) => Err((
            format!(
                "`{name} --version` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            rustup(),
        )),
        Err(error) => Err((format!("cannot run `{name}`: {error}"), rustup())),
    }
}

/// rustc, at least as new as the SDK needs.
fn rustc() -> Check {
    let found = version_of(Path::new("rustc"), "rustc")?;
    let minimum = env!("CARGO_PKG_RUST_VERSION");
    let version = found.split_whitespace().nth(1).unwrap_or_default();
    let parse = |v: &str| semver::Version::parse(v).ok();
    let padded = format!("{minimum}.0");
    match (parse(version), parse(&padded).or_else(|| parse(minimum))) {
        (Some(version), Some(minimum)) if version < minimum => Err((
            format!("{found}: torvyn-sdk needs Rust {minimum} or newer"),
            "run `rustup update`".into(),
        )),
        _ => Ok(found),
    }
}

/// The project, if there is one: its manifest parses, and its component crates use a
/// torvyn-sdk this CLI speaks for.
fn project_checks(args: &ManifestArgs, fix: bool) -> Vec<(&'static str, Check)> {
    let workspace = match project::locate(args.manifest_path.as_deref()) {
        Err(error) => {
            let help = "fix the manifest; `cargo torvyn link` shows every problem".to_owned();
            return vec![("project", Err((format!("{error}"), help)))];
        }
        Ok(Project::Torvyn(manifest)) => {
            let found = format!("{} parses", manifest.path().display());
            let workspace = manifest.dir().join("Cargo.toml");
            let mut checks = vec![("manifest", Ok(found))];
            if workspace.is_file() {
                checks.push(("sdk", sdk_versions(&workspace)));
            }
            checks.extend(build_tools(&manifest, fix));
            return checks;
        }
        Ok(Project::Cargo(workspace)) => workspace,
    };
    vec![("sdk", sdk_versions(&workspace))]
}

/// The torvyn-sdk and wit-bindgen requirements of the workspace's packages.
fn sdk_versions(workspace: &Path) -> Check {
    let metadata = cargo::metadata(workspace).map_err(|e| {
        (
            format!("{e:?}"),
            "fix the Cargo workspace so that `cargo metadata` succeeds".into(),
        )
    })?;
    let ours = semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("our own version parses");
    let mut found = Vec::new();
    for package in metadata.workspace_packages() {
        for dependency in &package.dependencies {
            match dependency.name.as_str() {
                "torvyn-sdk" if !dependency.req.matches(&ours) => {
                    return Err((
                        format!(
                            "`{}` asks for torvyn-sdk {}, but this cargo-torvyn is {ours}",
                            package.name, dependency.req
                        ),
                        format!(
                            "depend on torvyn-sdk {ours}, or use a cargo-torvyn of its version"
                        ),
                    ));
                }
                "torvyn-sdk" | "wit-bindgen" => {
                    found.push(format!(
                        "{} uses {} {}",
                        package.name, dependency.name, dependency.req
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(if found.is_empty() {
        "no component crate uses torvyn-sdk or wit-bindgen".into()
    } else {
        found.join("; ")
    })
}

/// Each tool the project's components build with: installed in the cache, or installable
/// there by the first build (or now, with `fix`), since its installer runs.
fn build_tools(project: &ProjectManifest, fix: bool) -> Vec<(&'static str, Check)> {
    let mut tools: Vec<&ToolSpec> = Vec::new();
    let builds = project.manifest().components.values();
    for tool in builds
        .filter_map(|d| d.build.as_ref())
        .flat_map(|b| &b.tools)
    {
        if !tools.contains(&tool.get_ref()) {
            tools.push(tool.get_ref());
        }
    }
    if tools.is_empty() {
        return Vec::new();
    }
    let cache = match super::cache_root() {
        Ok(cache) => cache,
        Err(error) => return vec![("tools", Err((error.to_string(), settings_help())))],
    };
    (tools.into_iter())
        .map(|tool| ("tool", build_tool(cache.as_deref(), tool, fix)))
        .collect()
}

fn build_tool(cache: Option<&Path>, tool: &ToolSpec, fix: bool) -> Check {
    let Some(cache) = cache else {
        return Err((
            format!("{tool}: there is no cache folder to install it into"),
            "set `cache-dir` (or TORVYN_CACHE_DIR) to a folder".into(),
        ));
    };
    if tools::installed(cache, tool) {
        let dir = tools::folder(cache, tool);
        return Ok(format!("{tool} is installed in {}", dir.display()));
    }
    let help = tools::installer_help(tool.registry).to_owned();
    let installer = tools::installer(tool.registry).map_err(|wrong| {
        (
            format!("{tool} is not installed, and its installer cannot run: {wrong}"),
            help.clone(),
        )
    })?;
    if fix {
        tools::ensure(cache, tool).map_err(|error| {
            let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
            (chain.join(": "), help)
        })?;
        return Ok(format!("{tool} installed now"));
    }
    Ok(format!(
        "{tool} is not installed yet: the first build installs it with {installer}; or `cargo torvyn doctor --fix` now"
    ))
}

fn settings_help() -> String {
    "fix the setting named (`cargo torvyn config` shows each)".into()
}

/// The compile cache folder exists, or can be made, and takes writes.
fn cache() -> Check {
    let dir = match super::link::cache_dir() {
        Ok(Some(dir)) => dir,
        Ok(None) => {
            return Ok(
                "no cache folder on this system: components are compiled on every run".into(),
            );
        }
        Err(error) => {
            return Err((error.to_string(), settings_help()));
        }
    };
    let probe = dir.join(".doctor");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|error| {
            (
                format!("cannot write to `{}`: {error}", dir.display()),
                "set `cache-dir` (or TORVYN_CACHE_DIR) to a writable folder".into(),
            )
        })?;
    // One folder per engine build, one file per component compiled by it.
    let (mut files, mut bytes) = (0, 0);
    let engines = std::fs::read_dir(&dir).into_iter().flatten().flatten();
    for engine in engines.filter(|entry| entry.path().is_dir()) {
        for file in std::fs::read_dir(engine.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            files += 1;
            bytes += file.metadata().map_or(0, |m| m.len());
        }
    }
    Ok(format!(
        "{} ({}, {})",
        dir.display(),
        counted(files, "compiled component"),
        bytesize::ByteSize(bytes).display().iec()
    ))
}
