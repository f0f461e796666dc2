//! Invitations: an admin invites a person by email; the person accepts with the link's token,
//! chooses a password, and is signed in.

use chrono::{DateTime, Utc};
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, NoContent, Paged,
    audit_context::signed_in,
    auth::{SessionUser, TokenResponse, open_session},
    page,
    schemas::TeamRole,
    validate,
};
use crate::{
    auth::{BearerAuth, Role, policy::PasswordContext},
    db::Tenant,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
        invitation::{AcceptError, AcceptedAccount, InviteError, Invited, NewInvitation},
        outbox::Email,
    },
};

/// An invitation as its company sees it (its token is only ever in the email).
#[derive(Debug, Object)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// The employee record the new login will be linked to, if any.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// When the link stops working: 7 days after it was sent.
    pub expires_at: DateTime<Utc>,
    /// The login that sent it.
    pub invited_by: Uuid,
}

impl From<model::invitation::Invitation> for Invitation {
    fn from(i: model::invitation::Invitation) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role,
            employee_id: i.employee_id,
            created_at: i.created_at,
            expires_at: i.expires_at,
            invited_by: i.invited_by,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateInvitation {
    #[oai(validator(max_length = 254))]
    pub email: JsonString,
    pub role: TeamRole,
    /// Link the new login to this employee record.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The `token` of the invitation link.
    #[oai(validator(max_length = 100))]
    pub token: JsonString,
    #[oai(validator(max_length = 256))]
    pub password: JsonString,
    /// Defaults to the linked employee's name, or else the email's local part.
    #[oai(nullable, validator(max_length = 200))]
    pub full_name: Option<JsonString>,
}

const INVITATION_NOT_FOUND: &str = "Invitation not found";

pub struct InvitationsApi;

#[OpenApi(tag = "ApiTags::Users")]
impl InvitationsApi {
    /// Invite a teammate by email
    ///
    /// Admins of the company and superadmins. Sends an email with a one-time link that works
    /// for 7 days. Inviting an address again replaces its pending invitation (the old link
    /// stops working). An address that has a login anywhere is refused (409 `email_taken`),
    /// as is an employee record that has a login (409 `employee_already_linked`) or a pending
    /// invitation to another address (409 `employee_already_invited`). A company sends at most
    /// 30 invitations an hour (429 `too_many_invitations`).
    #[oai(
        path = "/company/:company_id/invitations",
        method = "post",
        operation_id = "createInvitation"
    )]
    async fn create_invitation(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<CreateInvitation>,
    ) -> Result<Created<Invitation>, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let b = body.0;
        let new = NewInvitation {
            email: validate::email("email", &b.email)?.to_lowercase(),
            role: b.role.role(),
            employee_id: b.employee_id,
            invited_by: caller.user_id(),
        };
        let audit = AuditContext::of(req, &caller);
        let invitation = invite(&state, &caller, &audit, company_id.0, &new).await?;
        Ok(Created::Created(Json(invitation.into())))
    }

    /// List the company's pending invitations
    ///
    /// Admins of the company and superadmins. Those not accepted, withdrawn or expired, oldest
    /// first; `X-Total-Count` holds the total.
    #[oai(
        path = "/company/:company_id/invitations",
        method = "get",
        operation_id = "listInvitations"
    )]
    async fn list_invitations(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// How many to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        skip: Query<Option<u32>>,
        /// How many to return, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Paged<Invitation>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let page = page(skip.0, limit.0)?;
        let (invitations, total) = state
            .db
            .read(&tenant, async |tx| {
                model::invitation::pending(&tx, company_id.0, page).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        let invitations = invitations.into_iter().map(Invitation::from).collect();
        Ok(Paged::Ok(Json(invitations), total))
    }

    /// Withdraw a pending invitation
    ///
    /// Admins of the company and superadmins. Its link stops working. 404 when there is no such
    /// pending invitation (unknown, accepted, withdrawn or expired).
    #[oai(
        path = "/company/:company_id/invitations/:invitation_id",
        method = "delete",
        operation_id = "withdrawInvitation"
    )]
    async fn withdraw_invitation(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        invitation_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, INVITATION_NOT_FOUND)?;
        caller.require_admin()?;
        let audit = AuditContext::of(req, &caller);
        withdraw(&state, &caller, &audit, company_id.0, invitation_id.0).await?;
        Ok(NoContent::NoContent)
    }
}

