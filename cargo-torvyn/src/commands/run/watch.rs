//! `run --watch`: the flows run again whenever the manifest or a component's sources
//! change, until stopped.
//!
//! 1. Ctrl-C and SIGTERM are watched once, on a token that ends the whole watch; each
//!    round runs on a child of it.
//! 2. A round reads the manifest, builds what is stale, links and runs the flows, as a
//!    plain `run` does.
//! 3. Meanwhile a change to the manifest, to a `.wasm` component, to anything in a
//!    component crate's folder (its `target` and hidden folders aside), or to a file that
//!    the `watch` globs of a component's own build match, ends the round: its
//!    sources stop and what is in flight drains, and its report is printed as any run's.
//!    Folders are watched rather than files, since editors save by replacing a file.
//! 4. Changes that come together (one save of several files) are gathered for
//!    [`SETTLE`], so that they make one round.
//! 5. A round that cannot start (a manifest error, a failed build) says why; one whose
//!    flows end on their own says so. Either way the next change starts the next round.
//! 6. A signal ends the round (draining it) and the watch; a second aborts, as for `run`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use miette::{Context, IntoDiagnostic};
use notify::{RecursiveMode, Watcher};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;
use torvyn_runtime::{ComponentSource, MANIFEST_FILE, ProjectManifest};

use super::RunCommand;
use super::events::EventLog;
use super::signals::stop_on_signal;
use crate::command_build::hidden;
use crate::output::status;

/// How long changes are gathered into one round after the first of them.
const SETTLE: Duration = Duration::from_millis(200);

