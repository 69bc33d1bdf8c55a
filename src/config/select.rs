//! Turning services on and off from the environment, as go-overlay does.
//!
//! The rules, applied to each service in this order (later steps win):
//! 1. Start from the service's `enabled` key (default true).
//! 2. If `PIDONE_ONLY_SERVICES` is set and lists at least one name, only the listed services
//!    are enabled; otherwise the same applies to `GO_OVERLAY_ONLY_SERVICES`. Names are
//!    separated by commas, semicolons or whitespace and compared case-insensitively.
//! 3. `GO_OVERLAY_ENABLE_<TOKEN>`, then `PIDONE_ENABLE_<TOKEN>`, set the service to the
//!    boolean they hold (so `PIDONE_ENABLE_X=false` disables, as in go-overlay).
//! 4. `GO_OVERLAY_DISABLE_<TOKEN>` or `PIDONE_DISABLE_<TOKEN>` set to true disables the
//!    service, whatever came before; set to false it changes nothing.
//!
//! `<TOKEN>` is the name upper-cased, every run of other characters than A-Z and 0-9 turned into
//! one `_`, leading and trailing `_` removed (`php-fpm` → `PHP_FPM`). With `instances`, both the
//! service's name (all instances) and an instance's name (`api-2`, token `API_2`) work, the
//! instance's taking precedence within each step.
//!
//! Booleans are `1 true yes on y` and `0 false no off n`, any case. go-overlay warns about
//! anything else and ignores it; pidone refuses it like any other config error.

use std::collections::BTreeMap;

use super::error::{ConfigError, ErrorKind, Location};

/// The `*_ONLY_SERVICES` list in effect, if any: the variable it came from and the names.
pub struct OnlyList {
    /// The variable that supplied the list, for error messages.
    pub var: &'static str,
    /// The listed names, lower-cased, in the order given.
    pub names: Vec<String>,
}

/// Reads the `*_ONLY_SERVICES` list: pidone's name first, go-overlay's as a fallback.
pub fn only_list(env: &BTreeMap<String, String>) -> Option<OnlyList> {
    ["PIDONE_ONLY_SERVICES", "GO_OVERLAY_ONLY_SERVICES"]
        .into_iter()
        .find_map(|var| {
            let names: Vec<String> = env
                .get(var)?
                .split([',', ';', ' ', '\t', '\n', '\r'])
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            (!names.is_empty()).then_some(OnlyList { var, names })
        })
}

/// Decides whether one service (or one instance) is enabled. `names` are the names it answers
/// to, most general first: `["api"]`, or `["api", "api-2"]` for an instance.
pub fn is_enabled(
    configured: bool,
    names: &[&str],
    only: Option<&OnlyList>,
    env: &BTreeMap<String, String>,
) -> Result<bool, Vec<ConfigError>> {
    let mut enabled = configured;
    let mut errors = Vec::new();
    if let Some(only) = only {
        enabled = names
            .iter()
            .any(|n| only.names.contains(&n.to_ascii_lowercase()));
    }
    for name in names {
        let token = env_token(name);
        for prefix in ["GO_OVERLAY_ENABLE_", "PIDONE_ENABLE_"] {
            let var = format!("{prefix}{token}");
            match lookup_bool(env, &var) {
                Ok(Some(value)) => enabled = value,
                Ok(None) => {}
                Err(raw) => errors.push(not_a_boolean(var, raw)),
            }
        }
    }
    for name in names {
        let token = env_token(name);
        for prefix in ["GO_OVERLAY_DISABLE_", "PIDONE_DISABLE_"] {
            let var = format!("{prefix}{token}");
            match lookup_bool(env, &var) {
                Ok(Some(true)) => enabled = false,
                Ok(_) => {}
                Err(raw) => errors.push(not_a_boolean(var, raw)),
            }
        }
    }
    if errors.is_empty() {
        Ok(enabled)
    } else {
        Err(errors)
    }
}

/// The `<TOKEN>` of a service name (see the module documentation).
pub fn env_token(name: &str) -> String {
    let mut token = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            token.push(c);
        } else if !token.is_empty() && !token.ends_with('_') {
            token.push('_');
        }
    }
    while token.ends_with('_') {
        token.pop();
    }
    token
}

/// Reads a boolean variable: `None` when unset, the raw text when it is not a boolean.
fn lookup_bool<'a>(env: &'a BTreeMap<String, String>, var: &str) -> Result<Option<bool>, &'a str> {
    let Some(raw) = env.get(var) else {
        return Ok(None);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(Some(true)),
        "0" | "false" | "no" | "off" | "n" => Ok(Some(false)),
        _ => Err(raw),
    }
}

