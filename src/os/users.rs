//! Users and groups of the container image, read from its `/etc/passwd` and `/etc/group`.
//!
//! pidone is a static binary, so there is no NSS to ask: the two files are parsed here, and only
//! they are consulted. A numeric uid or gid works without any entry, which keeps images without
//! those files (distroless, scratch) usable. Malformed lines are skipped, as glibc's `files`
//! backend does, so one odd line cannot lock every service out.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What a service runs as: everything `spawn` needs to drop privileges and set HOME/USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user id passed to `setuid`.
    pub uid: u32,
    /// The primary group id passed to `setgid`.
    pub gid: u32,
    /// The supplementary groups passed to `setgroups`: the primary gid first, then every group
    /// of `/etc/group` that lists the user's name, in file order, without duplicates.
    pub groups: Vec<u32>,
    /// The user's name from `/etc/passwd`, or the uid in decimal when it has no entry. Used for
    /// `USER` and `LOGNAME`.
    pub name: String,
    /// The home directory from `/etc/passwd`, or `/` when the uid has no entry. Used for `HOME`.
    pub home: PathBuf,
}

/// Why a user or group could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// A user name that `/etc/passwd` does not list.
    UnknownUser { name: String },
    /// A group name that `/etc/group` does not list.
    UnknownGroup { name: String },
    /// A user or group written as an empty string, e.g. `"app:"`.
    Empty,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::UnknownUser { name } => write!(f, "unknown user {name:?}"),
            UserError::UnknownGroup { name } => write!(f, "unknown group {name:?}"),
            UserError::Empty => write!(f, "empty user or group name"),
        }
    }
}

/// One line of `/etc/passwd`, reduced to the fields pidone uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// One line of `/etc/group`, reduced to the fields pidone uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The parsed user and group databases of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    users: Vec<PasswdEntry>,
    groups: Vec<GroupEntry>,
}

impl UserDb {
    /// Reads `<root>/etc/passwd` and `<root>/etc/group`. A missing file counts as empty (numeric
    /// ids still work); any other read error is returned.
    pub fn load(root: &Path) -> io::Result<UserDb> {
        let passwd = read_optional(&root.join("etc/passwd"))?;
        let group = read_optional(&root.join("etc/group"))?;
        Ok(UserDb::parse(&passwd, &group))
    }

    /// Parses the text of a passwd and a group file.
    pub fn parse(passwd: &str, group: &str) -> UserDb {
        UserDb {
            users: passwd.lines().filter_map(parse_passwd_line).collect(),
            groups: group.lines().filter_map(parse_group_line).collect(),
        }
    }

    /// Resolves a `user` setting (`"name"`, `"uid"`, `"name:group"` or `"uid:gid"`) and an
    /// optional separate `group` into credentials.
    ///
    /// A group given in `user` after the colon wins over `group`; the caller refuses configs that
    /// set both. A name is looked up before trying it as a number, so a user literally named
    /// `"1000"` is found by name, as `getpwnam` would. A numeric uid without an entry gets the
    /// gid of the same number, so it never silently lands in group 0 (root) the way some
    /// container runtimes do.
    pub fn resolve(&self, user: &str, group: Option<&str>) -> Result<Credentials, UserError> {
        let (user_part, group_part) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, group),
        };
        if user_part.is_empty() {
            return Err(UserError::Empty);
        }
        let entry = self.users.iter().find(|e| e.name == user_part).or_else(|| {
            let uid = parse_id(user_part)?;
            self.users.iter().find(|e| e.uid == uid)
        });
        let (uid, default_gid, name, home) = match (entry, parse_id(user_part)) {
            (Some(e), _) => (e.uid, e.gid, e.name.clone(), e.home.clone()),
            (None, Some(uid)) => (uid, uid, user_part.to_owned(), PathBuf::from("/")),
            (None, None) => {
                return Err(UserError::UnknownUser {
                    name: user_part.to_owned(),
                });
            }
        };
        let gid = match group_part {
            None => default_gid,
            Some("") => return Err(UserError::Empty),
            Some(g) => self.resolve_group(g)?,
        };
        let mut groups = vec![gid];
        if entry.is_some() {
            for g in &self.groups {
                if g.members.contains(&name) && !groups.contains(&g.gid) {
                    groups.push(g.gid);
                }
            }
        }
        Ok(Credentials {
            uid,
            gid,
            groups,
            name,
            home,
        })
    }

    /// The name `/etc/passwd` gives `uid`, if it lists it.
    pub fn name_of(&self, uid: u32) -> Option<&str> {
        (self.users.iter().find(|e| e.uid == uid)).map(|e| e.name.as_str())
    }

    /// Resolves a group name or number to a gid.
    pub fn resolve_group(&self, group: &str) -> Result<u32, UserError> {
        if let Some(g) = self.groups.iter().find(|g| g.name == group) {
            return Ok(g.gid);
        }
        parse_id(group).ok_or_else(|| UserError::UnknownGroup {
            name: group.to_owned(),
        })
    }
}

