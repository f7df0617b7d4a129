//! `pack`, `publish`, `inspect` and `oci://` components against a real OCI registry: the
//! CNCF distribution registry from Debian's `docker-registry` package, started on a free
//! loopback port with its storage in a temporary folder.
//!
//! Without `docker-registry` on `PATH` these tests say so and pass, unless
//! `TORVYN_TEST_REQUIRE_REGISTRY` is set, as `.ci/run` sets it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci_client::secrets::RegistryAuth;

use crate::support::{Guest, TestProject, files_in};

use crate::registry::{PASSWORD, Registry, USER, cli, cli_on, digest_in, flow_with, run, run_flow};

#[test]
fn a_component_goes_from_new_to_a_registry_and_runs_from_there_and_from_the_cache() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    run(cli(&cache)
        .current_dir(work.path())
        .args(["new", "shout", "--template", "processor"]))
    .success();
    let crate_dir = work.path().join("shout");
    // The crate builds where the test guests do, which saves building its dependencies.
    let target = crate::support::guest_target_dir();
    let in_crate = || {
        let mut command = cli(&cache);
        command
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&crate_dir);
        command
    };

    let packed = run(in_crate().arg("pack")).success();
    // In Cargo's target folder, wherever CARGO_TARGET_DIR puts it.
    let layout = target.join("torvyn/oci/shout");
    assert!(layout.join("oci-layout").is_file(), "{}", packed.stderr);
    let digest = digest_in(&packed.stderr);
    // Packing what has not changed again changes nothing.
    let again = run(in_crate().arg("pack")).success();
    assert_eq!(digest_in(&again.stderr), digest);

    let repository = registry.at("team/shout");
    let published =
        run(in_crate().args(["publish", &repository, "--message-format", "json"])).success();
    let message: serde_json::Value = serde_json::from_str(published.stdout.trim()).unwrap();
    assert_eq!(message["reference"], format!("{repository}:0.1.0"));
    assert_eq!(message["digest"], digest);
    assert_eq!(message["pushed"], true);
    let republished = run(in_crate().args(["publish", &repository])).success();
    assert!(
        republished.stderr.contains("nothing was pushed"),
        "{}",
        republished.stderr
    );

    // What the registry holds is a CNCF Wasm OCI artifact.
    let (manifest, config) =
        registry.fetch(&format!("{repository}:0.1.0"), &RegistryAuth::Anonymous);
    assert_eq!(
        manifest.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        manifest.config.media_type,
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest.layers.len(), 1);
    assert_eq!(manifest.layers[0].media_type, "application/wasm");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(
        config["layerDigests"],
        serde_json::json!([manifest.layers[0].digest])
    );
    let exports = config["component"]["exports"].as_array().unwrap();
    assert!(
        exports.contains(&"torvyn:streaming/processor@0.1.0".into()),
        "{config}"
    );
    let annotations = manifest.annotations.unwrap();
    assert_eq!(annotations["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(annotations["dev.torvyn.role"], "processor");
    assert_eq!(
        annotations["dev.torvyn.contract"],
        "torvyn:streaming/processor@0.1.0"
    );
    assert!(annotations.contains_key("org.opencontainers.image.created"));
    assert!(annotations.contains_key("dev.torvyn.capabilities"));

    // Nothing local is left: the component comes from the registry alone.
    std::fs::remove_dir_all(&crate_dir).unwrap();
    let by_tag = flow_with(&format!("oci://{repository}:0.1.0"));
    let by_digest = flow_with(&format!("oci://{repository}@{digest}"));
    for project in [&by_tag, &by_digest] {
        let ran = run_flow(project, &cache).success();
        let delivered = ran.delivered();
        assert_eq!(delivered.len(), 20, "{}", ran.stderr);
        assert_eq!(delivered[7].1, "ITEM 7");
    }
    let inspected =
        run(cli(&cache).args(["inspect", &format!("oci://{repository}:0.1.0")])).success();
    assert!(
        inspected.stdout.starts_with("kind: component\n")
            && inspected.stdout.contains(&format!("digest: {digest}\n"))
            && inspected.stdout.contains("\nrole: processor\n")
            && (inspected.stdout).contains("\nworld: torvyn:streaming/managed-transform@0.1.0\n"),
        "{}",
        inspected.stdout
    );

    // With the registry gone, the cache serves both: the tag as last pulled, the digest
    // without asking.
    drop(registry);
    let ran = run_flow(&by_tag, &cache).success();
    assert_eq!(ran.delivered().len(), 20);
    assert!(
        ran.stderr.contains("is unreachable: using the cached"),
        "{}",
        ran.stderr
    );
    let ran = run_flow(&by_digest, &cache).success();
    assert_eq!(ran.delivered().len(), 20);
    assert!(!ran.stderr.contains("unreachable"), "{}", ran.stderr);
}

#[test]
fn a_whole_pipeline_is_published_and_runs_by_reference() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let project = TestProject::new()
        .component("src", Guest::Source, r#"{"count": 30}"#)
        .component("up", Guest::Upper, "")
        .component("out", Guest::Sink, "");
    let manifest = project.write_manifest();
    let cache = project.dir().join("cache");
    let repository = registry.at("pipelines/shout:1");
    run(cli(&cache)
        .args(["publish", &repository, "--pipeline", "--manifest-path"])
        .arg(&manifest))
    .success();

    // Another machine: an empty cache, no project.
    let elsewhere = tempfile::tempdir().unwrap();
    let reference = format!("oci://{repository}");
    let ran =
        run(cli(elsewhere.path()).args(["run", &reference, "--message-format", "json"])).success();
    let delivered = ran.delivered();
    assert_eq!(delivered.len(), 30, "{}", ran.stderr);
    assert_eq!(delivered[3].1, "ITEM 3");
    assert_eq!(ran.report()["delivered"], 30);

    let inspected =
        run(cli(elsewhere.path()).args(["inspect", &reference, "--message-format", "json"]))
            .success();
    let report: serde_json::Value = serde_json::from_str(inspected.stdout.trim()).unwrap();
    assert_eq!(report["kind"], "pipeline");
    assert_eq!(report["flows"], serde_json::json!(["main"]));
    let components = report["components"].as_object().unwrap();
    assert_eq!(components.len(), 3);

    // A pipeline is not a component, and the other way round.
    let as_component = flow_with(&reference);
    let refused = run_flow(&as_component, elsewhere.path()).failure();
    assert!(
        refused.stderr.contains("is a pipeline, not a component"),
        "{}",
        refused.stderr
    );
}

#[test]
fn credentials_come_from_the_environment_or_the_docker_config() {
    let Some(registry) = Registry::start(true) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let layout = work.path().join("layout");
    let upper = Guest::Upper.wasm();
    let project = flow_with(&upper.display().to_string());
    run(cli(&cache)
        .args(["pack", "shout", "--output"])
        .arg(&layout)
        .arg("--manifest-path")
        .arg(project.write_manifest()))
    .success();
    let repository = registry.at("private/upper:1");
    let publish = |command: &mut Command| {
        command
            .args(["publish", &repository, "--from"])
            .arg(&layout);
        run(command)
    };

    let anonymous = publish(&mut cli(&cache)).failure();
    assert!(anonymous.stderr.contains("401"), "{}", anonymous.stderr);
    assert!(
        anonymous.stderr.contains("none were given"),
        "{}",
        anonymous.stderr
    );
    assert!(
        anonymous.stderr.contains("docker login"),
        "{}",
        anonymous.stderr
    );

    let wrong = publish(
        cli(&cache)
            .env("TORVYN_REGISTRY_USERNAME", USER)
            .env("TORVYN_REGISTRY_PASSWORD", "wrong"),
    )
    .failure();
    assert!(
        wrong.stderr.contains("refused the credentials"),
        "{}",
        wrong.stderr
    );

    // `docker login` writes this.
    let docker = cache.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    let config = serde_json::json!({ "auths": { registry.address.clone(): { "auth": auth } } });
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    publish(&mut cli(&cache)).success();

    // Pulling needs them too.
    let reader = work.path().join("reader");
    let pulled = flow_with(&format!("oci://{repository}"));
    let refused = run_flow(&pulled, &reader).failure();
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    let mut command = cli(&reader);
    command
        .env("TORVYN_REGISTRY_USERNAME", USER)
        .env("TORVYN_REGISTRY_PASSWORD", PASSWORD)
        .args(["run", "--message-format", "json", "--manifest-path"])
        .arg(pulled.write_manifest());
    assert_eq!(run(&mut command).success().delivered().len(), 20);
    let auth = RegistryAuth::Basic(USER.into(), PASSWORD.into());
    let (manifest, _) = registry.fetch(&repository, &auth);
    assert_eq!(manifest.layers[0].media_type, "application/wasm");
}

#[test]
fn registry_failures_say_what_happened_and_leave_the_cache_clean() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();

    let missing = run_flow(
        &flow_with(&format!("oci://{}", registry.at("no/such:1"))),
        cache,
    );
    let missing = missing.failure();
    assert!(
        missing.stderr.contains("is not in the registry"),
        "{}",
        missing.stderr
    );

    let foreign = registry.at("images/foreign:1");
    registry.push_foreign(&foreign);
    let refused = run_flow(&flow_with(&format!("oci://{foreign}")), cache).failure();
    assert!(
        refused.stderr.contains("is not a Torvyn component")
            && refused
                .stderr
                .contains("application/vnd.oci.image.layer.v1.tar"),
        "{}",
        refused.stderr
    );

    let unknown_digest = format!("{}@sha256:{}", registry.at("no/such"), "ab".repeat(32));
    let missing = run_flow(&flow_with(&format!("oci://{unknown_digest}")), cache).failure();
    assert!(
        missing.stderr.contains("is not in the registry"),
        "{}",
        missing.stderr
    );

    let address = registry.address.clone();
    drop(registry);
    let unreachable = run_flow(&flow_with(&format!("oci://{address}/gone:1")), cache).failure();
    assert!(
        unreachable.stderr.contains("cannot reach the registry")
            && unreachable.stderr.contains("Connection refused"),
        "{}",
        unreachable.stderr
    );
    let bad = run_flow(&flow_with("oci://Not A Reference"), cache).failure();
    assert!(
        bad.stderr.contains("is not an OCI reference"),
        "{}",
        bad.stderr
    );

    // Nothing of the failed pulls was kept: no blob, no tag, no temporary file.
    let kept: Vec<PathBuf> = files_in(&cache.join("oci"));
    assert!(kept.is_empty(), "{kept:?}");
}