/// Invites a person to `company_id` (the email goes out through the outbox) and audits it: the
/// flow behind `POST /company/{id}/invitations` and the console's teammates page.
pub async fn invite(
    state: &AppState,
    caller: &crate::auth::Caller,
    audit: &AuditContext,
    company_id: Uuid,
    new: &NewInvitation,
) -> Result<model::invitation::Invitation, ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    caller.require_admin()?;
    let base_url = state.public_base_url.as_str();
    let invitation = state
        .db
        .write(&tenant, async |tx| {
            let invitation = model::invitation::create(&tx, company_id, new, |invited| {
                invitation_email(base_url, invited)
            })
            .await?;
            let changes = Changes::new()
                .field("email", None::<&str>, &invitation.email)
                .field("role", None::<&str>, invitation.role.as_str())
                .field("employee_id", None::<Uuid>, invitation.employee_id);
            let event = AuditEvent::new("invitation.created", Target::invitation(invitation.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            Ok::<_, InviteError>(invitation)
        })
        .await?;
    Ok(invitation)
}

/// Withdraws a pending invitation of `company_id` and audits it; 404 when there is no such
/// pending invitation. The flow behind `DELETE /company/{id}/invitations/{id}` and the console.
pub async fn withdraw(
    state: &AppState,
    caller: &crate::auth::Caller,
    audit: &AuditContext,
    company_id: Uuid,
    invitation_id: Uuid,
) -> Result<(), ApiError> {
    let tenant = caller.tenant_for(company_id, INVITATION_NOT_FOUND)?;
    caller.require_admin()?;
    let withdrawn = state
        .db
        .write(&tenant, async |tx| {
            let withdrawn = model::invitation::withdraw(&tx, company_id, invitation_id).await?;
            if withdrawn {
                let event =
                    AuditEvent::new("invitation.withdrawn", Target::invitation(invitation_id));
                model::audit::record(&tx, audit, event).await?;
            }
            Ok::<_, crate::db::DbError>(withdrawn)
        })
        .await?;
    if !withdrawn {
        return Err(ApiError::not_found(INVITATION_NOT_FOUND));
    }
    Ok(())
}

pub struct AcceptInvitationApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AcceptInvitationApi {
    /// Accept an invitation
    ///
    /// Anyone holding an invitation link's token: creates the login the invitation describes
    /// (its email, role and employee), with the password chosen here (held to the sign-up
    /// policy), and signs it in. An unknown token answers 404 (`invitation_not_found`); one
    /// accepted already, withdrawn (or replaced) or expired answers 410 (`invitation_used`,
    /// `invitation_withdrawn`, `invitation_expired`). Of two accepts of one token, one wins.
    /// Limited per client address (429 with `Retry-After`).
    #[oai(
        path = "/accept-invitation",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept_invitation(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<AcceptInvitation>,
    ) -> Result<Created<TokenResponse>, ApiError> {
        let b = body.0;
        let full_name = b.full_name.map(JsonString::into_inner);
        let pair = accept(&state, req, &b.token, b.password.into_inner(), full_name).await?;
        Ok(Created::Created(Json(pair)))
    }
}

/// Accepts an invitation with its link's token: the login it describes is created with
/// `password` (and `full_name`, else the employee's name or the email's local part) and signed
/// in. `POST /api/auth/accept-invitation` and the console's page both call it.
pub async fn accept(
    state: &AppState,
    req: &Request,
    token: &str,
    password: String,
    full_name: Option<String>,
) -> Result<TokenResponse, ApiError> {
    validate::password("password", &password)?;
    let full_name = validate::optional_text("full_name", full_name, 200)?;
    // Each token looked up costs a transaction: guesses are bounded per address.
    let client = state.throttle.client(state.analytics.client_ip(req));
    state.throttle.take_invitation_accept(&client)?;
    let invitation = state
        .db
        .read_public(async |tx| model::invitation::by_token(&tx, token.trim()).await)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invitation_not_found",
                "No invitation has this token",
            )
        })?;
    invitation.check_pending()?;
    let full_name = full_name
        .or_else(|| invitation.employee_name.clone())
        .unwrap_or_else(|| default_name(&invitation.email));
    let context = PasswordContext::default()
        .email("email", &invitation.email)
        .name("full_name", &full_name)
        .name("company_name", &invitation.company_name);
    let hash = state
        .passwords
        .hash_new("password", password, context)
        .await?;
    let account = AcceptedAccount {
        company_id: invitation.company_id,
        user_id: Uuid::new_v4(),
        password_hash: &hash,
        full_name: &full_name,
    };
    let audit = AuditContext::anonymous(req);
    let user = state
        .db
        .write(
            &Tenant::session_opening(invitation.company_id),
            async |tx| {
                let user = model::invitation::accept(&tx, invitation.id, account).await?;
                // As at sign-up: the new login creates itself, then says how.
                let actor = signed_in(user.id, user.company_id, user.role);
                let audit = audit.clone().by(actor);
                let created = AuditEvent::new("user.created", Target::user(user.id))
                    .changes(Changes::between(None, Some(&user)));
                model::audit::record(&tx, &audit, created).await?;
                let accepted =
                    AuditEvent::new("invitation.accepted", Target::invitation(invitation.id))
                        .changes(Changes::new().field("accepted_user_id", None::<Uuid>, user.id));
                model::audit::record(&tx, &audit, accepted).await?;
                Ok::<_, AcceptError>(user)
            },
        )
        .await?;
    let session = SessionUser {
        user_id: user.id,
        company_id: user.company_id,
        role: user.role,
    };
    open_session(state, req, session).await
}

