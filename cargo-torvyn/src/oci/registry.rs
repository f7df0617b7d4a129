//! Talking to OCI registries: references, credentials, plain HTTP for this machine only,
//! pushing artifacts, pulling them into the cache, and failures that say what to do.

use std::time::Duration;

use miette::{IntoDiagnostic, miette};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use torvyn_runtime::OCI_SCHEME;

use super::cache::Store;
use super::{Artifact, Kind, config};
use crate::output::status;
use crate::settings::Resolved;

/// How to give credentials other than through the Docker config, for a help line.
const LOGIN_SETTINGS: &str = "the settings `registry.username` and `registry.password` \
                              (TORVYN_REGISTRY_USERNAME and TORVYN_REGISTRY_PASSWORD)";

/// Parses `host[:port]/repository[:tag][@sha256:…]`, with or without `oci://`.
pub(crate) fn parse_reference(text: &str) -> miette::Result<Reference> {
    let bare = text.strip_prefix(OCI_SCHEME).unwrap_or(text);
    bare.parse().map_err(|error| {
        miette!(
            help =
                "write it as host[:port]/repository[:tag] or host[:port]/repository@sha256:DIGEST",
            "`{text}` is not an OCI reference: {error}"
        )
    })
}

/// Whether `registry` is this machine, where plain HTTP is allowed.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The credentials for `registry`: from the settings `registry.username` and
/// `registry.password`, else from the Docker config (and its credential helpers), else
/// none.
fn credentials(settings: &Resolved, registry: &str) -> miette::Result<RegistryAuth> {
    use docker_credential::{CredentialRetrievalError as Missing, DockerCredential};
    if let Some((username, password)) = settings.registry_login()? {
        return Ok(RegistryAuth::Basic(username, password));
    }
    let server = match registry {
        "docker.io" | "index.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    match docker_credential::get_credential(server) {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(RegistryAuth::Basic(username, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(
            Missing::NoCredentialConfigured | Missing::ConfigNotFound | Missing::ConfigReadError,
        ) => Ok(RegistryAuth::Anonymous),
        Err(error) => miette::bail!(
            help = format!(
                "fix the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), \
                 or set {LOGIN_SETTINGS}"
            ),
            "cannot get the credentials for `{registry}` from the Docker config: {error}"
        ),
    }
}

/// What went wrong with a registry, as far as a user can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Unreachable,
    Unauthorized,
    Denied,
    NotFound,
    Other,
}

fn classify(error: &OciDistributionError) -> Failure {
    use OciDistributionError as E;
    match error {
        E::RequestError(error) if error.is_connect() || error.is_timeout() => Failure::Unreachable,
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => Failure::Unauthorized,
        E::ImageManifestNotFoundError(_) => Failure::NotFound,
        E::ServerError { code: 401, .. } => Failure::Unauthorized,
        E::ServerError { code: 403, .. } => Failure::Denied,
        E::ServerError { code: 404, .. } => Failure::NotFound,
        E::RegistryError { envelope, .. } => match envelope.errors.first().map(|e| &e.code) {
            Some(OciErrorCode::Unauthorized) => Failure::Unauthorized,
            Some(OciErrorCode::Denied) => Failure::Denied,
            Some(
                OciErrorCode::ManifestUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::NotFound
                | OciErrorCode::BlobUnknown,
            ) => Failure::NotFound,
            _ => Failure::Other,
        },
        _ => Failure::Other,
    }
}

/// The innermost cause of an error: for a refused connection, "Connection refused".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

/// A registry and a reference in it, with the credentials to use.
pub(crate) struct Remote {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
}

/// What `push` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The reference already named this exact artifact.
    Unchanged,
    /// Pushed, skipping the blobs the registry had.
    Pushed { blobs: usize, skipped: usize },
}

