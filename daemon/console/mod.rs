//! The web console: server-rendered pages on the HTTP listener for the daily tasks (connect,
//! map, watch syncs, inspect deliveries, run the organization). Every page and form calls
//! the API's own services in process as the signed-in member ([`rpc`]), so there is no second
//! implementation of any rule: the permission matrix, validation and the audit log are the
//! API's.

mod chart;
mod html;
mod pages;
mod request;
mod respond;
mod rpc;
mod session;
mod visit;

use std::net::SocketAddr;

use http::{Method, Response, StatusCode, header};
use maud::html;

use crate::api::InProcess;
use crate::body::Body;
use crate::crypto::Secret;
use crate::pb;
use crate::store::Store;
use request::ConsoleRequest;
use rpc::{Api, Failure};
use session::{Session, Sessions};
use visit::{Visit, Who};

/// The console of one daemon.
pub struct Console {
    api: InProcess,
    sessions: Sessions,
    /// The daemon's public URL, without a trailing slash.
    public_url: String,
    /// `scheme://host[:port]` of the public URL, an Origin sign-in accepts besides the Host's.
    public_origin: Option<String>,
}

impl Console {
    /// The console calling `api`, reached at `public_url`.
    pub fn new(api: InProcess, store: Store, public_url: &str) -> Console {
        let public_origin = url::Url::parse(public_url)
            .ok()
            .map(|url| url.origin().ascii_serialization());
        let secure = public_url.starts_with("https://");
        Console {
            api,
            sessions: Sessions::new(store, secure),
            public_url: public_url.trim_end_matches('/').to_owned(),
            public_origin,
        }
    }

