//! The tools a component's own build runs (`tools = ["pypi:componentize-py==0.25.1"]`),
//! each installed once into the cache folder, where every later build finds it.
//!
//! 1. A tool's folder is `CACHE/tools/REGISTRY/PACKAGE-HASH`: the package text made a
//!    file name, and a hash of the text itself, so that a pinned version is its own folder
//!    and two requirements never share one.
//! 2. Installers take the lock file beside the folder first, so two builds at once install
//!    a tool once; the second waits, then finds it installed.
//! 3. A folder counts as installed only once its `.installed` mark is written, after the
//!    installer succeeded: a folder an interrupted install left is removed and installed
//!    again. (Python's virtual environments hold their own absolute path, so the install
//!    happens in place rather than in a folder renamed into place.)

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use miette::{Context, IntoDiagnostic, bail, miette};
use torvyn_runtime::{ToolRegistry, ToolSpec};

use crate::output::status;

/// The mark of a finished install, inside the tool's folder.
const INSTALLED: &str = ".installed";

/// Where `tool` is (or would be) installed, below the cache folder `cache`.
pub(crate) fn folder(cache: &Path, tool: &ToolSpec) -> PathBuf {
    let name: String = (tool.package.chars())
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | '=' | '@' => c,
            _ => '+',
        })
        .collect();
    let digest = crate::oci::digest(tool.package.as_bytes());
    let hash = &digest["sha256:".len()..][..12];
    let folder = format!("{name}-{hash}");
    cache
        .join("tools")
        .join(tool.registry.prefix())
        .join(folder)
}

/// The folder of `tool`'s programs, once installed in `dir`.
fn bin_dir(dir: &Path, registry: ToolRegistry) -> PathBuf {
    match registry {
        ToolRegistry::PyPi => dir.join("bin"),
        ToolRegistry::Npm => dir.join("node_modules").join(".bin"),
    }
}

/// What to install for the installer of `registry` to run.
pub(crate) fn installer_help(registry: ToolRegistry) -> &'static str {
    match registry {
        ToolRegistry::PyPi => {
            "install Python 3 with its `venv` module (Debian: `apt install python3-venv`)"
        }
        ToolRegistry::Npm => "install Node.js with npm (https://nodejs.org)",
    }
}

/// Whether `tool` is installed below `cache`.
pub(crate) fn installed(cache: &Path, tool: &ToolSpec) -> bool {
    folder(cache, tool).join(INSTALLED).is_file()
}