impl Remote {
    /// A client for `reference`. Plain HTTP is used for this machine's registries, and for
    /// others only when `insecure` or named by the setting `registry.insecure`.
    pub(crate) fn new(reference: Reference, insecure: bool) -> miette::Result<Remote> {
        // reqwest speaks TLS through rustls, with ring for its cryptography.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = crate::settings::machine()?;
        let registry = reference.resolve_registry().to_owned();
        let protocol = if insecure || settings.insecure(&registry) || is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).into_diagnostic()?;
        Ok(Remote {
            client,
            auth: credentials(&settings, &registry)?,
            reference,
        })
    }

    pub(crate) fn reference(&self) -> &Reference {
        &self.reference
    }

    /// A diagnostic for `error`, met while `doing` (e.g. "pulling").
    fn explain(&self, doing: &str, error: OciDistributionError) -> miette::Report {
        let registry = self.reference.resolve_registry();
        let reference = self.reference.whole();
        match classify(&error) {
            Failure::Unreachable => miette!(
                help = "check the address and that the registry is running (registries other than \
                        this machine's are reached over https, unless --insecure or the setting \
                        `registry.insecure` names them)",
                "cannot reach the registry `{registry}` while {doing} `{reference}`: {}",
                root_cause(&error)
            ),
            Failure::Unauthorized => {
                let refused = match self.auth {
                    RegistryAuth::Anonymous => "asks for credentials, and none were given,",
                    _ => "refused the credentials",
                };
                miette!(
                    help =
                        format!("log in with `docker login {registry}`, or set {LOGIN_SETTINGS}"),
                    "the registry `{registry}` {refused} while {doing} `{reference}` (401 Unauthorized)"
                )
            }
            Failure::Denied => miette!(
                help = "these credentials are not allowed this repository, or only to read it",
                "the registry `{registry}` denied access while {doing} `{reference}` (403 Forbidden)"
            ),
            Failure::NotFound => miette!(
                help =
                    "check the repository and the tag or digest; `cargo torvyn publish` pushes one",
                "`{reference}` is not in the registry `{registry}`"
            ),
            Failure::Other => miette!("{doing} `{reference}` failed: {error}"),
        }
    }

    /// The digest of the manifest the reference names now, if it names one.
    async fn current(&self) -> miette::Result<Option<String>> {
        match (self.client)
            .fetch_manifest_digest(&self.reference, &self.auth)
            .await
        {
            Ok(digest) => Ok(Some(digest)),
            Err(error) if classify(&error) == Failure::NotFound => Ok(None),
            Err(error) => Err(self.explain("looking up", error)),
        }
    }

    /// Pushes `artifact` under the reference, blob by blob (skipping those the registry
    /// has), then its manifest; `pushed` hears of each blob's bytes.
    pub(crate) async fn push(
        &self,
        artifact: &Artifact,
        mut pushed: impl FnMut(usize),
    ) -> miette::Result<Pushed> {
        if self.current().await?.as_deref() == Some(&*artifact.digest) {
            return Ok(Pushed::Unchanged);
        }
        (self.client)
            .auth(&self.reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|error| self.explain("logging in to push", error))?;
        let (mut blobs, mut skipped) = (0, 0);
        for (digest, _, data) in artifact.blobs() {
            blobs += 1;
            let exists = (self.client.blob_exists(&self.reference, digest).await)
                .map_err(|error| self.explain("pushing", error))?;
            if exists {
                skipped += 1;
            } else {
                (self
                    .client
                    .push_blob(&self.reference, data.to_vec(), digest)
                    .await)
                    .map_err(|error| self.explain("pushing", error))?;
            }
            pushed(data.len());
        }
        let content_type = OCI_IMAGE_MEDIA_TYPE.parse().expect("a valid header value");
        let manifest = artifact.manifest_bytes.clone();
        (self.client)
            .push_manifest_raw(&self.reference, manifest, content_type)
            .await
            .map_err(|error| self.explain("pushing", error))?;
        Ok(Pushed::Pushed { blobs, skipped })
    }

    /// The manifest the reference names, with its digest, checked against the reference's
    /// digest when it has one.
    async fn manifest(&self) -> Result<(Vec<u8>, String), OciDistributionError> {
        let accepted = [OCI_IMAGE_MEDIA_TYPE];
        let (bytes, _) = (self.client)
            .pull_manifest_raw(&self.reference, &self.auth, &accepted)
            .await?;
        let digest = super::digest(&bytes);
        Ok((bytes.to_vec(), digest))
    }

    /// One blob, checked against its descriptor's digest.
    async fn blob(&self, descriptor: &OciDescriptor) -> miette::Result<Vec<u8>> {
        // Grows as the bytes arrive: the size a manifest declares is nothing to allocate by.
        let mut data = Vec::new();
        (self
            .client
            .pull_blob(&self.reference, descriptor, &mut data)
            .await)
            .map_err(|error| self.explain("pulling", error))?;
        Ok(data)
    }

    /// The manifest and config the reference names, without the layers.
    pub(crate) fn describe(&self) -> miette::Result<(String, OciImageManifest, Vec<u8>)> {
        block_on(async {
            let (bytes, digest) =
                (self.manifest().await).map_err(|error| self.explain("inspecting", error))?;
            self.check_digest(&digest)?;
            let manifest = parse_manifest(&bytes)?;
            let config = self.blob(&manifest.config).await?;
            Ok((digest, manifest, config))
        })
    }

    /// One blob the reference's manifest names, such as the layer of a component whose
    /// config does not record its interfaces.
    pub(crate) fn fetch_blob(&self, descriptor: &OciDescriptor) -> miette::Result<Vec<u8>> {
        block_on(self.blob(descriptor))
    }

    fn check_digest(&self, found: &str) -> miette::Result<()> {
        match self.reference.digest() {
            Some(wanted) if wanted != found => miette::bail!(
                help = "the registry or something between it and this machine changed the content; nothing was cached",
                "digest mismatch: `{}` names {wanted}, but the registry sent a manifest whose digest is {found}",
                self.reference.whole()
            ),
            _ => Ok(()),
        }
    }
}

