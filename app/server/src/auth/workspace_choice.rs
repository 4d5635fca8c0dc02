//! "Choose a workspace": when a sign-in's password matches accounts of the same
//! email in several tenants, the browser gets a short-lived token naming exactly
//! those accounts, and posts it back with the one it chose. The token is an HMAC
//! over the accounts and its expiry, bound to the browser's anonymous cookie, so
//! it cannot be forged, widened to another account, replayed after it expires or
//! carried to another browser. It needs no storage.

use actix_web::HttpRequest;
use chrono::Duration;
use sluice_store::ids::{TenantId, UserId};
use sluice_store::secret::SecretKey;

use crate::auth::csrf::anon_cookie_value;
use crate::state::AppState;

/// How long the chooser may stay open before the user signs in again.
pub const CHOICE_LIFETIME: Duration = Duration::minutes(5);

const PURPOSE: &str = "login:workspace-choice";

/// One account the password matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoosableAccount {
    pub tenant: TenantId,
    pub user: UserId,
}

/// `{expiry}.{tenant}:{user},…` — ids never contain `.`, `:` or `,`.
fn payload(expires_at: i64, accounts: &[ChoosableAccount]) -> String {
    let accounts = accounts
        .iter()
        .map(|a| format!("{}:{}", a.tenant, a.user))
        .collect::<Vec<_>>()
        .join(",");
    format!("{expires_at}.{accounts}")
}

/// What is signed: the payload bound to this browser's anonymous cookie.
fn bound(anon_cookie: &str, payload: &str) -> String {
    format!("{anon_cookie}|{payload}")
}

fn seal(
    secret: &SecretKey,
    anon_cookie: &str,
    accounts: &[ChoosableAccount],
    expires_at: i64,
) -> String {
    let payload = payload(expires_at, accounts);
    let tag = secret.sign(PURPOSE, &bound(anon_cookie, &payload));
    format!("{payload}.{tag}")
}

fn open(
    secret: &SecretKey,
    anon_cookie: &str,
    token: &str,
    now: i64,
) -> Option<Vec<ChoosableAccount>> {
    let (payload, tag) = token.rsplit_once('.')?;
    if !secret.verify(PURPOSE, &bound(anon_cookie, payload), tag) {
        return None;
    }
    let (expires_at, accounts) = payload.split_once('.')?;
    if expires_at.parse::<i64>().ok()? <= now {
        return None;
    }
    accounts
        .split(',')
        .map(|pair| {
            let (tenant, user) = pair.split_once(':')?;
            Some(ChoosableAccount {
                tenant: TenantId::parse(tenant)?,
                user: UserId::parse(user)?,
            })
        })
        .collect()
}

fn unix_now() -> i64 {
    sluice_store::now().and_utc().timestamp()
}

/// A token for `accounts`, valid for [`CHOICE_LIFETIME`] in this browser only;
/// `None` when the request has no anonymous cookie to bind it to.
pub fn issue(req: &HttpRequest, state: &AppState, accounts: &[ChoosableAccount]) -> Option<String> {
    let anon = anon_cookie_value(req, state)?;
    let expires_at = unix_now() + CHOICE_LIFETIME.num_seconds();
    Some(seal(state.store.secret(), &anon, accounts, expires_at))
}

/// The accounts a token names, if it was issued to this browser and has not expired.
pub fn verify(req: &HttpRequest, state: &AppState, token: &str) -> Option<Vec<ChoosableAccount>> {
    let anon = anon_cookie_value(req, state)?;
    open(state.store.secret(), &anon, token, unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "anon_0123456789abcdef0123456789abcdef";

    fn two_accounts() -> Vec<ChoosableAccount> {
        (0..2)
            .map(|_| ChoosableAccount {
                tenant: TenantId::generate(),
                user: UserId::generate(),
            })
            .collect()
    }

    fn secret() -> SecretKey {
        SecretKey::from_material(b"a test secret of at least thirty-two bytes")
    }

    #[test]
    fn a_token_opens_in_its_browser_until_it_expires() {
        let (secret, accounts) = (secret(), two_accounts());
        let token = seal(&secret, BROWSER, &accounts, 1_000);
        assert_eq!(open(&secret, BROWSER, &token, 999), Some(accounts));
        assert_eq!(open(&secret, BROWSER, &token, 1_000), None, "expired");
    }

    #[test]
    fn another_browser_key_or_account_list_is_refused() {
        let (secret, accounts) = (secret(), two_accounts());
        let token = seal(&secret, BROWSER, &accounts, 1_000);
        let other_browser = "anon_ffffffffffffffffffffffffffffffff";
        assert_eq!(open(&secret, other_browser, &token, 0), None);
        let other_key = SecretKey::from_material(b"another secret, also thirty-two bytes long");
        assert_eq!(open(&other_key, BROWSER, &token, 0), None);

        // Adding an account (or extending the expiry) breaks the signature.
        let (payload, tag) = token.rsplit_once('.').unwrap();
        let extra = two_accounts();
        let widened = format!("{payload},{}:{}.{tag}", extra[0].tenant, extra[0].user);
        assert_eq!(open(&secret, BROWSER, &widened, 0), None);
        let later = format!("{}.{tag}", payload.replacen("1000", "9999", 1));
        assert_eq!(open(&secret, BROWSER, &later, 0), None);
        assert_eq!(open(&secret, BROWSER, "garbage", 0), None);
    }
}
