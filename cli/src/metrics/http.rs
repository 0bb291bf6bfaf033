//! The endpoint's HTTP/1.x: parsing a request head (a pure function a fuzz target can call),
//! choosing the page, and writing the response. One request per connection; the server
//! closes after answering, so there is no keep-alive or pipelining to get wrong.

use httparse::Status;

/// The longest request head read; longer ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Header lines parsed at most; more get 431.
const MAX_HEADERS: usize = 32;

/// A request head, as far as the endpoint cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not an HTTP/1.x request head.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Longer than [`MAX_HEAD`] or with too many header lines.
    #[error("request head too large")]
    TooLarge,
}

impl RequestError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge => 431,
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(Status::Complete(_)) => {}
        Ok(Status::Partial) if buf.len() >= MAX_HEAD => return Err(RequestError::TooLarge),
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(RequestError::Malformed("no request line".to_owned()));
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let accept = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("accept"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        accept,
    }))
}

/// The pages the endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/`: the HTML page with the picture.
    Index,
    /// `/metrics`.
    Metrics,
    /// `/topology.json`.
    TopologyJson,
    /// `/topology.dot`.
    TopologyDot,
}

/// Which page a request asks for, or the error status to answer with.
pub fn route(req: &Request) -> Result<Page, u16> {
    let page = match req.path.as_str() {
        "/" | "/index.html" => Page::Index,
        "/metrics" => Page::Metrics,
        "/topology.json" => Page::TopologyJson,
        "/topology.dot" => Page::TopologyDot,
        _ => return Err(404),
    };
    match req.method.as_str() {
        "GET" | "HEAD" => Ok(page),
        _ => Err(405),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole response; `head_only` leaves the body off (for `HEAD`) but keeps its length.
pub fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A plain-text error response.
pub fn error_response(status: u16) -> Vec<u8> {
    let body = format!("{status} {}\n", reason(status));
    response(status, "text/plain; charset=utf-8", body.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scrape_and_strips_the_query() {
        let r = parse_request(
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert_eq!(r.accept.as_deref(), Some("application/openmetrics-text"));
        assert_eq!(route(&r), Ok(Page::Metrics));
    }

    #[test]
    fn incomplete_heads_wait_and_garbage_is_refused() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost:"), Ok(None));
        assert_eq!(parse_request(b""), Ok(None));
        for bad in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET / SPDY/3\r\n\r\n",
            b"hello world\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\n\r\n",
        ] {
            let e = parse_request(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}: {e}");
        }
        let long = [b"GET /".as_slice(), &[b'a'; MAX_HEAD]].concat();
        assert_eq!(parse_request(&long), Err(RequestError::TooLarge));
        let many: String = std::iter::once("GET / HTTP/1.1\r\n".to_owned())
            .chain((0..40).map(|i| format!("X-{i}: y\r\n")))
            .chain(std::iter::once("\r\n".to_owned()))
            .collect();
        assert_eq!(parse_request(many.as_bytes()), Err(RequestError::TooLarge));
    }

    #[test]
    fn unknown_pages_and_methods_get_4xx() {
        let req = |m: &str, p: &str| Request {
            method: m.into(),
            path: p.into(),
            accept: None,
        };
        assert_eq!(route(&req("GET", "/nope")), Err(404));
        assert_eq!(route(&req("POST", "/metrics")), Err(405));
        assert_eq!(route(&req("HEAD", "/")), Ok(Page::Index));
        let r = String::from_utf8(error_response(405)).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
        assert!(r.contains("Allow: GET, HEAD\r\n"));
        let head = response(200, "text/plain", b"abc", true);
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("Content-Length: 3\r\n") && head.ends_with("\r\n\r\n"));
    }
}