/// Runs `future` to completion on a runtime of its own (the commands are synchronous).
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(future)
}

fn parse_manifest(bytes: &[u8]) -> miette::Result<OciImageManifest> {
    serde_json::from_slice(bytes).map_err(|error| {
        miette!("the registry sent a manifest that is not an OCI image manifest: {error}")
    })
}

/// An artifact in the cache: its manifest and where that is.
#[derive(Debug)]
pub(crate) struct Pulled {
    pub(crate) digest: String,
    pub(crate) manifest: OciImageManifest,
    pub(crate) store: Store,
}

impl Pulled {
    /// The `.wasm` file of a pulled component.
    pub(crate) fn component(&self) -> miette::Result<std::path::PathBuf> {
        let layer = &self.manifest.layers[0].digest;
        (self.store.file(layer)?)
            .ok_or_else(|| miette!("the cached layer {layer} of {} went missing", self.digest))
    }

    /// The `Torvyn.toml` of a pulled pipeline, unpacked from the cache.
    pub(crate) fn pipeline_manifest(&self) -> miette::Result<std::path::PathBuf> {
        let layer = &self.manifest.layers[0].digest;
        let text = (self.store.get(layer)?)
            .ok_or_else(|| miette!("the cached layer {layer} of {} went missing", self.digest))?;
        self.store.put_pipeline_manifest(&self.digest, &text)
    }
}