/// The folder of `tool`'s programs, installing it below `cache` first when it is not
/// there yet; says so on stderr, since an install takes a while (seconds for a wheel from
/// PyPI, tens of seconds for a package from npm).
pub(crate) fn ensure(cache: &Path, tool: &ToolSpec) -> miette::Result<PathBuf> {
    // The folder goes on the PATH of a command run elsewhere: it must not be relative.
    let cache = std::path::absolute(cache).into_diagnostic()?;
    let dir = folder(&cache, tool);
    let bin = bin_dir(&dir, tool.registry);
    if dir.join(INSTALLED).is_file() {
        return Ok(bin);
    }
    let parent = dir.parent().unwrap_or(&cache);
    std::fs::create_dir_all(parent)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot make `{}`", parent.display()))?;
    let mut lock_name = dir.file_name().unwrap_or_default().to_owned();
    lock_name.push(".lock");
    let lock_path = dir.with_file_name(lock_name);
    let lock = File::create(&lock_path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot make `{}`", lock_path.display()))?;
    lock.lock()
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot lock `{}`", lock_path.display()))?;
    // Another build may have installed it while this one waited for the lock.
    if dir.join(INSTALLED).is_file() {
        return Ok(bin);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot remove the unfinished `{}`", dir.display()))?;
    }
    status(
        "Installing",
        format!("{tool} into {} (first use)", dir.display()),
    );
    let started = Instant::now();
    install(&dir, tool).wrap_err_with(|| format!("cannot install the build tool `{tool}`"))?;
    std::fs::write(dir.join(INSTALLED), tool.to_string())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write into `{}`", dir.display()))?;
    status(
        "Installed",
        format!("{tool} in {:.1} s", started.elapsed().as_secs_f64()),
    );
    Ok(bin)
}

/// Runs the registry's installer for `tool` into `dir`, its output on our stderr.
fn install(dir: &Path, tool: &ToolSpec) -> miette::Result<()> {
    match tool.registry {
        ToolRegistry::PyPi => {
            let mut venv = Command::new(PYTHON);
            venv.args(["-m", "venv"]).arg(dir);
            run(venv, PYTHON, installer_help(tool.registry))?;
            let pip = bin_dir(dir, tool.registry).join("python");
            let mut install = Command::new(&pip);
            install
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .arg(&tool.package);
            run(
                install,
                "pip",
                "check the package name and version on https://pypi.org",
            )
        }
        ToolRegistry::Npm => {
            let mut install = Command::new(NPM);
            install
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(dir)
                .arg(&tool.package);
            let help = format!(
                "{}, and check the package name and version on https://www.npmjs.com",
                installer_help(tool.registry)
            );
            run(install, NPM, &help)
        }
    }
}

/// The installer of `registry`'s tools as it runs here (`python3 3.11.7`, `npm 11.19.1`),
/// or why it cannot: Python needs its `venv` and `ensurepip` modules too, which some
/// distributions package apart.
pub(crate) fn installer(registry: ToolRegistry) -> Result<String, String> {
    let (program, args): (&str, &[&str]) = match registry {
        ToolRegistry::PyPi => (
            PYTHON,
            &[
                "-c",
                "import ensurepip, sys, venv; print(sys.version.split()[0])",
            ],
        ),
        ToolRegistry::Npm => (NPM, &["--version"]),
    };
    let output = (Command::new(program).args(args).output())
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.trim().lines().last().unwrap_or_default().to_owned();
        return Err(format!("`{program}` fails ({}): {last}", output.status));
    }
    Ok(format!(
        "{program} {}",
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}

/// The Python interpreter that makes the virtual environments of PyPI tools.
pub(crate) const PYTHON: &str = "python3";

/// The installer of npm tools.
pub(crate) const NPM: &str = "npm";

/// Runs `command` with its output on our stderr (our stdout carries JSON lines); `help`
/// says what to do when it cannot run or fails.
fn run(mut command: Command, name: &str, help: &str) -> miette::Result<()> {
    let status = command
        .stdin(Stdio::null())
        .stdout(crate::output::stderr_stdio())
        .status()
        .map_err(|error| miette!(help = help.to_owned(), "cannot run `{name}`: {error}"))?;
    if !status.success() {
        bail!(help = help.to_owned(), "`{name}` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_package_text_is_its_own_folder() {
        let cache = Path::new("/cache");
        let py: ToolSpec = "pypi:componentize-py==0.25.1".parse().unwrap();
        let js: ToolSpec = "npm:@bytecodealliance/componentize-js@0.23.0"
            .parse()
            .unwrap();
        let named = |tool: &ToolSpec| {
            let folder = folder(cache, tool);
            let name = folder.file_name().unwrap().to_string_lossy().into_owned();
            (folder.parent().unwrap().to_owned(), name)
        };
        let (parent, name) = named(&py);
        assert_eq!(parent, Path::new("/cache/tools/pypi"));
        assert!(name.starts_with("componentize-py==0.25.1-"), "{name}");
        let (parent, name) = named(&js);
        assert_eq!(parent, Path::new("/cache/tools/npm"));
        assert!(
            name.starts_with("@bytecodealliance+componentize-js@0.23.0-"),
            "{name}"
        );
        // Requirements that read alike once made file names still differ.
        let epoch: ToolSpec = "pypi:foo==1!0".parse().unwrap();
        let tilde: ToolSpec = "pypi:foo==1~0".parse().unwrap();
        assert_ne!(folder(cache, &epoch), folder(cache, &tilde));
    }
}