/// Runs `command`'s flows round after round, each ended by a change, until a signal.
pub(super) fn watch(command: &RunCommand, runtime: &Runtime) -> miette::Result<()> {
    let Some(manifest) = crate::project::torvyn_manifest(command.manifest.manifest_path.as_deref())
    else {
        miette::bail!(
            help = "create one with `cargo torvyn new NAME --template pipeline`",
            "no {MANIFEST_FILE} found: `run --watch` needs a project with flows"
        );
    };
    let manifest = absolute(&manifest);
    // One file for every round's events.
    let events = Arc::new(EventLog::create(command.events.as_deref())?);
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
    let mut registered = Vec::new();
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let watched = Watched::of(&manifest, command.events.as_deref());
        registered = watched.register(&mut watcher, registered);
        let round = stop.child_token();
        let waiter = runtime.spawn(next_change(changes, watched, round.clone()));
        match command.round(runtime, Some((&round, &events))) {
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
            biased;
            () = round.cancelled() => return (changes, false),
            path = changes.recv() => path,
        };
        let Some(path) = path else {
            return (changes, false);
        };
        if !watched.concerns(&path) {
            continue;
        }
        tokio::select! {
            biased;
            () = round.cancelled() => return (changes, false),
            () = tokio::time::sleep(SETTLE) => {}
        }
        // Named by a file that is still there: an editor's or `sed -i`'s temporary file,
        // renamed over the one edited, is gone by now.
        let mut named = path;
        while let Ok(path) = changes.try_recv() {
            if !named.exists() && path.exists() && watched.concerns(&path) {
                named = path;
            }
        }
        status(
            "Restarting",
            format!("after a change to `{}`", named.display()),
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
    /// Crate folders, looked at whole but for their `target` folder, hidden folders and
    /// `Cargo.lock`, which a build writes.
    crates: BTreeSet<PathBuf>,
    /// The folders components with a build command of their own build in, and the files
    /// there that their `watch` globs name (never the `.wasm` file the build writes,
    /// unless a glob names it).
    build_dirs: BTreeSet<PathBuf>,
    build_globs: BTreeSet<glob::Pattern>,
    /// What a run writes: file sinks' files, checkpoint folders, the events file.
    written: BTreeSet<PathBuf>,
}

impl Watched {
    /// What the manifest at `manifest` names; only the manifest itself while it cannot be
    /// read. `events` is the `--events` file.
    fn of(manifest: &Path, events: Option<&Path>) -> Watched {
        let mut watched = Watched::default();
        watched.files.insert(manifest.to_owned());
        watched.written.extend(events.map(absolute));
        let Ok(project) = ProjectManifest::load(manifest) else {
            return watched;
        };
        let dir = project.dir();
        for decl in project.manifest().components.values() {
            if let Some(build) = &decl.build {
                let build_dir = absolute(&project.build_dir(build));
                let globs = (build.watch.iter())
                    .map(|glob| torvyn_runtime::glob_in(&build_dir, glob.get_ref()))
                    .filter_map(|glob| glob::Pattern::new(&glob).ok());
                watched.build_globs.extend(globs);
                watched.build_dirs.insert(build_dir);
                continue;
            }
            match project.source_of(decl) {
                ComponentSource::Crate(dir) => watched.crates.insert(absolute(&dir)),
                ComponentSource::Wasm(file) => watched.files.insert(absolute(&file)),
                ComponentSource::Oci(_) | ComponentSource::Digest(_) => false,
            };
        }
        let sinks = (project.manifest().sinks.values()).filter_map(|s| s.path.as_ref());
        for written in sinks {
            watched
                .written
                .insert(absolute(&dir.join(written.get_ref())));
        }
        let states = project.manifest().sources.values();
        watched
            .written
            .extend(states.map(|s| absolute(&project.state_dir(s))));
        watched
    }

    /// The folders to watch, each with whether its subfolders are too.
    fn folders(&self) -> BTreeSet<(PathBuf, bool)> {
        let parents = (self.files.iter()).filter_map(|f| Some((f.parent()?.to_owned(), false)));
        let crates = (self.crates.iter().chain(&self.build_dirs)).map(|c| (c.clone(), true));
        parents.chain(crates).collect()
    }

    /// Watches its folders with `watcher` in place of the `before` ones: all of them again
    /// each round, since a folder deleted and made again (a `git checkout`) is no longer
    /// watched, and unwatching a folder unwatches those below it. A folder that does not
    /// exist is left out (a build reports it). The folders now watched.
    fn register(&self, watcher: &mut impl Watcher, before: Vec<PathBuf>) -> Vec<PathBuf> {
        for folder in before {
            let _ = watcher.unwatch(&folder);
        }
        let mut now = Vec::new();
        for (folder, recursive) in self.folders() {
            let mode = match recursive {
                true => RecursiveMode::Recursive,
                false => RecursiveMode::NonRecursive,
            };
            match watcher.watch(&folder, mode) {
                Ok(()) => now.push(folder),
                Err(error) if folder.exists() => status(
                    "Warning",
                    format!("changes to `{}` are not watched: {error}", folder.display()),
                ),
                Err(_) => {}
            }
        }
        now
    }

    /// Whether a change to `path`, as a change event names it (under a watched folder, as
    /// given), may change what a round runs.
    fn concerns(&self, path: &Path) -> bool {
        if self.written.iter().any(|written| path.starts_with(written)) {
            return false;
        }
        let separated = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let below = |dir: &PathBuf| path.starts_with(dir) && !hidden(path, dir);
        self.files.contains(path)
            || (self.build_dirs.iter().any(below)
                && (self.build_globs.iter()).any(|glob| glob.matches_path_with(path, separated)))
            || self.crates.iter().filter(|dir| below(dir)).any(|dir| {
                path.strip_prefix(dir).is_ok_and(|inside| {
                    !inside.starts_with("target") && inside != Path::new("Cargo.lock")
                })
            })
    }
}

/// `path` from the root, with symbolic links resolved where it exists, as the folders
/// watched are named (so that change events under them are named alike).
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
    fn what_a_round_depends_on_is_the_manifest_and_the_components_but_what_runs_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("components/up/src")).unwrap();
        let manifest = root.join("Torvyn.toml");
        std::fs::write(
            &manifest,
            "[project]\nname = \"w\"\n\n[components.up]\npath = \"components/up\"\n\n\
             [components.pre]\npath = \"built/pre.wasm\"\n\n\
             [components.py]\npath = \"py/target/py.wasm\"\n\
             [components.py.build]\ncommand = \"make\"\nworkdir = \"py\"\nwatch = [\"*.py\"]\n\n\
             [sinks.out]\ntype = \"file\"\npath = \"components/up/out.txt\"\n",
        )
        .unwrap();
        let watched = Watched::of(&manifest, Some(&root.join("components/up/events.jsonl")));
        assert!(watched.concerns(&manifest));
        assert!(watched.concerns(&root.join("components/up/src/lib.rs")));
        assert!(watched.concerns(&root.join("components/up/src/target/mod.rs")));
        assert!(watched.concerns(&root.join("built/pre.wasm")));
        for built in ["components/up/target/debug/x", "components/up/Cargo.lock"] {
            assert!(!watched.concerns(&root.join(built)), "{built}");
        }
        assert!(!watched.concerns(&root.join("components/up/.git/index")));
        // What a run writes inside a crate folder does not start another.
        assert!(!watched.concerns(&root.join("components/up/out.txt")));
        assert!(!watched.concerns(&root.join("components/up/events.jsonl")));
        assert!(!watched.concerns(&root.join("out/out.txt")));
        assert!(!watched.concerns(&root.join("built/other.wasm")));
        // A component built by its own command: what its globs name, not what it makes.
        assert!(watched.concerns(&root.join("py/app.py")));
        assert!(!watched.concerns(&root.join("py/lib/deep.py")));
        assert!(!watched.concerns(&root.join("py/target/py.wasm")));
        assert!(!watched.concerns(&root.join("py/__pycache__/app.cpython-311.pyc")));
        assert!(!watched.concerns(&root.join("py/.hidden.py")));
        // A manifest that does not parse is still watched, alone.
        std::fs::write(&manifest, "[project").unwrap();
        let broken = Watched::of(&manifest, None);
        assert_eq!(broken.files, BTreeSet::from([manifest]));
        assert!(broken.crates.is_empty());
    }
}
