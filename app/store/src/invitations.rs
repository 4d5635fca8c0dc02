//! Invitations: an owner invites an email with a role; the link (shown once) lets the
//! invitee choose a name and password and join the tenant.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::accounts::{ALREADY_A_MEMBER, NewUser, User, UserRow};
use crate::domain::{Email, NewPassword, PersonName, Role};
use crate::error::OptionalExt;
use crate::ids::{InvitationId, TenantId, UserId};
use crate::schema::{invitations, users};
use crate::secret::{hash_token, random_token};
use crate::{Store, StoreError, in_transaction, now, password, with_conn};

pub const INVITATION_LIFETIME: Duration = Duration::days(7);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
struct InvitationRow {
    id: String,
    tenant_id: String,
    email: String,
    role: String,
    invited_by: String,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    accepted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Self {
        Self {
            id: InvitationId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            email: r.email,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            invited_by: r.invited_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            accepted_at: r.accepted_at,
        }
    }
}

impl Store {
    /// Creates an invitation; the returned token is the only copy in clear. Refused
    /// (409 on `email`) only for a member of this tenant: accounts in other tenants
    /// are none of the inviter's business, and the invitee joins beside them.
    pub async fn create_invitation(
        &self,
        tenant: &TenantId,
        email: &Email,
        role: Role,
        invited_by: &str,
    ) -> Result<(Invitation, String), StoreError> {
        if self.user_by_email(tenant, email).await?.is_some() {
            return Err(StoreError::Conflict {
                field: "email",
                message: ALREADY_A_MEMBER.into(),
            });
        }
        let token = random_token("inv");
        let id = InvitationId::generate();
        let created_at = now();
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(invitations::table)
            .values((
                invitations::id.eq(id.as_str()),
                invitations::tenant_id.eq(tenant.as_str()),
                invitations::email.eq(email.as_str()),
                invitations::role.eq(role.as_str()),
                invitations::token_hash.eq(hash_token(&token)),
                invitations::invited_by.eq(invited_by),
                invitations::created_at.eq(created_at),
                invitations::expires_at.eq(created_at + INVITATION_LIFETIME),
            ))
            .execute(c)
            .await)?;
        let row: InvitationRow = with_conn!(&mut conn, c => invitations::table
            .find(id.as_str())
            .select(InvitationRow::as_select())
            .first(c)
            .await)?;
        Ok((row.into(), token))
    }

    /// Open (unaccepted, unexpired) invitations of a tenant.
    pub async fn pending_invitations(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Invitation>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<InvitationRow> = with_conn!(&mut conn, c => invitations::table
            .filter(invitations::tenant_id.eq(tenant.as_str()))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::expires_at.gt(now()))
            .order(invitations::created_at.desc())
            .select(InvitationRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn invitation_by_token(&self, token: &str) -> Result<Invitation, StoreError> {
        let mut conn = self.read().await?;
        let row: InvitationRow = with_conn!(&mut conn, c => invitations::table
            .filter(invitations::token_hash.eq(hash_token(token)))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::expires_at.gt(now()))
            .select(InvitationRow::as_select())
            .first(c)
            .await)
        .or_not_found("invitation")?;
        Ok(row.into())
    }

    /// Accepts an invitation: creates the user with the invited email and role in the
    /// invitation's tenant, whatever accounts the email has in other tenants.
    pub async fn accept_invitation(
        &self,
        token: &str,
        name: PersonName,
        password: NewPassword,
    ) -> Result<User, StoreError> {
        let invitation = self.invitation_by_token(token).await?;
        let email = Email::parse(&invitation.email).map_err(|e| StoreError::Conflict {
            field: "email",
            message: e.message,
        })?;
        let new = NewUser {
            email,
            name,
            password,
            role: invitation.role,
        };
        let password_hash = password::hash_password(new.password.expose()).await?;
        let user_id = UserId::generate();
        let mut conn = self.write().await?;
        let user: UserRow = in_transaction!(&mut conn, c => {
            // Claim first, so a double submit cannot create two users.
            let claimed = diesel::update(
                invitations::table
                    .filter(invitations::id.eq(invitation.id.as_str()))
                    .filter(invitations::accepted_at.is_null()),
            )
            .set(invitations::accepted_at.eq(now()))
            .execute(c)
            .await?;
            if claimed == 0 {
                return Err(StoreError::not_found("invitation"));
            }
            diesel::insert_into(users::table)
                .values(new.row(&user_id, &invitation.tenant_id, &password_hash))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await
                .map_err(StoreError::unique("email", ALREADY_A_MEMBER))
        })?;
        Ok(user.into())
    }

    pub async fn revoke_invitation(
        &self,
        tenant: &TenantId,
        id: &InvitationId,
    ) -> Result<Invitation, StoreError> {
        let mut conn = self.write().await?;
        let row: InvitationRow = with_conn!(&mut conn, c => invitations::table
            .filter(invitations::tenant_id.eq(tenant.as_str()))
            .filter(invitations::id.eq(id.as_str()))
            .select(InvitationRow::as_select())
            .first(c)
            .await)
        .or_not_found("invitation")?;
        with_conn!(&mut conn, c => diesel::delete(invitations::table.find(id.as_str())).execute(c).await)?;
        Ok(row.into())
    }
}
