//! Reading s6-overlay's layouts into plain services: `/etc/s6-overlay/s6-rc.d/` (v3: longruns,
//! oneshots, bundles), `/etc/services.d/` (v2), and the `cont-init.d` and `cont-finish.d`
//! scripts. Every problem is collected, named by the path it is in; nothing runs here and
//! nothing is written. `super::toml` turns the result into pidone's TOML.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ErrorKind, Location};

/// Names s6-overlay defines itself (outside `/etc`): a dependency on one of them, when the image
/// does not define it, is met by pidone's own order (cont-init.d first), not an error.
const OVERLAY_OWN: &[&str] = &[
    "base",
    "fix-attrs",
    "legacy-cont-init",
    "legacy-services",
    "user",
    "user2",
];

/// One s6 service (longrun or oneshot) as read.
#[derive(Debug, Default)]
pub struct Svc {
    /// Its directory's name (`NAME-log` for a services.d logger).
    pub name: String,
    /// Where it was read, for messages and `pidone validate`.
    pub dir: PathBuf,
    pub oneshot: bool,
    /// `run`, or a oneshot's `up` as words (or through `execlineb -P`).
    pub argv: Vec<String>,
    pub finish: Option<String>,
    /// A oneshot's `down`, run at shutdown.
    pub down: Option<Vec<String>>,
    pub notify_fd: Option<u64>,
    /// Dependency names as written (bundles not yet expanded), each with its path.
    pub deps: Vec<(String, PathBuf)>,
    /// `timeout-up`, `timeout-down`, `timeout-finish`, in milliseconds (0 = none).
    pub timeout_up: Option<u64>,
    pub timeout_down: Option<u64>,
    pub timeout_finish: Option<u64>,
    pub down_signal: Option<String>,
    /// Started at boot: in the `user` bundle's closure, or a services.d service without `down`.
    pub enabled: bool,
    /// The logger its stdout goes to (`log/run`, `producer-for`, `consumer-for`).
    pub log_to: Option<String>,
}

/// Bundles by name, with what each contains (a list: a handful at most, searched in order).
type Bundles = Vec<(String, Vec<(String, PathBuf)>)>;

/// What the layouts hold.
#[derive(Debug, Default)]
pub struct Read {
    /// In a stable order: s6-rc.d services by name, then services.d ones by name.
    pub services: Vec<Svc>,
    pub cont_init: Vec<PathBuf>,
    pub cont_finish: Vec<PathBuf>,
}

/// The reader's state: the image's root, where `execlineb` is, and every problem found so far.
struct Reader {
    root: PathBuf,
    execlineb: Option<PathBuf>,
    errors: Vec<ConfigError>,
}

/// Reads the s6-rc source directory `rc`, the services.d directory `sd`, and the script
/// directories `init` and `finish` (each may be missing) of the image at `root`. `execlineb` is
/// where the image has it.
pub fn read(
    root: &Path,
    rc: Option<&Path>,
    sd: Option<&Path>,
    scripts: [&Path; 2],
    execlineb: Option<PathBuf>,
) -> Result<Read, Vec<ConfigError>> {
    let mut r = Reader {
        root: root.to_path_buf(),
        execlineb,
        errors: Vec::new(),
    };
    let mut out = Read::default();
    if let Some(rc) = rc {
        out.services = r.rc_dir(rc);
    }
    if let Some(sd) = sd {
        for (name, dir) in entries(sd) {
            if dir.is_dir() {
                r.sd_service(name, &dir, &mut out.services);
            }
        }
    }
    let [init, finish] = scripts.map(|d| r.scripts(d));
    (out.cont_init, out.cont_finish) = (init, finish);
    r.check_graph(&out.services);
    match r.errors.is_empty() {
        true => Ok(out),
        false => Err(r.errors),
    }
}

