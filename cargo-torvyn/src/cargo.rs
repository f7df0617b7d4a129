//! Everything about Cargo and the Rust toolchain: finding component crates with
//! `cargo metadata`, making sure the `wasm32-wasip2` target is installed, building the
//! crates through Cargo and checking that each build produced a component of its role.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{Message, Metadata, MetadataCommand, Package, TargetKind};
use miette::{Context, IntoDiagnostic, bail, miette};
use torvyn_runtime::Role;

use crate::output::status;

/// The target components are built for.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";

/// A component crate to build, and what it must turn out to be.
#[derive(Debug, Clone)]
pub(crate) struct ComponentCrate {
    /// The package's name.
    pub(crate) package: String,
    /// The package's id, as Cargo's build messages name it.
    pub(crate) id: cargo_metadata::PackageId,
    /// `Cargo.toml` of the workspace the package belongs to.
    pub(crate) workspace_manifest: PathBuf,
    /// The role the manifest or `[package.metadata.torvyn]` asks for, if any.
    pub(crate) role: Option<Role>,
    /// What `[package.metadata.torvyn] capabilities` says it needs.
    pub(crate) capabilities: Vec<String>,
    /// The package's version, which `pack` records.
    pub(crate) version: String,
    /// The package's `repository`, which `pack` records as the source.
    pub(crate) repository: Option<String>,
}

/// A component built and checked.
#[derive(Debug, Clone)]
pub(crate) struct BuiltComponent {
    pub(crate) package: String,
    pub(crate) wasm: PathBuf,
    pub(crate) role: Role,
}

/// The `cargo` that runs us (`$CARGO`), or the one on `PATH`.
pub(crate) fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

pub(crate) fn metadata(manifest: &Path) -> miette::Result<Metadata> {
    MetadataCommand::new()
        .cargo_path(cargo())
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|e| miette!("{e}"))
        .wrap_err_with(|| {
            format!(
                "cannot read the Cargo workspace of `{}`",
                manifest.display()
            )
        })
}

/// Cargo's target folder for the project in `dir`: the one Cargo itself uses (with
/// `CARGO_TARGET_DIR` and `build.target-dir` applied) when `dir` lies in a Cargo
/// workspace, else `CARGO_TARGET_DIR`, else `dir/target`. Torvyn keeps what it makes
/// (packed layouts, bench baselines) under `torvyn/` in it, beside Cargo's own output.
pub(crate) fn target_dir(dir: &Path) -> miette::Result<PathBuf> {
    let workspace = (dir.ancestors())
        .map(|d| d.join(crate::project::CARGO_MANIFEST))
        .find(|p| p.is_file());
    if let Some(manifest) = workspace {
        return Ok(metadata(&manifest)?.target_directory.into());
    }
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => std::path::absolute(target).into_diagnostic()?,
        None => dir.join("target"),
    })
}

/// The role `[package.metadata.torvyn] role = "…"` declares.
fn declared_role(package: &Package) -> miette::Result<Option<Role>> {
    let Some(role) = package.metadata.get("torvyn").and_then(|t| t.get("role")) else {
        return Ok(None);
    };
    serde_json::from_value(role.clone())
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "`[package.metadata.torvyn] role` of `{}` must be one of source, processor, sink, filter, router, aggregator",
                package.name
            )
        })
        .map(Some)
}

/// The capabilities `[package.metadata.torvyn] capabilities = […]` declares.
fn declared_capabilities(package: &Package) -> miette::Result<Vec<String>> {
    let Some(list) = (package.metadata.get("torvyn")).and_then(|t| t.get("capabilities")) else {
        return Ok(Vec::new());
    };
    serde_json::from_value(list.clone())
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "`[package.metadata.torvyn] capabilities` of `{}` must be a list of names such as \"filesystem:read\"",
                package.name
            )
        })
}

/// Cargo workspaces read so far, so that several component crates of one workspace cost
/// one `cargo metadata` call, not one each.
#[derive(Default)]
pub(crate) struct Workspaces {
    read: Vec<Metadata>,
}