#[test]
fn a_corrupt_cached_component_is_refused_and_fetched_again() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let project = flow_with(&Guest::Upper.wasm().display().to_string());
    let cache = project.dir().join("cache");
    let repository = registry.at("upper:1");
    run(cli(&cache)
        .args(["publish", &repository, "shout", "--manifest-path"])
        .arg(project.write_manifest()))
    .success();
    let pulled = flow_with(&format!("oci://{repository}"));
    run_flow(&pulled, &cache).success();
    let wasm = std::fs::read(Guest::Upper.wasm()).unwrap();
    let blobs = cache.join("oci/blobs/sha256");
    let cached = (files_in(&blobs).into_iter())
        .find(|p| std::fs::read(p).unwrap() == wasm)
        .expect("the component is cached");
    std::fs::write(&cached, b"\0asm tampered").unwrap();

    let ran = run_flow(&pulled, &cache).success();
    assert!(
        ran.stderr.contains("Removing corrupt cached blob"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.delivered().len(), 20);
    assert_eq!(std::fs::read(&cached).unwrap(), wasm, "fetched again");
}

/// Base64 as `docker login` writes it.
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn inspect_tells_what_a_component_is_and_refuses_what_is_not() {
    let cache = tempfile::tempdir().unwrap();
    let mut command = cli(cache.path());
    command
        .args(["inspect", "--message-format", "json"])
        .arg(Guest::Sink.wasm());
    let inspected = run(&mut command).success();
    let report: serde_json::Value = serde_json::from_str(inspected.stdout.trim()).unwrap();
    assert_eq!(report["kind"], "component");
    assert_eq!(report["role"], "sink");
    assert_eq!(report["world"], "torvyn:streaming/data-sink@0.1.0");
    let wasm = std::fs::read(Guest::Sink.wasm()).unwrap();
    assert_eq!(report["size"], wasm.len());
    let exports = report["exports"].as_array().unwrap();
    assert!(
        exports.contains(&"torvyn:streaming/sink@0.1.0".into()),
        "{report}"
    );

    let mut command = cli(cache.path());
    command.arg("inspect").arg(support_file("Cargo.toml"));
    let refused = run(&mut command).failure();
    assert!(
        refused.stderr.contains("not a WebAssembly file"),
        "{}",
        refused.stderr
    );
}

