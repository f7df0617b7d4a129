//! Reading a running host's inspection API (`cargo torvyn run --listen`), for `top` and
//! `inspect`: over TCP (`HOST:PORT`, `http://HOST:PORT`) or a Unix domain socket
//! (`unix:PATH`).

use http_body_util::{BodyExt, Empty};
use miette::{Context, IntoDiagnostic};
use serde_json::Value;

use crate::cli::UNIX_SCHEME;

/// The prefix of every request to the host at `addr`, given as `HOST:PORT`,
/// `http://HOST:PORT` or `unix:PATH`. A path after the port (the address of one of the
/// API's pages, pasted) is left out: every request names its own.
///
/// # Errors
///
/// When the port is missing or not a number from 1 to 65535.
pub(crate) fn base(addr: &str) -> miette::Result<String> {
    if addr.starts_with(UNIX_SCHEME) {
        return Ok(addr.to_owned());
    }
    let rest = addr.strip_prefix("http://").unwrap_or(addr);
    let authority = rest.split('/').next().unwrap_or_default();
    let port = authority.rsplit_once(':').map(|(_, port)| port);
    match port.and_then(|port| port.parse::<u16>().ok()) {
        Some(port) if port > 0 => Ok(format!("http://{authority}")),
        _ => miette::bail!(
            help = "a running host's address is HOST:PORT, http://HOST:PORT or unix:PATH, as `cargo torvyn run --listen` took it",
            "`{addr}` names no port from 1 to 65535"
        ),
    }
}

/// Whether `target` names a running host rather than a file or a registry reference.
pub(crate) fn is_host(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with(UNIX_SCHEME)
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
    let cannot = || format!("cannot read {url}: is `cargo torvyn run --listen` serving there?");
    let text = match base.strip_prefix(UNIX_SCHEME) {
        Some(socket) => get_unix(socket, path).wrap_err_with(cannot)?,
        None => {
            let mut response = ureq::get(&url)
                .call()
                .into_diagnostic()
                .wrap_err_with(cannot)?;
            response.body_mut().read_to_string().into_diagnostic()?
        }
    };
    serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("{url} did not answer JSON"))
}

/// `GET path` over HTTP/1.1 on the Unix domain socket at `socket`: the body of a `200`.
fn get_unix(socket: &str, path: &str) -> miette::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(async {
        let stream = (tokio::net::UnixStream::connect(socket).await).into_diagnostic()?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) =
            (hyper::client::conn::http1::handshake(io).await).into_diagnostic()?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, "localhost")
            .body(Empty::<bytes::Bytes>::new())
            .into_diagnostic()?;
        let response = sender.send_request(request).await.into_diagnostic()?;
        let status = response.status();
        let body = (response.into_body().collect().await).into_diagnostic()?;
        let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
        match status.is_success() {
            true => Ok(text),
            false => Err(miette::miette!("the host answered {status}: {text}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::base;

    #[test]
    fn an_address_is_checked_and_a_pasted_path_left_out() {
        for addr in [
            "127.0.0.1:9464",
            "http://127.0.0.1:9464/",
            "http://127.0.0.1:9464/flows/main",
        ] {
            assert_eq!(base(addr).unwrap(), "http://127.0.0.1:9464");
        }
        assert_eq!(base("http://[::1]:80").unwrap(), "http://[::1]:80");
        assert_eq!(base("unix:/tmp/t.sock").unwrap(), "unix:/tmp/t.sock");
        for bad in [
            "http://localhost:99999",
            "localhost:0",
            "http://localhost:abc",
            "http://localhost",
        ] {
            let refused = base(bad).unwrap_err().to_string();
            assert!(
                refused.contains("names no port from 1 to 65535"),
                "{refused}"
            );
        }
    }
}
