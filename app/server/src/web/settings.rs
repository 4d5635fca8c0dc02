//! Settings: your password, the tenant's users and invitations, API keys.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_store::StoreError;
use sluice_store::api_keys::{ApiKey, KeyCreator};
use sluice_store::domain::{Email, NewPassword, Role};
use sluice_store::ids::{ApiKeyId, InvitationId, UserId};

use crate::auth::{CsrfForm, CurrentUser, Owner, Writer};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FormErrors, Layout, no_store, redirect, render_with_status, when};

struct UserRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    is_me: bool,
}

struct InvitationRow {
    id: String,
    email: String,
    role: &'static str,
    expires: String,
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    /// Who the key acts for: a user's email, or "system" for an operator's key.
    creator: String,
    created: String,
    last_used: String,
    revoked: bool,
}

/// A secret shown exactly once, right after it was created.
struct OneTimeSecret {
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    roles: [Role; 3],
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    keys: Vec<KeyRow>,
    notice: Option<&'static str>,
    secret: Option<OneTimeSecret>,
    errors: FormErrors,
    /// The key callbacks are signed with, for receivers to verify (admins only).
    signing_secret: Option<String>,
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "password" => "Your password was changed; your other sessions were signed out.",
        "role" => "The role was changed.",
        "removed" => "The user was removed.",
        "invitation_revoked" => "The invitation was revoked.",
        "key_revoked" => "The API key was revoked; requests using it are now refused.",
        _ => return None,
    })
}

