//! Names from clients: an uploaded file's name (kept for display) and a
//! batch's name (which becomes a folder name). Neither may ever panic, and
//! whatever they let through can never reach outside its folder.
#![no_main]

use std::path::{Component, Path};

use cardex_core::naming::{MAX_CUSTOM_LEN, MAX_FILE_NAME_BYTES, check_file_name, sanitize_custom};
use libfuzzer_sys::fuzz_target;

/// One plain path component: no separator, no `.` or `..`, no root.
fn is_one_plain_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(name) = check_file_name(Some(&text)) {
        assert!(name.len() <= MAX_FILE_NAME_BYTES);
        assert!(!name.contains(['/', '\\']));
        assert!(!name.chars().any(char::is_control));
        assert!(name == "unnamed" || name == text);
        assert!(is_one_plain_component(&name), "{name:?}");
    }

    if let Ok(custom) = sanitize_custom(&text) {
        assert!(!custom.is_empty() && custom.len() <= MAX_CUSTOM_LEN);
        assert!(
            custom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        assert!(!custom.starts_with('-') && !custom.ends_with('-'));
        assert!(is_one_plain_component(&custom), "{custom:?}");
    }
});
