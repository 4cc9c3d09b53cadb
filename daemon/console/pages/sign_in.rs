//! The pages outside a session: signing in with an API token, accepting an invitation, and
//! the welcome page after it.

use http::{Response, StatusCode};
use maud::{Markup, html};

use crate::body::Body;
use crate::console::html::{bare, notice};
use crate::console::respond;
use crate::pb;

/// A page titled `title` with `form`, and `problem` above it (a 400 then).
fn form_page(title: &str, problem: Option<&str>, form: Markup) -> Response<Body> {
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond::page(
        status,
        bare(
            title,
            html! {
                @if let Some(problem) = problem { (notice("error", problem)) }
                (form)
            },
        ),
    )
}

/// The sign-in form, with `problem` above it.
pub fn form(problem: Option<&str>) -> Response<Body> {
    form_page(
        "Sign in",
        problem,
        html! {
                form method="post" action="/sign-in" class="stack" {
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="current-password"
                        required placeholder="fxc_…" aria-describedby="token-help";
                    p id="token-help" class="help" {
                        "An API token of your organization: " code { "fluxctl org create-token --name console" }
                        ", or the operator's " code { "admin.token" } " in fluxd's data dir."
                    }
                    button type="submit" { "Sign in" }
                }
                p { a href="/accept-invitation" { "I have an invitation" } }
        },
    )
}

/// The invitation form (prefilled from an invitation link), with `problem` above it.
pub fn invitation_form(token: &str, problem: Option<&str>) -> Response<Body> {
    form_page(
        "Accept an invitation",
        problem,
        html! {
                form method="post" action="/accept-invitation" class="stack" {
                    label for="token" { "Invitation token" }
                    input id="token" name="token" type="password" required value=(token) placeholder="fxi_…";
                    button type="submit" { "Join the organization" }
                }
                p { a href="/sign-in" { "Sign in with an API token instead" } }
        },
    )
}

/// After accepting: the member's own API token, shown this once.
pub fn welcome(accepted: &pb::AcceptInvitationResponse, problem: Option<&str>) -> Response<Body> {
    let organization = accepted.organization.as_ref().map_or("", |o| o.name.as_str());
    let email = accepted.member.as_ref().map_or("", |m| m.email.as_str());
    respond::page(
        StatusCode::OK,
        bare(
            "Welcome",
            html! {
                @if let Some(problem) = problem { (notice("warning", problem)) }
                p { "You joined " strong { (organization) } " as " (email) "." }
                p { "Your API token, for fluxctl and for signing in again. It is shown only now: keep it somewhere safe." }
                pre class="secret" { code { (accepted.token) } }
                @if problem.is_none() { p { a class="button" href="/" { "Go to the console" } } }
            },
        ),
    )
}
