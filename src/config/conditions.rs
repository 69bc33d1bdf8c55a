//! Dependency conditions: what `depends_on = { db = "ready", migrate = "completed" }` asks of
//! each dependency before the service starts ([`Condition`]), and which conditions make sense
//! for which dependency ([`misfit`]). The supervisor decides when one is met
//! (`supervisor::conditions`); parsing the table is `parse::conditions`'s.

use super::error::ErrorKind;
use super::model::Kind;
use super::parse::RawService;
use super::resolve::{Loader, Unit};

/// What a service waits for in one of its dependencies. Whatever the condition, a dependency
/// orders the shutdown the same way: the service stops before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Up: a longrun ready, a oneshot that exited successfully (the default; `"succeeded"` is
    /// its explicit spelling for a oneshot). Fails with the dependency failing for good.
    #[default]
    Ready,
    /// Its main process was spawned (it may not be ready yet); a oneshot that is done counts
    /// too. Fails with the dependency failing for good (also before it was ever spawned).
    Started,
    /// A oneshot whose main process ran and exited, whatever its exit status. Fails only when
    /// the oneshot never ran to an exit (its own dependencies failed, or its spawn or its
    /// `pre_script` did).
    Completed,
}

/// The spellings a `depends_on` table takes, and the condition each means.
pub const NAMES: [(&str, Condition); 4] = [
    ("ready", Condition::Ready),
    ("succeeded", Condition::Ready),
    ("started", Condition::Started),
    ("completed", Condition::Completed),
];

impl Condition {
    /// The condition a `depends_on` table's value names, with whether it was `"succeeded"`
    /// (which only a oneshot may be asked for).
    pub fn parse(text: &str) -> Option<(Condition, bool)> {
        let (_, c) = NAMES.iter().find(|(n, _)| *n == text)?;
        Some((*c, text == "succeeded"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ready => "ready",
            Condition::Started => "started",
            Condition::Completed => "completed",
        }
    }
}

/// Why `condition` (written `"succeeded"` when `succeeded`) cannot be asked of dependency
/// `name`, of kind `kind`, on a schedule or not; `None` when it can.
pub(super) fn misfit(
    (condition, succeeded): (Condition, bool),
    name: &str,
    kind: Kind,
    scheduled: bool,
) -> Option<ErrorKind> {
    let written = if succeeded {
        "succeeded"
    } else {
        condition.as_str()
    };
    let message = match (condition, kind) {
        (Condition::Completed, Kind::Longrun) => {
            format!(
                "\"{written}\" needs a oneshot, and {name:?} is a longrun (use \"ready\" or \"started\")"
            )
        }
        (Condition::Ready, Kind::Longrun) if succeeded => {
            format!(
                "\"{written}\" needs a oneshot, and {name:?} is a longrun (use \"ready\" or \"started\")"
            )
        }
        _ if scheduled && condition != Condition::Ready => format!(
            "{name:?} runs on its schedule, which never holds a start: \"{written}\" would mean nothing (leave it out, or write \"ready\")"
        ),
        _ => return None,
    };
    Some(ErrorKind::BadValue { message })
}

impl Loader<'_> {
    /// The condition of `raw`'s `depends_on` entry number `entry` (`name` at `line`), refused
    /// (reported, and taken as `ready`) when it makes no sense for its `targets` (units of one
    /// service: the first stands for all).
    pub(super) fn check_condition(
        &mut self,
        raw: &RawService,
        entry: usize,
        (name, line): (&str, usize),
        targets: &[usize],
        units: &[Unit],
    ) -> Condition {
        let Some(&written) = raw.depends_when.get(entry) else {
            return Condition::Ready;
        };
        let target = (targets.first())
            .and_then(|&t| units.get(t))
            .and_then(|u| self.raws.get(u.raw));
        let Some(target) = target else {
            return written.0;
        };
        let scheduled = target.schedule.is_some();
        match misfit(written, name, target.kind, scheduled) {
            Some(kind) => {
                let key = format!("depends_on.{name}");
                self.error(raw, line, Some(&key), kind);
                Condition::Ready
            }
            None => written.0,
        }
    }
}
