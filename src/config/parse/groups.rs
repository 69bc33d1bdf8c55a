//! `groups`: the names a service is known by besides its own (`pidone stop @backend`). A group
//! name is checked as a service name is; a group exists as long as some service is in it.

use toml::de::DeValue;

use super::values::string_or_list;
use crate::config::error::ErrorKind;
use crate::config::limits::{self, too_many};
use crate::config::model::is_valid_name;

/// Most groups one service may be in.
pub(super) const MAX_GROUPS: usize = 64;

/// `groups = ["backend", "web"]` (or one string): each a valid name, each kept once, in the
/// order written.
pub(super) fn groups(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    let names = string_or_list(v)?;
    if let Some(kind) = too_many("groups", names.len(), MAX_GROUPS) {
        return Err(kind);
    }
    let mut kept: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if let Some(kind) = limits::too_long("group name", name.len(), limits::MAX_NAME_LEN) {
            return Err(kind);
        }
        if !is_valid_name(&name) {
            let message =
                format!("invalid group name {name:?}: use only letters, digits, '_', '.' and '-'");
            return Err(ErrorKind::BadValue { message });
        }
        if !kept.contains(&name) {
            kept.push(name);
        }
    }
    Ok(kept)
}