#[test]
fn pack_and_publish_refuse_what_they_cannot_do() {
    let project = flow_with(&Guest::Upper.wasm().display().to_string());
    let manifest = project.write_manifest();
    let cache = project.dir().join("cache");
    let attempt = |args: &[&str]| cli_on(&cache, &manifest, args);

    let unknown = attempt(&["pack", "nope"]).failure();
    assert!(
        unknown.stderr.contains("no component `nope`"),
        "{}",
        unknown.stderr
    );
    let several = attempt(&["pack", "--output", "x"]).failure();
    assert!(
        several.stderr.contains("--output takes one artifact"),
        "{}",
        several.stderr
    );
    let several = attempt(&["publish", "localhost:5000/x:1"]).failure();
    assert!(
        several.stderr.contains("publish pushes one artifact"),
        "{}",
        several.stderr
    );
    let digest = format!("localhost:5000/x@sha256:{}", "ab".repeat(32));
    let pinned = attempt(&["publish", &digest, "shout"]).failure();
    assert!(
        pinned.stderr.contains("a publish needs a tag"),
        "{}",
        pinned.stderr
    );

    // A dry run packs and names what it would push, and sends nothing (no registry runs).
    let dry = attempt(&["publish", "localhost:9/x", "shout", "--dry-run"]).success();
    assert!(
        dry.stderr
            .contains("Would push component `shout` to localhost:9/x:latest"),
        "{}",
        dry.stderr
    );
    // The pipeline names its components by digest.
    let layout = project.dir().join("pipeline");
    let mut command = cli(&cache);
    command
        .args(["pack", "--pipeline", "--output"])
        .arg(&layout)
        .arg("--manifest-path")
        .arg(&manifest);
    run(&mut command).success();
    let mut command = cli(&cache);
    command
        .args(["inspect", "--message-format", "json"])
        .arg(&layout);
    let report: serde_json::Value =
        serde_json::from_str(run(&mut command).success().stdout.trim()).unwrap();
    let upper = format!(
        "sha256:{}",
        sha256_hex(&std::fs::read(Guest::Upper.wasm()).unwrap())
    );
    assert_eq!(report["components"]["shout"], upper);
}