/// Makes sure the artifact `text` names is in the cache, as a `kind`, and returns it. A
/// reference by digest that the cache has needs no registry; a tag is looked up in the
/// registry, and when that cannot be reached the tag's last pulled artifact is used.
pub(crate) fn pull(text: &str, kind: Kind) -> miette::Result<Pulled> {
    let reference = parse_reference(text)?;
    let store = Store::open()?;
    if let Some(digest) = reference.digest()
        && let Some(pulled) = from_cache(&store, digest, text, kind)?
    {
        return Ok(pulled);
    }
    let remote = Remote::new(reference, false)?;
    block_on(async {
        let (bytes, digest) = match remote.manifest().await {
            Ok(found) => found,
            Err(error) => {
                if classify(&error) == Failure::Unreachable
                    && let Some(last) = store.tag(remote.reference())
                    && let Some(pulled) = from_cache(&store, &last, text, kind)?
                {
                    let registry = remote.reference().resolve_registry();
                    let why =
                        format!("`{registry}` is unreachable: using the cached {text} ({last})");
                    status("Offline", why);
                    return Ok(pulled);
                }
                return Err(remote.explain("pulling", error));
            }
        };
        remote.check_digest(&digest)?;
        let manifest = checked_manifest(&bytes, text, kind)?;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if store.file(&descriptor.digest)?.is_none() {
                let data = remote.blob(descriptor).await?;
                store.put(&descriptor.digest, &data)?;
            }
        }
        read_config(&store, &manifest, text)?;
        // The manifest goes in last: a manifest in the cache means its blobs are too.
        store.put(&digest, &bytes)?;
        store.set_tag(remote.reference(), &digest)?;
        status("Pulled", format!("{text} ({digest})"));
        Ok(Pulled {
            digest,
            manifest,
            store,
        })
    })
}

/// The artifact with manifest `digest`, if the cache has it whole.
fn from_cache(
    store: &Store,
    digest: &str,
    text: &str,
    kind: Kind,
) -> miette::Result<Option<Pulled>> {
    let Some(bytes) = store.get(digest)? else {
        return Ok(None);
    };
    let manifest = checked_manifest(&bytes, text, kind)?;
    for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if store.file(&descriptor.digest)?.is_none() {
            return Ok(None);
        }
    }
    read_config(store, &manifest, text)?;
    Ok(Some(Pulled {
        digest: digest.to_owned(),
        manifest,
        store: store.clone(),
    }))
}

/// Reads the cached config of `manifest` with the reader `inspect` uses too, and says
/// what it overlooked (a config that is not a Wasm config, for one).
fn read_config(store: &Store, manifest: &OciImageManifest, text: &str) -> miette::Result<()> {
    let digest = &manifest.config.digest;
    let config = (store.get(digest)?)
        .ok_or_else(|| miette!("the cached config {digest} of `{text}` went missing"))?;
    let description = config::describe(manifest, &config)
        .map_err(|why| miette!("`{text}` is unusable: {why}"))?;
    for note in description.notes {
        status("Note", format!("`{text}`: {note}"));
    }
    Ok(())
}

/// The manifest in `bytes`, which must describe a `kind`.
fn checked_manifest(bytes: &[u8], text: &str, kind: Kind) -> miette::Result<OciImageManifest> {
    let manifest = parse_manifest(bytes)?;
    match Kind::of(&manifest) {
        Ok(found) if found == kind => Ok(manifest),
        Ok(found) => {
            let help = match found {
                Kind::Pipeline => {
                    let bare = text.strip_prefix(OCI_SCHEME).unwrap_or(text);
                    format!("run a pipeline with `cargo torvyn run {OCI_SCHEME}{bare}`")
                }
                Kind::Component => "name a component in a Torvyn.toml's `path`".to_owned(),
            };
            miette::bail!(
                help = help,
                "`{text}` is a {}, not a {}",
                found.name(),
                kind.name()
            )
        }
        Err(why) => miette::bail!(
            help = "push Torvyn components and pipelines with `cargo torvyn publish`",
            "`{text}` is not a Torvyn {}: {why}",
            kind.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_this_machine_only() {
        for registry in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }

    #[test]
    fn references_parse_with_or_without_the_scheme() {
        let reference = parse_reference("oci://localhost:5000/team/upper:1.0").unwrap();
        assert_eq!(reference.registry(), "localhost:5000");
        assert_eq!(reference.repository(), "team/upper");
        assert_eq!(reference.tag(), Some("1.0"));
        assert!(parse_reference("localhost:5000/Upper Case").is_err());
    }
}
