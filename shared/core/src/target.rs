//! A URL to probe, split once into what the probe needs, with a label that is safe to log.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    host: String,
    port: u16,
    tls: bool,
    request_target: String,
    label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty")]
    Empty,
    #[error("not a URL ({0})")]
    Malformed(String),
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("no host")]
    NoHost,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(TargetError::Empty);
        }
        let url = Url::parse(raw).map_err(|e| TargetError::Malformed(e.to_string()))?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(TargetError::Scheme(other.to_string())),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(TargetError::NoHost),
        };
        let port = url.port_or_known_default().ok_or(TargetError::NoHost)?;
        let mut request_target = url.path().to_string();
        if let Some(q) = url.query() {
            request_target.push('?');
            request_target.push_str(q);
        }
        let label = label_of(&url);
        Ok(Target { url, host, port, tls, request_target, label })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn is_tls(&self) -> bool {
        self.tls
    }
    /// Path and query, as sent on the request line.
    pub fn request_target(&self) -> &str {
        &self.request_target
    }
    /// The URL without user info, query or fragment: what logs, metrics and the execution input show.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let host = match self.url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        };
        match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

fn label_of(url: &Url) -> String {
    let mut clean = url.clone();
    // Setting these cannot fail on an http(s) URL with a host.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    clean.to_string()
}

/// Strips what may be a secret (user info, query, fragment) from text that may not even parse as a URL.
pub fn redact(raw: &str) -> String {
    raw.split(',')
        .map(|entry| {
            let mut s = entry.trim().to_string();
            if let Some(cut) = s.find(['?', '#']) {
                s.truncate(cut);
            }
            if let Some(scheme_end) = s.find("://") {
                let rest_start = scheme_end + 3;
                let authority_end = s[rest_start..].find('/').map_or(s.len(), |i| rest_start + i);
                if let Some(at) = s[rest_start..authority_end].rfind('@') {
                    s.replace_range(rest_start..rest_start + at + 1, "");
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_url_into_what_the_probe_needs() {
        let t = Target::parse("https://user:pw@example.com:8443/a/b?token=x#frag").unwrap();
        assert_eq!((t.host(), t.port(), t.is_tls()), ("example.com", 8443, true));
        assert_eq!(t.request_target(), "/a/b?token=x");
        assert_eq!(t.authority(), "example.com:8443");
        assert_eq!(t.label(), "https://example.com:8443/a/b");
    }

    #[test]
    fn default_ports_and_ip_literals() {
        let t = Target::parse("http://198.18.1.10").unwrap();
        assert_eq!((t.host(), t.port(), t.request_target()), ("198.18.1.10", 80, "/"));
        let t = Target::parse("https://[::1]/x").unwrap();
        assert_eq!((t.host(), t.port(), t.authority()), ("::1", 443, "[::1]".to_string()));
    }

    #[test]
    fn rejects_what_cannot_be_probed() {
        assert_eq!(Target::parse("  "), Err(TargetError::Empty));
        assert!(matches!(Target::parse("ftp://x.example/"), Err(TargetError::Scheme(s)) if s == "ftp"));
        assert!(matches!(Target::parse("example.com"), Err(TargetError::Malformed(_))));
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("http://:80/").is_err());
    }

    #[test]
    fn redact_strips_user_info_and_queries_even_from_garbage() {
        assert_eq!(redact("https://u:p@h.example/x?k=v,ftp://a@b"), "https://h.example/x,ftp://b");
        assert_eq!(redact("not a url?secret"), "not a url");
    }
}
