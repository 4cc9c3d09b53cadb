//! The web console over HTTP, as a browser sends it: sign-in and its cookie, CSRF, the
//! security headers, escaping, the role matrix and other organizations' ids. (The pages
//! driven in a real browser: tests/console_browser.rs.)

mod common;

use common::TestDaemon;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// A client keeping one session cookie, never following redirects.
struct Visitor {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Visitor {
    fn new(daemon: &TestDaemon) -> Visitor {
        Visitor {
            base: format!("http://{}", daemon.http),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        Page {
            status,
            headers,
            body: response.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &(impl serde::Serialize + ?Sized)) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/sign-in", &[("token", token)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert!(self.cookie.is_some(), "signed in, a session cookie is set");
        page
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_with_a_token_lists_connections_by_account_and_forms_need_their_csrf_token() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot");
    let jobber = daemon.connect("jobber");
    let mut visitor = Visitor::new(&daemon);

    // Without a session: the sign-in page.
    let home = visitor.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/sign-in"));
    let sign_in = visitor.get("/sign-in").await;
    assert_eq!(sign_in.status, 200);
    assert!(
        sign_in.body.contains("action=\"/sign-in\"") && sign_in.body.contains("name=\"token\""),
        "{}",
        sign_in.body
    );
    let csp = sign_in.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(sign_in.headers["x-frame-options"], "DENY");

    // A wrong token, or a form another site posts, starts no session.
    let wrong = visitor.post("/sign-in", &[("token", "fxc_not-a-token")]).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("not valid"), "{}", wrong.body);
    assert!(visitor.cookie.is_none());
    let cross_site = visitor
        .send(
            visitor
                .client
                .post(format!("{}/sign-in", visitor.base))
                .header("origin", "https://evil.example")
                .form(&[("token", daemon.admin_token().as_str())]),
        )
        .await;
    assert_eq!(cross_site.status, 403);
    assert!(visitor.cookie.is_none());

    // The owner's token: an HttpOnly, SameSite=Strict cookie, not Secure over plain HTTP.
    let signed_in = visitor.sign_in(&daemon.admin_token()).await;
    assert_eq!(signed_in.location(), "/");
    let cookie = signed_in.headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let max_age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (43_100..=43_200).contains(&max_age),
        "a session lasts 12 hours: {cookie}"
    );
    assert!(
        !cookie.contains(&daemon.admin_token()),
        "the cookie does not carry the token in clear"
    );

    let connections = visitor.get("/connections").await;
    assert_eq!(connections.status, 200, "{}", connections.body);
    for connection in [&hubspot, &jobber] {
        let account = connection["accountName"].as_str().unwrap();
        assert!(
            !account.is_empty() && connections.body.contains(account),
            "{account} listed: {}",
            connections.body
        );
    }
    assert_eq!(connections.headers["cache-control"], "no-store");

    // A state-changing form without its CSRF token (or another session's) is refused.
    let id = hubspot["id"].as_str().unwrap();
    let forged = visitor
        .post(&format!("/connections/{id}/delete"), &[] as &[(&str, &str)])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = visitor
        .post(&format!("/connections/{id}/delete"), &[("csrf", "guess")])
        .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(
        daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(),
        2,
        "nothing deleted"
    );

    // The session is an expiring child token, listed with the organization's tokens.
    let tokens = daemon.ctl_json(&["org", "tokens"]);
    let session = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "web console session")
        .expect("the session's token is listed");
    assert!(session["expiresAt"].is_string(), "{session}");

