//! The deploy recipe shipped with the binary (`dbtool deploy-script`), run against a fake
//! `systemctl` on PATH that logs its calls and knows one unit.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

const FAKE_SYSTEMCTL: &str = r#"#!/usr/bin/env bash
# fake systemctl: logs its arguments; knows the units in $FAKE_UNITS; fails restarts when
# $FAKE_RESTART_FAILS is set
echo "$*" >> "$FAKE_LOG"
args=("$@")
[[ ${args[0]} == --user ]] && args=("${args[@]:1}")
case "${args[0]}" in
  cat) [[ " $FAKE_UNITS " == *" ${args[1]} "* ]] ;;
  restart) [[ -z "${FAKE_RESTART_FAILS:-}" ]] ;;
  is-active) true ;;
  *) exit 1 ;;
esac
"#;

struct Deploy {
    env: TestEnv,
    script: PathBuf,
    bin: PathBuf,
}

impl Deploy {
    fn new() -> Deploy {
        let env = TestEnv::new();
        env.library_set();
        env.empty_db();
        env.ok(&["upgrade", "2"]);
        let script = env.write(
            "deploy.sh",
            env.ok(&["deploy-script"]).output.stdout.clone(),
        );
        let bin = env.root().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("systemctl"), FAKE_SYSTEMCTL).unwrap();
        std::fs::set_permissions(
            bin.join("systemctl"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        Deploy { env, script, bin }
    }

    fn run(&self, dbtool: &Path, vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.env.std_command();
        cmd.env_remove("SERVICE");
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap());
        let output = std::process::Command::new("bash")
            .arg(&self.script)
            .args(args)
            .current_dir(self.env.root())
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("PATH", path)
            .env("DBTOOL", dbtool)
            .env("FAKE_LOG", self.env.root().join("systemctl.log"))
            .env("FAKE_UNITS", "app")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let clean = |b: &[u8]| {
            String::from_utf8_lossy(b).replace(&self.env.root().display().to_string(), "$TMP")
        };
        (
            output.status.code().unwrap(),
            clean(&output.stdout),
            clean(&output.stderr),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.env.root().join("systemctl.log")).unwrap_or_default()
    }
}

#[test]
fn the_shipped_script_is_the_repositorys() {
    let d = Deploy::new();
    let repo =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deploy.sh")).unwrap();
    assert_eq!(std::fs::read(&d.script).unwrap(), repo);
}

#[test]
fn a_missing_unit_stops_before_the_database_is_touched() {
    let d = Deploy::new();
    let before = bytes(&d.env.db());
    let (code, _, err) = d.run(Path::new(DBTOOL), &[], &["--service", "ap"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("no systemd unit 'ap' (systemctl cat ap failed); nothing was changed"),
        "{err}"
    );
    assert!(err.contains("a user unit? pass --user"), "{err}");
    assert_unchanged(&d.env.db(), &before);
    assert_eq!(d.log(), "cat ap\n");
}

#[test]
fn dbtool_not_found_is_exit_4() {
    let d = Deploy::new();
    let (code, _, err) = d.run(Path::new("/nonexistent/dbtool"), &[], &["--service", "app"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("dbtool not found or not runnable"), "{err}");
    assert_eq!(d.log(), "", "systemctl was never called");
}

#[test]
fn a_system_unit_that_fails_to_restart_gets_the_exact_restore_command() {
    let d = Deploy::new();
    let (code, out, err) = d.run(
        Path::new(DBTOOL),
        &[("FAKE_RESTART_FAILS", "1")],
        &["--service", "app"],
    );
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(
        versions(&d.env.db()),
        vec![1, 2, 3, 4],
        "migrated before the restart"
    );
    assert_eq!(d.log(), "cat app\nrestart app\n", "system units: no --user");
    let restore = err
        .lines()
        .find(|l| l.contains(" restore "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        restore.contains("-before-upgrade.db.zst --yes"),
        "{restore}"
    );
    assert!(err.contains("systemctl restart app"), "{err}");
}

#[test]
fn a_user_unit_deploy_migrates_and_restarts() {
    let d = Deploy::new();
    let (code, out, err) = d.run(Path::new(DBTOOL), &[], &["--service", "app", "--user"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&d.env.db()), vec![1, 2, 3, 4]);
    assert_eq!(
        d.log(),
        "--user cat app\n--user restart app\n--user is-active --quiet app\n"
    );
    assert!(out.contains("deployed: app restarted"), "{out}");
}
