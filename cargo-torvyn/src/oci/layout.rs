//! OCI image layouts: the folder `pack` writes and `publish --from` reads
//! (`oci-layout`, `index.json`, `blobs/sha256/…`).

use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, WrapErr, bail};
use serde_json::json;

use super::cache::write_atomically;
use super::{Artifact, sha256_hex};

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `artifact` as the image layout `dir`, replacing what was there. `ref_name`
/// tags it inside the layout.
pub(crate) fn write(dir: &Path, artifact: &Artifact, ref_name: Option<&str>) -> miette::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create `{}`", parent.display()))?;
    // Built beside its place and swapped in, so a reader never sees half a layout.
    let staging = tempfile::Builder::new()
        .prefix(".torvyn-pack")
        .tempdir_in(parent)
        .into_diagnostic()?;
    let blobs = staging.path().join("blobs").join("sha256");
    let manifest = (&*artifact.digest, &*artifact.manifest_bytes);
    for (digest, _, data) in std::iter::once((manifest.0, "", manifest.1)).chain(artifact.blobs()) {
        let hex = sha256_hex(digest).expect("artifacts name blobs by sha256 digest");
        write_atomically(&blobs.join(hex), data)?;
    }
    let mut entry = json!({
        "mediaType": artifact.manifest.media_type,
        "digest": artifact.digest,
        "size": artifact.manifest_bytes.len(),
    });
    if let Some(name) = ref_name {
        entry["annotations"] = json!({ REF_NAME: name });
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
        "manifests": [entry],
    });
    let pretty = |value: &serde_json::Value| serde_json::to_vec_pretty(value).expect("json");
    write_atomically(&staging.path().join(INDEX_FILE), &pretty(&index))?;
    let layout = json!({ "imageLayoutVersion": "1.0.0" });
    write_atomically(&staging.path().join(LAYOUT_FILE), &pretty(&layout))?;
    if dir.exists() {
        if !dir.join(LAYOUT_FILE).is_file() {
            bail!(
                "`{}` exists and is not an OCI image layout: not replacing it",
                dir.display()
            );
        }
        // A layout of several manifests is shared with other tools (skopeo adds to one):
        // replacing it with one artifact would lose the others.
        if let Ok(several @ 2..) = index_entries(dir).map(|entries| entries.len()) {
            bail!(
                help = "write it to another folder",
                "`{}` holds {several} manifests: not replacing them with one",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot replace `{}`", dir.display()))?;
    }
    std::fs::rename(staging.keep(), dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write `{}`", dir.display()))
}

/// An image layout and the manifest in it to read: `DIR`, or `DIR:REF` naming one by its
/// `org.opencontainers.image.ref.name`, as skopeo writes `oci:DIR:REF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) dir: PathBuf,
    pub(crate) ref_name: Option<String>,
}

impl Target {
    /// `path` as a layout target: `DIR:REF` when `DIR` is a folder and `path` is not, else
    /// the whole of `path` as the folder.
    pub(crate) fn parse(path: &Path) -> Target {
        let split = (path.to_str().and_then(|text| text.rsplit_once(':')))
            .filter(|(dir, name)| !name.is_empty() && !path.is_dir() && Path::new(dir).is_dir());
        match split {
            Some((dir, name)) => Target {
                dir: PathBuf::from(dir),
                ref_name: Some(name.to_owned()),
            },
            None => Target {
                dir: path.to_owned(),
                ref_name: None,
            },
        }
    }
}

/// Reads an artifact of an image layout, checking every digest: the one the target's ref
/// name names, or the layout's only one.
pub(crate) fn read(target: &Target) -> miette::Result<Artifact> {
    let dir = &*target.dir;
    let context = || format!("`{}` is not a readable OCI image layout", dir.display());
    let manifests = index_entries(dir).wrap_err_with(context)?;
    let entry = choose(&manifests, target)?;
    let blob = |digest: &str| -> miette::Result<Vec<u8>> {
        let Some(hex) = sha256_hex(digest) else {
            bail!("`{digest}` in `{}` is not a sha256 digest", dir.display());
        };
        let path = dir.join("blobs").join("sha256").join(hex);
        std::fs::read(&path)
            .into_diagnostic()
            .wrap_err_with(|| format!("the layout is missing blob `{}`", path.display()))
    };
    let digest = entry["digest"].as_str().unwrap_or_default();
    let manifest = blob(digest)?;
    if super::digest(&manifest) != digest {
        bail!(
            "the manifest in `{}` does not match its digest",
            dir.display()
        );
    }
    Artifact::assemble(manifest, blob).wrap_err_with(context)
}

/// The manifests the index of the layout `dir` lists.
fn index_entries(dir: &Path) -> miette::Result<Vec<serde_json::Value>> {
    let index = std::fs::read(dir.join(INDEX_FILE)).into_diagnostic()?;
    let mut index: serde_json::Value = serde_json::from_slice(&index).into_diagnostic()?;
    match index["manifests"].take() {
        serde_json::Value::Array(entries) => Ok(entries),
        _ => Ok(Vec::new()),
    }
}

/// The entry of `manifests` (a layout's index) that `target` names.
fn choose<'a>(
    manifests: &'a [serde_json::Value],
    target: &Target,
) -> miette::Result<&'a serde_json::Value> {
    fn ref_name(entry: &serde_json::Value) -> Option<&str> {
        entry["annotations"][REF_NAME].as_str()
    }
    let names: Vec<&str> = manifests.iter().filter_map(ref_name).collect();
    let known = || match names.len() {
        0 => "none has a ref name".to_owned(),
        _ => format!("its refs are {}", names.join(", ")),
    };
    let dir = target.dir.display();
    match (&target.ref_name, manifests) {
        (Some(wanted), _) => match manifests.iter().find(|e| ref_name(e) == Some(wanted)) {
            Some(entry) => Ok(entry),
            None => bail!(
                help = format!("name one of its manifests as `{dir}:REF`: {}", known()),
                "`{dir}` holds no manifest with the ref name `{wanted}`"
            ),
        },
        (None, [entry]) => Ok(entry),
        (None, []) => bail!("`{dir}` holds no manifest (its index.json lists none)"),
        (None, several) => bail!(
            help = format!("name one as `{dir}:REF`: {}", known()),
            "`{dir}` holds {} manifests, and which one to read was not said",
            several.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_reads_back_as_written_and_refuses_a_tampered_blob() {
        let artifact = crate::oci::sample_artifact();
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("out");
        write(&layout, &artifact, Some("1.0.0")).unwrap();
        // Written twice: the second replaces the first.
        write(&layout, &artifact, Some("1.0.0")).unwrap();
        let target = Target::parse(&layout);
        assert_eq!(read(&target).unwrap().digest, artifact.digest);

        let layer = &artifact.manifest.layers[0].digest;
        let blob = layout.join("blobs/sha256").join(sha256_hex(layer).unwrap());
        std::fs::write(blob, b"tampered").unwrap();
        let Err(error) = read(&target) else {
            panic!("a tampered layout reads")
        };
        let error = format!("{error:?}");
        assert!(error.contains("hashes to"), "{error}");

        let elsewhere = dir.path().join("not-a-layout");
        std::fs::create_dir(&elsewhere).unwrap();
        assert!(write(&elsewhere, &artifact, None).is_err());
    }

    #[test]
    fn a_layout_of_several_manifests_is_read_by_ref_name() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("several");
        let first = crate::oci::sample_artifact();
        write(&layout, &first, Some("1.0.0")).unwrap();
        // A second artifact beside the first, as skopeo adds one to a layout.
        let other = dir.path().join("other");
        let config = oci_client::client::Config {
            data: b"{\"os\":\"wasip2\"}".to_vec().into(),
            media_type: crate::oci::WASM_CONFIG_MEDIA_TYPE.into(),
            annotations: None,
        };
        let second = Artifact::new(config, first.layers.clone(), Default::default());
        write(&other, &second, Some("2.0.0")).unwrap();
        for blob in std::fs::read_dir(other.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            std::fs::copy(
                blob.path(),
                layout.join("blobs/sha256").join(blob.file_name()),
            )
            .unwrap();
        }
        let index = |dir: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.join(INDEX_FILE)).unwrap()).unwrap()
        };
        let mut both = index(&layout);
        let entry = index(&other)["manifests"][0].clone();
        both["manifests"].as_array_mut().unwrap().push(entry);
        std::fs::write(layout.join(INDEX_FILE), both.to_string()).unwrap();

        let named = |name: &str| {
            let text = format!("{}:{name}", layout.display());
            Target::parse(Path::new(&text))
        };
        assert_eq!(read(&named("1.0.0")).unwrap().digest, first.digest);
        assert_eq!(read(&named("2.0.0")).unwrap().digest, second.digest);
        let unnamed = Target::parse(&layout);
        let Err(error) = read(&unnamed) else {
            panic!("a layout of two manifests reads without a ref name")
        };
        let error = format!("{error:?}");
        assert!(error.contains("holds 2 manifests"), "{error}");
        assert!(error.contains("its refs are 1.0.0, 2.0.0"), "{error}");
        let Err(error) = read(&named("3.0.0")) else {
            panic!("an unknown ref name reads")
        };
        let error = format!("{error:?}");
        assert!(
            error.contains("no manifest with the ref name `3.0.0`"),
            "{error}"
        );
        let Err(error) = write(&layout, &first, Some("1.0.0")) else {
            panic!("a layout of two manifests is replaced by one")
        };
        assert!(error.to_string().contains("holds 2 manifests"), "{error}");
        assert_eq!(read(&named("2.0.0")).unwrap().digest, second.digest);
        let missing = dir.path().join("missing:1.0.0");
        assert_eq!(Target::parse(&missing).ref_name, None);
    }
}
