//! Artifact configs: what `pack` writes, and the one reader `run` and `inspect` share.
//!
//! The reader is as lenient as the CNCF Wasm OCI artifact layout
//! (<https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/>): every field of
//! a Wasm config may be missing, `{}` included, and an artifact whose one layer is
//! `application/wasm` is a component whatever its config, because the layer is what runs.
//! What the reader had to overlook comes back as notes, which the commands print.

use std::collections::BTreeMap;

use oci_client::manifest::OciImageManifest;
use serde::{Deserialize, Serialize};

use super::{Kind, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};

/// The config of a component artifact, as the CNCF Wasm OCI artifact layout defines it.
/// Every field is optional when read; `pack` writes them all.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WasmConfig {
    /// When the artifact was made (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) author: Option<String>,
    /// Always `wasm`.
    pub(crate) architecture: Option<String>,
    /// `wasip2` for a component.
    pub(crate) os: Option<String>,
    /// The digest of each layer, in the manifest's order.
    pub(crate) layer_digests: Vec<String>,
    /// The interfaces of the component, when recorded.
    pub(crate) component: Option<WasmComponent>,
}

/// The interfaces a component exports and imports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WasmComponent {
    pub(crate) exports: Vec<String>,
    pub(crate) imports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// The config of a pipeline artifact.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PipelineConfig {
    /// When the artifact was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<String>,
    /// The digest of each component, by name.
    pub(crate) components: BTreeMap<String, String>,
    /// The names of the flows.
    pub(crate) flows: Vec<String>,
}

/// What an artifact is, as its manifest and config say.
#[derive(Debug)]
pub(crate) struct Description {
    pub(crate) kind: Kind,
    /// A component's interfaces, when its config records them (else read the layer).
    pub(crate) component: Option<WasmComponent>,
    /// The `os` a component's config names.
    pub(crate) os: Option<String>,
    /// A pipeline's config.
    pub(crate) pipeline: Option<PipelineConfig>,
    /// What was overlooked to read it, for the user.
    pub(crate) notes: Vec<String>,
}

/// Reads an artifact's `manifest` and `config` blob, or says why it is not a Torvyn
/// artifact.
pub(crate) fn describe(manifest: &OciImageManifest, config: &[u8]) -> Result<Description, String> {
    let kind = Kind::of(manifest)?;
    let mut description = Description {
        kind,
        component: None,
        os: None,
        pipeline: None,
        notes: Vec::new(),
    };
    let media_type = &*manifest.config.media_type;
    match kind {
        Kind::Pipeline => {
            let config = serde_json::from_slice(config)
                .map_err(|error| format!("the pipeline config cannot be read: {error}"))?;
            description.pipeline = Some(config);
        }
        Kind::Component if media_type != WASM_CONFIG_MEDIA_TYPE => {
            description.notes.push(format!(
                "the config is `{media_type}`, not a Wasm config (`{WASM_CONFIG_MEDIA_TYPE}`): \
                 it is ignored, and the `{WASM_LAYER_MEDIA_TYPE}` layer is used as it is"
            ));
        }
        Kind::Component => match serde_json::from_slice::<WasmConfig>(config) {
            Ok(config) => {
                description.component = config.component;
                description.os = config.os;
            }
            Err(error) => description.notes.push(format!(
                "the Wasm config cannot be read ({error}): it is ignored, and the \
                 `{WASM_LAYER_MEDIA_TYPE}` layer is used as it is"
            )),
        },
    }
    Ok(description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Artifact, PIPELINE_CONFIG_MEDIA_TYPE};
    use oci_client::client::{Config, ImageLayer};

    /// The manifest of a component artifact with this config.
    fn component_with(media_type: &str, config: &[u8]) -> OciImageManifest {
        let config = Config {
            data: config.to_vec().into(),
            media_type: media_type.into(),
            annotations: None,
        };
        let layer = ImageLayer::new(b"\0asm".to_vec(), WASM_LAYER_MEDIA_TYPE.into(), None);
        Artifact::new(config, vec![layer], BTreeMap::new()).manifest
    }

    #[test]
    fn a_wasm_config_is_read_as_leniently_as_the_layout_allows() {
        for config in [&b"{}"[..], br#"{"architecture":"wasm","os":"wasip2"}"#] {
            let manifest = component_with(WASM_CONFIG_MEDIA_TYPE, config);
            let description = describe(&manifest, config).unwrap();
            assert_eq!(description.kind, Kind::Component);
            assert!(description.component.is_none(), "nothing recorded");
            assert!(description.notes.is_empty(), "{:?}", description.notes);
        }
        let recorded = br#"{"component":{"exports":["a:b/c@1.0.0"]},"created":7}"#;
        let manifest = component_with(WASM_CONFIG_MEDIA_TYPE, recorded);
        let description = describe(&manifest, recorded).unwrap();
        // `created` of the wrong type spoils the config, not the component.
        assert!(description.component.is_none());
        assert!(description.notes[0].contains("cannot be read"));
        let recorded = br#"{"component":{"exports":["a:b/c@1.0.0"]}}"#;
        let description = describe(&manifest, recorded).unwrap();
        let component = description.component.unwrap();
        assert_eq!(component.exports, ["a:b/c@1.0.0"]);
        assert!(component.imports.is_empty());
    }

    #[test]
    fn one_wasm_layer_is_a_component_whatever_the_config() {
        let empty = "application/vnd.oci.empty.v1+json";
        let manifest = component_with(empty, b"{}");
        let description = describe(&manifest, b"{}").unwrap();
        assert_eq!(description.kind, Kind::Component);
        assert!(
            description.notes[0].contains(empty),
            "{:?}",
            description.notes
        );

        let manifest = component_with(PIPELINE_CONFIG_MEDIA_TYPE, b"{}");
        assert_eq!(describe(&manifest, b"{}").unwrap().kind, Kind::Component);
    }
}