/// Reads a file, treating "does not exist" as empty. Read again at every reload, inside
/// pidone's loop: never blocking, regular files only, bounded (see [`crate::io::files`]).
fn read_optional(path: &Path) -> io::Result<String> {
    match crate::io::files::read_text(path, crate::config::limits::MAX_CONFIG_FILE_BYTES) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Parses a decimal id; anything else (signs, spaces, overflow) is not an id.
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `name:password:uid:gid:gecos:home:shell`. NIS compat lines (`+`, `-`) are skipped.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    if line.starts_with(['#', '+', '-']) {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _, uid, gid, _, home, _, ..] = fields.as_slice() else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    Some(PasswdEntry {
        name: (*name).to_owned(),
        uid: parse_id(uid)?,
        gid: parse_id(gid)?,
        home: PathBuf::from(if home.is_empty() { "/" } else { home }),
    })
}

/// Parses `name:password:gid:member,member`.
fn parse_group_line(line: &str) -> Option<GroupEntry> {
    if line.starts_with(['#', '+', '-']) {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _, gid, members, ..] = fields.as_slice() else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    Some(GroupEntry {
        name: (*name).to_owned(),
        gid: parse_id(gid)?,
        members: members
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
bad:x:notanumber:1::/:/bin/sh
+nis
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
    const GROUP: &str = "\
root:x:0:
www-data:x:33:app
app:x:1000:
docker:x:999:app, other
video:x:44:other
nogroup:x:65534:
";

    fn db() -> UserDb {
        UserDb::parse(PASSWD, GROUP)
    }

    #[test]
    fn resolves_a_name_with_home_and_supplementary_groups() {
        let c = db().resolve("app", None).expect("app exists");
        assert_eq!(
            c,
            Credentials {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 33, 999],
                name: "app".into(),
                home: "/home/app".into(),
            }
        );
    }

    #[test]
    fn resolves_a_known_uid_to_its_entry() {
        let c = db().resolve("33", None).expect("uid 33 exists");
        assert_eq!((c.uid, c.gid, c.name.as_str()), (33, 33, "www-data"));
        assert_eq!(c.home, PathBuf::from("/var/www"));
    }

    #[test]
    fn numeric_ids_work_without_any_files() {
        let c = UserDb::default()
            .resolve("1234:5678", None)
            .expect("numeric");
        assert_eq!(
            c,
            Credentials {
                uid: 1234,
                gid: 5678,
                groups: vec![5678],
                name: "1234".into(),
                home: "/".into()
            }
        );
        let c = UserDb::default().resolve("1234", None).expect("numeric");
        assert_eq!((c.uid, c.gid), (1234, 1234));
    }

    #[test]
    fn user_colon_group_and_separate_group_set_the_primary_gid() {
        let c = db().resolve("app:docker", None).expect("valid");
        assert_eq!(c.gid, 999);
        assert_eq!(c.groups, vec![999, 33]);
        let c = db().resolve("app", Some("video")).expect("valid");
        assert_eq!(c.gid, 44);
        let c = db().resolve("nobody", Some("12")).expect("valid");
        assert_eq!((c.uid, c.gid, c.groups.clone()), (65534, 12, vec![12]));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            db().resolve("ghost", None),
            Err(UserError::UnknownUser {
                name: "ghost".into()
            })
        );
        assert_eq!(
            db().resolve("app:ghosts", None),
            Err(UserError::UnknownGroup {
                name: "ghosts".into()
            })
        );
        assert_eq!(db().resolve("app:", None), Err(UserError::Empty));
        assert_eq!(db().resolve("", None), Err(UserError::Empty));
    }

    #[test]
    fn skips_malformed_lines() {
        assert!(matches!(
            db().resolve("bad", None),
            Err(UserError::UnknownUser { .. })
        ));
    }

    #[test]
    fn load_treats_missing_files_as_empty() {
        let dir = std::env::temp_dir().join(format!("pidone-users-{}", std::process::id()));
        let db = UserDb::load(&dir).expect("missing files are fine");
        assert_eq!(db, UserDb::default());
    }

    #[test]
    fn load_reads_files_under_root() {
        let dir = std::env::temp_dir().join(format!("pidone-users-root-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
        std::fs::write(dir.join("etc/passwd"), PASSWD).expect("write");
        std::fs::write(dir.join("etc/group"), GROUP).expect("write");
        let db = UserDb::load(&dir).expect("readable");
        assert_eq!(db.resolve("www-data", None).map(|c| c.uid), Ok(33));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