impl Workspaces {
    /// The crate whose folder is `dir`, as a component to build.
    pub(crate) fn crate_in(
        &mut self,
        dir: &Path,
        role: Option<Role>,
    ) -> miette::Result<ComponentCrate> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            bail!(
                help =
                    "a component's `path` is a crate folder (with a Cargo.toml) or a `.wasm` file",
                "no Cargo.toml in `{}`",
                dir.display()
            );
        }
        let wanted = manifest.canonicalize().into_diagnostic()?;
        let find = |metadata: &Metadata| {
            metadata
                .packages
                .iter()
                .find(|p| p.manifest_path.canonicalize().ok().as_deref() == Some(wanted.as_path()))
                .map(|package| (package.clone(), metadata.workspace_root.join("Cargo.toml")))
        };
        let found = match self.read.iter().find_map(find) {
            Some(found) => Some(found),
            None => {
                let metadata = metadata(&manifest)?;
                let found = find(&metadata);
                self.read.push(metadata);
                found
            }
        };
        let (package, workspace_manifest) = found
            .ok_or_else(|| miette!("`{}` is not a package of its workspace", manifest.display()))?;
        Ok(ComponentCrate {
            package: package.name.to_string(),
            id: package.id.clone(),
            workspace_manifest: workspace_manifest.into(),
            role: role.or(declared_role(&package)?),
            capabilities: declared_capabilities(&package)?,
            version: package.version.to_string(),
            repository: package.repository.clone(),
        })
    }
}

/// The component crates of the Cargo workspace of `manifest`: members that declare a
/// Torvyn role, or that depend on `torvyn-sdk` and build a `cdylib`.
pub(crate) fn workspace_components(manifest: &Path) -> miette::Result<Vec<ComponentCrate>> {
    let metadata = metadata(manifest)?;
    let workspace_manifest: PathBuf = metadata.workspace_root.join("Cargo.toml").into();
    let mut found = Vec::new();
    for package in metadata.workspace_packages() {
        let role = declared_role(package)?;
        let uses_sdk = package.dependencies.iter().any(|d| d.name == "torvyn-sdk");
        let cdylib = package
            .targets
            .iter()
            .any(|t| t.kind.contains(&TargetKind::CDyLib));
        if role.is_some() || (uses_sdk && cdylib) {
            found.push(ComponentCrate {
                package: package.name.to_string(),
                id: package.id.clone(),
                workspace_manifest: workspace_manifest.clone(),
                role,
                capabilities: declared_capabilities(package)?,
                version: package.version.to_string(),
                repository: package.repository.clone(),
            });
        }
    }
    Ok(found)
}

/// Whether the toolchain has the `wasm32-wasip2` standard library.
pub(crate) fn wasm_target_installed() -> miette::Result<bool> {
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .into_diagnostic()
        .wrap_err("cannot run `rustc`; is Rust installed?")?;
    Ok(libdir.status.success()
        && Path::new(String::from_utf8_lossy(&libdir.stdout).trim()).is_dir())
}

/// Installs the `wasm32-wasip2` target with rustup.
pub(crate) fn install_wasm_target() -> miette::Result<()> {
    status(
        "Installing",
        format!("the {WASM_TARGET} target with rustup"),
    );
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    match added {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`rustup target add {WASM_TARGET}` failed ({status})"),
        Err(error) => bail!(
            help = "install the target for your toolchain, then try again",
            "the {WASM_TARGET} target is missing and rustup could not be run: {error}"
        ),
    }
}

/// Installs the `wasm32-wasip2` target with rustup when the toolchain lacks it.
fn ensure_wasm_target() -> miette::Result<()> {
    if wasm_target_installed()? {
        return Ok(());
    }
    install_wasm_target()
}

