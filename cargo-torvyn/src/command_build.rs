//! Components built by a command of their own (`[components.NAME.build]`), as the Python
//! and JavaScript templates' components are.
//!
//! 1. Component `NAME` has a `build`, and a `path` that names the `.wasm` file it makes.
//!    The lock file beside its stamp (step 3) is taken and held to the end, so that two
//!    builds of one component (a `run --watch` and a `test`) take turns.
//! 2. A fingerprint is taken of what the build reads: the command, the tools, and every
//!    file its `watch` globs match, by path (relative to `workdir`) and content.
//! 3. When the fingerprint, and the digest of the file at `path`, are those recorded after
//!    the last build (`TARGET/torvyn/builds/NAME-HASH.json`), the component is fresh and the
//!    command does not run. A build whose `watch` globs match no file runs every time,
//!    since nothing says what it depends on.
//! 4. Only a build that runs installs the tools it names, once, into the cache
//!    ([`crate::tools`]), and puts their program folders first on the command's `PATH`.
//! 5. The file at `path` is removed and its folder made, and the command runs through the
//!    shell (`sh -c`) in its `workdir`, its output on stderr; a failure, or no file at
//!    `path` afterwards, is an error at the component's entry in the manifest.
//! 6. The file must be a component of the declared role; only then are the fingerprint
//!    and its digest recorded, so a build that made something unusable runs again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use miette::{Context, IntoDiagnostic, miette};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use torvyn_runtime::{BuildDecl, ComponentSource, ProjectManifest};

use crate::cargo::{self, BuiltComponent};
use crate::output::status;

/// What was recorded after a component's last good build.
#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    /// The fingerprint of what the build read (step 2).
    inputs: String,
    /// The digest of the file it made.
    output: String,
}

/// Builds component `name` of `project` with its own command, unless it is fresh, and
/// checks the result.
///
/// # Errors
/// The manifest declares no `build` for `name`; a tool cannot be installed; the command
/// cannot run, fails, or makes no component of the declared role at `path`.
pub(crate) fn build(project: &ProjectManifest, name: &str) -> miette::Result<BuiltComponent> {
    let (decl, build) = project
        .manifest()
        .components
        .get(name)
        .and_then(|decl| Some((decl, decl.build.as_ref()?)))
        .ok_or_else(|| miette!("component `{name}` declares no build command"))?;
    let ComponentSource::Wasm(wasm) = project.source_of(decl) else {
        // `check` refuses a build whose `path` names no `.wasm` file.
        return Err(miette!("component `{name}`: a build makes a `.wasm` file"));
    };
    let dir = project.build_dir(build);
    let role = decl.role.as_ref().map(|r| *r.get_ref());
    if !dir.is_dir() {
        let span = (build.workdir.as_ref()).map_or(decl.path.span(), |w| w.span());
        let why = format!(
            "component `{name}` builds in `{}`, which is not a folder",
            dir.display()
        );
        return Err(project.error_at(span, why, None).into());
    }

    // One build of the component at a time, from the look at its stamp to the new stamp:
    // two commands writing one `.wasm` file could leave either reading half of it.
    let stamp_path = stamp_path(project, name)?;
    let _lock = lock_beside(&stamp_path)?;
    let inputs = fingerprint(build, &dir)?;
    if inputs.is_none() && !build.watch.is_empty() {
        status(
            "Warning",
            format!(
                "the `watch` globs of component `{name}` match no file, so it is built every time"
            ),
        );
    }
    let recorded = std::fs::read(&stamp_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Stamp>(&bytes).ok());
    let output = std::fs::read(&wasm).ok().map(|b| crate::oci::digest(&b));
    let fresh = match (&inputs, recorded, output) {
        (Some(inputs), Some(recorded), Some(output)) => {
            recorded.inputs == *inputs && recorded.output == output
        }
        _ => false,
    };
    if fresh {
        let (_, _, role) = cargo::read_component(&wasm, role)?;
        status(
            "Fresh",
            format!("{name} ({role}): its sources are as they were at its last build"),
        );
        return Ok(BuiltComponent {
            package: name.to_owned(),
            wasm,
            role,
        });
    }

    let cache = crate::commands::cache_root()?;
    let mut bins = Vec::new();
    for tool in &build.tools {
        let cache = cache.as_deref().ok_or_else(|| {
            miette!(
                help = "set `cache-dir` (or TORVYN_CACHE_DIR) to a folder",
                "component `{name}` needs the tool `{}`, and there is no cache folder to install it into",
                tool.get_ref()
            )
        })?;
        let bin = crate::tools::ensure(cache, tool.get_ref()).map_err(|error| {
            let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
            let why = format!("component `{name}`: {}", chain.join(": "));
            let help =
                "the installer's own messages are above; check the package's name and version";
            at(project, tool.span(), why, "torvyn::build::tool", help)
        })?;
        bins.push(bin);
    }
    // What the last build made goes first, so that a command that makes nothing (or
    // writes elsewhere) is never taken for one that made it.
    match std::fs::remove_file(&wasm) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot remove `{}`", wasm.display()));
        }
        _ => {}
    }
    if let Some(folder) = wasm.parent() {
        std::fs::create_dir_all(folder)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot make `{}`", folder.display()))?;
    }
    run(project, name, build, &dir, &bins)?;
    if !wasm.is_file() {
        let why = format!(
            "the build command of component `{name}` succeeded, but made no `{}`",
            decl.path.get_ref()
        );
        let help = "make the command write the component's `path`, relative to the manifest";
        return Err(at(
            project,
            decl.path.span(),
            why,
            "torvyn::build::output",
            help,
        ));
    }
    let (bytes, _, role) = cargo::read_component(&wasm, role)
        .wrap_err_with(|| format!("component `{name}` is not usable"))?;
    if let Some(inputs) = inputs {
        let stamp = Stamp {
            inputs,
            output: crate::oci::digest(&bytes),
        };
        record(&stamp_path, &stamp)?;
    }
    status(
        "Built",
        format!("{name} ({role}) -> {}", cargo::relative(&wasm).display()),
    );
    Ok(BuiltComponent {
        package: name.to_owned(),
        wasm,
        role,
    })
}

