//! Web security (DESIGN §17): cardex runs on a person's own machine, where
//! any web page they open can make their browser send requests to
//! `localhost`. Two checks, with or without a token, on every request
//! (WebSocket upgrades included):
//!
//! - **Host**: the `Host` header must name this server: `localhost` (or a
//!   name under `.localhost`), an IP address, or a name given with
//!   `--allowed-hosts`. A DNS-rebinding page reaches us under its own
//!   name (`attacker.example` resolved to 127.0.0.1), so its requests
//!   carry that name and are refused. IP addresses are safe to allow: a
//!   page can only send `Host: 127.0.0.1` from the origin `127.0.0.1`.
//! - **Origin**: a request that carries an `Origin` (browsers add it to
//!   every cross-site request, to every `POST`, and to WebSocket
//!   handshakes) must come from this server's own origin (same host and
//!   port as `Host`) or one given with `--allowed-origins` (for a reverse
//!   proxy that serves the UI under another name). Requests without an
//!   `Origin` (curl, scripts) are not from a web page and pass.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Which hosts and origins may reach the server besides its own.
#[derive(Debug, Clone, Default)]
pub struct WebAccess {
    /// Host names (without port) accepted in `Host`, lower case. A name
    /// starting with `.` accepts every name under it.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) accepted in `Origin`, lower case,
    /// without a trailing `/`.
    pub allowed_origins: Vec<String>,
}

impl WebAccess {
    /// From the user's lists, normalised.
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        Self {
            allowed_hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            allowed_origins: origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` (a `Host` header's value) names this server.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name.is_empty() {
            return false;
        }
        name == "localhost"
            || name.ends_with(".localhost")
            || name
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
            || self.allowed_hosts.iter().any(|allowed| {
                allowed == &name || (allowed.starts_with('.') && name.ends_with(allowed.as_str()))
            })
    }

    /// Whether a request from `origin` to `host` is same-origin or allowed.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // `null` and other opaque origins
        };
        matches!(scheme, "http" | "https")
            && same_authority(authority, &host.to_ascii_lowercase(), scheme)
    }
}

/// The host part of a `Host` value: `[::1]:8080` → `[::1]`, `a:80` → `a`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or("", |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Whether two `host[:port]` forms name the same place, the default port
/// of `scheme` standing in for a missing one.
fn same_authority(a: &str, b: &str, scheme: &str) -> bool {
    let default = if scheme == "https" { "443" } else { "80" };
    let split = |s: &str| -> (String, String) {
        let name = host_name(s);
        let port = s[name.len()..].strip_prefix(':').unwrap_or(default);
        (name.to_owned(), port.to_owned())
    };
    split(a) == split(b)
}

/// Refuses requests for another host, or from another site.
pub(crate) async fn check_host_and_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match refusal(&state.config.web, req.headers()) {
        Some(refused) => refused.into_response(),
        None => next.run(req).await,
    }
}

fn refusal(access: &WebAccess, headers: &HeaderMap) -> Option<ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !access.host_allowed(host) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "this server does not answer to the host {host:?}; if that is its name (behind a \
                 reverse proxy, say), start it with --allowed-hosts {}",
                host_name(host)
            ),
        ));
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("null");
    (!access.origin_allowed(origin, host)).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "requests from the web page at {origin:?} are refused: only this server's own \
                 pages may use it; for a reverse proxy, start it with --allowed-origins {origin}"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    fn code(access: &WebAccess, host: &str, origin: Option<&str>) -> Option<String> {
        refusal(access, &headers(host, origin)).map(|e| e.code().to_owned())
    }

    #[test]
    fn loopback_names_and_addresses_are_this_server() {
        let a = WebAccess::default();
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "app.localhost",
            "192.168.1.5",
        ] {
            assert_eq!(code(&a, host, None), None, "{host}");
        }
        for host in [
            "attacker.example:8080",
            "localhost.attacker.example",
            "",
            "[::1",
        ] {
            assert_eq!(
                code(&a, host, None).as_deref(),
                Some("host_not_allowed"),
                "{host}"
            );
        }
    }

    #[test]
    fn allowed_hosts_add_names_and_domains() {
        let a = WebAccess::new(&["Cards.Example.org".into(), ".lab.example".into()], &[]);
        assert_eq!(code(&a, "cards.example.org", None), None);
        assert_eq!(code(&a, "scan.lab.example:8443", None), None);
        assert!(code(&a, "other.example", None).is_some());
    }

    #[test]
    fn only_the_servers_own_origin_or_allowed_ones_pass() {
        let a = WebAccess::new(
            &["cards.example.org".into()],
            &["https://proxy.example/".into()],
        );
        assert_eq!(
            code(&a, "localhost:8080", Some("http://localhost:8080")),
            None
        );
        assert_eq!(
            code(&a, "cards.example.org", Some("https://cards.example.org")),
            None
        );
        assert_eq!(
            code(&a, "127.0.0.1:8080", Some("https://proxy.example")),
            None
        );
        for origin in [
            "http://attacker.example",
            "http://localhost:9999",
            "null",
            "file://",
        ] {
            assert_eq!(
                code(&a, "localhost:8080", Some(origin)).as_deref(),
                Some("origin_not_allowed"),
                "{origin}"
            );
        }
    }
}
