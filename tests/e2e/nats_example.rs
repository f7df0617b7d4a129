//! The `nats-work-queue` example, as its comments say to run it, against a real
//! `nats-server`: a file published into a work queue, two hosts sharing it, and the
//! results read back with each line's number, which travelled as a header.

use std::collections::BTreeSet;

use crate::nats::{Nats, connector, host, sum, wait_until_consumed, wait_until_held};
use crate::support::{Run, torvyn, workspace};

#[test]
fn the_nats_work_queue_example_shares_its_queue_between_two_hosts_and_keeps_line_numbers() {
    let Some(nats) = Nats::start() else { return };
    let examples = workspace().join("examples");
    let dir = tempfile::tempdir().unwrap();
    // Its server, and its files named by their full paths from a folder of the test's.
    let path = |p: &str| format!("{:?}", examples.join(p).display().to_string());
    let manifest = std::fs::read_to_string(examples.join("nats-work-queue/Torvyn.toml"))
        .unwrap()
        .replace("nats://127.0.0.1:4222", &nats.url)
        .replace(
            "\"../log-redact/access.log\"",
            &path("log-redact/access.log"),
        )
        .replace(
            "\"../log-redact/components/redact\"",
            &path("log-redact/components/redact"),
        );
    let manifest_path = dir.path().join("Torvyn.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let run = |args: &[&str]| {
        let output = torvyn()
            .args(["torvyn", "run", "--manifest-path"])
            .arg(&manifest_path)
            .args(args)
            .output()
            .unwrap();
        Run::from(output).success()
    };

    // The hosts first, so that both ask for work before there is any.
    let mut hosts: Vec<_> = (0..2).map(|_| host(&manifest_path, &["work"])).collect();
    nats.wait_for_hosts("WORK", "torvyn-work-work", 2);
    let published = run(&["publish"]);
    assert!(
        published.stderr.contains("3000 settled"),
        "{}",
        published.stderr
    );
    wait_until_held(&nats, &mut hosts, "REDACTED", 3000);
    wait_until_consumed(&nats, "WORK", "torvyn-work-work");
    let reports: Vec<serde_json::Value> = (hosts.into_iter())
        .map(|h| h.terminate().success().report())
        .collect();
    assert_eq!(sum(&reports, "work", "acks"), 3000);
    assert_eq!(sum(&reports, "work", "redelivered"), 0);
    assert!(
        reports.iter().all(|r| connector(r, "work")["acks"] != 0),
        "both hosts took part"
    );
    assert_eq!(nats.held("WORK"), 0);

    let shown = run(&["show", "--limit", "3000"]);
    let numbers: BTreeSet<u64> = (shown.stdout.lines())
        .map(|line| {
            let object: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(!object["line"].as_str().unwrap().is_empty(), "{line}");
            object["number"].as_u64().expect("a line number")
        })
        .collect();
    assert_eq!(numbers, (1..=3000).collect());
}