    // Signing out revokes it: the old cookie no longer opens a page.
    let old_cookie = visitor.cookie.clone();
    let csrf = connections.csrf();
    let out = visitor.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/sign-in"));
    assert!(visitor.cookie.is_none(), "the cookie is cleared");
    visitor.cookie = old_cookie;
    let after = visitor.get("/connections").await;
    assert_eq!((after.status, after.location()), (303, "/sign-in"));
    let tokens = daemon.ctl_json(&["org", "tokens"]);
    assert!(
        !tokens
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "web console session"),
        "{tokens}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_render_as_text_members_cannot_delete_and_other_organizations_ids_are_not_found() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot");
    let jobber = daemon.connect("jobber");
    let (hubspot_id, jobber_id) = (hubspot["id"].as_str().unwrap(), jobber["id"].as_str().unwrap());
    let mapping = daemon.create_mapping(&common::contacts_to_clients(
        "<script>alert(1)</script>",
        hubspot_id,
        jobber_id,
    ));

    let mut owner = Visitor::new(&daemon);
    owner.sign_in(&daemon.admin_token()).await;
    let mappings = owner.get("/mappings").await;
    assert!(
        mappings.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        mappings.body
    );
    assert!(!mappings.body.contains("<script>alert"), "escaped");
    let owners_view = owner.get("/connections").await;
    assert!(
        owners_view.body.contains(&format!("/connections/{hubspot_id}/delete")),
        "the owner may delete"
    );

    // A member joins through an invitation in the console.
    let invited = daemon.ctl_json(&["org", "invite", "m@example.com", "--role", "member"]);
    let invitation = invited["token"].as_str().unwrap();
    let mut member = Visitor::new(&daemon);
    let form = member.get(&format!("/accept-invitation?token={invitation}")).await;
    assert!(form.body.contains(invitation), "the link fills the form in");
    let welcome = member.post("/accept-invitation", &[("token", invitation)]).await;
    assert_eq!(welcome.status, 200, "{}", welcome.body);
    assert!(welcome.body.contains("fxc_"), "the member's own token is shown once");
    assert!(member.cookie.is_some());
    let members_view = member.get("/connections").await;
    assert_eq!(members_view.status, 200);
    assert!(members_view.body.contains(hubspot["accountName"].as_str().unwrap()));
    assert!(
        !members_view.body.contains("/delete") && !members_view.body.contains(">Delete<"),
        "{}",
        members_view.body
    );
    assert_eq!(
        member.get("/mappings/new").await.status,
        403,
        "members do not create mappings"
    );
    assert!(!member.get("/endpoints").await.body.contains("Add an endpoint"));
    let previewed = member.get(&format!("/mappings/{mapping}?preview")).await;
    assert!(
        previewed.body.contains("class=\"preview\""),
        "members preview a stored mapping: {}",
        previewed.body
    );
    let mapping_view = member.get(&format!("/mappings/{mapping}")).await;
    assert!(!mapping_view.body.contains("/delete"), "{}", mapping_view.body);
    // A crafted delete, with the member's own valid CSRF token, is refused by the API's matrix.
    let csrf = members_view.csrf();
    let crafted = member
        .post(&format!("/connections/{hubspot_id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(crafted.status, 403, "{}", crafted.body);
    let crafted = member
        .post(&format!("/mappings/{mapping}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(crafted.status, 403);
    assert_eq!(daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(daemon.ctl_json(&["mapping", "list"]).as_array().unwrap().len(), 1);

    // Another organization's member sees none of these ids.
    let other = daemon.ctl_json(&["org", "create", "other"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stranger = Visitor::new(&daemon);
    stranger.sign_in(&other).await;
    assert_eq!(stranger.get(&format!("/mappings/{mapping}")).await.status, 404);
    let listed = stranger.get("/connections").await;
    assert!(!listed.body.contains(hubspot_id));
    let csrf = listed.csrf();
    let foreign = stranger
        .post(&format!("/connections/{hubspot_id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    assert_eq!(stranger.get("/syncs/job_doesnotexist").await.status, 404);
    assert_eq!(daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_edits_a_mapping_keeping_its_filter_invites_an_admin_and_revoking_a_session_signs_it_out() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&format!(
        "{}filter: {{ field: email, op: is_known }}\n",
        common::contacts_to_clients("Before", &hubspot, &jobber)
    ));
    let mut owner = Visitor::new(&daemon);
    owner.sign_in(&daemon.admin_token()).await;
    let path = format!("/mappings/{mapping}");
    let page = owner.get(&path).await;
    assert!(
        page.body.contains("value=\"firstName\""),
        "the editor holds the stored pairs"
    );
    let csrf = page.csrf();
    let (source, target) = (format!("{hubspot}|contacts"), format!("{jobber}|clients"));
    let form = |name: &'static str, transform: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("rows", "3".to_owned()),
            ("name", name.to_owned()),
            ("source", source.clone()),
            ("target", target.clone()),
            ("direction", "DIRECTION_SOURCE_TO_TARGET".to_owned()),
            ("matching_mode", "MATCHING_MODE_MATCH_THEN_CREATE".to_owned()),
            ("match_key", "email".to_owned()),
            ("pair0.source", "email".to_owned()),
            ("pair0.target", "email".to_owned()),
            ("pair2.source", "firstname".to_owned()),
            ("pair2.target", "firstName".to_owned()),
            ("pair2.transform", transform.to_owned()),
            ("action", "save".to_owned()),
        ]
    };
    // A transform the API refuses: shown at its row (the third shown, the second sent), nothing stored.
    let refused = owner.post(&path, &form("After", "no_such_transform")).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let row = refused
        .body
        .find("class=\"row-problems\"")
        .expect("a problem shown under its row");
    assert!(
        refused.body[row..].contains("fieldPairs[1].transform"),
        "{}",
        &refused.body[row..]
    );
    assert!(
        refused.body[..row].contains("value=\"no_such_transform\""),
        "the row keeps what was typed"
    );
    // Problems of other fields are shown under their inputs, which point at them.
    let mut unnamed = form("", "trim");
    unnamed.push(("schedule", "every tuesday".to_owned()));
    let unnamed = owner.post(&path, &unnamed).await;
    assert_eq!(unnamed.status, 400);
    for (field, described) in [("name", "name-problem"), ("schedule", "schedule-help schedule-problem")] {
        assert!(
            unnamed.body.contains(&format!("id=\"{field}-problem\"")),
            "{field}: {}",
            unnamed.body
        );
        assert!(
            unnamed.body.contains(&format!("aria-describedby=\"{described}\"")),
            "{field}"
        );
    }
    // A POST that is not a form carries no CSRF token either: 403.
    let not_a_form = owner
        .send(owner.client.post(format!("{}{path}/delete", owner.base)).body("{}"))
        .await;
    assert_eq!(not_a_form.status, 403, "{}", not_a_form.body);
    assert!(
        daemon
            .ctl_json(&["mapping", "get", &mapping])
            .to_string()
            .contains("\"Before\"")
    );
    let saved = owner.post(&path, &form("After", "trim")).await;
    assert_eq!(
        (saved.status, saved.location()),
        (303, format!("{path}?done=saved").as_str()),
        "{}",
        saved.body
    );
    let stored = daemon.ctl_json(&["mapping", "get", &mapping]).to_string();
    assert!(stored.contains("\"After\"") && stored.contains("\"trim\""), "{stored}");
    assert!(
        stored.contains("is_known"),
        "the filter the editor does not show is kept: {stored}"
    );
    // The console's calls are the API's: audited, with the browser's address.
    let audit = daemon.ctl_json(&["audit"]).to_string();
    assert!(
        audit.contains("UpdateMapping") && audit.contains("127.0.0.1"),
        "{audit}"
    );

    // An invitation made in the console; its link signs the new admin in.
    let organization = owner.get("/organization").await;
    let invited = owner
        .post(
            "/organization/invitations",
            &[
                ("csrf", organization.csrf().as_str()),
                ("email", "new@example.com"),
                ("role", "ROLE_ADMIN"),
            ],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let base = format!("http://{}", daemon.http);
    let at = invited
        .body
        .find(&format!("{base}/accept-invitation?token="))
        .expect("the invitation link, absolute");
    let link = &invited.body[at + base.len()..at + invited.body[at..].find('"').unwrap()];
    let token = link.split("token=").nth(1).unwrap();
    let mut admin = Visitor::new(&daemon);
    assert!(admin.get(link).await.body.contains(token));
    let welcome = admin.post("/accept-invitation", &[("token", token)]).await;
    assert_eq!(welcome.status, 200, "{}", welcome.body);
    let admins_view = admin.get("/organization").await;
    assert!(admins_view.body.contains("new@example.com") && admins_view.body.contains("Audit log"));
    // An admin manages members, but nothing about the owner (the API needs the owner role).
    let owner_member = daemon.member_id("role", "owner");
    assert!(
        !admins_view
            .body
            .contains(&format!("/organization/members/{owner_member}/")),
        "{}",
        admins_view.body
    );
    assert!(!admins_view.body.contains("value=\"ROLE_OWNER\""));
    let owners_org = owner.get("/organization").await;
    assert!(owners_org.body.contains("value=\"ROLE_OWNER\"") && owners_org.body.contains("/remove"));
    let reused = Visitor::new(&daemon)
        .post("/accept-invitation", &[("token", token)])
        .await;
    assert_eq!(reused.status, 400, "an invitation is used once");

    // The owner revokes the admin's console session: the admin's next page is the sign-in.
    let admin_member = daemon.member_id("email", "new@example.com");
    let tokens = daemon.ctl_json(&["org", "tokens"]);
    let session = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "web console session" && t["memberId"] == admin_member)
        .expect("the admin's session token")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = owner
        .post(
            &format!("/organization/tokens/{session}/revoke"),
            &[("csrf", organization.csrf().as_str())],
        )
        .await;
    assert_eq!(
        (revoked.status, revoked.location()),
        (303, "/organization?done=revoked")
    );
    let after = admin.get("/organization").await;
    assert_eq!((after.status, after.location()), (303, "/sign-in"));
    assert!(admin.cookie.is_none(), "the dead session's cookie is cleared");
    assert_eq!(
        owner.get("/organization").await.status,
        200,
        "the owner's own session goes on"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_first_sync_asks_to_confirm_and_finished_syncs_and_endpoints_answer_their_forms() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    std::fs::write(&config, "[sync]\nconfirm_threshold = 5\n").unwrap();
    let daemon = TestDaemon::start(&[
        "--sandbox",
        "--sandbox-records",
        "20",
        "--allow-private-webhooks",
        "--config",
        config.to_str().unwrap(),
    ]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&common::contacts_to_clients("Big", &hubspot, &jobber));
    let endpoint = daemon.ctl_json(&["webhook", "create", "--url", "http://127.0.0.1:9/hook"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = Visitor::new(&daemon);
    owner.sign_in(&daemon.admin_token()).await;
    let csrf = owner.get(&format!("/mappings/{mapping}")).await.csrf();

    // The API asks for confirmation; the console shows what it would do and a button for it.
    let asked = owner
        .post(&format!("/mappings/{mapping}/run"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        asked.body.contains("would create") && asked.body.contains("name=\"confirm\""),
        "{}",
        asked.body
    );
    let confirmed = owner
        .post(
            &format!("/mappings/{mapping}/run"),
            &[("csrf", csrf.as_str()), ("confirm", "1")],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let job_path = confirmed.location().to_owned();
    assert!(job_path.starts_with("/syncs/job_"), "{job_path}");
    let job = job_path.trim_start_matches("/syncs/").to_owned();
    let ended = common::wait_for(std::time::Duration::from_secs(60), || {
        let got = daemon.ctl_json(&["sync", "get", &job]);
        ["completed", "partial", "failed", "cancelled"]
            .contains(&got["status"].as_str().unwrap_or_default())
            .then_some(got)
    })
    .expect("the confirmed sync ends");
    assert_eq!(
        ended["status"], "completed",
        "the confirmed sync is a new one, and completes: {ended}"
    );
    // The live view's stream: the job as it is, then the end (a finished job ends at once).
    let stream = owner.get(&format!("{job_path}/watch")).await;
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    let event = stream.body.strip_prefix("data: ").expect("one event").trim();
    let event: serde_json::Value = serde_json::from_str(event).unwrap();
    assert_eq!(
        (&event["status"], &event["finished"], &event["total"]),
        (&"completed".into(), &true.into(), &20.into()),
        "{event}"
    );
    let finished = owner.get(&job_path).await;
    assert!(
        finished.body.contains(">completed<") && !finished.body.contains("data-watch"),
        "{}",
        finished.body
    );
    // Cancelling a finished sync changes nothing, and the page says so.
    let late = owner
        .post(&format!("{job_path}/cancel"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(late.location(), format!("{job_path}?done=already-finished"));
    assert!(owner.get(late.location()).await.body.contains("already finished"));
    assert_eq!(daemon.ctl_json(&["sync", "get", &job])["status"], "completed");

    // Recover failed deliveries since a time; a bad time names the field.
    let recovered = owner
        .post(
            &format!("/endpoints/{endpoint}/recover"),
            &[("csrf", csrf.as_str()), ("since", "2026-01-01T00:00")],
        )
        .await;
    assert_eq!(
        (recovered.status, recovered.location()),
        (303, format!("/endpoints/{endpoint}?done=recovered").as_str())
    );
    let bad = owner
        .post(
            &format!("/endpoints/{endpoint}/recover"),
            &[("csrf", csrf.as_str()), ("since", "yesterday")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("since"), "{}", bad.body);
    // The secret only after its confirmation page, which does not show it.
    let secret = daemon.ctl_json(&["webhook", "reveal-secret", &endpoint]);
    let secret = secret["secret"].as_str().unwrap();
    let confirm = owner.get(&format!("/endpoints/{endpoint}/secret")).await;
    assert!(confirm.body.contains("Reveal the secret") && !confirm.body.contains(secret));
    let revealed = owner
        .post(&format!("/endpoints/{endpoint}/secret"), &[("csrf", csrf.as_str())])
        .await;
    assert!(revealed.body.contains(secret));
    // A bad URL is refused at its field; a good one is added, and deleted again.
    let refused = owner
        .post(
            "/endpoints",
            &[
                ("csrf", csrf.as_str()),
                ("url", "ftp://nowhere"),
                ("event_type", "sync.failed"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("<code>url</code>") && refused.body.contains("value=\"ftp://nowhere\""),
        "{}",
        refused.body
    );
    let added = owner
        .post(
            "/endpoints",
            &[
                ("csrf", csrf.as_str()),
                ("url", "http://127.0.0.1:9/other"),
                ("event_type", "sync.failed"),
                ("event_type", "record.error"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let listed = daemon.ctl_json(&["webhook", "list"]);
    let other = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "http://127.0.0.1:9/other")
        .expect("added");
    assert_eq!(other["eventTypes"], serde_json::json!(["sync.failed", "record.error"]));
    let other_id = other["id"].as_str().unwrap();
    assert!(added.body.contains(&format!("/endpoints/{other_id}")) && added.body.contains("whsec_"));
    let deleted = owner
        .post(&format!("/endpoints/{other_id}/delete"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(deleted.location(), "/endpoints?done=deleted");
    assert_eq!(daemon.ctl_json(&["webhook", "list"]).as_array().unwrap().len(), 1);

    // A form body too large, or not a form, is refused before anything runs.
    let huge = "x".repeat(70 * 1024);
    let too_large = owner
        .post(
            &format!("/mappings/{mapping}/delete"),
            &[("csrf", csrf.as_str()), ("pad", huge.as_str())],
        )
        .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(daemon.ctl_json(&["mapping", "list"]).as_array().unwrap().len(), 1);
}
