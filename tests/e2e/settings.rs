//! Layered settings through the real CLI: each of the five layers overrides the one below,
//! as `config` shows; what they set reaches the flows; a bad layer is a diagnostic that
//! names its file and line, or its variable.

use std::path::Path;
use std::process::Command;

use crate::support::{Guest, Run, TestProject, torvyn};

/// `logs/*.log` → standard output, with `settings` as the project's `[settings]` table.
fn file_to_stdout(settings: &str) -> TestProject {
    let flow = TestProject::new().manifest(&format!(
        r#"
[project]
name = "settings"

[sources.logs]
type = "file"
include = ["logs/*.log"]

[sinks.out]
type = "stdout"

[flows.main]
nodes = ["logs", "out"]
edges = [{{ from = "logs", to = "out", high-watermark = 32 }}]

[settings]
{settings}
"#
    ));
    std::fs::create_dir_all(flow.dir().join("logs")).unwrap();
    std::fs::write(flow.dir().join("logs/a.log"), "one\ntwo\n").unwrap();
    flow
}

/// The CLI on `flow`'s manifest, with the user's configuration file in `config_home`.
fn cli(flow: &TestProject, config_home: &Path, args: &[&str]) -> Command {
    let mut command = torvyn();
    command
        .env("XDG_CONFIG_HOME", config_home)
        .arg("torvyn")
        .args(args)
        .arg("--manifest-path")
        .arg(flow.write_manifest());
    command
}

fn run(command: &mut Command) -> Run {
    Run::from(command.output().expect("cargo-torvyn runs"))
}

/// `config KEY --message-format json`: the value and the layer it came from.
fn setting(command: &mut Command) -> (serde_json::Value, String) {
    let run = run(command).success();
    let line: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(line["reason"], "setting", "{}", run.stdout);
    (
        line["value"].clone(),
        line["layer"].as_str().unwrap().to_owned(),
    )
}

fn write_user_file(config_home: &Path, text: &str) {
    std::fs::create_dir_all(config_home.join("torvyn")).unwrap();
    std::fs::write(config_home.join("torvyn/config.toml"), text).unwrap();
}

#[test]
fn each_layer_overrides_the_one_below_as_config_shows() {
    let home = tempfile::tempdir().unwrap();
    let json = ["config", "queue-capacity", "--message-format", "json"];
    let bare = file_to_stdout("");
    let shown = |flow: &TestProject, env: Option<&str>, extra: &[&str]| {
        let mut command = cli(flow, home.path(), &json);
        command.args(extra);
        if let Some(value) = env {
            command.env("TORVYN_QUEUE_CAPACITY", value);
        }
        setting(&mut command)
    };
    assert_eq!(
        shown(&bare, None, &[]),
        (64.into(), "built-in default".into())
    );
    write_user_file(home.path(), "queue-capacity = 48\n");
    assert_eq!(
        shown(&bare, None, &[]),
        (48.into(), "user configuration".into())
    );
    let flow = file_to_stdout("queue-capacity = 40");
    assert_eq!(shown(&flow, None, &[]), (40.into(), "project".into()));
    assert_eq!(
        shown(&flow, Some("36"), &[]),
        (36.into(), "environment".into())
    );
    assert_eq!(
        shown(&flow, Some("36"), &["--config", "queue-capacity=34"]),
        (34.into(), "command line".into())
    );

    // The human listing names the file or the variable, and hides a password.
    let listing = run(cli(&flow, home.path(), &["config"])
        .env("TORVYN_REGISTRY_USERNAME", " 'ci' ")
        .env("TORVYN_REGISTRY_PASSWORD", "s3cret"))
    .success();
    let line_of = |key: &str| {
        let line = listing.stdout.lines().find(|l| l.starts_with(key));
        line.unwrap_or_else(|| panic!("no {key}: {}", listing.stdout))
    };
    assert!(line_of("queue-capacity = 40 ").contains("# project: "));
    assert!(line_of("limits.memory = 268435456 ").ends_with("# built-in default"));
    // A variable's text is taken as it is, spaces and quotes included.
    assert!(
        line_of("registry.username = \" 'ci' \" ")
            .ends_with("# environment: TORVYN_REGISTRY_USERNAME")
    );
    for line in [
        "# registry.password is set, and not shown (environment: TORVYN_REGISTRY_PASSWORD)",
        "# listen is not set",
    ] {
        assert!(listing.stdout.contains(line), "{line}: {}", listing.stdout);
    }
    assert!(!listing.stdout.contains("s3cret"), "{}", listing.stdout);
    assert!(
        listing.stdout.contains("# project: ") && listing.stdout.contains("Torvyn.toml"),
        "{}",
        listing.stdout
    );
    let user_file = home.path().join("torvyn/config.toml");
    let note = format!(
        "note: the user's configuration file is {}",
        user_file.display()
    );
    assert!(listing.stderr.contains(&note), "{}", listing.stderr);
}

