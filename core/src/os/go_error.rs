//! I/O errors worded as Go words them, for texts that clients or logs compare with Go's.

use std::path::Path;

/// An I/O error worded like Go's `*PathError` (`open /x/status: no such file or directory`).
pub fn go_path_error(op: &str, path: &Path, e: &std::io::Error) -> String {
    format!("{op} {}: {}", path.display(), go_errno_text(e))
}

/// The bare error text as Go prints an errno: lower case, no `(os error N)`.
pub fn go_errno_text(e: &std::io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => return e.to_string(),
    };
    let text = match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worded_as_go() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(
            go_path_error("open", Path::new("/x/status"), &e),
            "open /x/status: no such file or directory"
        );
        let other = std::io::Error::other("Custom");
        assert_eq!(go_errno_text(&other), "Custom");
    }
}
