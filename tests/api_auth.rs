//! Auth over real HTTP: bootstrap admin, sign-up, login, lockout, tokens
//! (tampering, expiry, refresh rotation and reuse), profile and password.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, OWNER_PASSWORD, TestServer, assert_error, owner_email};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admin_logs_in_and_has_no_tenant() {
    let s = TestServer::start().await;
    let (st, v) = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 900);
    assert!(v["refresh_token"].is_string());
    let token = v["access_token"].as_str().expect("token");
    let (st, _, p) = s.get("/api/v1/auth/profile", Some(token)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(p["email"], ADMIN_EMAIL);
    assert_eq!(p["tenant_id"], serde_json::Value::Null);
    // The platform admin belongs to no tenant: tenant endpoints are 403.
    let (st, _, b) = s.get("/api/v1/auth/tenant/profile", Some(token)).await;
    assert_error(st, &b, 403, "forbidden");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_password_is_written_0600_once() {
    let s = TestServer::start_with(|c| c.auth.admin_password = None).await;
    let path = s.data_dir().join("initial-admin-password");
    let pw = std::fs::read_to_string(&path).expect("password file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [path.clone(), s.data_dir().join("jwt-signing-key")] {
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    let (st, v) = s.login(ADMIN_EMAIL, pw.trim()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_tenant_shapes_and_permissions() {
    let s = TestServer::start().await;
    let body = json!({"tenant_name": "Acme", "owner_email": "o@acme.io", "owner_password": OWNER_PASSWORD});
    // No token, sign-up off: refused.
    let (st, _, b) = s.post("/api/v1/auth/register/tenant", None, &body).await;
    assert_error(st, &b, 401, "unauthorized");

    let admin = s.admin_login().await;
    let (st, _, v) = s
        .post("/api/v1/auth/register/tenant", Some(&admin), &body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["tenant"]["id"].is_string());
    assert_eq!(v["tenant"]["name"], "Acme");
    assert_eq!(v["user"]["email"], "o@acme.io");
    assert_eq!(v["user"]["role"], "owner");
    assert!(v["user"]["id"].is_string());
    assert!(v["api_key"].as_str().expect("key").starts_with("psk_"));
    let owner = v["access_token"].as_str().expect("token");
    assert!(v["refresh_token"].is_string());

    // Same email again: 409. Same tenant name: 409.
    let dup = json!({"tenant_name": "Other", "owner_email": "O@acme.io", "owner_password": OWNER_PASSWORD});
    let (st, _, b) = s
        .post("/api/v1/auth/register/tenant", Some(&admin), &dup)
        .await;
    assert_error(st, &b, 409, "conflict");
    let (st, _, b) = s
        .post("/api/v1/auth/register/tenant", Some(&admin), &body)
        .await;
    assert_error(st, &b, 409, "conflict");

    // A tenant owner is not the platform admin.
    let other = json!({"tenant_name": "Evil", "owner_email": "e@evil.io", "owner_password": OWNER_PASSWORD});
    let (st, _, b) = s
        .post("/api/v1/auth/register/tenant", Some(owner), &other)
        .await;
    assert_error(st, &b, 403, "forbidden");

    // Validation: short password, bad email, missing name.
    let bad = json!({"tenant_name": "", "owner_email": "nope", "owner_password": "short"});
    let (st, _, b) = s
        .post("/api/v1/auth/register/tenant", Some(&admin), &bad)
        .await;
    assert_error(st, &b, 400, "validation_failed");
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["tenant_name", "owner_email", "owner_password"]);
    // Malformed JSON: 400 bad_request.
    let (st, _, raw) = s
        .raw(
            Method::POST,
            "/api/v1/auth/register/tenant",
            &[
                ("authorization", &format!("Bearer {admin}")),
                ("content-type", "application/json"),
            ],
            bytes::Bytes::from_static(b"{not json"),
        )
        .await;
    let b: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_error(st, &b, 400, "bad_request");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_allowed_by_config() {
    let s = TestServer::start_with(|c| c.auth.allow_signup = true).await;
    let body = json!({"tenant_name": "Open", "owner_email": "o@open.io", "owner_password": OWNER_PASSWORD});
    let (st, _, v) = s.post("/api/v1/auth/register/tenant", None, &body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_five_failures_even_with_right_password() {
    let s = TestServer::start().await;
    let (_, _, _) = s.create_tenant("Lock").await;
    let email = owner_email("Lock");
    for i in 1..=5 {
        let (st, b) = s.login(&email, "wrong-password-x").await;
        assert_error(st, &b, 401, "unauthorized");
        let _ = i;
    }
    let (st, b) = s.login(&email, OWNER_PASSWORD).await;
    assert_error(st, &b, 423, "locked");
    let (st, b) = s.login(&email, "wrong-password-x").await;
    assert_error(st, &b, 423, "locked");
    // Unknown email: plain 401.
    let (st, b) = s.login("nobody@x.io", "whatever-password").await;
    assert_error(st, &b, 401, "unauthorized");
    // The audit log recorded the failures.
    let admin = s.admin_login().await;
    let (st, _, v) = s.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let failed = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "login_failed")
        .count();
    assert!(failed >= 6, "{v}");
    s.stop().await;
}

fn forge(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tampering_is_401() {
    let s = TestServer::start().await;
    let (tenant_a, _, owner_a) = s.create_tenant("Alpha").await;
    let (tenant_b, _, _) = s.create_tenant("Beta").await;
    let path = "/api/v1/auth/tenant/profile";
    let (st, _, v) = s.get(path, Some(&owner_a)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["id"], tenant_a.as_str());

    // Changed tenant claim with the original signature.
    let forged = forge(&owner_a, |c| c["tid"] = tenant_b.clone().into());
    let (st, _, b) = s.get(path, Some(&forged)).await;
    assert_error(st, &b, 401, "unauthorized");
    // Changed role.
    let forged = forge(&owner_a, |c| {
        c["exp"] = (c["exp"].as_i64().expect("exp") + 3600).into()
    });
    let (st, _, b) = s.get(path, Some(&forged)).await;
    assert_error(st, &b, 401, "unauthorized");
    // alg: none.
    let parts: Vec<&str> = owner_a.split('.').collect();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let (st, _, b) = s.get(path, Some(&none)).await;
    assert_error(st, &b, 401, "unauthorized");
    // Garbage and missing.
    let (st, _, b) = s.get(path, Some("garbage")).await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s.get(path, None).await;
    assert_error(st, &b, 401, "unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_401() {
    let s = TestServer::start_with(|c| c.auth.access_token_ttl = Duration::from_secs(1)).await;
    let (_, _, owner) = s.create_tenant("Short").await;
    // exp has one-second resolution: wait past the next full second.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, _, b) = s.get("/api/v1/auth/profile", Some(&owner)).await;
    assert_error(st, &b, 401, "unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_family() {
    let s = TestServer::start().await;
    s.create_tenant("Fresh").await;
    let (_, v) = s.login(&owner_email("Fresh"), OWNER_PASSWORD).await;
    let r1 = v["refresh_token"].as_str().expect("refresh").to_owned();
    let (st, _, v2) = s
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r1}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v2}");
    let r2 = v2["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(r1, r2);
    let access = v2["access_token"].as_str().expect("access");
    let (st, _, _) = s.get("/api/v1/auth/profile", Some(access)).await;
    assert_eq!(st, StatusCode::OK);

    // Reusing r1: 401 and the family (r2 too) is revoked.
    let (st, _, b) = s
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r1}))
        .await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r2}))
        .await;
    assert_error(st, &b, 401, "unauthorized");

    // Logout revokes the family of a fresh session.
    let (_, v) = s.login(&owner_email("Fresh"), OWNER_PASSWORD).await;
    let r3 = v["refresh_token"].as_str().expect("refresh").to_owned();
    let (st, _, _) = s
        .post("/api/v1/auth/logout", None, &json!({"refresh_token": r3}))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, b) = s
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r3}))
        .await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": "psr_unknown"}),
        )
        .await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s.post("/api/v1/auth/refresh", None, &json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_change_password() {
    let s = TestServer::start().await;
    let (_, _, owner) = s.create_tenant("Prof").await;
    let (st, _, v) = s
        .put(
            "/api/v1/auth/profile",
            Some(&owner),
            &json!({"name": "Olivia"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Olivia");
    let (st, _, v) = s.get("/api/v1/auth/profile", Some(&owner)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["role"], "owner");
    assert!(v.get("password_hash").is_none());

    let path = "/api/v1/auth/change-password";
    let (st, _, b) = s
        .post(
            path,
            Some(&owner),
            &json!({"current_password": "not-the-password", "new_password": "brand-new-password"}),
        )
        .await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s
        .post(
            path,
            Some(&owner),
            &json!({"current_password": OWNER_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_error(st, &b, 400, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "new_password");
    let (st, _, _) = s
        .post(
            path,
            Some(&owner),
            &json!({"current_password": OWNER_PASSWORD, "new_password": "brand-new-password"}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.login(&owner_email("Prof"), OWNER_PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.login(&owner_email("Prof"), "brand-new-password").await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
