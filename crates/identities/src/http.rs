use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use zeroize::Zeroizing;

use crate::IdentityError;

/// Map a transport error to a clear one. reqwest's own message names the
/// URL; ours names only what was being asked.
pub(crate) fn transport(err: &reqwest::Error, what: &'static str) -> IdentityError {
    if err.is_timeout() {
        IdentityError::Timeout(what)
    } else if err.is_connect() {
        IdentityError::Unreachable {
            what,
            reason: "could not connect",
        }
    } else if err.is_body() || err.is_decode() {
        IdentityError::Unreachable {
            what,
            reason: "the answer was cut off",
        }
    } else {
        IdentityError::Unreachable {
            what,
            reason: "the request failed",
        }
    }
}

/// Read a response's body, refusing one over `limit` bytes (by its declared
/// length first, then as it streams in). The buffer is zeroized when
/// dropped: it may hold a token.
pub(crate) async fn read_bounded(
    mut response: Response,
    limit: usize,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(IdentityError::TooLarge { what, limit });
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, what))? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(IdentityError::TooLarge { what, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Send a request built by `request`, wait at most `timeout` for all of it
/// (answer and body), and return the status and the bounded body.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    limit: usize,
    what: &'static str,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>), IdentityError> {
    let work = async {
        let response = request.send().await.map_err(|e| transport(&e, what))?;
        let status = response.status();
        let limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && response
                    .headers()
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v.as_bytes() == b"0"));
        if limited {
            return Err(IdentityError::RateLimited(what));
        }
        let body = read_bounded(response, limit, what).await?;
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| IdentityError::Timeout(what))?
}

/// Parse JSON of the documented shape, or say what was asked.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &'static str,
) -> Result<T, IdentityError> {
    serde_json::from_slice(body).map_err(|_| IdentityError::BadResponse {
        what,
        reason: "not the documented JSON",
    })
}

/// A base URL: https, or http on a loopback host only (for tests and local
/// servers). Any trailing `/` is dropped.
pub(crate) fn base_url(url: &str) -> Result<Url, IdentityError> {
    let parsed = Url::parse(url).map_err(|_| IdentityError::Config("a base URL is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(IdentityError::Config(
                "a base URL must be https (http only on this machine)",
            ))
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(IdentityError::Config(
            "a base URL has no query, fragment or user",
        ));
    }
    let trimmed = parsed.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|_| IdentityError::Config("a base URL is not a URL"))
}

/// `base` joined with path segments, each percent-encoded.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, IdentityError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| IdentityError::Config("a base URL cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}