/// Builds `crates` for `wasm32-wasip2` (one Cargo call per workspace), and checks every
/// result is a component of the role it should have.
pub(crate) fn build(
    crates: &[ComponentCrate],
    release: bool,
) -> miette::Result<Vec<BuiltComponent>> {
    if crates.is_empty() {
        return Ok(Vec::new());
    }
    ensure_wasm_target()?;
    let mut by_workspace: BTreeMap<&Path, Vec<&ComponentCrate>> = BTreeMap::new();
    for component in crates {
        by_workspace
            .entry(component.workspace_manifest.as_path())
            .or_default()
            .push(component);
    }
    let mut built = Vec::new();
    for (manifest, members) in by_workspace {
        let wasm_files = cargo_build(manifest, &members, release)?;
        for member in members {
            let wasm = wasm_files.get(&member.package).cloned().ok_or_else(|| {
                miette!(
                    help = "add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml",
                    "building `{}` produced no .wasm file",
                    member.package
                )
            })?;
            let role = check_component(&wasm, member)
                .wrap_err_with(|| format!("component `{}` is not usable", member.package))?;
            status(
                "Built",
                format!(
                    "{} ({role}) -> {}",
                    member.package,
                    relative(&wasm).display()
                ),
            );
            built.push(BuiltComponent {
                package: member.package.clone(),
                wasm,
                role,
            });
        }
    }
    Ok(built)
}

/// Runs `cargo build` and reads the `.wasm` of each package from Cargo's JSON messages.
fn cargo_build(
    manifest: &Path,
    members: &[&ComponentCrate],
    release: bool,
) -> miette::Result<BTreeMap<String, PathBuf>> {
    let mut command = Command::new(cargo());
    command
        .args(["build", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest);
    if release {
        command.arg("--release");
    }
    for member in members {
        command.args(["--package", &member.package]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .into_diagnostic()
        .wrap_err("cannot run cargo")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| miette!("cargo has no stdout"))?;
    let mut wasm_files = BTreeMap::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Ok(Message::CompilerArtifact(artifact)) = message
            && artifact.target.kind.contains(&TargetKind::CDyLib)
            && let Some(wasm) = artifact
                .filenames
                .iter()
                .find(|f| f.extension() == Some("wasm"))
            && let Some(member) = members.iter().find(|m| m.id == artifact.package_id)
        {
            wasm_files.insert(member.package.clone(), wasm.clone().into());
        }
    }
    let status = child.wait().into_diagnostic()?;
    if !status.success() {
        bail!("building components failed (see Cargo's messages above)");
    }
    Ok(wasm_files)
}

/// Checks that `wasm` is a component exporting a role, and the one `member` expects if
/// it says; writes the capabilities it declares into the binary.
fn check_component(wasm: &Path, member: &ComponentCrate) -> miette::Result<Role> {
    let (bytes, info, role) = read_component(wasm, member.role)?;
    if info.capabilities != member.capabilities {
        // Cargo may hard-link this file to its own copy: write a new file, then swap it in.
        let marked = torvyn_runtime::with_capabilities(&bytes, &member.capabilities)?;
        let fresh = wasm.with_extension("wasm.torvyn");
        std::fs::write(&fresh, marked)
            .and_then(|()| std::fs::rename(&fresh, wasm))
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write `{}`", wasm.display()))?;
    }
    Ok(role)
}

/// Reads the component a build made at `wasm`, and checks it exports a role: `expected`,
/// where the manifest or the package declares one. Its bytes, what they hold, and its role.
pub(crate) fn read_component(
    wasm: &Path,
    expected: Option<Role>,
) -> miette::Result<(Vec<u8>, torvyn_runtime::ComponentInfo, Role)> {
    let bytes = std::fs::read(wasm)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", wasm.display()))?;
    let info = torvyn_runtime::inspect(&bytes)?;
    let role = Role::from_exports(&info.exports)?;
    if let Some(expected) = expected
        && expected != role
    {
        bail!(
            help = format!(
                "export `{}@0.1.0`, or declare the role it has",
                expected.interface()
            ),
            "`{}` is declared a {expected}, but it exports the {role} interface",
            wasm.display()
        );
    }
    Ok((bytes, info, role))
}

/// `path` relative to the current folder when it lies below it.
pub(crate) fn relative(path: &Path) -> &Path {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .unwrap_or(path)
}
