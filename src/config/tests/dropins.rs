//! The drop-in directory (`[api] dropin_dir`) as a source, and loading with an edit made to it.

use super::*;
use crate::config::dropin::Edit;

/// A main file naming the drop-in directory `drop.d` (relative to it), with a service `db`.
const MAIN: &str =
    "[api]\ndropin_dir = \"drop.d\"\n\n[[services]]\nname = \"db\"\ncommand = \"true\"\n";

/// A drop-in file defining `name`, depending on `db`.
fn service(name: &str) -> String {
    format!("[[services]]\nname = \"{name}\"\ncommand = \"true\"\ndepends_on = [\"db\"]\n")
}

fn load_edit(s: &Scratch, main: &Path, edit: Option<&Edit>) -> Result<Config, Vec<String>> {
    let loaded = load_edited(&[main.to_path_buf()], &s.ctx(&[]), edit);
    loaded.map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
}

#[test]
fn drop_ins_are_read_after_the_other_files_in_name_order() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    let web = s.write("drop.d/web.toml", &service("web"));
    s.write("drop.d/api.toml", &service("api"));
    s.write("drop.d/.hidden.toml", "not toml at all [");
    s.write("drop.d/notes.txt", "not toml at all [");
    let c = load_edit(&s, &main, None).expect("valid");
    assert_eq!(names(&c), vec!["db", "api", "web"]);
    assert_eq!(get(&c, "web").file, web);
    assert_eq!(c.api.dropin_dir, Some(s.dir.join("drop.d")));
}

#[test]
fn a_missing_directory_holds_nothing_and_a_file_in_its_place_is_an_error() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    let c = load_edit(&s, &main, None).expect("valid without the directory");
    assert_eq!(names(&c), vec!["db"]);
    s.write("drop.d", "a file");
    let errors = load_edit(&s, &main, None).expect_err("not a directory");
    let at = format!("{}:2: key \"api.dropin_dir\": ", main.display());
    assert!(
        errors.len() == 1 && errors[0].starts_with(&at),
        "{errors:?}"
    );
    assert!(errors[0].contains("not a directory"), "{errors:?}");
}

#[test]
fn a_directory_also_given_as_a_source_is_read_once() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    s.write("drop.d/web.toml", &service("web"));
    let sources = [main, s.dir.join("drop.d")];
    let files = resolve_sources(&sources, &Env::new(), &s.dir).expect("sources");
    let c = load(&files, &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&c), vec!["db", "web"]);
}

#[test]
fn a_drop_in_file_cannot_move_the_directory() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    let bad = s.write("drop.d/x.toml", "[api]\ndropin_dir = \"/elsewhere\"\n");
    let errors = load_edit(&s, &main, None).expect_err("refused");
    let expected = format!(
        "{}:2: key \"api.dropin_dir\": a drop-in file cannot set the drop-in directory",
        bad.display()
    );
    assert_eq!(errors, vec![expected]);
}

#[test]
fn an_added_file_is_loaded_where_it_will_be_written() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    s.write("drop.d/zz.toml", &service("zz"));
    let edit = Edit::Add {
        name: "web".into(),
        text: service("web"),
    };
    let c = load_edit(&s, &main, Some(&edit)).expect("valid");
    assert_eq!(names(&c), vec!["db", "web", "zz"]);
    assert_eq!(get(&c, "web").file, s.dir.join("drop.d/web.toml"));
    assert!(!s.dir.join("drop.d/web.toml").exists(), "nothing written");
    // Invalid with it: the loader's error, at the file it would be.
    let edit = Edit::Add {
        name: "bad".into(),
        text: "[[services]]\nname = \"bad\"\ncommand = \"true\"\nrestart = \"sometimes\"\n".into(),
    };
    let errors = load_edit(&s, &main, Some(&edit)).expect_err("refused");
    let at = format!(
        "{}:4: service \"bad\": key \"restart\"",
        s.dir.join("drop.d/bad.toml").display()
    );
    assert!(
        errors.len() == 1 && errors[0].starts_with(&at),
        "{errors:?}"
    );
    // A name defined elsewhere.
    let edit = Edit::Add {
        name: "db".into(),
        text: "[[services]]\nname = \"db\"\ncommand = \"true\"\n".into(),
    };
    let errors = load_edit(&s, &main, Some(&edit)).expect_err("a duplicate");
    assert!(errors.iter().any(|e| e.contains("db")), "{errors:?}");
    // A file already there, whatever it defines.
    let edit = Edit::Add {
        name: "zz".into(),
        text: service("other"),
    };
    let errors = load_edit(&s, &main, Some(&edit)).expect_err("the file exists");
    let zz = s.dir.join("drop.d/zz.toml");
    assert_eq!(
        errors,
        vec![format!(
            "{}: service \"zz\": this file already exists",
            zz.display()
        )]
    );
}

#[test]
fn a_removed_drop_in_is_not_read_and_other_files_are_never_removed() {
    let s = Scratch::new();
    let main = s.write("pidone.toml", MAIN);
    let web = s.write("drop.d/web.toml", &service("web"));
    s.write("drop.d/api.toml", &service("api"));
    let c = load_edit(&s, &main, Some(&Edit::Remove { path: web.clone() })).expect("valid");
    assert_eq!(names(&c), vec!["db", "api"]);
    assert!(web.exists(), "nothing deleted");
    let c = load_edit(&s, &main, Some(&Edit::Remove { path: main.clone() })).expect("valid");
    assert_eq!(names(&c), vec!["db", "api", "web"]);
    // Read as a source of its own too: still removed.
    let sources = [main.clone(), s.dir.join("drop.d")];
    let files = resolve_sources(&sources, &Env::new(), &s.dir).expect("sources");
    let c = load_edited(&files, &s.ctx(&[]), Some(&Edit::Remove { path: web })).expect("valid");
    assert_eq!(names(&c), vec!["db", "api"]);
    // Invalid without it: a dependent left behind.
    let api = s.dir.join("drop.d/api.toml");
    s.write(
        "drop.d/web.toml",
        "[[services]]\nname = \"web\"\ncommand = \"true\"\ndepends_on = [\"api\"]\n",
    );
    let errors = load_edit(&s, &main, Some(&Edit::Remove { path: api })).expect_err("refused");
    assert!(
        errors.len() == 1 && errors[0].contains("unknown service \"api\""),
        "{errors:?}"
    );
}