    /// Answers a request for a console path.
    pub async fn handle<B>(&self, request: http::Request<B>, peer: Option<SocketAddr>) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.method() == Method::GET
            && let Some(asset) = respond::asset(request.uri().path())
        {
            return asset;
        }
        // Paths that are not the console's are refused before any body is read.
        if !is_console_path(request.uri().path()) {
            return respond::text(StatusCode::NOT_FOUND, "not found\n");
        }
        let request = match ConsoleRequest::read(request).await {
            Ok(request) => request,
            Err(error) => return respond::text(error.status(), format!("{error}\n")),
        };
        let post = request.method == Method::POST;
        if !post && request.method != Method::GET {
            return respond::text(StatusCode::METHOD_NOT_ALLOWED, "the console takes GET and POST\n");
        }
        match (post, request.path.as_str()) {
            (false, "/sign-in") => return pages::sign_in::form(None),
            (true, "/sign-in") if !self.same_origin(&request) => return cross_origin(),
            (true, "/sign-in") => return self.sign_in(&request, peer).await,
            (false, "/accept-invitation") => return pages::sign_in::invitation_form(request.query.get("token"), None),
            (true, "/accept-invitation") if !self.same_origin(&request) => return cross_origin(),
            (true, "/accept-invitation") => return self.accept_invitation(&request, peer).await,
            _ => {}
        }
        let Some(session) = self.sessions.of(&request) else {
            if post {
                return respond::text(
                    StatusCode::FORBIDDEN,
                    "no console session: sign in again and resend the form\n",
                );
            }
            return respond::redirect("/sign-in");
        };
        if post && !session::csrf_matches(&session, request.form.get("csrf")) {
            return respond::text(
                StatusCode::FORBIDDEN,
                "this form is missing its CSRF token (or it is from another session): reload the page and try again\n",
            );
        }
        let api = Api::new(self.api.clone(), session.token.clone(), peer);
        if (post, request.path.as_str()) == (true, "/sign-out") {
            return self.sign_out(&api, &session).await;
        }
        let who = match who(&api, &session).await {
            Ok(who) => who,
            Err(Failure::SignedOut) => return self.signed_out(),
            Err(failure) => return pages::failure_page(&failure),
        };
        let visit = Visit {
            api,
            who,
            csrf: session.csrf.clone(),
            request: &request,
            public_url: &self.public_url,
        };
        match pages::route(&visit).await {
            Ok(response) => response,
            Err(Failure::SignedOut) => self.signed_out(),
            Err(failure) => pages::failure_page(&failure),
        }
    }

    /// Whether a sign-in form came from the console's own pages: browsers send `Origin` with
    /// every POST, so a form another site posts (to sign a victim in to the attacker's
    /// account) is refused; a request without it (a script's) is not a browser's.
    fn same_origin(&self, request: &ConsoleRequest) -> bool {
        let Some(origin) = request.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let host = request
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let of_host = ["http://", "https://"]
            .iter()
            .any(|scheme| origin == format!("{scheme}{host}"));
        of_host || self.public_origin.as_deref() == Some(origin)
    }

    async fn sign_in(&self, request: &ConsoleRequest, peer: Option<SocketAddr>) -> Response<Body> {
        let token = request.form.get("token");
        if token.is_empty() {
            return pages::sign_in::form(Some("Paste an API token (fxc_…)."));
        }
        let api = Api::new(self.api.clone(), Secret::new(token), peer);
        self.start_session(&api, None).await
    }

    async fn accept_invitation(&self, request: &ConsoleRequest, peer: Option<SocketAddr>) -> Response<Body> {
        let invitation = request.form.get("token");
        let api = Api::new(self.api.clone(), Secret::new(String::new()), peer);
        let accepted = api
            .organizations()
            .accept_invitation(api.call(pb::AcceptInvitationRequest {
                token: invitation.to_owned(),
            }))
            .await;
        let accepted = match accepted {
            Ok(accepted) => accepted.into_inner(),
            Err(status) => {
                return pages::sign_in::invitation_form(invitation, Some(&Failure::from(status).to_string()));
            }
        };
        let api = Api::new(self.api.clone(), Secret::new(accepted.token.clone()), peer);
        self.start_session(&api, Some(accepted)).await
    }

    /// Mints the session's token with `api`'s and answers with its cookie: the overview, or
    /// after an invitation a welcome page showing the member's own API token once.
    async fn start_session(&self, api: &Api, accepted: Option<pb::AcceptInvitationResponse>) -> Response<Body> {
        let minted = api
            .organizations()
            .create_api_token(api.call(pb::CreateApiTokenRequest {
                name: "web console session".to_owned(),
                member_id: String::new(),
                expires_in_seconds: session::LIFETIME.as_secs() as u32,
            }))
            .await;
        let minted = match (minted, &accepted) {
            (Ok(minted), _) => minted.into_inner(),
            // The invitation is used up: its member's token is shown whatever else fails.
            (Err(status), Some(accepted)) => {
                let problem = format!(
                    "No console session could be started ({}); sign in with this token.",
                    Failure::from(status)
                );
                return pages::sign_in::welcome(accepted, Some(&problem));
            }
            (Err(status), None) => {
                let failure = Failure::from(status);
                let message = match failure {
                    Failure::SignedOut => "That API token is not valid (or it was revoked).".to_owned(),
                    other => other.to_string(),
                };
                let mut response = pages::sign_in::form(Some(&message));
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                return response;
            }
        };
        let token = minted.token.unwrap_or_default();
        let expires_at_ms = token
            .expires_at
            .as_ref()
            .and_then(crate::pb_time::to_jiff)
            .map_or(0, |at| at.as_millisecond());
        let session = Sessions::start(Secret::new(minted.secret), token.id, expires_at_ms);
        let cookie = match self.sessions.cookie(&session) {
            Ok(cookie) => cookie,
            Err(error) => {
                tracing::error!(%error, "cannot seal a console session");
                return respond::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session\n");
            }
        };
        let mut response = match accepted {
            None => respond::redirect("/"),
            Some(accepted) => pages::sign_in::welcome(&accepted, None),
        };
        respond::set_cookie(&mut response, &cookie);
        response
    }

    async fn sign_out(&self, api: &Api, session: &Session) -> Response<Body> {
        let revoked = api
            .organizations()
            .revoke_api_token(api.call(pb::RevokeApiTokenRequest {
                id: session.token_id.clone(),
            }))
            .await;
        match revoked.map_err(Failure::from) {
            Ok(_) | Err(Failure::SignedOut | Failure::NotFound(_)) => self.signed_out(),
            Err(failure) => pages::failure_page(&failure),
        }
    }

    /// To the sign-in page, without the cookie.
    fn signed_out(&self) -> Response<Body> {
        let mut response = respond::redirect("/sign-in");
        respond::set_cookie(&mut response, &self.sessions.cleared());
        response
    }
}

/// Whether `path` is one of the console's: a section's, or signing in and out.
fn is_console_path(path: &str) -> bool {
    let root = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    matches!(path, "/sign-in" | "/sign-out" | "/accept-invitation") || pages::SECTION_ROOTS.contains(&root)
}

fn cross_origin() -> Response<Body> {
    respond::page(
        StatusCode::FORBIDDEN,
        html::bare(
            "Refused",
            html! { p { "This form was sent from another site. Open the console and sign in there." } },
        ),
    )
}

/// The member of `session`, with the organization's name.
async fn who(api: &Api, session: &Session) -> Result<Who, Failure> {
    let organization = api
        .organizations()
        .get_organization(api.call(pb::GetOrganizationRequest {}))
        .await?
        .into_inner();
    let role = crate::api::convert::role_from_pb(organization.role).unwrap_or(crate::auth::Role::Member);
    Ok(Who {
        org_name: organization.name,
        role,
        token_id: session.token_id.clone(),
    })
}
