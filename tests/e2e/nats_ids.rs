//! What a `nats` sink's message ids let the output stream drop as duplicates within its
//! window, and what they must not: the same element read again after a restart (its
//! file renamed meanwhile or not) is dropped; a new element that reuses an old one's
//! place (a file replaced, or truncated and written again; a stream deleted and made
//! again) is stored.

use std::path::Path;

use async_nats::jetstream::stream;

use crate::connectors::{checkpoint, project};
use crate::nats::{Nats, connector, hosts, numbered, wait_until_held, work_queue};
use crate::support::{TestProject, count};

/// `logs/a.log*` → `nats` sink `RESULTS` (subject `results.all`), with extra `source`
/// and `flow` settings, and `logs/a.log` holding `contents`.
pub(crate) fn file_to_nats(nats: &Nats, source: &str, flow: &str, contents: &str) -> TestProject {
    let flow = project(&format!(
        r#"
[sources.logs]
type = "file"
include = ["logs/a.log*"]
{source}

[sinks.results]
type = "nats"
url = "{}"
subject = "results.all"
stream = "RESULTS"

[flows.main]
nodes = ["logs", "results"]
edges = [{{ from = "logs", to = "results" }}]
{flow}
"#,
        nats.url
    ));
    let logs = flow.dir().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("a.log"), contents).unwrap();
    flow
}

/// Runs `flow` to the end of its file: how many elements it delivered and how many of
/// them the stream already held.
fn run(flow: &TestProject) -> (u64, u64) {
    let report = flow.run(&[]).success().report();
    let duplicates = connector(&report, "results")["duplicates"]
        .as_u64()
        .unwrap();
    (count(&report, "delivered"), duplicates)
}

#[test]
fn a_file_read_again_is_stored_once_and_a_file_written_again_in_its_place_is_stored_anew() {
    let Some(nats) = Nats::start() else { return };
    let flow = file_to_nats(&nats, "", "", "aaa\nbbb\n");
    let logs = flow.dir().join("logs");
    let log = logs.join("a.log");
    assert_eq!(run(&flow), (2, 0));

    // A checkpoint behind what was delivered, as a host killed before it stored one leaves
    // it: the file's lines are read again, and the stream knows them.
    rewind(&flow);
    assert_eq!(run(&flow), (2, 2));
    // The same, the file rotated to a name the globs match too meanwhile.
    rewind(&flow);
    std::fs::rename(&log, logs.join("a.log.1")).unwrap();
    assert_eq!(run(&flow), (2, 2));
    assert_eq!(nats.messages("RESULTS"), ["aaa", "bbb"]);

    // Another file at the same path, its lines at the same offsets, within the stream's
    // duplicate window: new lines, stored.
    replace(&log, "ccc\nddd\n");
    assert_eq!(run(&flow), (2, 0));
    // The same file cut and written again (as `copytruncate` does): new lines too.
    std::fs::write(&log, "eee\nfff\n").unwrap();
    assert_eq!(run(&flow), (2, 0));
    let all = ["aaa", "bbb", "ccc", "ddd", "eee", "fff"];
    assert_eq!(nats.messages("RESULTS"), all);
}

#[test]
fn a_host_killed_before_its_first_periodic_checkpoint_names_what_it_reads_again_alike() {
    let Some(nats) = Nats::start() else { return };
    let lines: Vec<String> = numbered(0..20_000).collect();
    let flow = file_to_nats(&nats, "", "", &(lines.join("\n") + "\n"));
    // Killed at its first message stored, well within the second after which a file
    // source stores its checkpoints: only the checkpoint stored before its first line
    // was handed out names the file's version for the rerun.
    let mut running = hosts(&flow, 1);
    wait_until_held(&nats, &mut running, "RESULTS", 1);
    let mut killed = running.remove(0);
    killed.child().kill().unwrap();
    let _ = killed.child().wait();
    let (_, duplicates) = run(&flow);
    assert!(duplicates > 0, "nothing was read again");
    assert_eq!(nats.held("RESULTS"), 20_000, "each line stored once");
}

#[test]
fn a_stream_deleted_and_made_again_within_the_window_is_not_taken_for_the_old_one() {
    let Some(nats) = Nats::start() else { return };
    let flow = work_queue(&nats, "");
    for round in 0..2 {
        // Each stream numbers its messages from 1.
        nats.create_stream("WORK", &["work.>"], stream::RetentionPolicy::WorkQueue);
        nats.publish("work.items", numbered(2 * round..2 * round + 2));
        let report = flow.run(&["--limit", "2"]).success().report();
        assert_eq!(connector(&report, "results")["duplicates"], 0);
        nats.with(|js| async move { js.delete_stream("WORK").await.unwrap() });
    }
    assert_eq!(nats.messages("RESULTS"), ["N 0", "N 1", "N 2", "N 3"]);
}

/// Moves the checkpoint of the one file `flow` has read back to its start.
fn rewind(flow: &TestProject) {
    let state = flow.dir().join(".torvyn/state/main/logs.json");
    let mut behind = checkpoint(flow.dir(), "logs");
    behind["files"][0]["offset"] = 0.into();
    behind["files"][0]["lines"] = 0.into();
    std::fs::write(&state, behind.to_string()).unwrap();
}

/// Puts a new file at `path`, as a program that writes a file beside it and renames it
/// over the old one does.
fn replace(path: &Path, contents: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, contents).unwrap();
    std::fs::rename(&new, path).unwrap();
}