/// A file of the workspace.
fn support_file(name: &str) -> PathBuf {
    crate::support::workspace().join(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn publishing_again_without_pack_pushes_nothing() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let project = flow_with(&Guest::Upper.wasm().display().to_string());
    let manifest = project.write_manifest();
    let cache = project.dir().join("cache");
    let publish = |reference: &str, what: &str| {
        let args = ["publish", reference, what, "--message-format", "json"];
        let published = cli_on(&cache, &manifest, &args).success();
        let message: serde_json::Value = serde_json::from_str(published.stdout.trim()).unwrap();
        (message["digest"].clone(), message["pushed"].clone())
    };
    let component = registry.at("again/upper:1");
    let pipeline = registry.at("again/pipeline:1");
    let first = [
        publish(&component, "shout"),
        publish(&pipeline, "--pipeline"),
    ];
    // Creation times are kept to the second: a new one would show in the digests.
    std::thread::sleep(Duration::from_millis(1100));
    let again = [
        publish(&component, "shout"),
        publish(&pipeline, "--pipeline"),
    ];
    for ((digest, pushed), (digest_again, pushed_again)) in first.iter().zip(&again) {
        assert_eq!(pushed, true);
        assert_eq!(
            digest_again, digest,
            "the same inputs make the same artifact"
        );
        assert_eq!(
            pushed_again, false,
            "what the tag holds is not pushed again"
        );
    }
}

#[test]
fn the_component_layer_is_titled_with_the_component_file_name() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let project = flow_with(&Guest::Upper.wasm().display().to_string());
    let repository = registry.at("titled/upper:1");
    run(cli(&project.dir().join("cache"))
        .args(["publish", &repository, "shout", "--manifest-path"])
        .arg(project.write_manifest()))
    .success();
    let (manifest, _) = registry.fetch(&repository, &RegistryAuth::Anonymous);
    let annotations = manifest.layers[0].annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("org.opencontainers.image.title")
            .map(String::as_str),
        Some("shout.wasm"),
        "{annotations:?}"
    );
}

