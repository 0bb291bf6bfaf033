//! Entry points for fuzz targets and their corpus replay tests (feature `fuzzing`).

use crate::config::{self, ConfigError, ErrorKind, Parser};

/// A parser that never asks the system for its host name.
fn parser() -> Parser {
    Parser::new().with_hostname("fuzz")
}

/// `data` as a YAML config file: on its own (version 1 or declared), forced to version 2,
/// through `-c` as the node reads it at start (with `reload` bookkeeping), and as `reload`
/// reads it; a file compared with itself is never a reload error.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = parser();
    let _ = config::parse_document(text);
    let _ = p.parse_yaml(text);
    for args in [&["-c", "f.yml"][..], &["--config-v2", "--config", "f.yml"]] {
        let _ = p.parse_args_reading(args, &mut |_| Ok(text.to_owned()));
    }
    if let Ok(items) = config::file_items(text) {
        assert!(config::check_reload(&items, &items).is_ok());
    }
}

/// `data` as a command line: arguments separated by NUL bytes, up to an empty argument
/// (two NULs); what follows is the text of every `--config` file, except `missing.yml`,
/// which does not exist.
pub fn cmdline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (args, file) = text.split_once("\0\0").unwrap_or((&text, ""));
    let args: Vec<&str> = args.split('\0').collect();
    let mut read = |path: &str| {
        if path == "missing.yml" {
            Err(ConfigError::new(
                ErrorKind::File,
                "error loading config file: open missing.yml: no such file or directory",
            ))
        } else {
            Ok(file.to_owned())
        }
    };
    let _ = parser().parse_args_reading(&args, &mut read);
}

/// `data` as a request to the metrics endpoint, whole and cut in half; a parsed request
/// gets a page or a status.
pub fn metrics_http(data: &[u8]) {
    for buf in [data, data.get(..data.len() / 2).unwrap_or_default()] {
        match crate::metrics::parse_request(buf) {
            Ok(Some(req)) => {
                if let Err(status) = crate::metrics::route(&req) {
                    assert!(status == 404 || status == 405);
                }
            }
            Ok(None) => assert!(buf.len() < crate::metrics::MAX_HEAD),
            Err(e) => assert!(matches!(e.status(), 400 | 431)),
        }
    }
}

/// `data` as a file the certificate commands read (PEM, a request's DER, a SAN value).
pub fn certs(data: &[u8]) {
    crate::certs::read_untrusted(data);
}