impl Reader {
    fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(error_at(path, message.into()));
    }

    /// s6-rc.d: every service and bundle; what the `user` (and `user2`, `base`) bundles reach is
    /// enabled.
    fn rc_dir(&mut self, rc: &Path) -> Vec<Svc> {
        let mut services = Vec::new();
        let mut bundles: Bundles = Vec::new();
        for (name, dir) in entries(rc) {
            if !dir.is_dir() {
                continue;
            }
            let ty = dir.join("type");
            let word = match std::fs::read_to_string(&ty) {
                Ok(text) => text.trim().to_string(),
                Err(e) => {
                    self.error(&ty, format!("cannot read: {e}"));
                    continue;
                }
            };
            match word.as_str() {
                "bundle" => {
                    let mut contents = Vec::new();
                    self.names(&dir, "contents", &mut contents);
                    bundles.push((name, contents));
                }
                "longrun" | "oneshot" => {
                    let svc = self.service(name, &dir, word == "oneshot", true);
                    services.extend(svc);
                }
                _ => self.error(
                    &ty,
                    format!("unknown type {word:?} (longrun, oneshot or bundle)"),
                ),
            }
        }
        // A logger names its producer in `consumer-for`: the producer's output goes to it.
        let links: Vec<(String, String)> = (services.iter())
            .filter_map(|s| Some((first_line(&s.dir.join("consumer-for"))?, s.name.clone())))
            .collect();
        for (producer, logger) in links {
            if let Some(p) = services.iter_mut().find(|s| s.name == producer) {
                p.log_to = Some(logger);
            }
        }
        self.enable(&mut services, &bundles);
        services
    }

    /// Expands bundles in every service's dependencies, and enables what the top bundles reach.
    fn enable(&mut self, services: &mut [Svc], bundles: &Bundles) {
        let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
        for svc in services.iter_mut() {
            let deps = std::mem::take(&mut svc.deps);
            svc.deps = self.expand(deps, bundles, &names);
        }
        let tops = ["user", "user2", "base"].map(|n| (n.to_string(), PathBuf::new()));
        let mut todo = self.expand(tops.into(), bundles, &names);
        while let Some((name, _)) = todo.pop() {
            let Some(svc) = services.iter_mut().find(|s| s.name == name) else {
                continue;
            };
            if !svc.enabled {
                svc.enabled = true;
                todo.extend(svc.deps.iter().cloned());
                todo.extend(svc.log_to.iter().map(|l| (l.clone(), PathBuf::new())));
            }
        }
    }

    /// Names with bundles replaced by their contents (recursively, each bundle once); a name
    /// that is neither a service nor a bundle is an error at its path, unless s6-overlay's own.
    fn expand(
        &mut self,
        names: Vec<(String, PathBuf)>,
        bundles: &Bundles,
        services: &[String],
    ) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        let mut seen = Vec::new();
        let mut todo = names;
        while let Some((name, path)) = todo.pop() {
            let bundle = bundles.iter().find(|(b, _)| *b == name);
            if services.contains(&name) {
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, path));
                }
            } else if let Some((_, contents)) = bundle {
                if !seen.contains(&name) {
                    todo.extend(contents.iter().cloned());
                    seen.push(name);
                }
            } else if !OVERLAY_OWN.contains(&name.as_str()) {
                self.error(&path, format!("no service or bundle named {name:?}"));
            }
        }
        out
    }

    /// One services.d service, and its `log/run` logger as `NAME-log`.
    fn sd_service(&mut self, name: String, dir: &Path, services: &mut Vec<Svc>) {
        let Some(mut svc) = self.service(name, dir, false, false) else {
            return;
        };
        let log = dir.join("log");
        if log.join("run").exists() {
            let logger = self.service(format!("{}-log", svc.name), &log, false, false);
            if let Some(mut logger) = logger {
                logger.enabled = svc.enabled;
                svc.log_to = Some(logger.name.clone());
                services.push(logger);
            }
        }
        services.push(svc);
    }

    /// One service directory of either layout (`rc`: s6-rc.d).
    fn service(&mut self, name: String, dir: &Path, oneshot: bool, rc: bool) -> Option<Svc> {
        if !crate::config::is_service_name(&name) {
            self.error(
                dir,
                "not a usable service name ([A-Za-z0-9_.-], at most 64 bytes)",
            );
            return None;
        }
        let mut svc = Svc {
            name,
            dir: dir.to_path_buf(),
            oneshot,
            enabled: !rc,
            ..Svc::default()
        };
        let main = if oneshot { "up" } else { "run" };
        for (file, path) in entries(dir) {
            match file.as_str() {
                "type" if rc => {}
                "type" => match std::fs::read_to_string(&path).map(|t| t.trim().to_string()) {
                    Ok(w) if w == "longrun" || w == "oneshot" => svc.oneshot = w == "oneshot",
                    Ok(w) => self.error(&path, format!("unknown type {w:?} (longrun or oneshot)")),
                    Err(e) => self.error(&path, format!("cannot read: {e}")),
                },
                "run" | "finish" if !oneshot => {
                    self.check_script(&path);
                    let text = path.to_string_lossy().into_owned();
                    match file == "run" {
                        true => svc.argv = vec![text],
                        false => svc.finish = Some(text),
                    }
                }
                "up" if oneshot => svc.argv = self.execline(&path).unwrap_or_default(),
                "down" if oneshot => svc.down = self.execline(&path),
                "down" if !rc => svc.enabled = false,
                "notification-fd" if !oneshot => svc.notify_fd = self.number(&path),
                "timeout-up" => svc.timeout_up = self.number(&path),
                "timeout-down" => svc.timeout_down = self.number(&path),
                "timeout-finish" if !oneshot => svc.timeout_finish = self.number(&path),
                "down-signal" if !oneshot => {
                    svc.down_signal = std::fs::read_to_string(&path)
                        .map(|t| t.trim().to_string())
                        .ok()
                }
                "dependencies" | "dependencies.d" => {}
                "producer-for" | "consumer-for" if rc && !oneshot => {}
                "log" if !rc && path.is_dir() => {}
                _ => log::warn!("{}: not a file pidone reads: ignored", path.display()),
            }
        }
        // The defaults of s6 (and a services.d `type` may have said oneshot after all).
        if svc.argv.is_empty() && !dir.join(main).exists() {
            self.error(&dir.join(main), "missing");
        }
        let mut deps = Vec::new();
        self.names(dir, "dependencies", &mut deps);
        svc.deps = deps;
        if let Some(logger) = first_line(&dir.join("producer-for")) {
            svc.log_to = Some(logger);
        }
        Some(svc)
    }

    /// The names in `DIR/KEY.d/` (one empty file each) and in `DIR/KEY` (one per line, `#`
    /// comments), each with the path that names it.
    fn names(&mut self, dir: &Path, key: &str, out: &mut Vec<(String, PathBuf)>) {
        let d = dir.join(format!("{key}.d"));
        out.extend(entries(&d));
        let file = dir.join(key);
        if let Ok(text) = std::fs::read_to_string(&file) {
            let lines = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim());
            out.extend(
                lines
                    .filter(|l| !l.is_empty())
                    .map(|l| (l.to_string(), file.clone())),
            );
        }
    }

    /// A file holding one unsigned number.
    fn number(&mut self, path: &Path) -> Option<u64> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let n = text.trim().parse().ok();
        if n.is_none() {
            self.error(path, format!("{:?} is not a number", text.trim()));
        }
        n
    }

    /// An `up` or `down` file: its words when it is one command line, else `execlineb -P FILE`
    /// when the image has execline, else an error saying so.
    fn execline(&mut self, path: &Path) -> Option<Vec<String>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.error(path, format!("cannot read: {e}"));
                return None;
            }
        };
        match (super::execline::split(&text), &self.execlineb) {
            (Ok(Some(words)), _) => Some(words),
            (Ok(None), Some(prog)) => {
                let file = path.to_string_lossy().into_owned();
                Some(vec![prog.to_string_lossy().into_owned(), "-P".into(), file])
            }
            (Ok(None), None) => {
                let why = "uses more of execline than one command line, and execlineb is not in this image (install execline, or make the file one command)";
                self.error(path, why);
                None
            }
            (Err(why), _) => {
                self.error(path, format!("execline: {why}"));
                None
            }
        }
    }

    /// A script pidone will run (`run`, `finish`, a cont-init.d or cont-finish.d one): an
    /// executable file, and one whose `#!` names an `execlineb` the image has (the kernel
    /// would fail to run it, each time, with a bare "not found").
    fn check_script(&mut self, path: &Path) {
        if !is_executable(path) {
            return self.error(path, "not an executable file");
        }
        let Some(interpreter) = interpreter(path).filter(|i| i.ends_with("/execlineb")) else {
            return;
        };
        if !self
            .root
            .join(interpreter.trim_start_matches('/'))
            .is_file()
        {
            let why = format!(
                "#!{interpreter}: execline is not in this image (install execline, or write the script for /bin/sh)"
            );
            self.error(path, why);
        }
    }

    /// The executable files of a cont-init.d or cont-finish.d directory, in name order.
    fn scripts(&mut self, dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (_, path) in entries(dir) {
            self.check_script(&path);
            out.push(path);
        }
        out
    }

    /// Names defined twice, dependencies on nothing, cycles: each named by path.
    fn check_graph(&mut self, services: &[Svc]) {
        let find = |name: &str| services.iter().position(|s| s.name == name);
        for (i, svc) in services.iter().enumerate() {
            if let Some(first) = services.iter().take(i).find(|s| s.name == svc.name) {
                let first = first.dir.display();
                self.error(
                    &svc.dir,
                    format!("service {:?} is also defined at {first}", svc.name),
                );
            }
            for (dep, path) in &svc.deps {
                if find(dep).is_none() && !OVERLAY_OWN.contains(&dep.as_str()) {
                    self.error(path, format!("no service named {dep:?}"));
                }
            }
            let consumer = svc.dir.join("consumer-for");
            if let Some(producer) = first_line(&consumer)
                && find(&producer).is_none()
            {
                self.error(&consumer, format!("no service named {producer:?}"));
            }
        }
        // Depth first; 1 = on the current path, 2 = done. One cycle is reported: the search
        // stops there, its marks no longer meaningful.
        let mut state = vec![0u8; services.len()];
        for i in 0..services.len() {
            let mut path = Vec::new();
            if let Some(cycle) = cycle_from(i, services, &mut state, &mut path) {
                let dir = services
                    .get(i)
                    .map(|s| s.dir.as_path())
                    .unwrap_or(Path::new(""));
                self.error(dir, format!("dependency cycle: {cycle}"));
                break;
            }
        }
    }
}

