//! Capabilities: a component reaches outside its sandbox only where `Torvyn.toml` grants
//! it; refused network use is audited.

use crate::support::{Guest, Run, TestProject};

/// One element through `test-hostile` in `mode` on `path`, with `capabilities` (an
/// inline table, or `None`), skipping failures; `project` may add files to the folder.
/// The host's environment has `TORVYN_TEST_SECRET=s3cret`.
fn probe(mode: &str, path: &str, capabilities: Option<&str>, project: TestProject) -> Run {
    let project = probing(mode, path, 1, capabilities, project);
    // A variable in the host's environment, for the probe to find or not.
    let mut command = project.run_command(&[]);
    command.env("TORVYN_TEST_SECRET", "s3cret");
    Run::from(command.output().unwrap()).success()
}

/// `count` elements through `test-hostile` in `mode` on `path`, as [`probe`] runs them.
fn probing(
    mode: &str,
    path: &str,
    count: u64,
    capabilities: Option<&str>,
    project: TestProject,
) -> TestProject {
    let config = format!(r#"{{"mode": "{mode}", "path": "{path}"}}"#);
    let mut project = project
        .component("src", Guest::Source, &format!(r#"{{"count": {count}}}"#))
        .component("probe", Guest::Hostile, &config)
        .component("out", Guest::Sink, "");
    if let Some(capabilities) = capabilities {
        project = project.set("probe", "capabilities", capabilities);
    }
    project.flow(
        r#"nodes = ["src", "probe", "out"]
edges = [{ from = "src", to = "probe" }, { from = "probe", to = "out" }]
on-error = { probe = "skip" }"#,
    )
}

/// What reached the sink, or `None` when the probe failed (and the error it gave).
fn outcome(run: &Run) -> Result<String, String> {
    match run.delivered().first() {
        Some((_, payload)) => Ok(payload.clone()),
        None => {
            assert_eq!(run.report()["accounting"]["failed"], 1);
            Err(run.stderr.clone())
        }
    }
}

/// The audit event of a probe that was refused, checking it failed.
fn refusal(run: &Run) -> serde_json::Value {
    assert!(outcome(run).is_err(), "{}", run.stdout);
    run.report()["audit"][0].clone()
}

#[test]
fn network_is_denied_and_audited_unless_the_address_is_granted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();

    let denied = probe("connect", &address, None, TestProject::new());
    assert!(outcome(&denied).is_err());
    let report = denied.report();
    let event = &report["audit"][0];
    assert_eq!(event["node"], "probe");
    assert_eq!(event["capability"], format!("network:{address}"));
    assert!(event["at_unix_ms"].as_u64().unwrap() > 0);
    assert_eq!(event["reason"], "no network address is granted to it");
    assert!(
        denied.stderr.contains(&format!(
            "Denied `probe` TcpConnect to {address}: no network address is granted to it (`network:{address}`, flow `main`)"
        )),
        "{}",
        denied.stderr
    );

    let grant = format!(r#"{{ network = ["{address}"] }}"#);
    let granted = probe("connect", &address, Some(&grant), TestProject::new());
    assert_eq!(outcome(&granted).unwrap(), "connected");
    assert_eq!(granted.report()["audit"], serde_json::json!([]));
}

#[test]
fn files_are_readable_only_in_granted_directories() {
    let project = TestProject::new();
    for (dir, text) in [("data", "granted"), ("secret", "not granted")] {
        std::fs::create_dir(project.dir().join(dir)).unwrap();
        std::fs::write(project.dir().join(dir).join("file.txt"), text).unwrap();
    }
    let read_only = r#"{ filesystem = [{ path = "data", access = "read" }] }"#;
    let run = probe("read", "/data/file.txt", Some(read_only), project);
    assert_eq!(outcome(&run).unwrap(), "granted");

    let project = TestProject::new();
    std::fs::create_dir(project.dir().join("data")).unwrap();
    let run = probe("read", "/secret/file.txt", Some(read_only), project);
    let error = outcome(&run).unwrap_err();
    assert!(error.contains("cannot read `/secret/file.txt`"), "{error}");
    // The refusal is audited: node, capability, what it tried, when.
    let report = run.report();
    let event = &report["audit"][0];
    assert_eq!(event["node"], "probe");
    assert_eq!(event["capability"], "filesystem:read");
    assert_eq!(event["detail"], "open `/secret/file.txt`");
    // It has a grant, and is told so: the path is outside it.
    let why = "the path is outside the directories granted to it (`/data`)";
    assert_eq!(event["reason"], why);
    assert!(
        run.stderr.contains(&format!(
            "Denied `probe` open `/secret/file.txt`: {why} (`filesystem:read`, flow `main`)"
        )),
        "{}",
        run.stderr
    );

    // Without any grant, and for writing, alike.
    let run = probe("write", "/out.txt", None, TestProject::new());
    let event = refusal(&run);
    assert_eq!(event["capability"], "filesystem:write");
    assert_eq!(event["reason"], "no directory is granted to it");
}

#[test]
fn a_denial_inside_a_granted_directory_says_why() {
    let project = TestProject::new();
    std::fs::create_dir(project.dir().join("data")).unwrap();
    std::fs::write(project.dir().join("secret.txt"), "not granted").unwrap();
    let read_only = r#"{ filesystem = [{ path = "data", access = "read" }] }"#;

    // `..` leads out of the granted directory: refused, and not for want of a grant.
    let run = probe("read", "/data/../secret.txt", Some(read_only), project);
    let event = refusal(&run);
    assert_eq!(event["capability"], "filesystem:read");
    let reason = event["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the path leads out of that directory"),
        "{event}"
    );
    assert!(run.stderr.contains(reason), "{}", run.stderr);
    assert!(
        !run.stderr.contains("no directory is granted"),
        "{}",
        run.stderr
    );

    // Writing where only reading is granted.
    let project = TestProject::new();
    std::fs::create_dir(project.dir().join("data")).unwrap();
    let run = probe("write", "/data/new.txt", Some(read_only), project);
    let event = refusal(&run);
    assert_eq!(event["capability"], "filesystem:write");
    assert_eq!(event["reason"], "the directory is granted read-only");
}

#[test]
fn grants_that_reach_outside_the_project_are_flagged_and_refused_on_demand() {
    // `src` into `out`, which is granted `filesystem`.
    let granted = |filesystem: &str| {
        TestProject::new()
            .component("src", Guest::Source, r#"{"count": 1}"#)
            .component("out", Guest::Sink, "")
            .set(
                "out",
                "capabilities",
                &format!("{{ filesystem = [{filesystem}] }}"),
            )
    };
    let project =
        granted(r#"{ path = "/", access = "read-write" }, { path = "..", access = "read" }"#);
    let whole = "component `out` is granted read-write access to the host's whole filesystem";
    let above = "outside the project's folder";
    for command in [&["check"][..], &["link"], &["run"]] {
        let run = project.command(command).success();
        assert!(
            run.stderr.contains(whole) && run.stderr.contains(above),
            "{command:?}: {}",
            run.stderr
        );
        // Each at its line of the manifest.
        assert!(run.stderr.contains("Torvyn.toml:"), "{}", run.stderr);

        let mut denied = command.to_vec();
        denied.push("--deny-warnings");
        let run = project.command(&denied).failure();
        assert!(
            run.stderr.contains("2 warnings refused (--deny-warnings)"),
            "{command:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("Running"), "{}", run.stderr);
    }
    // Every command that runs flows refuses them too, before building anything.
    for command in ["trace", "test", "bench"] {
        let run = project.command(&[command, "--deny-warnings"]).failure();
        assert!(
            run.stderr.contains(whole) && run.stderr.contains("2 warnings refused"),
            "{command}: {}",
            run.stderr
        );
    }

    // A grant inside the project is no warning.
    let project = granted(r#"{ path = ".", access = "read" }"#);
    let run = project.command(&["check", "--deny-warnings"]).success();
    assert!(!run.stderr.contains("manifest::warning"), "{}", run.stderr);
}

#[test]
fn a_missing_granted_directory_is_a_manifest_error() {
    let project = TestProject::new()
        .component("src", Guest::Source, "")
        .component("out", Guest::Sink, "")
        .set(
            "out",
            "capabilities",
            r#"{ filesystem = [{ path = "nowhere", access = "read-write" }] }"#,
        );
    let run = project.run(&[]).failure();
    assert!(
        run.stderr.contains("granted directory") && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Torvyn.toml:"), "{}", run.stderr);
}

#[test]
fn environment_variables_are_seen_only_when_granted_by_name() {
    let granted = r#"{ env = ["TORVYN_TEST_SECRET"] }"#;
    let run = probe(
        "env",
        "TORVYN_TEST_SECRET",
        Some(granted),
        TestProject::new(),
    );
    assert_eq!(outcome(&run).unwrap(), "s3cret");
    let run = probe("env", "TORVYN_TEST_SECRET", None, TestProject::new());
    assert!(outcome(&run).is_err());
}

#[test]
fn capability_query_answers_from_the_grants() {
    let ask = |capability: &str, grants: Option<&str>| {
        outcome(&probe("query", capability, grants, TestProject::new())).unwrap()
    };
    assert_eq!(ask("stdout", None), "stdout=true");
    assert_eq!(ask("env:HOME", None), "env:HOME=false");
    assert_eq!(
        ask("env:HOME", Some(r#"{ env = ["HOME"] }"#)),
        "env:HOME=true"
    );
    assert_eq!(ask("stdout", Some("{ stdout = false }")), "stdout=false");
}

#[test]
fn a_component_denied_stdout_prints_nothing() {
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("out", Guest::Sink, "")
        .set("out", "capabilities", "{ stdout = false }")
        .run(&[])
        .success();
    assert!(run.delivered().is_empty(), "{}", run.stdout);
    assert_eq!(run.report()["delivered"], 3);
}

/// `src → probe → out` where `probe`, under `skip`, tries to read `/secret/file.txt` for
/// each of `count` elements and is refused each time.
fn reading_a_secret(count: u64) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, &format!(r#"{{"count": {count}}}"#))
        .component(
            "probe",
            Guest::Hostile,
            r#"{"mode": "read", "path": "/secret/file.txt"}"#,
        )
        .component("out", Guest::Sink, "")
        .flow(
            r#"nodes = ["src", "probe", "out"]
edges = [{ from = "src", to = "probe" }, { from = "probe", to = "out" }]
on-error = { probe = "skip" }"#,
        )
}

#[test]
fn a_refused_capability_and_a_failed_flow_are_events() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    reading_a_secret(1).run(&["--events", path]).success();
    let (logged, _) = crate::support::events(&file);
    let denied: Vec<_> = (logged.iter())
        .filter(|e| e["event"] == "capability-denied")
        .collect();
    assert_eq!(denied.len(), 1, "{logged:?}");
    assert_eq!(denied[0]["node"], "probe");
    assert_eq!(denied[0]["capability"], "filesystem:read");
    assert_eq!(denied[0]["detail"], "open `/secret/file.txt`");

    // Under `fail-flow`, the trap ends the flow, and the event says why.
    let run = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 10}"#)
        .component("up", Guest::Upper, r#"{"trap_every": 3}"#)
        .component("out", Guest::Sink, r#"{"quiet": true}"#)
        .run(&["--events", path])
        .failure();
    let (logged, _) = crate::support::events(&file);
    let ended = logged.last().unwrap();
    assert_eq!(ended["event"], "ended", "{logged:?}");
    assert_eq!(ended["outcome"], "failed");
    let error = ended["error"].as_str().unwrap();
    assert!(
        error.contains("node `up` trapped in `process` on element 2"),
        "{error}"
    );
    // Its further lines (the backtrace) are indented on stderr.
    let first = error.lines().next().unwrap();
    assert!(run.stderr.contains(first), "{}", run.stderr);
}

#[test]
fn the_same_denial_again_and_again_is_shown_once_and_counted() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let run = reading_a_secret(12)
        .run(&["--events", file.path().to_str().unwrap()])
        .success();
    let denied: Vec<&str> = (run.stderr.lines())
        .filter(|line| line.trim_start().starts_with("Denied"))
        .collect();
    assert_eq!(denied.len(), 2, "{}", run.stderr);
    assert!(
        denied[0].contains("open `/secret/file.txt`"),
        "{}",
        denied[0]
    );
    assert!(
        denied[1].ends_with("`probe` of flow `main` 11 more times for the same use"),
        "{}",
        denied[1]
    );
    // The events file still has every one.
    let (logged, _) = crate::support::events(&file);
    let events = logged.iter().filter(|e| e["event"] == "capability-denied");
    assert_eq!(events.count(), 12);
}

#[test]
fn a_flow_keeps_its_first_thousand_refusals_and_counts_the_rest() {
    let long = format!("/{}", "x".repeat(10_000));
    let project = probing("read", &long, 1005, None, TestProject::new());
    let report = project.run(&[]).success().report();
    assert_eq!(report["audit"].as_array().unwrap().len(), 1000);
    assert_eq!(report["audit_omitted"], 5);
    // What the component asked for is kept cut short.
    let detail = report["audit"][0]["detail"].as_str().unwrap();
    assert!(
        detail.len() < 4200 && detail.contains("(10008 bytes in all)"),
        "{detail}"
    );
}
