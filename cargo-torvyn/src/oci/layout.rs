//! OCI image layouts: the folder `pack` writes and `publish --from` reads
//! (`oci-layout`, `index.json`, `blobs/sha256/…`).

use std::path::Path;

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
        std::fs::remove_dir_all(dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot replace `{}`", dir.display()))?;
    }
    std::fs::rename(staging.keep(), dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write `{}`", dir.display()))
}

/// Reads the one artifact of the image layout `dir`, checking every digest.
pub(crate) fn read(dir: &Path) -> miette::Result<Artifact> {
    let context = || format!("`{}` is not a readable OCI image layout", dir.display());
    let index = std::fs::read(dir.join(INDEX_FILE))
        .into_diagnostic()
        .wrap_err_with(context)?;
    let index: serde_json::Value = serde_json::from_slice(&index)
        .into_diagnostic()
        .wrap_err_with(context)?;
    let manifests = index["manifests"].as_array().map(Vec::as_slice);
    let [entry] = manifests.unwrap_or_default() else {
        bail!(
            "`{}` must hold exactly one manifest (its index.json lists {})",
            dir.display(),
            manifests.map_or(0, <[_]>::len)
        );
    };
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
        assert_eq!(read(&layout).unwrap().digest, artifact.digest);

        let layer = &artifact.manifest.layers[0].digest;
        let blob = layout.join("blobs/sha256").join(sha256_hex(layer).unwrap());
        std::fs::write(blob, b"tampered").unwrap();
        let Err(error) = read(&layout) else {
            panic!("a tampered layout reads")
        };
        let error = format!("{error:?}");
        assert!(error.contains("hashes to"), "{error}");

        let elsewhere = dir.path().join("not-a-layout");
        std::fs::create_dir(&elsewhere).unwrap();
        assert!(write(&elsewhere, &artifact, None).is_err());
    }
}
