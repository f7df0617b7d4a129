//! `run --watch`: the flows run again whenever the manifest or a component's sources
//! change, until stopped.
//!
//! 1. Ctrl-C and SIGTERM are watched once, on a token that ends the whole watch; each
//!    round runs on a child of it.
//! 2. A round reads the manifest, builds what is stale, links and runs the flows, as a
//!    plain `run` does.
//! 3. Meanwhile a change to the manifest, to a `.wasm` component, or to anything in a
//!    component crate's folder (its `target` and hidden folders aside) ends the round: its
//!    sources stop and what is in flight drains, and its report is printed as any run's.
//!    Folders are watched rather than files, since editors save by replacing a file.
//! 4. Changes that come together (one save of several files) are gathered for
//!    [`SETTLE`], so that they make one round.
//! 5. A round that cannot start (a manifest error, a failed build) says why; one whose
//!    flows end on their own says so. Either way the next change starts the next round.
//! 6. A signal ends the round (draining it) and the watch; a second aborts, as for `run`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use miette::{Context, IntoDiagnostic};
use notify::{RecursiveMode, Watcher};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;
use torvyn_runtime::{ComponentSource, ProjectManifest};

use super::RunCommand;
use super::signals::stop_on_signal;
use crate::output::status;

/// How long changes are gathered into one round after the first of them.
const SETTLE: Duration = Duration::from_millis(200);

/// Runs `command`'s flows round after round, each ended by a change, until a signal.
pub(super) fn watch(command: &RunCommand, runtime: &Runtime) -> miette::Result<()> {
    let stop = CancellationToken::new();
    runtime.block_on(async { stop_on_signal(stop.clone()) })?;
    let (sender, mut changes) = unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            for path in event.paths {
                let _ = sender.send(path);
            }
        }
    })
    .into_diagnostic()
    .wrap_err("cannot watch files for changes")?;
    let mut watched = Watched::default();
    loop {
        let now = Watched::of(command.manifest.manifest_path.as_deref());
        now.register(&mut watcher, &watched)?;
        watched = now;
        let round = stop.child_token();
        let waiter = runtime.spawn(next_change(changes, watched.clone(), round.clone()));
        match command.round(runtime, Some(&round)) {
            // Each flow's end was reported as it came.
            Ok(_) => {}
            Err(error) => eprintln!("{error:?}"),
        }
        if !round.is_cancelled() {
            status(
                "Watching",
                "for changes to the manifest and the components (Ctrl-C to stop)",
            );
        }
        let (receiver, changed) = runtime.block_on(waiter).into_diagnostic()?;
        changes = receiver;
        if !changed {
            return Ok(());
        }
    }
}

/// Waits for a change that concerns `watched`, then ends `round`: `true`. `false` when the
/// round ended otherwise (a signal). The receiver is handed back for the next round.
async fn next_change(
    mut changes: UnboundedReceiver<PathBuf>,
    watched: Watched,
    round: CancellationToken,
) -> (UnboundedReceiver<PathBuf>, bool) {
    loop {
        let path = tokio::select! {
            () = round.cancelled() => return (changes, false),
            path = changes.recv() => path,
        };
        let Some(path) = path else {
            return (changes, false);
        };
        if !watched.concerns(&path) {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        while changes.try_recv().is_ok() {}
        status(
            "Restarting",
            format!("after a change to `{}`", path.display()),
        );
        round.cancel();
        return (changes, true);
    }
}

/// What a round depends on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Watched {
    /// Files looked at one by one (the manifest, `.wasm` components).
    files: BTreeSet<PathBuf>,
    /// Crate folders, looked at whole but for their `target` and hidden folders.
    crates: BTreeSet<PathBuf>,
}

impl Watched {
    /// What the manifest at `manifest_path` (or found from here) names; only the manifest
    /// itself while it cannot be read.
    fn of(manifest_path: Option<&Path>) -> Watched {
        let mut watched = Watched::default();
        let Some(manifest) = crate::project::torvyn_manifest(manifest_path) else {
            return watched;
        };
        watched.files.insert(absolute(&manifest));
        if let Ok(project) = ProjectManifest::load(&manifest) {
            for decl in project.manifest().components.values() {
                match project.source_of(decl) {
                    ComponentSource::Crate(dir) => watched.crates.insert(absolute(&dir)),
                    ComponentSource::Wasm(file) => watched.files.insert(absolute(&file)),
                    ComponentSource::Oci(_) | ComponentSource::Digest(_) => false,
                };
            }
        }
        watched
    }

    /// The folders to watch, each with how deep.
    fn folders(&self) -> BTreeSet<(PathBuf, bool)> {
        let parents = (self.files.iter()).filter_map(|f| Some((f.parent()?.to_owned(), false)));
        let crates = self.crates.iter().map(|c| (c.clone(), true));
        parents.chain(crates).collect()
    }

    /// Watches its folders with `watcher`, where `before` did not, and no longer those only
    /// `before` had.
    fn register(&self, watcher: &mut impl Watcher, before: &Watched) -> miette::Result<()> {
        let (now, then) = (self.folders(), before.folders());
        for (folder, _) in then.difference(&now) {
            let _ = watcher.unwatch(folder);
        }
        for (folder, recursive) in now.difference(&then) {
            let mode = match recursive {
                true => RecursiveMode::Recursive,
                false => RecursiveMode::NonRecursive,
            };
            // A folder that does not exist yet is reported when the round cannot build.
            if folder.exists() {
                (watcher.watch(folder, mode))
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot watch `{}` for changes", folder.display()))?;
            }
        }
        Ok(())
    }

    /// Whether a change to `path` may change what a round runs.
    fn concerns(&self, path: &Path) -> bool {
        let path = absolute(path);
        self.files.contains(&path)
            || self.crates.iter().any(|dir| {
                path.strip_prefix(dir).is_ok_and(|inside| {
                    !inside.components().any(|part| match part {
                        Component::Normal(name) => {
                            name == "target" || name.to_string_lossy().starts_with('.')
                        }
                        _ => false,
                    })
                })
            })
    }
}

/// `path` from the root, with symbolic links resolved where it exists: how change events
/// name it.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(resolved) = path.canonicalize() {
        return resolved;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => absolute(parent).join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_round_depends_on_is_the_manifest_and_the_components_but_their_builds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("components/up/src")).unwrap();
        std::fs::write(
            root.join("Torvyn.toml"),
            "[project]\nname = \"w\"\n\n[components.up]\npath = \"components/up\"\n\n\
             [components.pre]\npath = \"built/pre.wasm\"\n",
        )
        .unwrap();
        let watched = Watched::of(Some(&root.join("Torvyn.toml")));
        assert!(watched.concerns(&root.join("Torvyn.toml")));
        assert!(watched.concerns(&root.join("components/up/src/lib.rs")));
        assert!(watched.concerns(&root.join("built/pre.wasm")));
        assert!(!watched.concerns(&root.join("components/up/target/debug/x")));
        assert!(!watched.concerns(&root.join("components/up/.git/index")));
        assert!(!watched.concerns(&root.join("out/out.txt")));
        assert!(!watched.concerns(&root.join("built/other.wasm")));
        // A manifest that does not parse is still watched, alone.
        std::fs::write(root.join("Torvyn.toml"), "[project").unwrap();
        let broken = Watched::of(Some(&root.join("Torvyn.toml")));
        assert_eq!(broken.files.len(), 1);
        assert!(broken.crates.is_empty());
    }
}
