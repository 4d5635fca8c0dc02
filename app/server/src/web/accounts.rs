//! Sign-up, sign-in, sign-out and accepting an invitation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_store::accounts::{NewUser, User};
use sluice_store::audit::AuditEvent;
use sluice_store::domain::{Email, NewPassword, PersonName, Role, TenantName};
use sluice_store::{StoreError, password};

use crate::auth::workspace_choice::{self, ChoosableAccount};
use crate::auth::{
    AnonCsrf, AnonCsrfForm, CsrfForm, Throttled, client_ip, email_key, expired_session_cookie,
    session_cookie, session_cookie_name,
};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{FormErrors, redirect, render_with_status};

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    csrf: String,
    errors: FormErrors,
    tenant_name: String,
    name: String,
    email: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    errors: FormErrors,
    email: String,
}

#[derive(Template)]
#[template(path = "choose_workspace.html")]
struct ChooseWorkspacePage {
    csrf: String,
    choice: String,
    workspaces: Vec<WorkspaceOption>,
}

struct WorkspaceOption {
    user_id: String,
    tenant_name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    csrf: String,
    errors: FormErrors,
    tenant_name: String,
    email: String,
    role: &'static str,
    name: String,
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    tenant_name: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct WorkspaceChoiceForm {
    #[serde(default)]
    choice: String,
    #[serde(default)]
    user_id: String,
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn anon_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    page: impl FnOnce(String) -> Result<HttpResponse, AppError>,
) -> Result<HttpResponse, AppError> {
    let csrf = AnonCsrf::for_request(req, state);
    let mut response = page(csrf.token)?;
    if let Some(cookie) = csrf.cookie {
        response.add_cookie(&cookie).map_err(AppError::internal)?;
    }
    *response.status_mut() = status;
    Ok(response)
}

/// Signs `user` in: a new session, its cookie, and an audit entry.
async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    action: &str,
) -> Result<HttpResponse, AppError> {
    let (_, token) = state.store.create_session(user).await?;
    let ip = client_ip(req);
    state
        .store
        .audit(
            &user.tenant_id,
            AuditEvent {
                actor: &format!("user:{}", user.email),
                action,
                target: &user.email,
                detail: "",
                ip: ip.as_deref(),
            },
        )
        .await?;
    let mut response = redirect("/");
    response
        .add_cookie(&session_cookie(&token, state.secure_cookies))
        .map_err(AppError::internal)?;
    Ok(response)
}

pub async fn signup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    anon_page(&req, &state, StatusCode::OK, |csrf| {
        crate::web::render(&SignupPage {
            csrf,
            errors: FormErrors::default(),
            tenant_name: String::new(),
            name: String::new(),
            email: String::new(),
        })
    })
}

pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    AnonCsrfForm(form): AnonCsrfForm<SignupForm>,
) -> Result<HttpResponse, AppError> {
    let signup_key = format!("signup:{}", state.throttle.address_key(&req));
    state
        .throttle
        .enter(
            &state.store,
            &signup_key,
            state.throttle.signup_per_address(),
            Throttled::SignUp,
        )
        .await?;
    let mut errors = FormErrors::default();
    let tenant_name = errors.check(TenantName::parse(&form.tenant_name));
    let name = errors.check(PersonName::parse(&form.name));
    let email = errors.check(Email::parse(&form.email));
    let password = errors.check(NewPassword::parse(&form.password, "password"));
    let created = match (tenant_name, name, email, password) {
        (Some(tenant_name), Some(name), Some(email), Some(password)) if errors.is_empty() => {
            match state
                .store
                .create_tenant_with_owner(
                    &tenant_name,
                    NewUser {
                        email,
                        name,
                        password,
                        role: Role::Owner,
                    },
                )
                .await
            {
                Ok((_, user)) => Some(user),
                Err(StoreError::Conflict { field, message }) => {
                    errors.add(field, message);
                    None
                }
                Err(other) => return Err(other.into()),
            }
        }
        _ => None,
    };
    match created {
        Some(user) => start_session(&req, &state, &user, "tenant.signup").await,
        None => anon_page(&req, &state, StatusCode::BAD_REQUEST, |csrf| {
            crate::web::render(&SignupPage {
                csrf,
                errors,
                tenant_name: form.tenant_name,
                name: form.name,
                email: form.email,
            })
        }),
    }
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(cookie) = req.cookie(session_cookie_name(state.secure_cookies))
        && state
            .store
            .session_by_token(cookie.value())
            .await?
            .is_some()
    {
        return Ok(redirect("/"));
    }
    anon_page(&req, &state, StatusCode::OK, |csrf| {
        crate::web::render(&LoginPage {
            csrf,
            errors: FormErrors::default(),
            email: String::new(),
        })
    })
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    AnonCsrfForm(form): AnonCsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let throttle = &state.throttle;
    let email_key = email_key(&form.email);
    let address_key = throttle.address_key(&req);
    throttle
        .enter(
            &state.store,
            &address_key,
            throttle.login_per_address(),
            Throttled::SignIn,
        )
        .await?;
    // A browser already signed in as this user is not the guesser that locked the
    // email, so the lock does not keep it out.
    if !signed_in_as(&req, &state, &form.email).await? {
        throttle
            .enter(
                &state.store,
                &email_key,
                throttle.login_per_email(),
                Throttled::SignIn,
            )
            .await?;
    }
    let accounts = match Email::parse(&form.email) {
        Ok(email) => state.store.users_by_email(&email).await?,
        Err(_) => Vec::new(),
    };
    let mut matched = accounts_matching(accounts, &form.password).await;
    if matched.is_empty() {
        let mut errors = FormErrors::default();
        errors.add("password", "Email or password is incorrect.");
        return anon_page(&req, &state, StatusCode::UNAUTHORIZED, |csrf| {
            crate::web::render(&LoginPage {
                csrf,
                errors,
                email: form.email,
            })
        });
    }
    state.store.clear_attempts(&email_key).await?;
    state.store.forgive_attempt(&address_key).await?;
    if matched.len() == 1 {
        let user = matched.remove(0);
        return start_session(&req, &state, &user, "user.login").await;
    }
    choose_workspace_page(&req, &state, &matched).await
}

/// The accounts among `accounts` (one email's, in several tenants) whose password
/// is `password`. The checks run side by side, within the argon2 cap, so an email
/// with a few accounts answers about as fast as one with a single account; with
/// none, the same time is spent on a dummy hash.
async fn accounts_matching(accounts: Vec<User>, password: &str) -> Vec<User> {
    if accounts.is_empty() {
        password::burn_verification_time(password).await;
        return Vec::new();
    }
    let checks = accounts.iter().map(|user| user.password_matches(password));
    let results = futures::future::join_all(checks).await;
    accounts
        .into_iter()
        .zip(results)
        .filter_map(|(user, matches)| matches.then_some(user))
        .collect()
}

/// The password opened several workspaces: the user picks one. Only the tenants
/// whose account matched are shown, and the signed choice names only those.
async fn choose_workspace_page(
    req: &HttpRequest,
    state: &AppState,
    matched: &[User],
) -> Result<HttpResponse, AppError> {
    let accounts: Vec<ChoosableAccount> = matched
        .iter()
        .map(|u| ChoosableAccount {
            tenant: u.tenant_id.clone(),
            user: u.id.clone(),
        })
        .collect();
    // The sign-in form passed its anonymous CSRF check, so the cookie is there.
    let choice = workspace_choice::issue(req, state, &accounts).ok_or(AppError::Csrf)?;
    let mut workspaces = Vec::with_capacity(matched.len());
    for user in matched {
        let tenant = state.store.tenant(&user.tenant_id).await?;
        workspaces.push(WorkspaceOption {
            user_id: user.id.to_string(),
            tenant_name: tenant.name,
            role: user.role.as_str(),
        });
    }
    anon_page(req, state, StatusCode::OK, |csrf| {
        crate::web::render(&ChooseWorkspacePage {
            csrf,
            choice,
            workspaces,
        })
    })
}

