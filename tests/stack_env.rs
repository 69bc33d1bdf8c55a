//! Black-box test of the top-level `env_file`: a `.env` beside the configuration reaches every
//! service, under the service's own `env_file` and `env`. pidone runs as a true PID 1 and as a
//! plain child.

#[macro_use]
mod support;

use support::*;

in_both_modes!(the_stack_env_file_reaches_every_service);

fn the_stack_env_file_reaches_every_service(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        ".env",
        "# the stack's\nexport GREETING='hello'\nWHO=stack\nPORT=8080\n",
    );
    let config = dir.write(
        "pidone.toml",
        r#"env_file = ".env"

[[services]]
name = "one"
type = "oneshot"
command = ["/bin/sh", "-c", "echo \"$GREETING $WHO ${PORT}\" > @D/one.out"]

[[services]]
name = "two"
type = "oneshot"
env = { WHO = "two" }
command = ["/bin/sh", "-c", "echo \"$GREETING $WHO\" > @D/two.out"]
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait().assert_code(0, "every oneshot done");
    assert_eq!(dir.read("one.out"), "hello stack 8080\n");
    assert_eq!(dir.read("two.out"), "hello two\n");
}