/// Runs the build command of `decl` in `dir`, with `bins` first on its `PATH`.
fn run(
    project: &ProjectManifest,
    name: &str,
    build: &BuildDecl,
    dir: &Path,
    bins: &[PathBuf],
) -> miette::Result<()> {
    let command = build.command.get_ref();
    let at_command = |why: String, help: &str| {
        at(
            project,
            build.command.span(),
            why,
            "torvyn::build::command",
            help,
        )
    };
    status("Building", format!("{name}: {command}"));
    let inherited = std::env::var_os("PATH");
    let inherited = inherited.iter().flat_map(std::env::split_paths);
    let path = std::env::join_paths(bins.iter().cloned().chain(inherited)).into_diagnostic()?;
    let status = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(crate::output::stderr_stdio())
        .status()
        .map_err(|error| {
            at_command(
                format!("cannot run the build command of component `{name}`: {error}"),
                "the command runs through `sh -c`",
            )
        })?;
    if !status.success() {
        // `sh` exits 127 when it finds no such command, 126 when it cannot run it.
        let help = match status.code() {
            Some(127) => "the shell found no such command: is it on PATH, or named in `tools`?",
            Some(126) => "the shell could not run the command: is it executable?",
            _ => "its own messages are above",
        };
        return Err(at_command(
            format!("the build command of component `{name}` failed ({status})"),
            help,
        ));
    }
    Ok(())
}

/// A build's failure `why`, shown at `span` of the manifest with its `code` and `help`.
fn at(
    project: &ProjectManifest,
    span: std::ops::Range<usize>,
    why: String,
    code: &str,
    help: &str,
) -> miette::Report {
    let problem = miette!(code = code, help = help.to_owned(), "{why}");
    project.component_error(span, why, problem.as_ref()).into()
}