/// Signs into the workspace chosen on the chooser page. A choice that is forged,
/// expired, from another browser or for an account it does not name (or one
/// removed meanwhile) is refused with the sign-in form.
pub async fn choose_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    AnonCsrfForm(form): AnonCsrfForm<WorkspaceChoiceForm>,
) -> Result<HttpResponse, AppError> {
    let chosen = workspace_choice::verify(&req, &state, &form.choice).and_then(|accounts| {
        accounts
            .into_iter()
            .find(|a| a.user.as_str() == form.user_id)
    });
    let user = match chosen {
        Some(account) => match state.store.user(&account.tenant, &account.user).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    match user {
        Some(user) => start_session(&req, &state, &user, "user.login").await,
        None => {
            let mut errors = FormErrors::default();
            errors.add(
                "email",
                "That workspace choice has expired or is not valid here; sign in again.",
            );
            anon_page(&req, &state, StatusCode::FORBIDDEN, |csrf| {
                crate::web::render(&LoginPage {
                    csrf,
                    errors,
                    email: String::new(),
                })
            })
        }
    }
}

/// Whether the request carries a live session of the user with `email`.
async fn signed_in_as(req: &HttpRequest, state: &AppState, email: &str) -> Result<bool, AppError> {
    let Some(cookie) = req.cookie(session_cookie_name(state.secure_cookies)) else {
        return Ok(false);
    };
    let session = state.store.session_by_token(cookie.value()).await?;
    Ok(session.is_some_and(|s| s.user.email.eq_ignore_ascii_case(email.trim())))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    if let Some(cookie) = req.cookie(session_cookie_name(state.secure_cookies))
        && let Some(session) = state.store.session_by_token(cookie.value()).await?
    {
        state.store.delete_session(&session.id).await?;
        let user = &session.user;
        state
            .store
            .audit(
                &user.tenant_id,
                AuditEvent {
                    actor: &format!("user:{}", user.email),
                    action: "user.logout",
                    target: &user.email,
                    detail: "",
                    ip: client_ip(&req).as_deref(),
                },
            )
            .await?;
    }
    let mut response = redirect("/login");
    response
        .add_cookie(&expired_session_cookie(state.secure_cookies))
        .map_err(AppError::internal)?;
    Ok(response)
}

pub async fn invitation_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let invitation = state.store.invitation_by_token(&token).await?;
    let tenant = state.store.tenant(&invitation.tenant_id).await?;
    anon_page(&req, &state, StatusCode::OK, |csrf| {
        crate::web::render(&InvitePage {
            csrf,
            errors: FormErrors::default(),
            tenant_name: tenant.name,
            email: invitation.email,
            role: invitation.role.as_str(),
            name: String::new(),
        })
    })
}

pub async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    AnonCsrfForm(form): AnonCsrfForm<AcceptForm>,
) -> Result<HttpResponse, AppError> {
    let invitation = state.store.invitation_by_token(&token).await?;
    let mut errors = FormErrors::default();
    let name = errors.check(PersonName::parse(&form.name));
    let password = errors.check(NewPassword::parse(&form.password, "password"));
    if let (Some(name), Some(password)) = (name, password) {
        let user = state
            .store
            .accept_invitation(&token, name, password)
            .await?;
        return start_session(&req, &state, &user, "invitation.accept").await;
    }
    let tenant = state.store.tenant(&invitation.tenant_id).await?;
    anon_page(&req, &state, StatusCode::BAD_REQUEST, |csrf| {
        render_with_status(
            &InvitePage {
                csrf,
                errors,
                tenant_name: tenant.name,
                email: invitation.email,
                role: invitation.role.as_str(),
                name: form.name,
            },
            StatusCode::BAD_REQUEST,
        )
    })
}
