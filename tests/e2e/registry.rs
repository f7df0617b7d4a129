//! A real OCI registry for the distribution tests: the CNCF distribution registry from
//! Debian's `docker-registry` package, started on a free loopback port with its storage in
//! a temporary folder, and the CLI and an OCI client pointed at it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::support::{Guest, Run, TestProject, free_port, installed, torvyn, wait_until_listening};

pub(crate) const USER: &str = "torvyn";
pub(crate) const PASSWORD: &str = "s3cret-pass";
/// `htpasswd -Bbn torvyn s3cret-pass`.
pub(crate) const HTPASSWD: &str =
    "torvyn:$2y$05$.Ei4Xsb4uxemm14CAzbp4OdkVQLPzW7ANKUuN63lP7FuL09F/ochC\n";

/// A registry on loopback, stopped when dropped.
pub(crate) struct Registry {
    pub(crate) child: Child,
    pub(crate) address: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry, with htpasswd authentication when `auth`; `None` when
    /// `docker-registry` is not installed and the tests do not require it.
    pub(crate) fn start(auth: bool) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: torvyn-tests\n",
            dir.path().join("data").display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, HTPASSWD).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: torvyn-tests\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let spawned = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn();
        let require = "TORVYN_TEST_REQUIRE_REGISTRY";
        let mut child = installed(spawned, "docker-registry", "docker-registry", require)?;
        let address = format!("127.0.0.1:{port}");
        let log = dir.path().join("log");
        wait_until_listening(&mut child, "docker-registry", &address, &log);
        Some(Registry {
            child,
            address,
            dir,
        })
    }

    /// `ADDRESS/REPOSITORY` in this registry.
    pub(crate) fn at(&self, repository: &str) -> String {
        format!("{}/{repository}", self.address)
    }

    /// The manifest and config that `reference` (no `oci://`) names, fetched directly.
    pub(crate) fn fetch(
        &self,
        reference: &str,
        auth: &RegistryAuth,
    ) -> (OciImageManifest, serde_json::Value) {
        let reference: Reference = reference.parse().unwrap();
        block_on(async {
            let client = client();
            let (manifest, _, config) = client
                .pull_manifest_and_config(&reference, auth)
                .await
                .unwrap();
            (manifest, serde_json::from_str(&config).unwrap())
        })
    }

    /// Pushes an ordinary container-image-like artifact: not a Wasm component.
    pub(crate) fn push_foreign(&self, reference: &str) {
        let layer = ImageLayer::oci_v1(b"not wasm".to_vec(), None);
        self.push(reference, Config::oci_v1(b"{}".to_vec(), None), layer);
    }

    /// Pushes the upper-casing component as another tool would: its bytes as the one
    /// `application/wasm` layer, without annotations, under a config of `media_type`
    /// holding `config`.
    pub(crate) fn push_upper_with(&self, reference: &str, media_type: &str, config: &[u8]) {
        let wasm = std::fs::read(Guest::Upper.wasm()).unwrap();
        let layer = ImageLayer::new(wasm, "application/wasm".into(), None);
        self.push(
            reference,
            Config::new(config.to_vec(), media_type.into(), None),
            layer,
        );
    }

    /// Pushes a manifest of `config` and `layer`, made the way oci-client makes one.
    pub(crate) fn push(&self, reference: &str, config: Config, layer: ImageLayer) {
        let reference: Reference = reference.parse().unwrap();
        block_on(async {
            client()
                .push(&reference, &[layer], config, &RegistryAuth::Anonymous, None)
                .await
                .unwrap();
        });
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

pub(crate) fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
}

pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The CLI with a cache of its own in `cache`, no registry credentials, and an empty
/// Docker config (never the user's). Its target folder, where `pack` writes layouts, is
/// in `cache` too, so that tests packing components of the same name do not meet.
pub(crate) fn cli(cache: &Path) -> Command {
    let mut command = torvyn();
    command
        .env("TORVYN_CACHE_DIR", cache)
        .env("CARGO_TARGET_DIR", cache.join("target"))
        .env("DOCKER_CONFIG", cache.join("docker"))
        .env_remove("TORVYN_REGISTRY_USERNAME")
        .env_remove("TORVYN_REGISTRY_PASSWORD")
        .arg("torvyn");
    command
}

pub(crate) fn run(command: &mut Command) -> Run {
    Run::from(command.output().expect("cargo-torvyn runs"))
}

/// A flow of the test source, the component `processor` (a path or a reference) and the
/// test sink.
pub(crate) fn flow_with(processor: &str) -> TestProject {
    TestProject::new()
        .component("src", Guest::Source, r#"{"count": 20, "text": "item"}"#)
        .component_at("shout", processor, "")
        .component("out", Guest::Sink, "")
}

/// Runs `project`'s flow with the cache in `cache`.
pub(crate) fn run_flow(project: &TestProject, cache: &Path) -> Run {
    let mut command = cli(cache);
    command
        .args(["run", "--message-format", "json", "--manifest-path"])
        .arg(project.write_manifest());
    run(&mut command)
}

/// The CLI with `args` on the project `manifest`, with the cache in `cache`.
pub(crate) fn cli_on(cache: &Path, manifest: &Path, args: &[&str]) -> Run {
    let mut command = cli(cache);
    command.args(args).arg("--manifest-path").arg(manifest);
    run(&mut command)
}

/// The digest in a `Published …` or `Packed …` line.
pub(crate) fn digest_in(stderr: &str) -> String {
    let start = stderr.find("sha256:").expect("a digest");
    stderr[start..start + 71].to_owned()
}