#[test]
fn what_the_settings_give_reaches_the_flows() {
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write_user_file(
        home.path(),
        &format!("state-dir = {:?}\n", state.path().display().to_string()),
    );
    // The project's default capacity is below the edge's high watermark: refused as if
    // the flow had set it; the command line can put it right.
    let flow = file_to_stdout("queue-capacity = 16");
    let refused = run(&mut cli(&flow, home.path(), &["link"])).failure();
    assert!(
        refused
            .stderr
            .contains("the high watermark 32 is above the edge's capacity 16"),
        "{}",
        refused.stderr
    );
    let ran = run(&mut cli(
        &flow,
        home.path(),
        &["run", "--config", "queue-capacity=32"],
    ))
    .success();
    assert_eq!(ran.stdout, "one\ntwo\n");
    // The checkpoint went to the user's state folder, not the project's.
    assert!(
        state.path().join("main").join("logs.json").is_file(),
        "{:?}",
        std::fs::read_dir(state.path()).unwrap().collect::<Vec<_>>()
    );
    assert!(!flow.dir().join(".torvyn").exists());

    // `observability = "off"` in the project: nothing to serve, unless the flag says.
    let quiet = file_to_stdout("queue-capacity = 32\nobservability = \"off\"");
    let listen = ["run", "--listen", "127.0.0.1:0"];
    let refused = run(&mut cli(&quiet, home.path(), &listen)).failure();
    assert!(
        refused
            .stderr
            .contains("with observability `off` (the setting `observability` (from the project"),
        "{}",
        refused.stderr
    );
    let mut observed = listen.to_vec();
    observed.extend(["--observability", "production"]);
    run(&mut cli(&quiet, home.path(), &observed)).success();

    // A limit out of its bounds is named with its layer.
    let refused = run(&mut cli(
        &quiet,
        home.path(),
        &["run", "--config", "limits.memory=1KiB"],
    ))
    .failure();
    assert!(
        refused
            .stderr
            .contains("setting `limits.memory` (from the command line): 1.0 KiB"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_bad_layer_is_named_with_its_file_and_line_or_its_variable() {
    let home = tempfile::tempdir().unwrap();
    let flow = file_to_stdout("");
    write_user_file(home.path(), "listen = \"127.0.0.1:0\"\nqueue-capcity = 4\n");
    for command in ["config", "run"] {
        let refused = run(&mut cli(&flow, home.path(), &[command])).failure();
        assert!(
            refused.stderr.contains("unknown field `queue-capcity`")
                && refused.stderr.contains("torvyn/config.toml:2:1"),
            "{command}: {}",
            refused.stderr
        );
    }
    // A diagnostic beside a password shows the line, never the password.
    write_user_file(
        home.path(),
        "[registry]\nusername = \"me\"\npassword = \"hunter2-secret\"\ninsecure = maybe\n",
    );
    let refused = run(&mut cli(&flow, home.path(), &["config"])).failure();
    assert!(
        refused.stderr.contains("torvyn/config.toml:4:")
            && refused.stderr.contains("password = ****"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("hunter2"), "{}", refused.stderr);
    write_user_file(home.path(), "");
    let refused =
        run(cli(&flow, home.path(), &["run"]).env("TORVYN_QUEUE_CAPACITY", "many")).failure();
    assert!(
        refused
            .stderr
            .contains("TORVYN_QUEUE_CAPACITY (the setting `queue-capacity`)"),
        "{}",
        refused.stderr
    );
    let refused = run(&mut cli(
        &flow,
        home.path(),
        &["config", "--config", "queue=4"],
    ));
    assert!(
        refused.stderr.contains("`queue` is not a setting"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.code, Some(2));

    // What belongs to the machine has no place in a project.
    let flow = file_to_stdout("cache-dir = \"/tmp/cache\"");
    let refused = run(&mut cli(&flow, home.path(), &["check"])).failure();
    assert!(
        refused
            .stderr
            .contains("`cache-dir` is a setting of the machine, not of the project"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Torvyn.toml:"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_fuel_limit_set_as_a_setting_is_metered() {
    let flow = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 3}"#)
        .component("bad", Guest::Hostile, r#"{"mode": "loop", "at": 1}"#)
        .component("out", Guest::Sink, "");
    let run = flow.run(&["--config", "limits.fuel=5000000"]).failure();
    assert!(run.stderr.contains("all fuel consumed"), "{}", run.stderr);
}

#[test]
fn a_listen_setting_is_passed_over_where_there_is_nothing_to_serve() {
    let home = tempfile::tempdir().unwrap();
    write_user_file(home.path(), "listen = \"127.0.0.1:0\"\n");
    let flow = file_to_stdout("queue-capacity = 32");
    let ran = run(&mut cli(
        &flow,
        home.path(),
        &["run", "--observability", "off"],
    ))
    .success();
    assert!(
        ran.stderr.contains(
            "not serving on 127.0.0.1:0 (the `listen` setting): with observability `off`"
        ),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "one\ntwo\n");
}
