//! API key check: the cost every ingest request pays before anything else.
//! Target ≤ 1 µs. Measured through `AppState::authenticate` (header parse,
//! SHA-256, index lookup, tenant-enabled check, principal construction)
//! with 1,000 keys over 100 tenants in the index.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pulsestream::app::AppState;
use pulsestream::config::Config;
use pulsestream::handlers::tenant::{new_key, provision};

/// Keys in the index while measuring: a busy appliance's worth.
const TENANTS: usize = 100;
const KEYS_PER_TENANT: usize = 10;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.auth.admin_password = Some("bench-admin-password".into());
    config.auth.argon2_memory_kib = 64;
    config.auth.argon2_iterations = 1;
    let state = AppState::open(config).expect("open");

    let mut keys = Vec::new();
    for t in 0..TENANTS {
        let p = provision(
            &state.meta,
            &state.config.limits,
            &format!("bench {t}"),
            None,
            "bench",
        )
        .expect("tenant");
        keys.push(p.key_plain);
        for _ in 1..KEYS_PER_TENANT {
            let (rec, plain) = new_key(
                &p.tenant.id,
                "k",
                vec![pulsestream::auth::Scope::Ingest],
                "bench",
            );
            state.meta.create_key(&rec).expect("key");
            keys.push(plain);
        }
    }
    let key = keys[keys.len() / 2].clone();
    let req = hyper::Request::builder()
        .header("x-api-key", key.as_str())
        .body(())
        .expect("request");
    let bearer = hyper::Request::builder()
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .expect("request");

    c.bench_function("api_key_check/x-api-key", |b| {
        b.iter(|| black_box(state.authenticate(black_box(&req)).expect("valid")))
    });
    c.bench_function("api_key_check/bearer", |b| {
        b.iter(|| black_box(state.authenticate(black_box(&bearer)).expect("valid")))
    });
    let unknown = "psk_0000000000000000000000000000000000000000000";
    c.bench_function("api_key_check/unknown_key", |b| {
        b.iter(|| black_box(state.authenticate_key(black_box(unknown)).is_err()))
    });
    state.store.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
