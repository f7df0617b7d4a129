//! Components and pipelines as OCI artifacts.
//!
//! A component is packed in the CNCF Wasm OCI artifact layout (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), so other Wasm
//! tooling can pull what we push and we can run what it pushes. A pipeline is an artifact
//! of Torvyn's own: its `Torvyn.toml`, with every component pinned by digest, and the
//! components as `application/wasm` layers. Artifacts are written as OCI image layouts
//! ([`layout`]), pushed to and pulled from registries ([`registry`]) and cached by digest
//! ([`cache`]). What an artifact is, `run` and `inspect` learn from one reader ([`config`]).

pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod layout;
pub(crate) mod registry;

pub(crate) use config::{PipelineConfig, WasmComponent, WasmConfig};

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use sha2::{Digest as _, Sha256};

/// The config of a Wasm component artifact (CNCF Wasm OCI artifact layout).
pub(crate) const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The one layer of a Wasm component artifact: the component's bytes.
pub(crate) const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The config of a pipeline artifact.
pub(crate) const PIPELINE_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.torvyn.pipeline.config.v1+json";
/// The first layer of a pipeline artifact: its `Torvyn.toml`.
pub(crate) const PIPELINE_MANIFEST_MEDIA_TYPE: &str =
    "application/vnd.torvyn.pipeline.manifest.v1+toml";

/// Annotation keys: the standard ones, then Torvyn's own.
pub(crate) mod annotation {
    pub(crate) const CREATED: &str = "org.opencontainers.image.created";
    pub(crate) const VERSION: &str = "org.opencontainers.image.version";
    pub(crate) const SOURCE: &str = "org.opencontainers.image.source";
    pub(crate) const TITLE: &str = "org.opencontainers.image.title";
    pub(crate) const ROLE: &str = "dev.torvyn.role";
    pub(crate) const CONTRACT: &str = "dev.torvyn.contract";
    pub(crate) const CAPABILITIES: &str = "dev.torvyn.capabilities";
    pub(crate) const COMPONENT: &str = "dev.torvyn.component";
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The hex part of a well-formed `sha256:` digest.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let well_formed = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then_some(hex)
}

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One Wasm component.
    Component,
    /// A `Torvyn.toml` and its components.
    Pipeline,
}

impl Kind {
    /// What a manifest describes, or why it is neither kind. A single `application/wasm`
    /// layer is a component whatever the config, as the layer is what runs: several tools
    /// push one with the OCI empty config ([`config::describe`] notes it).
    pub(crate) fn of(manifest: &OciImageManifest) -> Result<Kind, String> {
        let layer_types: Vec<&str> = manifest.layers.iter().map(|l| &*l.media_type).collect();
        match (&*manifest.config.media_type, &layer_types[..]) {
            (PIPELINE_CONFIG_MEDIA_TYPE, [PIPELINE_MANIFEST_MEDIA_TYPE, wasm @ ..])
                if wasm.iter().all(|t| *t == WASM_LAYER_MEDIA_TYPE) =>
            {
                Ok(Kind::Pipeline)
            }
            (_, [WASM_LAYER_MEDIA_TYPE]) => Ok(Kind::Component),
            (config, layers) => Err(format!(
                "its config is `{config}` and its layers are [{}]; a component has one \
                 `{WASM_LAYER_MEDIA_TYPE}` layer (and config `{WASM_CONFIG_MEDIA_TYPE}`), a \
                 pipeline has config `{PIPELINE_CONFIG_MEDIA_TYPE}`",
                layers.join(", ")
            )),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Pipeline => "pipeline",
        }
    }
}

/// An artifact in memory: its manifest (with the exact bytes its digest is taken of), its
/// config and its layers.
pub(crate) struct Artifact {
    pub(crate) manifest: OciImageManifest,
    pub(crate) manifest_bytes: Vec<u8>,
    pub(crate) digest: String,
    pub(crate) config: Config,
    pub(crate) layers: Vec<ImageLayer>,
}

