//! Administration from the command line: straight on the data dir's
//! metadata when no server holds it (offline), else through the running
//! server's HTTP API (online, see `online`).

use std::process::ExitCode;

use super::{CheckArgs, DirArgs};
use hyper::Method;

use super::online::Online;
use crate::app::{AppState, DataDirInUse};
use crate::auth::password::PasswordHasherId;
use crate::auth::{Role, Scope, random};
use crate::config::Config;
use crate::handlers::tenant::{new_key, provision};
use crate::meta::Meta;
use crate::meta::{User, now_micros, rfc3339};

/// Actor recorded in the audit log for CLI operations.
const CLI_ACTOR: &str = "cli";

/// Where an admin command runs.
enum Target {
    Offline(Meta, PasswordHasherId),
    Online(Box<Online>),
}

fn target(config: &Config) -> anyhow::Result<Target> {
    match AppState::open_meta_only(config) {
        Ok((meta, _jwt, passwords)) => Ok(Target::Offline(meta, passwords)),
        Err(e) if e.downcast_ref::<DataDirInUse>().is_some() => {
            Online::connect(config).map(|o| Target::Online(Box::new(o)))
        }
        Err(e) => Err(e),
    }
}

fn print_str(v: &serde_json::Value, label: &str, key: &str) {
    if let Some(s) = v[key].as_str() {
        println!("{label}: {s}");
    }
}

pub fn tenant_create(
    dir: &DirArgs,
    name: &str,
    owner_email: Option<String>,
    owner_password: Option<String>,
) -> anyhow::Result<()> {
    let config = dir.load()?;
    if name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let (meta, passwords) = match target(&config)? {
        Target::Offline(m, p) => (m, p),
        Target::Online(online) => {
            let mut body = serde_json::json!({"name": name});
            if let (Some(e), Some(p)) = (&owner_email, &owner_password) {
                body["owner_email"] = e.clone().into();
                body["owner_password"] = p.clone().into();
            }
            let v = online.call(Method::POST, "/api/v1/admin/tenants", Some(body))?;
            print_str(&v, "tenant_id", "id");
            print_str(&v, "name", "name");
            if let Some(o) = v["owner"].as_object() {
                println!(
                    "owner: {} ({})",
                    o.get("email").and_then(|x| x.as_str()).unwrap_or(""),
                    o.get("id").and_then(|x| x.as_str()).unwrap_or("")
                );
            }
            print_str(&v, "api_key", "api_key");
            return Ok(());
        }
    };
    let owner = match (owner_email, owner_password) {
        (Some(e), Some(p)) => {
            crate::auth::password::check_policy(&p)
                .map_err(|m| anyhow::anyhow!("--owner-password {m}"))?;
            if !e.contains('@') {
                anyhow::bail!("--owner-email must be an email address");
            }
            Some((e, passwords.hash(&p).map_err(anyhow::Error::msg)?))
        }
        _ => None,
    };
    let p = provision(&meta, &config.limits, name, owner, CLI_ACTOR)?;
    let _ = meta.audit(crate::meta::AuditEntry {
        seq: 0,
        at: now_micros(),
        tenant: Some(p.tenant.id.clone()),
        actor: CLI_ACTOR.into(),
        action: "tenant.create".into(),
        target: Some(p.tenant.id.clone()),
        detail: None,
    });
    println!("tenant_id: {}", p.tenant.id);
    println!("name: {}", p.tenant.name);
    if let Some(u) = &p.owner {
        println!("owner: {} ({})", u.email, u.id);
    }
    println!("api_key: {}", p.key_plain);
    Ok(())
}

pub fn tenant_list(dir: &DirArgs) -> anyhow::Result<()> {
    let config = dir.load()?;
    let mut cursor: Option<String> = None;
    println!("{:<20} {:<10} {:<24} name", "id", "disabled", "created_at");
    let meta = match target(&config)? {
        Target::Offline(m, _) => m,
        Target::Online(online) => loop {
            let mut path = "/api/v1/admin/tenants?limit=1000".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let v = online.call(Method::GET, &path, None)?;
            for t in v["tenants"].as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<10} {:<24} {}",
                    t["id"].as_str().unwrap_or(""),
                    t["disabled"].as_bool().unwrap_or(false),
                    t["created_at"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or("")
                );
            }
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(()),
            }
        },
    };
    loop {
        let (page, next) = meta.list_tenants(cursor.as_deref(), 1000)?;
        for t in page {
            println!(
                "{:<20} {:<10} {:<24} {}",
                t.id,
                t.disabled,
                rfc3339(t.created_at),
                t.name
            );
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(()),
        }
    }
}