async fn page(
    state: &AppState,
    current: &CurrentUser,
    notice: Option<&'static str>,
    secret: Option<OneTimeSecret>,
    errors: FormErrors,
) -> Result<SettingsPage, AppError> {
    let tenant = &current.tenant.id;
    let me = &current.user().id;
    let users = state
        .store
        .users(tenant)
        .await?
        .into_iter()
        .map(|u| UserRow {
            is_me: &u.id == me,
            id: u.id.to_string(),
            name: u.name,
            email: u.email,
            role: u.role.as_str(),
        })
        .collect();
    let invitations = if current.user().role.can_manage_users() {
        state
            .store
            .pending_invitations(tenant)
            .await?
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email,
                role: i.role.as_str(),
                expires: when(&i.expires_at),
            })
            .collect()
    } else {
        Vec::new()
    };
    let keys = if current.user().role.can_write() {
        state
            .store
            .api_keys(tenant)
            .await?
            .into_iter()
            .map(|k| KeyRow {
                creator: key_creator(&k),
                id: k.id.to_string(),
                name: k.name,
                prefix: k.prefix,
                created: when(&k.created_at),
                last_used: k
                    .last_used_at
                    .as_ref()
                    .map(when)
                    .unwrap_or_else(|| "never".into()),
                revoked: k.revoked_at.is_some(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let signing_secret = current
        .user()
        .role
        .can_write()
        .then(|| state.store.callback_signing_secret(tenant));
    Ok(SettingsPage {
        layout: Layout::new(current, "settings"),
        roles: Role::ALL,
        users,
        invitations,
        keys,
        notice,
        secret,
        errors,
        signing_secret,
    })
}

/// How the key list names a key's creator.
fn key_creator(key: &ApiKey) -> String {
    if key.is_system() {
        "system (command line)".into()
    } else {
        key.created_by
            .strip_prefix("user:")
            .unwrap_or(&key.created_by)
            .to_string()
    }
}

fn show_page(page: SettingsPage, status: StatusCode) -> Result<HttpResponse, AppError> {
    let shows_secret = page.secret.is_some();
    let mut response = render_with_status(&page, status)?;
    if shows_secret {
        no_store(&mut response);
    }
    Ok(response)
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let notice = query.done.as_deref().and_then(notice_text);
    show_page(
        page(&state, &current, notice, None, FormErrors::default()).await?,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: CurrentUser,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    if !current
        .confirm_password(&state, &form.current_password)
        .await?
    {
        errors.add("current_password", "is not your current password");
    }
    let new_password = errors.check(NewPassword::parse(&form.new_password, "new_password"));
    let (Some(new_password), true) = (new_password, errors.is_empty()) else {
        return show_page(
            page(&state, &current, None, None, errors).await?,
            StatusCode::BAD_REQUEST,
        );
    };
    let user = current.user();
    state
        .store
        .set_password(&current.tenant.id, &user.id, &new_password)
        .await?;
    state
        .store
        .delete_other_sessions(&current.tenant.id, &user.id, &current.session.id)
        .await?;
    // A new password ends any lock guessers put on the old one.
    state
        .store
        .clear_attempts(&crate::auth::email_key(&user.email))
        .await?;
    current
        .audit(&state, &req, "user.password_change", &user.email, "")
        .await?;
    Ok(redirect("/settings?done=password"))
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub async fn invite_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Owner<CurrentUser>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    let email = errors.check(Email::parse(&form.email).map_err(|mut e| {
        e.field = "invite_email";
        e
    }));
    let role = errors.check(Role::parse(&form.role));
    let (Some(email), Some(role)) = (email, role) else {
        return show_page(
            page(&state, &current, None, None, errors).await?,
            StatusCode::BAD_REQUEST,
        );
    };
    match state
        .store
        .create_invitation(&current.tenant.id, &email, role, &current.actor().name)
        .await
    {
        Ok((invitation, token)) => {
            current
                .audit(
                    &state,
                    &req,
                    "user.invite",
                    &invitation.email,
                    &format!("role {}", invitation.role),
                )
                .await?;
            let link = format!("{}/invite/{token}", state.public_url);
            let secret = OneTimeSecret {
                label: "Invitation link — send it to the new user; it is shown only now and works for 7 days",
                value: link,
            };
            show_page(
                page(&state, &current, None, Some(secret), FormErrors::default()).await?,
                StatusCode::OK,
            )
        }
        Err(StoreError::Conflict { message, .. }) => {
            errors.add("invite_email", message);
            show_page(
                page(&state, &current, None, None, errors).await?,
                StatusCode::CONFLICT,
            )
        }
        Err(other) => Err(other.into()),
    }
}

fn user_id(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn change_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Owner<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let id = user_id(&id)?;
    let role = Role::parse(&form.role)?;
    let target = state.store.user(&current.tenant.id, &id).await?;
    state.store.set_role(&current.tenant.id, &id, role).await?;
    current
        .audit(
            &state,
            &req,
            "user.role_change",
            &target.email,
            &format!("{} → {}", target.role, role),
        )
        .await?;
    Ok(redirect("/settings?done=role"))
}

pub async fn remove_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Owner<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let id = user_id(&id)?;
    if id == current.user().id {
        return Err(AppError::Conflict {
            field: "user",
            message: "you cannot remove yourself".into(),
        });
    }
    let target = state.store.user(&current.tenant.id, &id).await?;
    state.store.delete_user(&current.tenant.id, &id).await?;
    current
        .audit(
            &state,
            &req,
            "user.remove",
            &target.email,
            &format!("role {}", target.role),
        )
        .await?;
    Ok(redirect("/settings?done=removed"))
}

pub async fn revoke_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Owner<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let id = InvitationId::parse(&id).ok_or(AppError::NotFound)?;
    let invitation = state
        .store
        .revoke_invitation(&current.tenant.id, &id)
        .await?;
    current
        .audit(&state, &req, "invitation.revoke", &invitation.email, "")
        .await?;
    Ok(redirect("/settings?done=invitation_revoked"))
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
}

pub async fn create_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    CsrfForm(form): CsrfForm<KeyForm>,
) -> Result<HttpResponse, AppError> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        let mut errors = FormErrors::default();
        errors.add("key_name", "is required (at most 80 characters)");
        return show_page(
            page(&state, &current, None, None, errors).await?,
            StatusCode::BAD_REQUEST,
        );
    }
    let (key, secret) = state
        .store
        .create_api_key(&current.tenant.id, name, KeyCreator::User(current.user()))
        .await?;
    current
        .audit(&state, &req, "api_key.create", &key.name, &key.prefix)
        .await?;
    let secret = OneTimeSecret {
        label: "New API key — copy it now; it is shown only once",
        value: secret,
    };
    show_page(
        page(&state, &current, None, Some(secret), FormErrors::default()).await?,
        StatusCode::CREATED,
    )
}

pub async fn revoke_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let id = ApiKeyId::parse(&id).ok_or(AppError::NotFound)?;
    let key = state.store.revoke_api_key(&current.tenant.id, &id).await?;
    current
        .audit(&state, &req, "api_key.revoke", &key.name, &key.prefix)
        .await?;
    Ok(redirect("/settings?done=key_revoked"))
}