impl Artifact {
    /// Assembles an artifact from its config, layers and manifest annotations.
    pub(crate) fn new(
        config: Config,
        layers: Vec<ImageLayer>,
        annotations: BTreeMap<String, String>,
    ) -> Artifact {
        let mut manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
        let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
        Artifact {
            digest: digest(&manifest_bytes),
            manifest,
            manifest_bytes,
            config,
            layers,
        }
    }

    /// Checks manifest bytes and the blobs they name, and puts them together. `blob`
    /// fetches a blob by digest; what it returns must hash to that digest.
    pub(crate) fn assemble(
        manifest_bytes: Vec<u8>,
        mut blob: impl FnMut(&str) -> miette::Result<Vec<u8>>,
    ) -> miette::Result<Artifact> {
        let manifest: OciImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|error| {
                miette::miette!("the manifest is not an OCI image manifest: {error}")
            })?;
        let mut fetch = |digest: &str| {
            let data = blob(digest)?;
            let found = self::digest(&data);
            if found != digest {
                miette::bail!("blob {digest} hashes to {found}: its content is not what was named");
            }
            Ok(data)
        };
        let config = Config {
            data: fetch(&manifest.config.digest)?.into(),
            media_type: manifest.config.media_type.clone(),
            annotations: manifest.config.annotations.clone(),
        };
        let layers = (manifest.layers.iter())
            .map(|layer| {
                Ok(ImageLayer::new(
                    fetch(&layer.digest)?,
                    layer.media_type.clone(),
                    layer.annotations.clone(),
                ))
            })
            .collect::<miette::Result<_>>()?;
        Ok(Artifact {
            digest: digest(&manifest_bytes),
            manifest,
            manifest_bytes,
            config,
            layers,
        })
    }

    /// Every blob: the config, then the layers, each with its digest and media type.
    pub(crate) fn blobs(&self) -> impl Iterator<Item = (&str, &str, &[u8])> {
        let config = &self.manifest.config;
        let layers = self.manifest.layers.iter().zip(&self.layers);
        std::iter::once((&*config.digest, &*config.media_type, &*self.config.data)).chain(
            layers.map(|(descriptor, layer)| {
                (&*descriptor.digest, &*descriptor.media_type, &*layer.data)
            }),
        )
    }

    /// One manifest annotation.
    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        let annotations = self.manifest.annotations.as_ref()?;
        annotations.get(key).map(String::as_str)
    }
}

/// The smallest component artifact, for tests.
#[cfg(test)]
pub(crate) fn sample_artifact() -> Artifact {
    let config = Config {
        data: b"{}".to_vec().into(),
        media_type: WASM_CONFIG_MEDIA_TYPE.into(),
        annotations: None,
    };
    let layer = ImageLayer::new(b"\0asm".to_vec(), WASM_LAYER_MEDIA_TYPE.into(), None);
    Artifact::new(config, vec![layer], BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_in_hex() {
        let empty = digest(b"");
        assert_eq!(
            empty,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(sha256_hex(&empty).is_some());
        assert_eq!(sha256_hex("sha256:E3B0"), None);
        assert_eq!(sha256_hex(&empty.to_uppercase()), None);
    }

    #[test]
    fn an_assembled_artifact_is_the_one_made() {
        let made = sample_artifact();
        assert_eq!(Kind::of(&made.manifest), Ok(Kind::Component));
        let blobs: BTreeMap<String, Vec<u8>> = (made.blobs())
            .map(|(digest, _, data)| (digest.to_owned(), data.to_vec()))
            .collect();
        let again = Artifact::assemble(made.manifest_bytes.clone(), |d| Ok(blobs[d].clone()));
        assert_eq!(again.unwrap().digest, made.digest);
        let tampered = Artifact::assemble(made.manifest_bytes.clone(), |_| Ok(b"x".to_vec()));
        let Err(error) = tampered else {
            panic!("a tampered blob assembles")
        };
        assert!(error.to_string().contains("hashes to"));
    }
}
