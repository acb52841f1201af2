//! The command line: help, config check and print, bad values.

use std::process::Command;

use crate::support::BIN;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_command() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    for cmd in ["all", "collector", "gateway", "config", "PANTAU_<SECTION>__<KEY>"] {
        assert!(out.contains(cmd), "--help lacks {cmd}:\n{out}");
    }
    let (code, out, _) = run(&["config", "check", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("Validate a configuration file"), "{out}");
}

#[test]
fn example_config_checks_ok() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pantau.yaml");
    let (code, out, err) = run(&["config", "check", example], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (2 targets"), "{out}");
}

#[test]
fn every_example_config_checks_ok() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        // grpc-tls.yaml names certificate files its reader makes first.
        if path.extension().is_some_and(|x| x == "yaml") && !path.ends_with("grpc-tls.yaml") {
            let (code, out, err) = run(&["config", "check", path.to_str().unwrap()], &[]);
            assert_eq!(code, 0, "{}: {err}", path.display());
            assert!(out.contains(": ok ("), "{out}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} examples found in {dir}");
}

#[test]
fn negative_interval_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, "collector:\n  interval: -5s\n").unwrap();
    let (code, _, err) = run(&["config", "check", f.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`collector.interval`") && err.contains("-5s"), "{err}");
    // The same file stops a service before it starts.
    let (code, _, err) = run(&["--config", f.to_str().unwrap(), "all"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`collector.interval`"), "{err}");
}

#[test]
fn environment_overrides_and_aliases_reach_the_config() {
    let (code, out, err) = run(
        &["config", "print"],
        &[
            ("PANTAU_COLLECTOR__INTERVAL", "15s"),
            ("INSTANCE_LOCATION", "jakarta"),
            ("PANTAU_DATABASE__URL", "postgres://pantau:hunter2@db/pantau"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("interval: 15s"), "{out}");
    assert!(out.contains("location: jakarta"), "{out}");
    assert!(out.contains("postgres://pantau:***@db/pantau"), "{out}");
    assert!(!out.contains("hunter2"), "secret printed:\n{out}");
}

#[test]
fn bad_env_value_names_the_variable() {
    let (code, _, err) = run(&["config", "print"], &[("WORKER_LOAD_BALANCING_STRATEGY", "fastest")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("collector.workers.strategy") && err.contains("WORKER_LOAD_BALANCING_STRATEGY"),
        "{err}"
    );
}

/// `pantau user` and `pantau token` on a data directory: users with roles,
/// API keys shown once and revocable, errors naming what is wrong, each
/// change in the audit log.
#[test]
fn users_and_tokens_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            d,
            "user",
            "add",
            "ana",
            "--role",
            "editor",
            "--password-stdin",
        ])
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"a long enough password\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, out, _) = run(&["--data-dir", d, "user", "add", "bo", "--role", "viewer"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("password: "), "a generated password is shown once: {out}");
    let (code, _, err) = run(&["--data-dir", d, "user", "add", "ana"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (_, out, _) = run(&["--data-dir", d, "user", "list"], &[]);
    assert!(out.contains("ana\teditor") && out.contains("bo\tviewer"), "{out}");

    let (code, _, err) = run(&["--data-dir", d, "token", "create", "--scope", "monitoring:all"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("monitoring:all"), "{err}");
    let (code, _, err) = run(
        &["--data-dir", d, "token", "create", "--scope", "admin", "--ttl", "5s"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--ttl"), "{err}");
    let (code, jwt, _) = run(&["--data-dir", d, "token", "create", "--scope", "monitoring:read"], &[]);
    assert_eq!(code, 0);
    assert_eq!(jwt.trim().split('.').count(), 3, "a JWT: {jwt}");
    let (code, key, err) = run(
        &[
            "--data-dir",
            d,
            "token",
            "create",
            "--scope",
            "monitoring:read",
            "--api-key",
            "--name",
            "ci",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(key.starts_with("pk_"), "{key}");
    let id = key.trim().split('_').nth(1).unwrap().to_owned();
    let (_, list, _) = run(&["--data-dir", d, "token", "list"], &[]);
    assert!(list.contains(&format!("{id}\tci\tmonitoring:read\tactive")), "{list}");
    assert!(!list.contains(key.trim()), "the key itself is never listed");
    let (code, _, _) = run(&["--data-dir", d, "token", "revoke", &id], &[]);
    assert_eq!(code, 0);
    let (_, list, _) = run(&["--data-dir", d, "token", "list"], &[]);
    assert!(list.contains("revoked"), "{list}");
    let (code, _, err) = run(&["--data-dir", d, "token", "revoke", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
}
