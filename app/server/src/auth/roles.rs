//! Role checks as extractors: a handler that changes something takes [`Writer`]
//! (or [`Owner`] for managing users), so it cannot forget the check. Both also
//! carry the [`Actor`] the change is audited under.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use sluice_store::domain::Role;
use std::ops::Deref;

use crate::auth::{ApiCaller, CurrentUser, client_ip};
use crate::error::AppError;
use crate::service::{Actor, Channel};

/// A signed-in user or an API caller: whoever may be checked for a role.
pub trait Caller: FromRequest + 'static {
    fn role(&self) -> Role;
    /// Why a viewer is refused, in this caller's words.
    const READ_ONLY: &'static str;
    /// Who the audit log names for this caller's changes, and from where.
    fn actor_at(&self, req: &HttpRequest) -> Actor;
}

impl Caller for CurrentUser {
    const READ_ONLY: &'static str = "viewers cannot change anything; ask an owner or admin";

    fn role(&self) -> Role {
        self.user().role
    }

    fn actor_at(&self, req: &HttpRequest) -> Actor {
        Actor {
            tenant: self.tenant.id.clone(),
            name: CurrentUser::actor(self),
            ip: client_ip(req),
            channel: Channel::Page,
        }
    }
}

impl Caller for ApiCaller {
    const READ_ONLY: &'static str =
        "this key's creator is a viewer: it can read but not change anything";

    fn role(&self) -> Role {
        self.role
    }

    fn actor_at(&self, req: &HttpRequest) -> Actor {
        Actor {
            tenant: self.tenant().clone(),
            name: ApiCaller::actor(self),
            ip: client_ip(req),
            channel: Channel::Api,
        }
    }
}

/// A caller whose role may change things (admin or owner).
pub struct Writer<C> {
    caller: C,
    actor: Actor,
}

/// A caller who is an owner (managing users and roles).
pub struct Owner<C> {
    caller: C,
    actor: Actor,
}

impl<C> Writer<C> {
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

impl<C> Owner<C> {
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

impl<C> Deref for Writer<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.caller
    }
}

impl<C> Deref for Owner<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.caller
    }
}

/// Extracts `C`, then refuses it (403) unless `allowed(role)`.
fn checked<C: Caller>(
    req: &HttpRequest,
    payload: &mut Payload,
    allowed: fn(Role) -> bool,
    refusal: &'static str,
) -> LocalBoxFuture<'static, Result<(C, Actor), C::Error>>
where
    C::Error: From<AppError> + 'static,
    C::Future: 'static,
{
    let caller = C::from_request(req, payload);
    let req = req.clone();
    Box::pin(async move {
        let caller = caller.await?;
        if !allowed(caller.role()) {
            return Err(AppError::Forbidden(refusal).into());
        }
        let actor = caller.actor_at(&req);
        Ok((caller, actor))
    })
}

impl<C: Caller> FromRequest for Writer<C>
where
    C::Error: From<AppError> + 'static,
    C::Future: 'static,
{
    type Error = C::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = checked::<C>(req, payload, Role::can_write, C::READ_ONLY);
        Box::pin(async move {
            let (caller, actor) = checked.await?;
            Ok(Writer { caller, actor })
        })
    }
}

impl<C: Caller> FromRequest for Owner<C>
where
    C::Error: From<AppError> + 'static,
    C::Future: 'static,
{
    type Error = C::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = checked::<C>(
            req,
            payload,
            Role::can_manage_users,
            "only an owner can manage users",
        );
        Box::pin(async move {
            let (caller, actor) = checked.await?;
            Ok(Owner { caller, actor })
        })
    }
}