/// The fingerprint of what `build` reads in `dir` (step 2); `None` when its `watch` globs
/// match no file.
fn fingerprint(build: &BuildDecl, dir: &Path) -> miette::Result<Option<String>> {
    let files = watched(build, dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(build.command.get_ref().as_bytes());
    for tool in &build.tools {
        field(tool.get_ref().to_string().as_bytes());
    }
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        field(relative.as_os_str().as_encoded_bytes());
        let bytes = std::fs::read(&file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read `{}`", file.display()))?;
        field(&bytes);
    }
    Ok(Some(format!("{:x}", hasher.finalize())))
}

/// The files the `watch` globs of `build` match in `dir`, each once, in order; never one
/// in a hidden folder or hidden itself (`.git`, `.venv`).
fn watched(build: &BuildDecl, dir: &Path) -> miette::Result<Vec<PathBuf>> {
    let patterns: Vec<String> = (build.watch.iter())
        .map(|glob| torvyn_runtime::glob_in(dir, glob.get_ref()))
        .collect();
    let files = torvyn_runtime::glob_files(&patterns).map_err(|e| miette!("{e}"))?;
    Ok(files.into_iter().filter(|f| !hidden(f, dir)).collect())
}

/// Whether `path`, below `dir`, is hidden or lies in a hidden folder.
pub(crate) fn hidden(path: &Path, dir: &Path) -> bool {
    let inside = path.strip_prefix(dir).unwrap_or(path);
    inside.components().any(|part| {
        matches!(part, std::path::Component::Normal(name) if name.to_string_lossy().starts_with('.'))
    })
}

/// Takes the lock file beside `path`, waiting for another process that holds it.
fn lock_beside(path: &Path) -> miette::Result<std::fs::File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).into_diagnostic()?;
    let lock_path = path.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot make `{}`", lock_path.display()))?;
    lock.lock()
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot lock `{}`", lock_path.display()))?;
    Ok(lock)
}

/// Where the stamp of component `name`'s last good build is kept: named by the component
/// and its manifest, since projects may share a target folder (`CARGO_TARGET_DIR`).
fn stamp_path(project: &ProjectManifest, name: &str) -> miette::Result<PathBuf> {
    let target = cargo::target_dir(project.dir())?;
    let manifest = std::path::absolute(project.path()).into_diagnostic()?;
    let manifest = crate::oci::digest(manifest.as_os_str().as_encoded_bytes());
    let short = &manifest["sha256:".len()..][..16];
    let file = format!("{name}-{short}.json");
    Ok(target.join("torvyn").join("builds").join(file))
}

/// Writes `stamp` to `path`, whole or not at all.
fn record(path: &Path, stamp: &Stamp) -> miette::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).into_diagnostic()?;
    let json = serde_json::to_vec(stamp).into_diagnostic()?;
    file.write_all(&json).into_diagnostic()?;
    file.persist(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_globs_match_in_a_folder_whose_name_reads_as_a_glob() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("proj [old] *");
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::create_dir_all(dir.join(".venv")).unwrap();
        for file in ["app.py", "lib/util.py", ".venv/site.py", ".hidden.py"] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        let manifest = dir.join("Torvyn.toml");
        std::fs::write(
            &manifest,
            "[project]\nname = \"p\"\n\n[components.up]\npath = \"up.wasm\"\n\n\
             [components.up.build]\ncommand = \"make\"\nwatch = [\"**/*.py\"]\n",
        )
        .unwrap();
        let project = ProjectManifest::load(&manifest).unwrap();
        let build = project.manifest().components["up"].build.as_ref().unwrap();
        let found: Vec<PathBuf> = (watched(build, &project.build_dir(build)).unwrap())
            .into_iter()
            .map(|file| file.strip_prefix(&dir).unwrap().to_owned())
            .collect();
        assert_eq!(found, [Path::new("app.py"), Path::new("lib/util.py")]);
        assert!(fingerprint(build, &dir).unwrap().is_some());
    }
}
