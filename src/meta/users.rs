//! Users: unique emails (case-insensitive, across tenants, since login is by
//! email alone), roles, lockout state, and the platform administrator.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{
    DASHBOARDS, Meta, MetaError, MetaResult, USER_EMAILS, USERS, User, decode, encode, get_json,
    page_json,
};

/// What a failed login did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    /// Counted; the account is still open.
    Failed { attempts: u32 },
    /// This failure reached the threshold; locked until the time given.
    LockedNow { until: i64 },
}

pub(super) fn insert_user(txn: &WriteTransaction, u: &User) -> MetaResult<()> {
    let mut emails = txn.open_table(USER_EMAILS)?;
    let lemail = u.email.to_lowercase();
    if emails.get(lemail.as_str())?.is_some() {
        return Err(MetaError::Conflict(format!(
            "a user with email {:?} already exists",
            u.email
        )));
    }
    emails.insert(lemail.as_str(), u.id.as_str())?;
    txn.open_table(USERS)?
        .insert(u.id.as_str(), encode(u)?.as_slice())?;
    Ok(())
}

impl Meta {
    /// Creates a user; 409 if the email is taken.
    pub fn create_user(&self, u: &User) -> MetaResult<()> {
        let txn = self.db().begin_write()?;
        insert_user(&txn, u)?;
        txn.commit()?;
        Ok(())
    }

    pub fn get_user(&self, id: &str) -> MetaResult<Option<User>> {
        let txn = self.db().begin_read()?;
        get_json(&txn.open_table(USERS)?, "users", id)
    }

    pub fn user_by_email(&self, email: &str) -> MetaResult<Option<User>> {
        let txn = self.db().begin_read()?;
        let emails = txn.open_table(USER_EMAILS)?;
        let Some(id) = emails.get(email.to_lowercase().as_str())? else {
            return Ok(None);
        };
        let id = id.value().to_owned();
        get_json(&txn.open_table(USERS)?, "users", &id)
    }

    /// A page of users of `tenant` (`None`: platform users) in id order.
    pub fn list_users(
        &self,
        tenant: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> MetaResult<(Vec<User>, Option<String>)> {
        let txn = self.db().begin_read()?;
        page_json(
            &txn.open_table(USERS)?,
            "users",
            after,
            limit,
            |u: &User| u.tenant.as_deref() == tenant,
        )
    }

    /// Applies `change` to the user and stores it; 404 if absent, 409 if a
    /// changed email is taken.
    pub fn update_user(
        &self,
        id: &str,
        change: impl FnOnce(&mut User) -> Result<(), MetaError>,
    ) -> MetaResult<User> {
        let txn = self.db().begin_write()?;
        let updated = {
            let mut users = txn.open_table(USERS)?;
            let mut u: User =
                get_json(&users, "users", id)?.ok_or_else(|| MetaError::NotFound {
                    what: "user",
                    id: id.to_owned(),
                })?;
            let old_email = u.email.to_lowercase();
            change(&mut u)?;
            u.id = id.to_owned();
            let new_email = u.email.to_lowercase();
            if new_email != old_email {
                let mut emails = txn.open_table(USER_EMAILS)?;
                if emails.get(new_email.as_str())?.is_some() {
                    return Err(MetaError::Conflict(format!(
                        "a user with email {:?} already exists",
                        u.email
                    )));
                }
                emails.remove(old_email.as_str())?;
                emails.insert(new_email.as_str(), id)?;
            }
            users.insert(id, encode(&u)?.as_slice())?;
            u
        };
        txn.commit()?;
        Ok(updated)
    }

    /// Deletes a user and its saved dashboard.
    pub fn delete_user(&self, id: &str) -> MetaResult<User> {
        let txn = self.db().begin_write()?;
        let u = {
            let mut users = txn.open_table(USERS)?;
            let u: User = match users.remove(id)? {
                Some(v) => decode("users", id, v.value())?,
                None => {
                    return Err(MetaError::NotFound {
                        what: "user",
                        id: id.to_owned(),
                    });
                }
            };
            txn.open_table(USER_EMAILS)?
                .remove(u.email.to_lowercase().as_str())?;
            txn.open_table(DASHBOARDS)?.remove(id)?;
            u
        };
        txn.commit()?;
        Ok(u)
    }

    /// True once a platform administrator (a user with no tenant) exists.
    pub fn has_platform_admin(&self) -> MetaResult<bool> {
        let (users, _) = self.list_users(None, None, 1)?;
        Ok(!users.is_empty())
    }

    /// Counts a failed login; at `threshold` consecutive failures the
    /// account locks for `lock_micros` and the counter restarts.
    pub fn record_failed_login(
        &self,
        id: &str,
        threshold: u32,
        lock_micros: i64,
        now: i64,
    ) -> MetaResult<LoginState> {
        let mut state = LoginState::Failed { attempts: 0 };
        self.update_user(id, |u| {
            u.failed_logins += 1;
            if u.failed_logins >= threshold {
                let until = now.saturating_add(lock_micros);
                u.locked_until = Some(until);
                u.failed_logins = 0;
                state = LoginState::LockedNow { until };
            } else {
                state = LoginState::Failed {
                    attempts: u.failed_logins,
                };
            }
            Ok(())
        })?;
        Ok(state)
    }

    /// Clears the failure count after a successful login.
    pub fn record_successful_login(&self, id: &str) -> MetaResult<()> {
        self.update_user(id, |u| {
            u.failed_logins = 0;
            u.locked_until = None;
            Ok(())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;
    use crate::auth::Role;

    fn user(id: &str, tenant: Option<&str>, email: &str) -> User {
        User {
            id: id.into(),
            tenant: tenant.map(Into::into),
            email: email.into(),
            password_hash: "x".into(),
            role: Role::Viewer,
            name: None,
            created_at: 0,
            failed_logins: 0,
            locked_until: None,
        }
    }

    #[test]
    fn emails_unique_listing_by_tenant_and_lockout() {
        let (_d, m) = test_meta();
        assert!(!m.has_platform_admin().expect("q"));
        m.create_user(&user("u_1", Some("t_a"), "A@x.io"))
            .expect("1");
        m.create_user(&user("u_2", Some("t_b"), "b@x.io"))
            .expect("2");
        m.create_user(&user("u_0", None, "admin@localhost"))
            .expect("0");
        assert!(matches!(
            m.create_user(&user("u_3", Some("t_b"), "a@X.io")),
            Err(MetaError::Conflict(_))
        ));
        assert!(m.has_platform_admin().expect("q"));
        assert_eq!(
            m.user_by_email("a@x.IO").expect("q").expect("found").id,
            "u_1"
        );
        let (a, _) = m.list_users(Some("t_a"), None, 10).expect("list");
        assert_eq!(a.len(), 1);

        for i in 1..5 {
            assert_eq!(
                m.record_failed_login("u_1", 5, 100, 1000).expect("fail"),
                LoginState::Failed { attempts: i }
            );
        }
        assert_eq!(
            m.record_failed_login("u_1", 5, 100, 1000).expect("fail"),
            LoginState::LockedNow { until: 1100 }
        );
        m.record_successful_login("u_1").expect("ok");
        assert_eq!(m.get_user("u_1").expect("q").expect("u").locked_until, None);

        m.delete_user("u_1").expect("delete");
        assert!(m.user_by_email("a@x.io").expect("q").is_none());
        m.create_user(&user("u_4", Some("t_a"), "a@x.io"))
            .expect("email free again");
    }
}
