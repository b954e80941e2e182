//! The query language parser: any bytes give a validated `Query` or a
//! typed error — never a panic — for a tenant and for the platform
//! administrator alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulsestream::read::query_lang::{QueryScope, parse_query};
use pulsestream_storage::query::MAX_QUERY_LIMIT;
use pulsestream_storage::{Micros, TenantId};

fuzz_target!(|data: &[u8]| {
    let now = Micros(1_795_600_800_000_000);
    let tenant = QueryScope::Tenant(TenantId::new("t1").expect("valid id"));
    for scope in [tenant, QueryScope::PlatformAdmin] {
        if let Ok(p) = parse_query(data, &scope, now) {
            let q = p.query;
            assert!(q.limit >= 1 && q.limit <= MAX_QUERY_LIMIT);
            assert!(q.range.from < q.range.to);
            assert!(!q.aggregations.is_empty());
        }
    }
});