#[test]
fn inspect_reads_a_wasm_config_as_leniently_as_run_does() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(Guest::Upper.wasm()).unwrap();
    let layer_digest = format!("sha256:{}", sha256_hex(&wasm));
    // The CNCF layout makes `created` and `component` optional; `{}` is a config too.
    let configs = [
        ("empty", "{}".to_owned()),
        (
            "uncreated",
            format!(r#"{{"architecture":"wasm","os":"wasip2","layerDigests":["{layer_digest}"]}}"#),
        ),
        // Before, this one showed "exports: none".
        (
            "unrecorded",
            format!(
                r#"{{"created":"2025-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":["{layer_digest}"]}}"#
            ),
        ),
    ];
    for (name, config) in configs {
        let reference = registry.at(&format!("lenient/{name}:1"));
        registry.push_upper_with(
            &reference,
            "application/vnd.wasm.config.v0+json",
            config.as_bytes(),
        );
        let target = format!("oci://{reference}");
        let inspected = run(cli(cache.path()).args(["inspect", &target])).success();
        assert!(
            inspected.stdout.contains("\nrole: processor\n")
                && inspected.stdout.contains("exports:\n")
                && inspected
                    .stdout
                    .contains("  torvyn:streaming/processor@0.1.0\n"),
            "{name}: {}\n{}",
            inspected.stdout,
            inspected.stderr
        );
        assert!(
            inspected.stderr.contains("read from its layer"),
            "{name}: {}",
            inspected.stderr
        );
        let ran = run_flow(&flow_with(&target), cache.path()).success();
        assert_eq!(ran.delivered().len(), 20, "{name}: {}", ran.stderr);
    }
}

#[test]
fn a_single_wasm_layer_is_a_component_whatever_its_config() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let reference = registry.at("plain/upper:1");
    let empty = "application/vnd.oci.empty.v1+json";
    registry.push_upper_with(&reference, empty, b"{}");
    let target = format!("oci://{reference}");

    let ran = run_flow(&flow_with(&target), cache.path()).success();
    assert_eq!(ran.delivered().len(), 20, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not a Wasm config") && ran.stderr.contains(empty),
        "{}",
        ran.stderr
    );

    let inspected =
        run(cli(cache.path()).args(["inspect", &target, "--message-format", "json"])).success();
    let report: serde_json::Value = serde_json::from_str(inspected.stdout.trim()).unwrap();
    assert_eq!(report["kind"], "component");
    assert_eq!(report["role"], "processor");
    assert_eq!(report["config_media_type"], empty);
    let notes = report["notes"].to_string();
    assert!(notes.contains("not a Wasm config"), "{notes}");
}

#[test]
fn inspect_and_publish_pick_a_manifest_of_a_layout_by_its_ref_name() {
    let project = flow_with(&Guest::Upper.wasm().display().to_string());
    let manifest = project.write_manifest();
    let cache = project.dir().join("cache");
    let pack = |component: &str, layout: &Path| {
        let layout = layout.to_str().unwrap();
        cli_on(&cache, &manifest, &["pack", component, "--output", layout]).success();
    };
    // One layout holding two manifests, named as skopeo names them (`oci:DIR:REF`).
    let layout = project.dir().join("layout");
    let other = project.dir().join("other");
    pack("shout", &layout);
    pack("src", &other);
    for blob in files_in(&other.join("blobs")) {
        let name = blob.file_name().unwrap();
        std::fs::copy(&blob, layout.join("blobs/sha256").join(name)).unwrap();
    }
    let index = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
    };
    let mut entries = Vec::new();
    for (dir, name) in [(&layout, "upper"), (&other, "source")] {
        let mut entry = index(dir)["manifests"][0].clone();
        entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": name });
        entries.push(entry);
    }
    let mut both = index(&layout);
    both["manifests"] = entries.into();
    std::fs::write(layout.join("index.json"), both.to_string()).unwrap();

    let inspect = |target: &str| run(cli(&cache).args(["inspect", target]));
    for (name, role) in [("upper", "processor"), ("source", "source")] {
        let inspected = inspect(&format!("{}:{name}", layout.display())).success();
        assert!(
            inspected.stdout.contains(&format!("\nrole: {role}\n")),
            "{name}: {}",
            inspected.stdout
        );
    }
    let unnamed = inspect(&layout.display().to_string()).failure();
    assert!(
        unnamed.stderr.contains("holds 2 manifests")
            && unnamed.stderr.contains("its refs are upper, source"),
        "{}",
        unnamed.stderr
    );
    let unknown = inspect(&format!("{}:nope", layout.display())).failure();
    assert!(
        unknown
            .stderr
            .contains("no manifest with the ref name `nope`"),
        "{}",
        unknown.stderr
    );
    let dry = run(cli(&cache)
        .args(["publish", "localhost:9/x:1", "--dry-run", "--from"])
        .arg(format!("{}:source", layout.display())))
    .success();
    assert!(
        dry.stderr.contains("Would push component `src`"),
        "{}",
        dry.stderr
    );
}