pub fn key_create(
    dir: &DirArgs,
    tenant: &str,
    name: &str,
    scopes: &[String],
) -> anyhow::Result<()> {
    let config = dir.load()?;
    let meta = match target(&config)? {
        Target::Offline(m, _) => m,
        Target::Online(online) => {
            let v = online.call(
                Method::POST,
                &format!("/api/v1/admin/tenants/{tenant}/api-keys"),
                Some(serde_json::json!({"name": name, "scopes": scopes})),
            )?;
            print_str(&v, "key_id", "id");
            print_str(&v, "api_key", "key");
            return Ok(());
        }
    };
    if meta.get_tenant(tenant)?.is_none() {
        anyhow::bail!("no tenant {tenant:?}");
    }
    let scopes = scopes
        .iter()
        .map(|s| {
            Scope::parse(s.trim())
                .ok_or_else(|| anyhow::anyhow!("unknown scope {s:?} (ingest, read)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (rec, plain) = new_key(tenant, name, scopes, CLI_ACTOR);
    meta.create_key(&rec)?;
    println!("key_id: {}", rec.id);
    println!("api_key: {plain}");
    Ok(())
}

pub fn user_create(
    dir: &DirArgs,
    tenant: &str,
    email: &str,
    password: &str,
    role: &str,
) -> anyhow::Result<()> {
    let config = dir.load()?;
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("--role must be viewer, admin or owner"))?;
    crate::auth::password::check_policy(password).map_err(|m| anyhow::anyhow!("--password {m}"))?;
    if !email.contains('@') {
        anyhow::bail!("--email must be an email address");
    }
    let (meta, passwords) = match target(&config)? {
        Target::Offline(m, p) => (m, p),
        Target::Online(online) => {
            let v = online.call(
                Method::POST,
                &format!("/api/v1/admin/tenants/{tenant}/users"),
                Some(serde_json::json!({"email": email, "password": password, "role": role.as_str()})),
            )?;
            print_str(&v, "user_id", "id");
            println!(
                "email: {} role: {}",
                v["email"].as_str().unwrap_or(""),
                v["role"].as_str().unwrap_or("")
            );
            return Ok(());
        }
    };
    if meta.get_tenant(tenant)?.is_none() {
        anyhow::bail!("no tenant {tenant:?}");
    }
    let user = User {
        id: random::id("u"),
        tenant: Some(tenant.to_owned()),
        email: email.trim().to_owned(),
        password_hash: passwords.hash(password).map_err(anyhow::Error::msg)?,
        role,
        name: None,
        created_at: now_micros(),
        failed_logins: 0,
        locked_until: None,
    };
    meta.create_user(&user)?;
    println!("user_id: {}", user.id);
    println!("email: {} role: {}", user.email, user.role.as_str());
    Ok(())
}

/// The metadata of a data dir no server holds: `user unlock` and
/// `user reset-password` exist for when the HTTP API is no way back (the
/// administrator itself locked out), so they only run offline.
fn offline_only(config: &Config, what: &str) -> anyhow::Result<(Meta, PasswordHasherId)> {
    match AppState::open_meta_only(config) {
        Ok((meta, _jwt, passwords)) => Ok((meta, passwords)),
        Err(e) if e.downcast_ref::<DataDirInUse>().is_some() => Err(e.context(format!(
            "`{what}` works offline only: stop the server on this data dir first"
        ))),
        Err(e) => Err(e),
    }
}

/// `user unlock --email E`: clears the lockout and the failure count.
pub fn user_unlock(dir: &DirArgs, email: &str) -> anyhow::Result<()> {
    let config = dir.load()?;
    let (meta, _) = offline_only(&config, "user unlock")?;
    let user = meta
        .user_by_email(email.trim())?
        .ok_or_else(|| anyhow::anyhow!("no user with email {:?}", email.trim()))?;
    let was_locked = user.locked_until.is_some_and(|u| u > now_micros());
    meta.record_successful_login(&user.id)?;
    let _ = meta.audit(crate::meta::AuditEntry {
        seq: 0,
        at: now_micros(),
        tenant: user.tenant.clone(),
        actor: CLI_ACTOR.to_owned(),
        action: "user.unlock".to_owned(),
        target: Some(user.id.clone()),
        detail: None,
    });
    if was_locked {
        println!("unlocked {}", user.email);
    } else {
        println!("{} was not locked; failure count cleared", user.email);
    }
    Ok(())
}

/// Length of a generated password: 20 base62 characters ≈ 119 bits.
const RESET_PASSWORD_CHARS: usize = 20;

/// `user reset-password --email E [--password P]`: a new password (random
/// and printed when not given), the lockout cleared, every session ended.
pub fn user_reset_password(
    dir: &DirArgs,
    email: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let config = dir.load()?;
    if let Some(p) = &password {
        crate::auth::password::check_policy(p).map_err(|m| anyhow::anyhow!("--password {m}"))?;
    }
    let (meta, passwords) = offline_only(&config, "user reset-password")?;
    let user = meta
        .user_by_email(email.trim())?
        .ok_or_else(|| anyhow::anyhow!("no user with email {:?}", email.trim()))?;
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (random::base62(RESET_PASSWORD_CHARS), true),
    };
    let hash = passwords.hash(&password).map_err(anyhow::Error::msg)?;
    meta.update_user(&user.id, |u| {
        u.password_hash = hash;
        u.failed_logins = 0;
        u.locked_until = None;
        Ok(())
    })?;
    meta.revoke_user_refresh(&user.id)?;
    let _ = meta.audit(crate::meta::AuditEntry {
        seq: 0,
        at: now_micros(),
        tenant: user.tenant.clone(),
        actor: CLI_ACTOR.to_owned(),
        action: "user.reset_password".to_owned(),
        target: Some(user.id.clone()),
        detail: None,
    });
    if generated {
        println!("password: {password}");
    }
    println!("password of {} reset; lockout cleared", user.email);
    Ok(())
}

/// `check`: 0 when sound, 1 when damaged (or the rebuild failed), 2 when
/// the check itself failed.
pub fn check(args: &CheckArgs) -> ExitCode {
    let config = match args.dir.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let data_dir = &config.storage.data_dir;
    if !data_dir.is_dir() {
        eprintln!("error: {} is not a directory", data_dir.display());
        return ExitCode::from(2);
    }
    if args.rebuild_catalog {
        match pulsestream_storage::rebuild::rebuild_catalog(data_dir) {
            Ok(r) => {
                if let Some(p) = &r.moved_aside {
                    println!("unreadable catalog moved to {}", p.display());
                }
                for (to, why) in &r.quarantined {
                    println!("QUARANTINED: {why} (now {})", to.display());
                }
                for t in &r.from_wal {
                    println!(
                        "tenant {t}: sealed-through LSN matched from the WAL (version-1 segments)"
                    );
                }
                println!(
                    "catalog rebuilt: {} segments, {} tenants",
                    r.segments, r.tenants
                );
            }
            Err(e) => {
                eprintln!("error: cannot rebuild the catalog: {e}");
                return ExitCode::from(1);
            }
        }
    }
    match pulsestream_storage::store::verify(data_dir) {
        Ok(report) => {
            println!(
                "checked {} files, {} blocks, {} WAL records",
                report.files_checked, report.blocks_checked, report.wal_records_checked
            );
            for p in &report.problems {
                println!("DAMAGED: {p}");
            }
            if report.is_sound() {
                println!("store is sound");
                ExitCode::SUCCESS
            } else {
                println!("{} problem(s) found", report.problems.len());
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: cannot verify {}: {e}", data_dir.display());
            ExitCode::from(2)
        }
    }
}