fn not_a_boolean(var: String, raw: &str) -> ConfigError {
    ConfigError {
        location: Location::Env { var },
        service: None,
        key: None,
        kind: ErrorKind::BadValue {
            message: format!("{raw:?} is not a boolean (use 1/true/yes/on/y or 0/false/no/off/n)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn enabled(configured: bool, names: &[&str], pairs: &[(&str, &str)]) -> bool {
        let e = env(pairs);
        let only = only_list(&e);
        is_enabled(configured, names, only.as_ref(), &e).expect("valid booleans")
    }

    #[test]
    fn token_matches_go_overlay() {
        assert_eq!(env_token("php-fpm"), "PHP_FPM");
        assert_eq!(env_token("my..svc--x"), "MY_SVC_X");
        assert_eq!(env_token("-lead.trail-"), "LEAD_TRAIL");
        assert_eq!(env_token("api_2"), "API_2");
    }

    #[test]
    fn configured_value_stands_without_variables() {
        assert!(enabled(true, &["web"], &[]));
        assert!(!enabled(false, &["web"], &[]));
    }

    #[test]
    fn only_list_enables_listed_and_disables_the_rest() {
        let vars = [("GO_OVERLAY_ONLY_SERVICES", "Web; db")];
        assert!(enabled(false, &["web"], &vars));
        assert!(enabled(true, &["db"], &vars));
        assert!(!enabled(true, &["cache"], &vars));
    }

    #[test]
    fn pidone_only_list_replaces_go_overlays() {
        let vars = [
            ("GO_OVERLAY_ONLY_SERVICES", "web"),
            ("PIDONE_ONLY_SERVICES", "db"),
        ];
        assert!(!enabled(true, &["web"], &vars));
        assert!(enabled(true, &["db"], &vars));
        let empty = [
            ("GO_OVERLAY_ONLY_SERVICES", "web"),
            ("PIDONE_ONLY_SERVICES", " ,"),
        ];
        assert!(enabled(false, &["web"], &empty));
    }

    #[test]
    fn enable_overrides_only_and_can_disable() {
        let vars = [
            ("GO_OVERLAY_ONLY_SERVICES", "web"),
            ("GO_OVERLAY_ENABLE_CACHE", "yes"),
            ("PIDONE_ENABLE_WEB", "false"),
        ];
        assert!(enabled(false, &["cache"], &vars));
        assert!(!enabled(true, &["web"], &vars));
    }

    #[test]
    fn pidone_enable_wins_over_go_overlay_enable() {
        let vars = [
            ("GO_OVERLAY_ENABLE_WEB", "false"),
            ("PIDONE_ENABLE_WEB", "true"),
        ];
        assert!(enabled(false, &["web"], &vars));
    }

    #[test]
    fn disable_wins_over_everything_and_false_is_a_no_op() {
        let vars = [
            ("PIDONE_ONLY_SERVICES", "web"),
            ("PIDONE_ENABLE_WEB", "1"),
            ("GO_OVERLAY_DISABLE_WEB", "on"),
        ];
        assert!(!enabled(true, &["web"], &vars));
        assert!(enabled(true, &["web"], &[("PIDONE_DISABLE_WEB", "0")]));
    }

    #[test]
    fn instances_answer_to_both_names() {
        let vars = [("PIDONE_DISABLE_API_2", "true")];
        assert!(enabled(true, &["api", "api-1"], &vars));
        assert!(!enabled(true, &["api", "api-2"], &vars));
        let vars = [("PIDONE_ONLY_SERVICES", "api-3")];
        assert!(enabled(true, &["api", "api-3"], &vars));
        assert!(!enabled(true, &["api", "api-1"], &vars));
        let vars = [("PIDONE_DISABLE_API", "y"), ("PIDONE_ENABLE_API_1", "y")];
        assert!(!enabled(true, &["api", "api-1"], &vars));
    }

    #[test]
    fn a_bad_boolean_is_an_error_naming_the_variable() {
        let e = env(&[("PIDONE_ENABLE_WEB", "maybe")]);
        let errors = is_enabled(true, &["web"], None, &e).expect_err("bad boolean");
        assert_eq!(
            errors[0].location,
            Location::Env {
                var: "PIDONE_ENABLE_WEB".into()
            }
        );
    }
}
