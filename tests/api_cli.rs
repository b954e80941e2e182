//! The binary: offline admin commands, `check`, `serve` with a graceful
//! stop on SIGTERM, and refusal to touch a data dir a server holds.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{ADMIN_PASSWORD, TestServer};
use hyper::StatusCode;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulsestream"));
    c.env("PULSESTREAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("RUST_LOG");
    c
}

fn run(args: &[&str], dir: &Path) -> Output {
    let mut c = bin();
    c.args(args).arg("--data-dir").arg(dir);
    c.output().expect("run pulsestream")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .to_owned()
}

#[test]
fn offline_tenant_key_and_user_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(
        &[
            "tenant",
            "create",
            "--name",
            "Offline Co",
            "--owner-email",
            "o@off.test",
            "--owner-password",
            "offline-password",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    let tenant = field(&out, "tenant_id");
    assert!(field(&out, "api_key").starts_with("psk_"));

    let o = run(&["tenant", "list"], dir.path());
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains(&tenant) && stdout(&o).contains("Offline Co"));

    let o = run(
        &[
            "key",
            "create",
            "--tenant",
            &tenant,
            "--scopes",
            "ingest,read",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{o:?}");
    assert!(field(&stdout(&o), "api_key").starts_with("psk_"));
    let o = run(&["key", "create", "--tenant", "t_missing"], dir.path());
    assert!(!o.status.success());

    let o = run(
        &[
            "user",
            "create",
            "--tenant",
            &tenant,
            "--email",
            "v@off.test",
            "--password",
            "viewer-password",
            "--role",
            "viewer",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{o:?}");
    // Policy is enforced offline too.
    let o = run(
        &[
            "user",
            "create",
            "--tenant",
            &tenant,
            "--email",
            "w@off.test",
            "--password",
            "short",
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    let o = run(&["tenant", "create", "--name", "offline co"], dir.path());
    assert!(!o.status.success(), "duplicate name must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_work_is_visible_to_the_server_and_online_commands_use_its_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(
        &[
            "tenant",
            "create",
            "--name",
            "Shared",
            "--owner-email",
            "o@shared.test",
            "--owner-password",
            "shared-password",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{o:?}");
    let key = field(&stdout(&o), "api_key");

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (st, v) = s.login("o@shared.test", "shared-password").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    fn v_token(v: &serde_json::Value) -> &str {
        v["access_token"].as_str().expect("token")
    }
    let (st, _, _) = s
        .raw(
            hyper::Method::GET,
            "/api/v1/auth/users",
            &[("x-api-key", &key)],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "key is known (authenticated, not an admin)"
    );

    // While the server holds the dir, the commands go through its API.
    let path = dir.path().to_owned();
    let tenant_id = {
        let (_, _, v) = s
            .get("/api/v1/auth/tenant/profile", Some(v_token(&v)))
            .await;
        v["id"].as_str().expect("id").to_owned()
    };
    let t = tenant_id.clone();
    let outs = tokio::task::spawn_blocking(move || {
        let list = run(&["tenant", "list"], &path);
        let create = run(&["tenant", "create", "--name", "Online Co"], &path);
        let key = run(
            &["key", "create", "--tenant", &t, "--scopes", "read"],
            &path,
        );
        let user = run(
            &[
                "user",
                "create",
                "--tenant",
                &t,
                "--email",
                "on@shared.test",
                "--password",
                "online-password",
                "--role",
                "admin",
            ],
            &path,
        );
        let mut no_pw = bin();
        no_pw
            .env_remove("PULSESTREAM_ADMIN_PASSWORD")
            .args(["tenant", "list", "--data-dir"])
            .arg(&path);
        let no_pw = no_pw.output().expect("run");
        (list, create, key, user, no_pw)
    })
    .await
    .expect("join");
    let (list, create, key, user, no_pw) = outs;
    assert!(list.status.success(), "{list:?}");
    assert!(stdout(&list).contains(&tenant_id));
    assert!(create.status.success(), "{create:?}");
    assert!(field(&stdout(&create), "api_key").starts_with("psk_"));
    assert!(key.status.success(), "{key:?}");
    let read_key = field(&stdout(&key), "api_key");
    assert!(user.status.success(), "{user:?}");
    let (st, _) = s.login("on@shared.test", "online-password").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = s
        .raw(
            hyper::Method::GET,
            "/api/v1/auth/users",
            &[("x-api-key", &read_key)],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "the online key is known at once");
    assert!(!no_pw.status.success());
    let err = String::from_utf8_lossy(&no_pw.stderr);
    assert!(err.contains("PULSESTREAM_ADMIN_PASSWORD"), "{err}");
    s.stop().await;
}

#[test]
fn check_reports_sound_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An empty data dir created by an offline command is sound.
    assert!(
        run(&["tenant", "create", "--name", "C"], dir.path())
            .status
            .success()
    );
    let o = run(&["check"], dir.path());
    assert!(o.status.success(), "{o:?}");
    let o = run(&["check"], &dir.path().join("missing"));
    assert!(!o.status.success());
}

#[test]
fn check_rebuilds_a_missing_catalog_from_the_segments() {
    use pulsestream_storage::{Event, Micros, Store, StoreConfig, TenantId};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config.clone()).expect("open store");
    let tenant = TenantId::new("acme").expect("tenant");
    let now = Micros::now();
    let events: Vec<Event> = (0..200)
        .map(|i| Event {
            timestamp: Micros(now.0 - i * Micros::SECOND),
            received_at: now,
            event_type: "api_call".into(),
            ..Event::default()
        })
        .collect();
    store.append(&tenant, &events).expect("append");
    store.seal_all().expect("seal");
    store.close().expect("close");
    std::fs::remove_file(dir.path().join("catalog.redb")).expect("remove catalog");

    let o = run(&["check"], dir.path());
    assert!(!o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("--rebuild-catalog"), "{}", stdout(&o));
    let o = run(&["check", "--rebuild-catalog"], dir.path());
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("catalog rebuilt"), "{}", stdout(&o));
    let store = Store::open(config).expect("open after rebuild");
    let sealed: u64 = store.stats().tenants.iter().map(|t| t.sealed_rows).sum();
    assert_eq!(sealed, 200);
}

#[test]
fn check_names_a_damaged_segment_and_fails() {
    use pulsestream_storage::{Event, Micros, Store, StoreConfig, TenantId};
    use std::os::unix::fs::FileExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config).expect("open store");
    let tenant = TenantId::new("acme").expect("tenant");
    let now = Micros::now();
    let events: Vec<Event> = (0..200)
        .map(|i| Event {
            timestamp: Micros(now.0 - i * Micros::SECOND),
            received_at: now,
            event_type: "api_call".into(),
            latency_ms: Some(i as f64),
            ..Event::default()
        })
        .collect();
    store.append(&tenant, &events).expect("append");
    store.seal_all().expect("seal");
    store.close().expect("close");
    assert!(run(&["check"], dir.path()).status.success());

    let segment = std::fs::read_dir(dir.path().join("tenants/acme"))
        .expect("tenant dir")
        .flat_map(|p| std::fs::read_dir(p.expect("partition").path()).expect("partition dir"))
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a sealed segment");
    // Byte 20 lies in the first column chunk, right after the 16-byte header.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&segment)
        .expect("open segment");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 20).expect("read");
    f.write_all_at(&[b[0] ^ 0xff], 20).expect("write");
    drop(f);

    let o = run(&["check"], dir.path());
    assert!(!o.status.success(), "{o:?}");
    let said = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let name = segment
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        said.contains(&name),
        "check output should name {name}: {said}"
    );
}

#[test]
fn serve_prints_address_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PULSESTREAM_LOG_LEVEL", "warn")
        .env("PULSESTREAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let addr = url.trim_start_matches("http://");

    // A plain HTTP/1.1 request over a socket.
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    sock.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"ok\""), "{resp}");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");

    // The data dir is free again and sound.
    assert!(run(&["check"], dir.path()).status.success());
    assert!(run(&["tenant", "list"], dir.path()).status.success());
}

#[test]
fn bad_config_and_a_bad_demo_address_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nmax_connections = 0\n").expect("write");
    let o = bin()
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("server.max_connections"));
    let o = bin()
        .args(["serve", "--listen", "not-an-address", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&o.stderr).contains("server.listen"));
    // `demo` runs until stopped (tests/demo.rs); a bad address ends it at once.
    let o = bin()
        .args(["demo", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--listen"));
}