/// A cycle reachable from service `i`, rendered `a -> b -> a`.
fn cycle_from(
    i: usize,
    services: &[Svc],
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<String> {
    let name = |i: usize| services.get(i).map_or("?", |s| s.name.as_str());
    match state.get(i) {
        Some(2) | None => return None,
        Some(1) => {
            let start = path.iter().position(|&n| n == i).unwrap_or(0);
            let mut names: Vec<&str> = path.iter().skip(start).map(|&n| name(n)).collect();
            names.push(name(i));
            return Some(names.join(" -> "));
        }
        Some(_) => {}
    }
    let mark = |state: &mut [u8], v| state.get_mut(i).map(|s| *s = v);
    mark(state, 1);
    path.push(i);
    for (dep, _) in services
        .get(i)
        .map(|s| s.deps.as_slice())
        .unwrap_or_default()
    {
        let Some(d) = services.iter().position(|s| s.name == *dep) else {
            continue;
        };
        if let Some(found) = cycle_from(d, services, state, path) {
            return Some(found);
        }
    }
    path.pop();
    mark(state, 2);
    None
}

/// The interpreter a script's `#!` line names, read from its first 256 bytes (a `run` may be a
/// large binary: it is not read whole).
fn interpreter(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head
        .get(..n)?
        .strip_prefix(b"#!")?
        .split(|b| *b == b'\n')
        .next()?;
    let word = String::from_utf8_lossy(line);
    word.split_whitespace().next().map(str::to_string)
}

/// The first line of an optional file, trimmed.
fn first_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().next().unwrap_or("").trim().to_string()).filter(|l| !l.is_empty())
}

/// The entries of `dir` not starting with `.` (with their names), sorted by name; none if it
/// cannot be read.
pub(super) fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = read.flatten().map(|e| e.path()).collect();
    paths.sort();
    let named = paths
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), p)));
    named.filter(|(name, _)| !name.starts_with('.')).collect()
}

/// A regular file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A problem with the file or directory at `path`.
pub(super) fn error_at(path: &Path, message: String) -> ConfigError {
    ConfigError {
        location: Location::File {
            path: path.to_path_buf(),
            line: None,
        },
        service: None,
        key: None,
        kind: ErrorKind::BadValue { message },
    }
}