/// A name for a login whose person gave none: the email's local part (at most 200 characters).
fn default_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let name: String = local.chars().take(200).collect();
    if name.is_empty() {
        "Teammate".to_owned()
    } else {
        name
    }
}

/// The invitation email, in the company's name: plain text, and HTML with every value escaped.
fn invitation_email(base_url: &str, invited: Invited<'_>) -> Email {
    let Invited {
        invitation,
        company_name,
        token,
    } = invited;
    let link = format!("{base_url}/app/accept-invitation?token={token}");
    let role = match invitation.role {
        Role::Admin => "an admin",
        _ => "a teammate",
    };
    let until = invitation
        .expires_at
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    crate::mail::message::invitation(&invitation.email, company_name, role, &until, &link)
}

impl From<InviteError> for ApiError {
    fn from(err: InviteError) -> Self {
        match err {
            InviteError::NoCompany => ApiError::not_found("Company not found"),
            InviteError::EmailTaken => {
                ApiError::conflict("email_taken", "An account with this email already exists")
            }
            InviteError::EmployeeNotFound => {
                ApiError::unprocessable("employee_not_found", "No such employee in this company")
            }
            InviteError::EmployeeAlreadyLinked => ApiError::conflict(
                "employee_already_linked",
                "This employee already has a login",
            ),
            InviteError::EmployeeAlreadyInvited => ApiError::conflict(
                "employee_already_invited",
                "This employee has a pending invitation to another address: withdraw it first",
            ),
            InviteError::TooMany { retry_after } => ApiError::too_many_requests(
                "too_many_invitations",
                "This company has sent too many invitations within the hour; try again later",
                retry_after,
            ),
            InviteError::Db(e) => e.into(),
        }
    }
}

impl From<AcceptError> for ApiError {
    fn from(err: AcceptError) -> Self {
        let gone = |code: &str, detail: &str| ApiError::new(StatusCode::GONE, code, detail);
        match err {
            AcceptError::Unknown => ApiError::new(
                StatusCode::NOT_FOUND,
                "invitation_not_found",
                "No invitation has this token",
            ),
            AcceptError::Used => gone("invitation_used", "This invitation was accepted already"),
            AcceptError::Withdrawn => gone(
                "invitation_withdrawn",
                "This invitation was withdrawn or replaced by a newer one",
            ),
            AcceptError::Expired => gone("invitation_expired", "This invitation has expired"),
            AcceptError::Db(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_escapes_the_company_name_and_carries_the_link() {
        let now = Utc::now();
        let invitation = model::invitation::Invitation {
            id: Uuid::new_v4(),
            company_id: Uuid::new_v4(),
            email: "new@example.com".into(),
            role: Role::Employee,
            employee_id: None,
            created_at: now,
            expires_at: now,
            invited_by: Uuid::new_v4(),
        };
        let email = invitation_email(
            "https://cards.example",
            Invited {
                invitation: &invitation,
                company_name: "<b>Acme</b> & Sons",
                token: "abc_DEF-123",
            },
        );
        let link = "https://cards.example/app/accept-invitation?token=abc_DEF-123";
        assert_eq!(email.to, "new@example.com");
        assert_eq!(email.from_name, "<b>Acme</b> & Sons");
        assert!(email.text.contains(link), "{}", email.text);
        assert!(email.html.contains(link), "{}", email.html);
        assert!(email.html.contains("&lt;b&gt;Acme&lt;/b&gt; &amp; Sons"));
        assert!(!email.html.contains("<b>Acme"), "{}", email.html);
    }

    #[test]
    fn a_login_without_a_name_is_named_after_its_email() {
        assert_eq!(default_name("jane.doe@example.com"), "jane.doe");
    }
}
