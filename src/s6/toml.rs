//! The s6 layouts as pidone's own TOML: what pidone loads (through the ordinary loader, so every
//! check and default applies) and what `pidone validate --toml` prints.

use std::fmt::Write as _;
use std::path::Path;

use super::Vars;
use super::layout::{Read, Svc};
use crate::control::register::quote;

/// The TOML of `read` under the S6_* settings `vars`; `env_dir` is the container environment
/// directory services read at each start (none with S6_KEEP_ENV=1).
pub fn emit(read: &Read, vars: &Vars, env_dir: Option<&Path>) -> String {
    let mut out = String::from("# s6-overlay layout, as pidone reads it\n");
    if vars.cmd_wait > 0 {
        // A runtime setting of s6-overlay's, with no TOML key: said, so it is not lost unseen.
        let _ = writeln!(
            out,
            "# S6_CMD_WAIT_FOR_SERVICES_MAXTIME={}: applied only when pidone reads the layout",
            vars.cmd_wait
        );
    }
    // A oneshot's `down` runs at shutdown, before cont-finish.d (last started, first undone).
    let downs = (read.services.iter().rev()).filter_map(|s| s.down.clone().filter(|_| s.enabled));
    let finish = read
        .cont_finish
        .iter()
        .map(|p| vec![p.to_string_lossy().into_owned()]);
    let scripts: Vec<String> = downs.chain(finish).map(|argv| list(&argv, false)).collect();
    if !scripts.is_empty() {
        let _ = writeln!(out, "shutdown_scripts = [{}]", scripts.join(", "));
    }
    let ms = |n: u64| format!("\"{n}ms\"");
    let budget = vars.services_grace + vars.kill_grace;
    let budget = budget.saturating_add(vars.finish_max.saturating_mul(scripts.len() as u64));
    let _ = write!(
        out,
        "\n[timeouts]\nservice_shutdown_timeout = {}\nshutdown_script_timeout = {}\nglobal_shutdown_timeout = {}\n",
        ms(vars.services_grace),
        ms(vars.finish_max),
        ms(budget.max(8000)),
    );
    let env = env_dir.map(|d| format!("env_dir = {}\n", quote(&d.to_string_lossy(), true)));
    let env = env.unwrap_or_default();
    let init: Vec<String> = (read.cont_init.iter())
        .map(|p| format!("cont-init-{}", sanitized(p)))
        .collect();
    let wait = if vars.stage2 == 2 {
        "depends_on"
    } else {
        "after"
    };
    let mut before: Vec<String> = Vec::new();
    for (path, name) in read.cont_init.iter().zip(&init) {
        let command = list(&[path.to_string_lossy().into_owned()], true);
        let _ = write!(
            out,
            "\n# {}\n[[services]]\nname = {}\ntype = \"oneshot\"\ncommand = {command}\n{env}",
            path.display(),
            quote(name, false)
        );
        dependencies(&mut out, wait, &before);
        if vars.stage2 == 2 {
            out.push_str("required = true\n");
        }
        before = vec![name.clone()];
    }
    for svc in &read.services {
        service(&mut out, svc, vars, &env, &init);
    }
    out
}

/// One service's keys; it waits for the cont-init.d services `init` (depends on them when their
/// failure is to stop the container).
fn service(out: &mut String, svc: &Svc, vars: &Vars, env: &str, init: &[String]) {
    let ms = |n: u64| format!("\"{n}ms\"");
    let _ = write!(
        out,
        "\n# {}\n[[services]]\nname = {}\ncommand = {}\n{env}",
        svc.dir.display(),
        quote(&svc.name, false),
        list(&svc.argv, true)
    );
    if svc.oneshot {
        out.push_str("type = \"oneshot\"\n");
        if vars.stage2 == 2 {
            out.push_str("required = true\n");
        }
    } else {
        // s6-supervise starts `run` again after every exit, a clean one too.
        out.push_str("restart = \"always\"\n");
    }
    if !svc.enabled {
        out.push_str("enabled = false\n");
    }
    if let Some(finish) = &svc.finish {
        let _ = writeln!(out, "finish = {}", list(std::slice::from_ref(finish), true));
    }
    if let Some(n) = svc.timeout_finish.filter(|n| *n > 0) {
        let _ = writeln!(out, "finish_timeout = {}", ms(n));
    }
    if let Some(fd) = svc.notify_fd {
        let _ = writeln!(out, "ready = {{ notify_fd = {fd} }}");
    }
    if let Some(n) = svc.timeout_up.filter(|n| *n > 0) {
        let key = if svc.oneshot {
            "max_runtime"
        } else {
            "start_timeout"
        };
        let _ = writeln!(out, "{key} = {}", ms(n));
    }
    if let Some(n) = svc.timeout_down.filter(|n| *n > 0) {
        let _ = writeln!(out, "stop_timeout = {}", ms(n));
    }
    if let Some(sig) = &svc.down_signal {
        let _ = writeln!(out, "stop_signal = {}", quote(sig, false));
    }
    if let Some(logger) = &svc.log_to {
        let _ = writeln!(out, "log_to = {}", quote(logger, false));
    }
    let mut deps: Vec<String> = svc.deps.iter().map(|(n, _)| n.clone()).collect();
    match vars.stage2 {
        2 => deps.extend(init.iter().cloned()),
        _ => dependencies(out, "after", init),
    }
    dependencies(out, "depends_on", &deps);
}

/// `key = [names]`, unless there are none.
fn dependencies(out: &mut String, key: &str, names: &[String]) {
    if !names.is_empty() {
        let _ = writeln!(out, "{key} = {}", list(names, false));
    }
}

/// A cont-init.d script's file name as a service name: other characters become `_`.
fn sanitized(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    name.chars().map(|c| if ok(c) { c } else { '_' }).collect()
}

/// A TOML array of strings.
fn list(items: &[String], expanded: bool) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s, expanded)).collect();
    format!("[{}]", quoted.join(", "))
}
