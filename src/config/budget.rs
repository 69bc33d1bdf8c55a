//! The shutdown budget as `pidone validate` (and the start-up log) sees it: the longest chain of
//! services that must stop one after the other, and a warning when the stop timeouts written
//! along it add up to more than `global_shutdown_timeout`.
//!
//! Only stop timeouts that are written count (a service's `stop_timeout`, or a
//! `service_shutdown_timeout` other than the default): they say how long a stop is expected to
//! take. The default is a cap for a service that ignores its stop signal, not an expectation, so
//! a configuration left at its defaults never warns (it would on any dependency, and a warning
//! that always shows is one nobody reads).

use std::time::Duration;

use super::describe::format_duration;
use super::model::Config;

/// The warning for the dependency chain whose written stop timeouts add up to the most, if that
/// is more than the budget; None when every chain fits.
pub fn shutdown_warning(config: &Config) -> Option<String> {
    let services = &config.services;
    // In start order, a service comes after what it depends on: one pass finds, for each, the
    // costliest chain that ends with it (what stops before it, at shutdown, is its dependents).
    let mut best: Vec<(Duration, Option<usize>)> = Vec::with_capacity(services.len());
    for s in services {
        let own = if s.enabled && s.stop_timeout_set {
            s.stop_timeout
        } else {
            Duration::ZERO
        };
        let before = (s.depends_on.iter().chain(&s.after))
            .filter_map(|d| best.get(d.0).map(|(sum, _)| (*sum, d.0)))
            .max();
        let (sum, prev) = before.map_or((own, None), |(sum, i)| (sum.saturating_add(own), Some(i)));
        best.push((sum, prev));
    }
    let (last, (sum, _)) = (best.iter().enumerate()).max_by_key(|(_, (sum, _))| *sum)?;
    let budget = config.timeouts.global_shutdown;
    if *sum <= budget {
        return None;
    }
    // The chain, in stop order: dependents first.
    let mut chain = Vec::new();
    let mut at = Some(last);
    while let Some(i) = at {
        let (Some(s), Some((_, prev))) = (services.get(i), best.get(i)) else {
            break;
        };
        if s.enabled && s.stop_timeout_set {
            chain.push(format!("{} ({})", s.name, format_duration(s.stop_timeout)));
        }
        at = *prev;
    }
    Some(format!(
        "shutdown budget: {} stop one after the other: {} in all, over global_shutdown_timeout \
         ({}), after which all is killed (see docs/config.md)",
        chain.join(", then "),
        format_duration(*sum),
        format_duration(budget),
    ))
}
