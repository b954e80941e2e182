//! Users, API keys, tenant profile, platform tenant administration, audit,
//! health, metrics, dashboard config, routing errors and restarts, over
//! real HTTP.

mod common;

use common::{OWNER_PASSWORD, TestServer, assert_error, owner_email};
use hyper::{Method, StatusCode};
use serde_json::json;

/// A key's validity without depending on ingestion: a valid key reaches
/// the role check (403), an invalid one is refused at authentication (401).
async fn key_status(s: &TestServer, key: &str) -> StatusCode {
    let (st, _, _) = s
        .raw(
            Method::GET,
            "/api/v1/auth/users",
            &[("x-api-key", key)],
            bytes::Bytes::new(),
        )
        .await;
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_crud_roles_and_tenant_isolation() {
    let s = TestServer::start().await;
    let (tenant_a, _, owner_a) = s.create_tenant("Ua").await;
    let (_, _, owner_b) = s.create_tenant("Ub").await;

    let (admin_id, admin_a) = s.create_user(&owner_a, "admin@ua.test", "admin").await;
    let (viewer_id, viewer_a) = s.create_user(&owner_a, "viewer@ua.test", "viewer").await;

    // register/user answers the user shape.
    let (st, _, v) = s
        .post(
            "/api/v1/auth/register/user",
            Some(&admin_a),
            &json!({"email": "new@ua.test", "password": OWNER_PASSWORD, "role": "viewer"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["email"], "new@ua.test");
    assert_eq!(v["role"], "viewer");
    let new_id = v["id"].as_str().expect("id").to_owned();

    // Duplicate email: 409; bad role: 400; an admin cannot create owners.
    let (st, _, b) = s
        .post(
            "/api/v1/auth/register/user",
            Some(&admin_a),
            &json!({"email": "NEW@ua.test", "password": OWNER_PASSWORD, "role": "viewer"}),
        )
        .await;
    assert_error(st, &b, 409, "conflict");
    let (st, _, b) = s
        .post(
            "/api/v1/auth/register/user",
            Some(&admin_a),
            &json!({"email": "x@ua.test", "password": OWNER_PASSWORD, "role": "god"}),
        )
        .await;
    assert_error(st, &b, 400, "validation_failed");
    let (st, _, b) = s
        .post(
            "/api/v1/auth/register/user",
            Some(&admin_a),
            &json!({"email": "o2@ua.test", "password": OWNER_PASSWORD, "role": "owner"}),
        )
        .await;
    assert_error(st, &b, 403, "forbidden");

    // Viewers cannot manage users.
    let (st, _, b) = s.get("/api/v1/auth/users", Some(&viewer_a)).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, _, b) = s
        .post(
            "/api/v1/auth/register/user",
            Some(&viewer_a),
            &json!({"email": "v2@ua.test", "password": OWNER_PASSWORD, "role": "viewer"}),
        )
        .await;
    assert_error(st, &b, 403, "forbidden");

    // List with paging.
    let (st, _, v) = s.get("/api/v1/auth/users?limit=2", Some(&admin_a)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["users"].as_array().expect("users").len(), 2);
    let cursor = v["next_cursor"].as_str().expect("more").to_owned();
    let (_, _, v2) = s
        .get(
            &format!("/api/v1/auth/users?limit=2&cursor={cursor}"),
            Some(&admin_a),
        )
        .await;
    assert_eq!(v2["users"].as_array().expect("users").len(), 2);
    assert!(v2["next_cursor"].is_null(), "{v2}");
    let (st, _, b) = s.get("/api/v1/auth/users?limit=0", Some(&admin_a)).await;
    assert_error(st, &b, 400, "validation_failed");

    // Read one; another tenant's owner sees 404 for it, and cannot change
    // or delete it.
    let path = format!("/api/v1/auth/users/{viewer_id}");
    let (st, _, v) = s.get(&path, Some(&admin_a)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["email"], "viewer@ua.test");
    let (st, _, b) = s.get(&path, Some(&owner_b)).await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s
        .patch(&path, Some(&owner_b), &json!({"role": "admin"}))
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s.delete(&path, Some(&owner_b)).await;
    assert_error(st, &b, 404, "not_found");

    // Promote, then the new role applies to the existing token at once.
    let (st, _, v) = s
        .patch(&path, Some(&admin_a), &json!({"role": "admin"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "admin");
    let (st, _, _) = s.get("/api/v1/auth/users", Some(&viewer_a)).await;
    assert_eq!(st, StatusCode::OK);
    // Admins cannot touch owners.
    let (_, _, users) = s.get("/api/v1/auth/users?limit=1000", Some(&owner_a)).await;
    let owner_id = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["role"] == "owner")
        .and_then(|u| u["id"].as_str())
        .expect("owner")
        .to_owned();
    let (st, _, b) = s
        .delete(&format!("/api/v1/auth/users/{owner_id}"), Some(&admin_a))
        .await;
    assert_error(st, &b, 403, "forbidden");
    // Nobody deletes themselves.
    let (st, _, b) = s
        .delete(&format!("/api/v1/auth/users/{admin_id}"), Some(&admin_a))
        .await;
    assert_error(st, &b, 409, "conflict");

    // Delete: 204, then 404, and the deleted user's token stops working.
    let (_, viewer_token) = (
        new_id.clone(),
        s.login("new@ua.test", OWNER_PASSWORD).await.1,
    );
    let new_token = viewer_token["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (st, _, _) = s
        .delete(&format!("/api/v1/auth/users/{new_id}"), Some(&admin_a))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, b) = s
        .get(&format!("/api/v1/auth/users/{new_id}"), Some(&admin_a))
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s.get("/api/v1/auth/profile", Some(&new_token)).await;
    assert_error(st, &b, 401, "unauthorized");

    // Wrong method on a known path.
    let (st, _, b) = s.request(Method::PUT, &path, Some(&admin_a), None).await;
    assert_error(st, &b, 405, "method_not_allowed");
    let _ = tenant_a;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_shown_once_scoped_and_revocable() {
    let s = TestServer::start().await;
    let (_, first_key, owner_a) = s.create_tenant("Ka").await;
    let (_, key_b, owner_b) = s.create_tenant("Kb").await;
    let (_, viewer) = s.create_user(&owner_a, "viewer@ka.test", "viewer").await;

    let (st, _, v) = s
        .post(
            "/api/v1/auth/api-keys",
            Some(&owner_a),
            &json!({"name": "agents", "scopes": ["ingest", "read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("psk_") && key.len() >= 40);
    assert_eq!(v["name"], "agents");
    assert_eq!(v["scopes"], json!(["ingest", "read"]));
    assert!(v["created_at"].is_string());
    let id = v["id"].as_str().expect("id").to_owned();

    // Default scope is ingest; unknown scopes are refused.
    let (st, _, v) = s
        .post(
            "/api/v1/auth/api-keys",
            Some(&owner_a),
            &json!({"name": "d"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["scopes"], json!(["ingest"]));
    let (st, _, b) = s
        .post(
            "/api/v1/auth/api-keys",
            Some(&owner_a),
            &json!({"name": "x", "scopes": ["admin"]}),
        )
        .await;
    assert_error(st, &b, 400, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "scopes[0]");

    // The key appears in no later answer.
    let (st, _, v) = s.get("/api/v1/auth/api-keys", Some(&owner_a)).await;
    assert_eq!(st, StatusCode::OK);
    let list = v["api_keys"].as_array().expect("api_keys");
    assert_eq!(list.len(), 3);
    assert!(v["next_cursor"].is_null());
    assert!(!v.to_string().contains(&key));
    let (st, _, v) = s
        .get(&format!("/api/v1/auth/api-keys/{id}"), Some(&owner_a))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(v.get("key").is_none());

    // Viewers cannot manage keys; keys cannot manage keys.
    let (st, _, b) = s.get("/api/v1/auth/api-keys", Some(&viewer)).await;
    assert_error(st, &b, 403, "forbidden");
    assert_eq!(key_status(&s, &key).await, StatusCode::FORBIDDEN);
    let (st, _, _) = s
        .raw(
            Method::GET,
            "/api/v1/auth/api-keys",
            &[("authorization", &format!("Bearer {key}"))],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Another tenant cannot see or revoke it.
    let (st, _, b) = s
        .get(&format!("/api/v1/auth/api-keys/{id}"), Some(&owner_b))
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s
        .delete(&format!("/api/v1/auth/api-keys/{id}"), Some(&owner_b))
        .await;
    assert_error(st, &b, 404, "not_found");
    assert_eq!(key_status(&s, &key).await, StatusCode::FORBIDDEN);

    // Revocation is effective at once.
    let (st, _, _) = s
        .delete(&format!("/api/v1/auth/api-keys/{id}"), Some(&owner_a))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(key_status(&s, &key).await, StatusCode::UNAUTHORIZED);
    let (st, _, b) = s
        .delete(&format!("/api/v1/auth/api-keys/{id}"), Some(&owner_a))
        .await;
    assert_error(st, &b, 404, "not_found");
    assert_eq!(key_status(&s, &first_key).await, StatusCode::FORBIDDEN);
    assert_eq!(key_status(&s, &key_b).await, StatusCode::FORBIDDEN);
    assert_eq!(
        key_status(&s, "psk_not-a-key").await,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_profile_read_by_all_changed_by_owner() {
    let s = TestServer::start().await;
    let (tenant, _, owner) = s.create_tenant("Prof Co").await;
    let (_, admin) = s.create_user(&owner, "admin@prof.test", "admin").await;
    let (_, viewer) = s.create_user(&owner, "viewer@prof.test", "viewer").await;

    let (st, _, v) = s.get("/api/v1/auth/tenant/profile", Some(&viewer)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for k in [
        "id",
        "name",
        "retention_days",
        "rate_limit_eps",
        "rate_limit_burst",
        "quota_events_per_day",
        "disabled",
        "created_at",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["id"], tenant.as_str());
    assert_eq!(v["disabled"], false);

    let change = json!({"retention_days": 7, "rate_limit_eps": 500, "rate_limit_burst": 1000, "quota_events_per_day": 1000000});
    let (st, _, b) = s
        .put("/api/v1/auth/tenant/profile", Some(&admin), &change)
        .await;
    assert_error(st, &b, 403, "forbidden");
    let (st, _, v) = s
        .put("/api/v1/auth/tenant/profile", Some(&owner), &change)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["retention_days"], 7);
    assert_eq!(v["rate_limit_eps"], 500);
    // The in-memory limits the ingest path reads follow at once.
    let limits = s
        .state()
        .tenant_limits(&pulsestream_storage::TenantId::new(&tenant).expect("id"))
        .expect("limits");
    assert_eq!(limits.rate_limit_eps, 500);
    assert_eq!(limits.quota_events_per_day, 1_000_000);

    let (st, _, b) = s
        .put(
            "/api/v1/auth/tenant/profile",
            Some(&owner),
            &json!({"retention_days": 0}),
        )
        .await;
    assert_error(st, &b, 400, "validation_failed");
    let (st, _, b) = s
        .put(
            "/api/v1/auth/tenant/profile",
            Some(&owner),
            &json!({"disabled": true}),
        )
        .await;
    assert_error(st, &b, 403, "forbidden");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_admin_manages_tenants() {
    let s = TestServer::start().await;
    let admin = s.admin_login().await;
    let (ta, key_a, owner_a) = s.create_tenant("Ta").await;
    s.create_tenant("Tb").await;

    // Only the platform administrator.
    let (st, _, b) = s.get("/api/v1/admin/tenants", Some(&owner_a)).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, _, b) = s.get("/api/v1/admin/tenants", None).await;
    assert_error(st, &b, 401, "unauthorized");

    // Create with limits; list with paging.
    let (st, _, v) = s
        .post(
            "/api/v1/admin/tenants",
            Some(&admin),
            &json!({"name": "Tc", "retention_days": 90}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["retention_days"], 90);
    assert!(v["api_key"].as_str().expect("key").starts_with("psk_"));
    let tc = v["id"].as_str().expect("id").to_owned();
    let (st, _, b) = s
        .post(
            "/api/v1/admin/tenants",
            Some(&admin),
            &json!({"name": "tc"}),
        )
        .await;
    assert_error(st, &b, 409, "conflict");
    let (st, _, v) = s.get("/api/v1/admin/tenants?limit=2", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["tenants"].as_array().expect("tenants").len(), 2);
    let cursor = v["next_cursor"].as_str().expect("more");
    let (_, _, v) = s
        .get(
            &format!("/api/v1/admin/tenants?limit=2&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(v["tenants"].as_array().expect("tenants").len(), 1);
    assert!(v["next_cursor"].is_null());
    let (st, _, v) = s
        .get(&format!("/api/v1/admin/tenants/{tc}"), Some(&admin))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["name"], "Tc");

    // Disable: the tenant's key and users are refused; enable again.
    let (st, _, v) = s
        .patch(
            &format!("/api/v1/admin/tenants/{ta}"),
            Some(&admin),
            &json!({"disabled": true, "rate_limit_eps": 10}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["disabled"], true);
    assert_eq!(key_status(&s, &key_a).await, StatusCode::FORBIDDEN);
    let (st, _, b) = s.get("/api/v1/auth/tenant/profile", Some(&owner_a)).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, _) = s.login(&owner_email("Ta"), OWNER_PASSWORD).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    s.patch(
        &format!("/api/v1/admin/tenants/{ta}"),
        Some(&admin),
        &json!({"disabled": false}),
    )
    .await;
    let (st, _, _) = s.get("/api/v1/auth/tenant/profile", Some(&owner_a)).await;
    assert_eq!(st, StatusCode::OK);

    // Delete with data: gone, and so are its credentials.
    let (st, _, _) = s
        .delete(&format!("/api/v1/admin/tenants/{ta}"), Some(&admin))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, b) = s
        .get(&format!("/api/v1/admin/tenants/{ta}"), Some(&admin))
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s
        .delete(&format!("/api/v1/admin/tenants/{ta}"), Some(&admin))
        .await;
    assert_error(st, &b, 404, "not_found");
    assert_eq!(key_status(&s, &key_a).await, StatusCode::UNAUTHORIZED);
    let (st, _, b) = s.get("/api/v1/auth/tenant/profile", Some(&owner_a)).await;
    assert_error(st, &b, 401, "unauthorized");
    let (st, _) = s.login(&owner_email("Ta"), OWNER_PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, b) = s
        .patch(
            "/api/v1/admin/tenants/t_nope",
            Some(&admin),
            &json!({"disabled": true}),
        )
        .await;
    assert_error(st, &b, 404, "not_found");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_changes_per_tenant() {
    let s = TestServer::start().await;
    let (_, _, owner_a) = s.create_tenant("Aa").await;
    let (_, _, owner_b) = s.create_tenant("Ab").await;
    let (_, viewer) = s.create_user(&owner_a, "v@aa.test", "viewer").await;
    s.post(
        "/api/v1/auth/api-keys",
        Some(&owner_a),
        &json!({"name": "k"}),
    )
    .await;

    let (st, _, v) = s.get("/api/v1/audit", Some(&owner_a)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"api_key.create"), "{actions:?}");
    assert!(actions.contains(&"user.create"), "{actions:?}");
    assert!(actions.contains(&"login"), "{actions:?}");
    assert!(entries[0]["at"].is_string() && entries[0]["actor"].is_string());
    // Newest first.
    assert_eq!(actions[0], "api_key.create");
    // Paging.
    let (_, _, p1) = s.get("/api/v1/audit?limit=1", Some(&owner_a)).await;
    let cursor = p1["next_cursor"].as_str().expect("cursor");
    let (_, _, p2) = s
        .get(
            &format!("/api/v1/audit?limit=1&cursor={cursor}"),
            Some(&owner_a),
        )
        .await;
    assert_ne!(p1["entries"][0]["id"], p2["entries"][0]["id"]);

    // Tenant B sees none of A's entries; viewers see nothing.
    let (_, _, vb) = s.get("/api/v1/audit?limit=1000", Some(&owner_b)).await;
    assert!(!vb.to_string().contains("v@aa.test"));
    let (st, _, b) = s.get("/api/v1/audit", Some(&viewer)).await;
    assert_error(st, &b, 403, "forbidden");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_routing_errors() {
    let s = TestServer::start().await;
    for path in [
        "/health",
        "/api/v1/ingestion/health",
        "/api/v1/alerting/health",
        "/api/v1/storage/health",
    ] {
        let (st, _, v) = s.get(path, None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["status"], "ok");
        assert!(v["version"].is_string() && v["uptime_s"].is_u64() && v["storage"].is_object());
    }
    let (st, headers, body) = s
        .raw(Method::GET, "/metrics", &[], bytes::Bytes::new())
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).expect("utf8");
    for series in [
        "pulsestream_ingest_events_total",
        "pulsestream_ingest_rejected_events_total{reason=",
        "pulsestream_wal_fsync_seconds_bucket",
        "pulsestream_query_seconds_bucket",
        "pulsestream_websocket_connections",
        "pulsestream_alert_evaluations_total",
        "pulsestream_notification_failures_total",
    ] {
        assert!(text.contains(series), "missing {series}");
    }

    let (st, _, b) = s.get("/api/v1/nothing-here", None).await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s.request(Method::POST, "/health", None, None).await;
    assert_error(st, &b, 405, "method_not_allowed");
    let (st, _, b) = s
        .request(Method::GET, "/api/v1/auth/login", None, None)
        .await;
    assert_error(st, &b, 405, "method_not_allowed");
    let (st, _, b) = s
        .request(Method::DELETE, "/api/v1/admin/tenants", None, None)
        .await;
    assert_error(st, &b, 405, "method_not_allowed");

    // Bodies: wrong content type 415, over the limit 413.
    let (st, _, raw) = s
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "text/plain")],
            bytes::Bytes::from_static(b"{}"),
        )
        .await;
    let b: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_error(st, &b, 415, "unsupported_media_type");
    let big = bytes::Bytes::from(vec![b' '; 2 << 20]);
    let (st, _, raw) = s
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "application/json")],
            big,
        )
        .await;
    let b: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_error(st, &b, 413, "payload_too_large");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_config_is_per_user() {
    let s = TestServer::start().await;
    let (_, _, owner) = s.create_tenant("Dash").await;
    let (_, viewer) = s.create_user(&owner, "v@dash.test", "viewer").await;
    let path = "/api/v1/dashboard/config";
    let (st, _, v) = s.get(path, Some(&viewer)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({}));
    let doc = json!({"layout": [{"id": "w1", "type": "throughput"}], "theme": "dark"});
    let (st, _, v) = s.put(path, Some(&viewer), &doc).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, _, v) = s.get(path, Some(&viewer)).await;
    assert_eq!(v, doc);
    let (_, _, v) = s.get(path, Some(&owner)).await;
    assert_eq!(v, json!({}));
    let (st, _, b) = s.put(path, Some(&viewer), &json!([1, 2])).await;
    assert_error(st, &b, 400, "validation_failed");
    let huge = json!({"blob": "x".repeat(70 * 1024)});
    let (st, _, b) = s.put(path, Some(&viewer), &huge).await;
    assert_error(st, &b, 413, "payload_too_large");
    let (st, _, b) = s.get(path, None).await;
    assert_error(st, &b, 401, "unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_tenants_users_and_keys() {
    let s = TestServer::start().await;
    let (tenant, key, owner) = s.create_tenant("Durable").await;
    s.create_user(&owner, "v@durable.test", "viewer").await;
    let (_, _, v) = s
        .post(
            "/api/v1/auth/api-keys",
            Some(&owner),
            &json!({"name": "second"}),
        )
        .await;
    let key2 = v["key"].as_str().expect("key").to_owned();
    let dashboard = json!({"layout": ["a"]});
    s.put("/api/v1/dashboard/config", Some(&owner), &dashboard)
        .await;
    let dir = s.stop().await.expect("owned dir");

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (st, v) = s.login(&owner_email("Durable"), OWNER_PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let owner = v["access_token"].as_str().expect("token").to_owned();
    let (st, _, v) = s.get("/api/v1/auth/tenant/profile", Some(&owner)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["id"], tenant.as_str());
    let (_, _, v) = s.get("/api/v1/auth/users", Some(&owner)).await;
    assert_eq!(v["users"].as_array().expect("users").len(), 2);
    assert_eq!(key_status(&s, &key).await, StatusCode::FORBIDDEN);
    assert_eq!(key_status(&s, &key2).await, StatusCode::FORBIDDEN);
    let (_, _, v) = s.get("/api/v1/dashboard/config", Some(&owner)).await;
    assert_eq!(v, dashboard);
    // The signing key survived too: the old admin password still works and
    // the bootstrap did not run again.
    s.admin_login().await;
    s.stop().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_readable_alone_within_the_tenant() {
    let s = TestServer::start().await;
    let (_, _, owner_a) = s.create_tenant("Ea").await;
    let (_, _, owner_b) = s.create_tenant("Eb").await;
    let (_, _, v) = s.get("/api/v1/audit?limit=1", Some(&owner_a)).await;
    let id = v["entries"][0]["id"].as_str().expect("id").to_owned();
    let (st, _, e) = s.get(&format!("/api/v1/audit/{id}"), Some(&owner_a)).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e, v["entries"][0]);
    let (st, _, b) = s.get(&format!("/api/v1/audit/{id}"), Some(&owner_b)).await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s.get("/api/v1/audit/not-a-number", Some(&owner_a)).await;
    assert_error(st, &b, 404, "not_found");
    let admin = s.admin_login().await;
    let (st, _, _) = s.get(&format!("/api/v1/audit/{id}"), Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_sweep_drops_only_expired_partitions() {
    use pulsestream_storage::{Event, Micros, TenantId};
    let s = TestServer::start().await;
    let (ta, _, owner) = s.create_tenant("Ret").await;
    s.put(
        "/api/v1/auth/tenant/profile",
        Some(&owner),
        &json!({"retention_days": 1}),
    )
    .await;
    let tenant = TenantId::new(&ta).expect("id");
    let now = Micros::now();
    let event = |age_hours: i64| Event {
        timestamp: Micros(now.0 - age_hours * Micros::HOUR),
        received_at: now,
        event_type: "api_call".into(),
        ..Default::default()
    };
    let store = s.state().store.clone();
    store
        .append(&tenant, &[event(72), event(71), event(1)])
        .expect("append");
    store.seal_all().expect("seal");
    let rows = |store: &pulsestream_storage::Store| -> u64 {
        store
            .stats()
            .tenants
            .iter()
            .filter(|t| t.tenant.as_ref() == Some(&tenant))
            .map(|t| t.sealed_rows + t.active_rows)
            .sum()
    };
    assert_eq!(rows(&store), 3);
    let dropped = pulsestream::retention::sweep(s.state(), Micros::now());
    assert!(dropped >= 1, "nothing dropped");
    assert_eq!(rows(&store), 1, "only the recent event is kept");
    // A second sweep has nothing left to do.
    assert_eq!(pulsestream::retention::sweep(s.state(), Micros::now()), 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_endpoint_needs_a_credential() {
    let s = TestServer::start().await;
    let protected: &[(Method, &str)] = &[
        (Method::GET, "/api/v1/auth/profile"),
        (Method::PUT, "/api/v1/auth/profile"),
        (Method::POST, "/api/v1/auth/change-password"),
        (Method::POST, "/api/v1/auth/register/user"),
        (Method::GET, "/api/v1/auth/users"),
        (Method::GET, "/api/v1/auth/users/u_x"),
        (Method::PATCH, "/api/v1/auth/users/u_x"),
        (Method::DELETE, "/api/v1/auth/users/u_x"),
        (Method::GET, "/api/v1/auth/tenant/profile"),
        (Method::PUT, "/api/v1/auth/tenant/profile"),
        (Method::GET, "/api/v1/auth/api-keys"),
        (Method::POST, "/api/v1/auth/api-keys"),
        (Method::GET, "/api/v1/auth/api-keys/k_x"),
        (Method::DELETE, "/api/v1/auth/api-keys/k_x"),
        (Method::GET, "/api/v1/admin/tenants"),
        (Method::POST, "/api/v1/admin/tenants"),
        (Method::GET, "/api/v1/admin/tenants/t_x"),
        (Method::PATCH, "/api/v1/admin/tenants/t_x"),
        (Method::DELETE, "/api/v1/admin/tenants/t_x"),
        (Method::GET, "/api/v1/audit"),
        (Method::GET, "/api/v1/audit/1"),
        (Method::GET, "/api/v1/dashboard/config"),
        (Method::PUT, "/api/v1/dashboard/config"),
    ];
    for (m, path) in protected {
        let (st, _, b) = s.request(m.clone(), path, None, Some(&json!({}))).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {path}: {b}");
        assert_eq!(b["error"]["code"], "unauthorized", "{m} {path}");
        let (st, _, _) = s
            .request(m.clone(), path, Some("psk_bogus"), Some(&json!({})))
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {path} with a bogus key");
    }
    // A valid ingest key reaches none of the user endpoints.
    let (_, key, _) = s.create_tenant("Keys Only").await;
    for (m, path) in protected {
        let (st, _, _) = s
            .request(m.clone(), path, Some(&key), Some(&json!({})))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {path} with an ingest key");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_admin_creates_keys_and_users_in_a_tenant() {
    let s = TestServer::start().await;
    let admin = s.admin_login().await;
    let (ta, _, owner_a) = s.create_tenant("Pa").await;
    let (st, _, v) = s
        .post(
            &format!("/api/v1/admin/tenants/{ta}/api-keys"),
            Some(&admin),
            &json!({"name": "ops", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().expect("key").to_owned();
    assert_eq!(key_status(&s, &key).await, StatusCode::FORBIDDEN);
    let (_, _, keys) = s.get("/api/v1/auth/api-keys", Some(&owner_a)).await;
    assert_eq!(keys["api_keys"].as_array().expect("keys").len(), 2);

    let (st, _, v) = s
        .post(
            &format!("/api/v1/admin/tenants/{ta}/users"),
            Some(&admin),
            &json!({"email": "owner2@pa.test", "password": OWNER_PASSWORD, "role": "owner"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "owner");
    let (_, login) = s.login("owner2@pa.test", OWNER_PASSWORD).await;
    let token = login["access_token"].as_str().expect("token");
    let (st, _, v) = s.get("/api/v1/auth/tenant/profile", Some(token)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["id"], ta.as_str());

    // Tenant owners cannot use these; unknown tenants are 404.
    let (st, _, b) = s
        .post(
            &format!("/api/v1/admin/tenants/{ta}/api-keys"),
            Some(&owner_a),
            &json!({"name": "x"}),
        )
        .await;
    assert_error(st, &b, 403, "forbidden");
    let (st, _, b) = s
        .post(
            "/api/v1/admin/tenants/t_missing/users",
            Some(&admin),
            &json!({"email": "a@b.c", "password": OWNER_PASSWORD}),
        )
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st, _, b) = s
        .request(
            Method::GET,
            &format!("/api/v1/admin/tenants/{ta}/users"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(st, &b, 405, "method_not_allowed");
    s.stop().await;
}
