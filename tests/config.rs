//! Where the database and the migrations are: flags > environment > dbtool.toml (cwd or nearest
//! parent, relative paths against the file's folder) > defaults; `DATABASE_URL` forms; and
//! `dbtool config` showing each value's source. Each resolution is also proven by running a
//! command and finding the database where it should be.

mod common;

use std::path::Path;

use common::{versions, TestEnv};

fn run_in(
    env: &TestEnv,
    cwd: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = env.command();
    cmd.current_dir(cwd).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        env.normalise(&String::from_utf8(out.stdout).unwrap()),
        env.normalise(&String::from_utf8(out.stderr).unwrap()),
    )
}

fn config_json(
    env: &TestEnv,
    cwd: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["config", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run_in(env, cwd, envs, &all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn defaults_are_content_db_and_migrations_in_the_current_folder() {
    let env = TestEnv::new();
    let run = env.ok(&["config"]);
    // the backup folder's name ends in a hash of the database's full path
    let stdout = run.stdout();
    let hash_at = stdout.find("backups/content-").unwrap() + "backups/content-".len();
    let stdout = format!("{}HASH{}", &stdout[..hash_at], &stdout[hash_at + 8..]);
    assert_eq!(
        stdout,
        "config file:  (none found)\n\
         database:     $TMP/content.db  [default]\n\
         migrations:   $TMP/migrations  [default]\n\
         backup dir:   $TMP/home/.local/share/dbtool/backups/content-HASH  [default: per database, in the data directory]\n\
         retention:    the newest 10 backups per database  [default]\n\
         schema:       (none: no --schema, DBTOOL_SCHEMA, schema key or ./schema.sql)\n\
         busy timeout: 5000 ms\n"
    );
}

#[test]
fn declared_schema_flag_beats_environment_beats_config_file_beats_default() {
    let env = TestEnv::new();
    let root = env.root();
    let json = config_json(&env, root, &[], &[]);
    assert!(json["schema"].is_null(), "{json}");

    env.write("schema.sql", "CREATE TABLE t(x);\n");
    let json = config_json(&env, root, &[], &[]);
    assert_eq!(json["schema"]["value"], "$TMP/schema.sql");
    assert_eq!(json["schema"]["source"]["kind"], "default");

    env.write("app/dbtool.toml", "schema = \"db/declared.sql\"\n");
    let app = root.join("app");
    let json = config_json(&env, &app, &[], &[]);
    assert_eq!(json["schema"]["value"], "$TMP/app/db/declared.sql");
    assert_eq!(json["schema"]["source"]["kind"], "config-file");

    let envs = [("DBTOOL_SCHEMA", "env.sql")];
    let json = config_json(&env, &app, &envs, &[]);
    assert_eq!(json["schema"]["value"], "$TMP/app/env.sql");
    assert_eq!(json["schema"]["source"]["detail"], "DBTOOL_SCHEMA");

    let json = config_json(&env, &app, &envs, &["--schema", "flag.sql"]);
    assert_eq!(json["schema"]["value"], "$TMP/app/flag.sql");
    assert_eq!(json["schema"]["source"]["detail"], "--schema");
}

#[test]
fn database_url_forms_and_unsupported_schemes() {
    let env = TestEnv::new();
    env.library_set();
    let abs = env.root().join("abs.db");
    let abs_url = format!("sqlite://{}", abs.display());
    for (url, file) in [
        ("sqlite:a.db", "a.db"),
        ("sqlite://b.db", "b.db"),
        (abs_url.as_str(), "abs.db"),
        ("d.db", "d.db"),
        ("sqlite://e.db?mode=rwc", "e.db"),
    ] {
        let json = config_json(&env, env.root(), &[("DATABASE_URL", url)], &[]);
        assert_eq!(json["database"]["value"], format!("$TMP/{file}"), "{url}");
        assert_eq!(json["database"]["source"]["detail"], "DATABASE_URL");
        std::fs::write(env.root().join(file), b"").unwrap(); // `upgrade` never creates it
        let (code, _, stderr) = run_in(
            &env,
            env.root(),
            &[("DATABASE_URL", url)],
            &["upgrade", "+1"],
        );
        assert_eq!(code, 0, "{url}: {stderr}");
        assert_eq!(versions(&env.root().join(file)), vec![1], "{url}");
    }
    assert!(!env.db().exists(), "the default database was never touched");

    for url in ["mysql://localhost/db", "sqlite::memory:"] {
        let (code, _, stderr) = run_in(&env, env.root(), &[("DATABASE_URL", url)], &["upgrade"]);
        assert_eq!(code, 2, "{url}");
        assert_eq!(
            stderr.lines().next().unwrap(),
            format!("error[unsupported-url]: unsupported database URL {url:?}: dbtool manages SQLite and PostgreSQL databases")
        );
        assert!(stderr.contains("hint: use sqlite:PATH"), "{stderr}");
    }
    // --database accepts the same forms.
    std::fs::write(env.root().join("flag.db"), b"").unwrap();
    env.ok(&["--database", "sqlite:flag.db", "upgrade", "+1"]);
    assert_eq!(versions(&env.root().join("flag.db")), vec![1]);
}

#[test]
fn flag_beats_environment_beats_config_file_beats_default() {
    let env = TestEnv::new();
    env.write(
        "dbtool.toml",
        "database = \"from-file.db\"\nmigrations = \"file-migrations\"\nbusy_timeout_ms = 1234\n",
    );
    for dir in ["file-migrations", "env-migrations", "flag-migrations"] {
        env.write(
            &format!("{dir}/V1__{}.sql", dir.replace('-', "_")),
            "CREATE TABLE t(x);\n",
        );
    }
    let root = env.root();

    let json = config_json(&env, root, &[], &[]);
    assert_eq!(json["database"]["value"], "$TMP/from-file.db");
    assert_eq!(json["database"]["source"]["kind"], "config-file");
    assert_eq!(json["migrations"]["value"], "$TMP/file-migrations");
    assert_eq!(json["busy_timeout"], 1234);

    let envs = [
        ("DATABASE_URL", "sqlite:from-env.db"),
        ("DBTOOL_MIGRATIONS", "env-migrations"),
    ];
    let json = config_json(&env, root, &envs, &[]);
    assert_eq!(json["database"]["value"], "$TMP/from-env.db");
    assert_eq!(json["migrations"]["source"]["detail"], "DBTOOL_MIGRATIONS");

    let flags = [
        "--database",
        "from-flag.db",
        "--migrations",
        "flag-migrations",
        "--busy-timeout",
        "7",
    ];
    let json = config_json(&env, root, &envs, &flags);
    assert_eq!(json["database"]["value"], "$TMP/from-flag.db");
    assert_eq!(json["database"]["source"]["detail"], "--database");
    assert_eq!(json["migrations"]["value"], "$TMP/flag-migrations");
    assert_eq!(json["busy_timeout"], 7);

    // And the commands really use them.
    for (envs, args, db, name) in [
        (&[][..], &["upgrade"][..], "from-file.db", "file_migrations"),
        (&envs[..], &["upgrade"][..], "from-env.db", "env_migrations"),
        (
            &envs[..],
            &[
                "upgrade",
                "--database",
                "from-flag.db",
                "--migrations",
                "flag-migrations",
            ][..],
            "from-flag.db",
            "flag_migrations",
        ),
    ] {
        std::fs::write(root.join(db), b"").unwrap(); // `upgrade` never creates it
        let (code, _, stderr) = run_in(&env, root, envs, args);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(common::history(&root.join(db)), vec![(1, name.to_string())]);
    }
    assert!(!env.db().exists());
}

#[test]
fn config_file_in_a_parent_folder_resolves_paths_against_its_own_folder() {
    let env = TestEnv::new();
    env.write(
        "project/dbtool.toml",
        "database = \"data/app.db\"\nmigrations = \"db/migrations\"\n",
    );
    env.write(
        "project/db/migrations/V0001__init.sql",
        "CREATE TABLE t(x);\n",
    );
    std::fs::create_dir_all(env.root().join("project/data")).unwrap();
    let deep = env.root().join("project/src/deeper");
    std::fs::create_dir_all(&deep).unwrap();

    let (code, stdout, stderr) = run_in(&env, &deep, &[], &["config"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().take(3).collect::<Vec<_>>(),
        vec![
            "config file:  $TMP/project/dbtool.toml",
            "database:     $TMP/project/data/app.db  [$TMP/project/dbtool.toml]",
            "migrations:   $TMP/project/db/migrations  [$TMP/project/dbtool.toml]",
        ]
    );
    let (code, _, stderr) = run_in(&env, &deep, &[], &["init"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(versions(&env.root().join("project/data/app.db")), vec![1]);
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused() {
    let env = TestEnv::new();
    env.write("dbtool.toml", "databse = \"typo.db\"\n");
    let run = env.run(&["upgrade"]);
    assert_eq!(run.code(), 1);
    let line = run.error_line();
    assert!(
        line.starts_with("error[config-invalid]: invalid configuration file $TMP/dbtool.toml: unknown field `databse`"),
        "{line}"
    );
    assert!(
        run.stderr().contains("hint: known keys"),
        "{}",
        run.stderr()
    );
    assert!(!env.root().join("typo.db").exists() && !env.db().exists());
}

#[test]
fn the_callers_environment_does_not_leak_into_tests() {
    // The hermetic helper removes DATABASE_URL and DBTOOL_*: whatever the developer's shell has,
    // the default applies here.
    let env = TestEnv::new();
    let json = env.ok(&["config", "--json"]).json();
    assert_eq!(json["database"]["source"]["kind"], "default");
    assert_eq!(json["migrations"]["source"]["kind"], "default");
    assert!(json["backup_dir"].is_null());
}
