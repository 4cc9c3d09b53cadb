//! The console's page frame and the small pieces every page uses: forms that carry the CSRF
//! token, buttons shown only to roles the permission matrix allows, times, notices.

use maud::{DOCTYPE, Markup, html};

use super::visit::Visit;

/// The console's sections, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Connections,
    Mappings,
    Syncs,
    Webhooks,
    Organization,
}

const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Overview, "/", "Overview"),
    (Section::Connections, "/connections", "Connections"),
    (Section::Mappings, "/mappings", "Mappings"),
    (Section::Syncs, "/syncs", "Syncs"),
    (Section::Webhooks, "/endpoints", "Webhooks"),
    (Section::Organization, "/organization", "Organization"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · FluxCascade" }
            link rel="stylesheet" href="/console.css";
            script src="/console.js" defer {}
        }
    }
}

/// A page outside a session (sign-in, invitations).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body class="bare" {
                main id="main" {
                    p class="brand" { "FluxCascade" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A signed-in page of `section`.
pub fn page(visit: &Visit<'_>, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    p class="brand" { "FluxCascade" }
                    nav aria-label="Sections" {
                        ul {
                            @for (each, href, label) in SECTIONS {
                                li {
                                    @if each == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        span { (visit.who.org_name) " · " (visit.who.role.as_str()) }
                        form method="post" action="/sign-out" {
                            (csrf(visit))
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field every form of a session carries.
pub fn csrf(visit: &Visit<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(visit.csrf); }
}

/// A one-button form posting to `action`; `confirm` asks first (with the console's script).
pub fn post_button(visit: &Visit<'_>, action: &str, label: &str, class: &str, confirm: Option<&str>) -> Markup {
    html! {
        form method="post" action=(action) class="inline" data-confirm=[confirm] {
            (csrf(visit))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A time as `2026-12-01 22:24 UTC`, or `—`.
pub fn time(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(crate::pb_time::to_jiff)
        .map(|at| at.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A notice above a page's content.
pub fn notice(kind: &str, message: &str) -> Markup {
    html! { p class=(format!("notice {kind}")) role=(if kind == "error" { "alert" } else { "status" }) { (message) } }
}

/// The problems of a refused form, by field.
pub fn problems(violations: &[(String, String)]) -> Markup {
    html! {
        @if !violations.is_empty() {
            div class="notice error" role="alert" {
                p { "Not saved:" }
                ul { @for (field, problem) in violations { li { code { (field) } ": " (problem) } } }
            }
        }
    }
}
