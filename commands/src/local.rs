//! Local paths as the user types them.

use crate::CommandError;

/// Expands a leading `~` or `~/` to `$HOME`, as a shell does. With `HOME`
/// unset there is no sensible home: an error, rather than quietly `/`.
pub fn expand_tilde(path: &str) -> Result<String, CommandError> {
    if path != "~" && !path.starts_with("~/") {
        return Ok(path.to_string());
    }
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            CommandError::msg(format!(
                "{}: HOME is not set, so '~' means nothing; write the path in full",
                ftpsh_core::display::escape(path)
            ))
        })?;
    Ok(match path.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
        None => home,
    })
}
