//! Who is calling: the verified credential of a request, and the tenant
//! scope that can only be obtained from one.
//!
//! `TenantScope` has no public constructor: handlers get one only by calling
//! `Principal::tenant_scope()` on a principal that `AppState::authenticate`
//! produced, so every read and write is scoped to the credential's tenant by
//! construction rather than by remembering to filter.

use pulsestream_storage::TenantId;
use serde::{Deserialize, Serialize};

use crate::http::ApiError;

/// A user's role within its tenant, ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything of the tenant.
    Viewer,
    /// Also rules, channels, silences, API keys, users.
    Admin,
    /// Also tenant settings and owners.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user with a valid access token. `tenant` is `None` only for the
    /// platform administrator, which belongs to no tenant.
    User {
        user_id: String,
        email: String,
        tenant: Option<TenantId>,
        role: Role,
    },
    /// An agent with a valid, unrevoked API key.
    ApiKey {
        key_id: String,
        tenant: TenantId,
        scopes: Vec<Scope>,
    },
}

/// Proof that the holder acts for exactly this tenant. Only obtainable from
/// a verified `Principal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope(TenantId);

impl TenantScope {
    pub fn tenant(&self) -> &TenantId {
        &self.0
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    /// Scope for the platform administrator acting on a tenant it names
    /// (admin tenant endpoints, cross-tenant queries). Crate-private: only
    /// code that has checked `is_platform_admin()` should call it.
    pub(crate) fn for_platform_admin(
        principal: &Principal,
        tenant: TenantId,
    ) -> Result<Self, ApiError> {
        if principal.is_platform_admin() {
            Ok(TenantScope(tenant))
        } else {
            Err(ApiError::forbidden("platform administrator only"))
        }
    }
}

impl Principal {
    /// The tenant this credential acts for. The platform administrator has
    /// none and gets 403 on tenant-scoped endpoints.
    pub fn tenant_scope(&self) -> Result<TenantScope, ApiError> {
        match self {
            Principal::User {
                tenant: Some(t), ..
            }
            | Principal::ApiKey { tenant: t, .. } => Ok(TenantScope(t.clone())),
            Principal::User { tenant: None, .. } => Err(ApiError::forbidden(
                "the platform administrator belongs to no tenant",
            )),
        }
    }

    /// True for the platform administrator.
    pub fn is_platform_admin(&self) -> bool {
        matches!(self, Principal::User { tenant: None, .. })
    }

    /// Reading events: any user of a tenant, or an API key with scope `read`.
    pub fn require_read(&self) -> Result<TenantScope, ApiError> {
        if let Principal::ApiKey { scopes, .. } = self
            && !scopes.contains(&Scope::Read)
        {
            return Err(ApiError::forbidden("API key lacks the read scope"));
        }
        self.tenant_scope()
    }

    /// Ingesting events: an API key with scope `ingest`. Users ingest only
    /// through keys.
    pub fn require_ingest(&self) -> Result<TenantScope, ApiError> {
        match self {
            Principal::ApiKey { scopes, .. } if scopes.contains(&Scope::Ingest) => {
                self.tenant_scope()
            }
            Principal::ApiKey { .. } => Err(ApiError::forbidden("API key lacks the ingest scope")),
            Principal::User { .. } => Err(ApiError::forbidden(
                "ingestion needs an API key with the ingest scope",
            )),
        }
    }

    /// A tenant user with at least `role`. API keys never pass.
    pub fn require_role(&self, role: Role) -> Result<TenantScope, ApiError> {
        match self {
            Principal::User {
                tenant: Some(_),
                role: have,
                ..
            } if *have >= role => self.tenant_scope(),
            Principal::User {
                tenant: Some(_), ..
            } => Err(ApiError::forbidden(format!(
                "requires the {} role",
                role.as_str()
            ))),
            Principal::User { tenant: None, .. } => Err(ApiError::forbidden(
                "the platform administrator belongs to no tenant",
            )),
            Principal::ApiKey { .. } => Err(ApiError::forbidden("requires a user token")),
        }
    }

    /// The user id and email of a user principal (403 for API keys).
    pub fn require_user(&self) -> Result<(&str, &str), ApiError> {
        match self {
            Principal::User { user_id, email, .. } => Ok((user_id, email)),
            Principal::ApiKey { .. } => Err(ApiError::forbidden("requires a user token")),
        }
    }

    /// The platform administrator only.
    pub fn require_platform_admin(&self) -> Result<(), ApiError> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("platform administrator only"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Principal {
        Principal::User {
            user_id: "u1".into(),
            email: "a@b".into(),
            tenant: TenantId::new("t1"),
            role,
        }
    }

    #[test]
    fn roles_are_ordered_and_enforced() {
        assert!(Role::Viewer < Role::Admin && Role::Admin < Role::Owner);
        assert!(user(Role::Viewer).require_role(Role::Admin).is_err());
        assert_eq!(
            user(Role::Owner)
                .require_role(Role::Admin)
                .expect("owner")
                .as_str(),
            "t1"
        );
        assert!(user(Role::Viewer).require_read().is_ok());
        assert!(user(Role::Owner).require_ingest().is_err());
    }

    #[test]
    fn keys_need_their_scope() {
        let k = Principal::ApiKey {
            key_id: "k".into(),
            tenant: TenantId::new("t2").expect("id"),
            scopes: vec![Scope::Ingest],
        };
        assert!(k.require_ingest().is_ok());
        assert_eq!(k.require_read().unwrap_err().status.as_u16(), 403);
        assert!(k.require_role(Role::Viewer).is_err());
        assert!(!k.is_platform_admin());
    }

    #[test]
    fn platform_admin_has_no_tenant_scope() {
        let p = Principal::User {
            user_id: "root".into(),
            email: "admin@localhost".into(),
            tenant: None,
            role: Role::Owner,
        };
        assert!(p.is_platform_admin());
        assert!(p.tenant_scope().is_err());
        assert!(p.require_read().is_err());
        let t = TenantId::new("t9").expect("id");
        assert!(TenantScope::for_platform_admin(&p, t.clone()).is_ok());
        assert!(TenantScope::for_platform_admin(&user(Role::Owner), t).is_err());
    }
}
