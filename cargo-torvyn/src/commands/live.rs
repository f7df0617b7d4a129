//! Reading a running host's inspection API (`cargo torvyn run --listen`), for `top` and
//! `inspect`.

use miette::{Context, IntoDiagnostic};
use serde_json::Value;

/// The URL prefix for `addr`, given as `HOST:PORT` or `http://HOST:PORT[/]`.
pub(crate) fn base(addr: &str) -> String {
    let addr = addr.strip_prefix("http://").unwrap_or(addr);
    format!("http://{}", addr.trim_end_matches('/'))
}

/// `GET /flows/NAME` of every flow of the host at `base` that has published figures, in
/// the order the host started them.
pub(crate) fn flows(base: &str) -> miette::Result<Vec<Value>> {
    let listed = get(base, "/flows")?;
    let mut flows = Vec::new();
    for listed in listed["flows"].as_array().into_iter().flatten() {
        // A flow that has not published yet is left out until it has.
        if let (Some(name), false) = (listed["name"].as_str(), listed["outcome"].is_null()) {
            flows.push(get(base, &format!("/flows/{name}"))?);
        }
    }
    Ok(flows)
}

fn get(base: &str, path: &str) -> miette::Result<Value> {
    let url = format!("{base}{path}");
    let mut response = ureq::get(&url).call().into_diagnostic().wrap_err_with(|| {
        format!("cannot read {url}: is `cargo torvyn run --listen` serving there?")
    })?;
    let text = response.body_mut().read_to_string().into_diagnostic()?;
    serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("{url} did not answer JSON"))
}
