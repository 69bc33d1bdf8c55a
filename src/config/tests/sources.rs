//! Which files are read: `--config`, `$PIDONE_CONFIG`, the default paths, several files.

use super::*;

#[test]
fn sources_from_the_command_line_files_and_directories() {
    let s = Scratch::new();
    let file = s.write("one.toml", "");
    s.write("dir/b.toml", "");
    s.write("dir/a.toml", "");
    s.write("dir/.hidden.toml", "");
    s.write("dir/notes.txt", "");
    let got =
        resolve_sources(&[file.clone(), s.dir.join("dir")], &Env::new(), &s.dir).expect("readable");
    assert_eq!(
        got,
        vec![file, s.dir.join("dir/a.toml"), s.dir.join("dir/b.toml")]
    );
}

#[test]
fn explicit_sources_must_exist_and_hold_files() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.dir.join("empty")).expect("mkdir");
    let e = resolve_sources(
        &[s.dir.join("missing.toml"), s.dir.join("empty")],
        &Env::new(),
        &s.dir,
    )
    .expect_err("bad sources");
    assert_eq!(e.len(), 2);
}

#[test]
fn sources_from_the_environment_variable() {
    let s = Scratch::new();
    let file = s.write("custom.toml", "");
    s.write("etc/pidone.toml", "");
    let env: Env = [("PIDONE_CONFIG".to_owned(), file.display().to_string())]
        .into_iter()
        .collect();
    assert_eq!(resolve_sources(&[], &env, &s.dir), Ok(vec![file.clone()]));
    // The command line wins over the variable.
    let other = s.write("other.toml", "");
    assert_eq!(
        resolve_sources(std::slice::from_ref(&other), &env, &s.dir),
        Ok(vec![other])
    );
}

#[test]
fn default_sources_under_root() {
    let s = Scratch::new();
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![]));
    let legacy = s.write("services.toml", "");
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![legacy]));
    let d = s.write("etc/pidone.d/10-x.toml", "");
    assert_eq!(
        resolve_sources(&[], &Env::new(), &s.dir),
        Ok(vec![d.clone()])
    );
    let main = s.write("etc/pidone.toml", "");
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![main, d]));
}

#[test]
fn services_may_be_split_across_files() {
    let s = Scratch::new();
    let a = s.write(
        "a.toml",
        "[[services]]\nname = \"web\"\ncommand = \"true\"\ndepends_on = \"db\"\n",
    );
    let b = s.write("b.toml", "[timeouts]\nglobal_shutdown_timeout = 9\n[[services]]\nname = \"db\"\ncommand = \"true\"\n");
    let c = load(&[a.clone(), b.clone()], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&c), vec!["db", "web"]);
    assert_eq!(get(&c, "db").file, b);
    assert_eq!(get(&c, "web").file, a);
    assert_eq!(c.timeouts.global_shutdown, Duration::from_secs(9));
}

#[test]
fn shipped_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    let ctx = LoadContext {
        env: [("PATH".to_owned(), DEFAULT_PATH.to_owned())]
            .into_iter()
            .collect(),
        euid: 0,
        egid: 0,
        cgroups: Err("no cgroups in unit tests".into()),
        root: PathBuf::from("/"),
    };
    let mut checked = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(std::slice::from_ref(&path), &ctx) {
                panic!("{}: {}", path.display(), render(&e));
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected the shipped examples in {}",
        root.display()
    );
}
