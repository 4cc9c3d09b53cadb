//! Organizations through the real daemon: invitations, the permission matrix over every RPC
//! and role, isolation of a second organization on every RPC that takes an id, usage and the
//! audit log.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::receiver::Receiver;
use common::{TestDaemon, wait_for};
use prost::Message;
use serde_json::Value;
use tonic::Code;

/// A request whose field 1 is a string: the id of every RPC that takes one.
#[derive(Clone, PartialEq, prost::Message)]
struct Field1 {
    #[prost(string, tag = "1")]
    value: String,
}

/// Any answer, its fields ignored.
#[derive(Clone, PartialEq, prost::Message)]
struct Ignored {}

/// `SetMemberRoleRequest`'s shape.
#[derive(Clone, PartialEq, prost::Message)]
struct MemberAndRole {
    #[prost(string, tag = "1")]
    member_id: String,
    #[prost(int32, tag = "2")]
    role: i32,
}

/// `CreateApiTokenRequest`'s shape.
#[derive(Clone, PartialEq, prost::Message)]
struct NameAndMember {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    member_id: String,
}

/// Calls `method` with `message` as `token` (none: anonymous); returns the status code.
async fn call<M>(daemon: &TestDaemon, token: Option<&str>, method: &str, message: M) -> Code
where
    M: Message + Default + Clone + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(daemon.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::try_from(method).unwrap();
    let codec = tonic_prost::ProstCodec::<M, Ignored>::default();
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Invites `email` with `role` and accepts; returns the member's id and token.
fn join(daemon: &TestDaemon, email: &str, role: &str) -> (String, String) {
    let invited = daemon.ctl_json(&["org", "invite", email, "--role", role]);
    let token = invited["token"].as_str().unwrap();
    assert!(token.starts_with("fxi_"), "{invited}");
    let accepted = daemon.ctl_json(&["org", "accept", token]);
    (
        accepted["member"]["id"].as_str().unwrap().to_owned(),
        accepted["token"].as_str().unwrap().to_owned(),
    )
}

fn as_token(daemon: &TestDaemon, token: &str, args: &[&str]) -> common::CtlOutput {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    daemon.ctl(&all)
}

#[test]
fn invitations_make_members_whose_role_limits_them_and_a_new_organization_sees_nothing() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let connection = daemon.connect("hubspot");
    let connection_id = connection["id"].as_str().unwrap();

    let (member_id, member) = join(&daemon, "a@example.com", "member");
    let listed = as_token(&daemon, &member, &["connection", "list", "-o", "json"]);
    assert!(listed.success(), "{}", listed.stderr());
    let refused = as_token(&daemon, &member, &["connection", "delete", connection_id]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("permission denied"), "{}", refused.stderr());
    assert!(
        daemon.ctl(&["connection", "get", connection_id]).success(),
        "nothing deleted"
    );
    // An invitation is single-use.
    let invited = daemon.ctl_json(&["org", "invite", "b@example.com"]);
    let token = invited["token"].as_str().unwrap();
    assert!(daemon.ctl(&["org", "accept", token]).success());
    let again = daemon.ctl(&["org", "accept", token]);
    assert!(!again.success());
    assert!(again.stderr().contains("not found"), "{}", again.stderr());
    assert!(daemon.ctl_json(&["org", "invitations"]).as_array().unwrap().is_empty());

    // A new organization: its owner token sees none of the first one's resources.
    let created = daemon.ctl_json(&["org", "create", "second team"]);
    let second = created["token"].as_str().unwrap();
    assert!(created["id"].as_str().unwrap().starts_with("org_"), "{created}");
    let hidden = as_token(&daemon, second, &["connection", "get", connection_id]);
    assert!(!hidden.success());
    assert!(hidden.stderr().contains("not found"), "{}", hidden.stderr());
    let status: Value = serde_json::from_str(&as_token(&daemon, second, &["status", "-o", "json"]).stdout()).unwrap();
    assert_eq!(
        (status["connections"].as_u64(), status["liveActors"]["total"].as_u64()),
        (Some(0), Some(0))
    );
    let orgs = daemon.ctl_json(&["org", "list"]);
    assert_eq!(orgs.as_array().unwrap().len(), 2, "the operator created both: {orgs}");
    let member_orgs = as_token(&daemon, &member, &["org", "list", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&member_orgs.stdout())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Only the operator token may create organizations by default.
    let not_operator = as_token(&daemon, second, &["org", "create", "third"]);
    assert!(!not_operator.success());
    assert!(not_operator.stderr().contains("operator"), "{}", not_operator.stderr());

    // An admin may not revoke an owner's token, nor make themselves owner.
    let (admin_id, admin) = join(&daemon, "admin@example.com", "admin");
    let tokens = daemon.ctl_json(&["org", "tokens"]);
    let owner_token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = as_token(&daemon, &admin, &["org", "revoke-token", &owner_token]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("permission denied"), "{}", refused.stderr());
    let promoted = as_token(&daemon, &admin, &["org", "set-role", &admin_id, "--role", "owner"]);
    assert!(!promoted.success());
    assert!(daemon.ctl(&["status"]).success(), "the owner keeps access");
    // An admin may manage members below owner: removing one revokes their tokens.
    let removed = as_token(&daemon, &admin, &["org", "remove-member", &member_id]);
    assert!(removed.success(), "{}", removed.stderr());
    let gone = as_token(&daemon, &member, &["status"]);
    assert!(gone.stderr().contains("unauthenticated"), "{}", gone.stderr());
    // The last owner cannot be demoted.
    let owner_id = daemon.member_id("role", "owner");
    let demoted = daemon.ctl(&["org", "set-role", &owner_id, "--role", "admin"]);
    assert!(!demoted.success());
    assert!(demoted.stderr().contains("at least one owner"), "{}", demoted.stderr());
}

#[test]
fn tokens_minted_with_a_token_die_with_it() {
    let daemon = TestDaemon::start(&[]);
    let (_, member) = join(&daemon, "m@example.com", "member");
    let child = as_token(&daemon, &member, &["org", "create-token", "--name", "ci", "-o", "json"]);
    assert!(child.success(), "{}", child.stderr());
    let child: Value = serde_json::from_str(&child.stdout()).unwrap();
    let child_secret = child["secret"].as_str().unwrap();
    assert!(as_token(&daemon, child_secret, &["status"]).success());
    let mine: Value =
        serde_json::from_str(&as_token(&daemon, &member, &["org", "tokens", "-o", "json"]).stdout()).unwrap();
    assert_eq!(
        mine.as_array().unwrap().len(),
        2,
        "a member sees only their own tokens: {mine}"
    );
    let parent = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] != child["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(daemon.ctl(&["org", "revoke-token", &parent]).success());
    assert!(!as_token(&daemon, child_secret, &["status"]).success());
}

/// The permission matrix, stated here independently of the daemon's table: the least role
/// each RPC needs (`public`: no token; `operator`: the operator token).
fn least_role(method: &str) -> &'static str {
    let name = method.rsplit('/').next().unwrap();
    match name {
        "AcceptInvitation" => "public",
        "CreateOrganization" | "ListClusterNodes" => "operator",
        "DeleteOrganization" | "RenameOrganization" => "owner",
        "CreateConnection"
        | "WaitConnection"
        | "ImportConnection"
        | "DeleteConnection"
        | "RefreshConnection"
        | "GetConnectionWebhooks"
        | "CreateMapping"
        | "UpdateMapping"
        | "DeleteMapping"
        | "ActivateMapping"
        | "DeactivateMapping"
        | "CreateWebhookEndpoint"
        | "UpdateWebhookEndpoint"
        | "DeleteWebhookEndpoint"
        | "EnableWebhookEndpoint"
        | "DisableWebhookEndpoint"
        | "RevealWebhookSecret"
        | "RotateWebhookSecret"
        | "TestWebhookEndpoint"
        | "RedeliverWebhook"
        | "RecoverWebhookDeliveries"
        | "AddMember"
        | "SetMemberRole"
        | "RemoveMember"
        | "CreateInvitation"
        | "RevokeInvitation" => "admin",
        _ => "member",
    }
}

#[tokio::test]
async fn every_rpc_enforces_the_permission_matrix_for_every_role() {
    let daemon = TestDaemon::start(&[]);
    let (_, admin) = join(&daemon, "admin@example.com", "admin");
    let (_, member) = join(&daemon, "member@example.com", "member");
    let owner = daemon.admin_token();
    let rank = |role: &str| match role {
        "member" => 0,
        "admin" => 1,
        "owner" => 2,
        _ => 3,
    };
    let mut wrong = Vec::new();
    for method in common::every_rpc() {
        let needs = least_role(&method);
        // An empty request reaches a handler, which refuses it without changing anything.
        for (role, token) in [
            ("owner", owner.as_str()),
            ("admin", admin.as_str()),
            ("member", member.as_str()),
        ] {
            let code = call(&daemon, Some(token), &method, Field1::default()).await;
            let allowed = match needs {
                "public" => true,
                // The owner's is the operator token.
                "operator" => role == "owner",
                _ => rank(role) >= rank(needs),
            };
            if allowed == (code == Code::PermissionDenied) || code == Code::Unauthenticated {
                wrong.push(format!("{method} as {role}: {code:?}"));
            }
        }
        let anonymous = call(&daemon, None, &method, Field1::default()).await;
        if (needs == "public") == (anonymous == Code::Unauthenticated) {
            wrong.push(format!("{method} without a token: {anonymous:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(
        daemon.ctl(&["status"]).success(),
        "the empty calls changed nothing that matters"
    );
}

#[tokio::test]
async fn a_second_organization_gets_not_found_for_every_id_of_the_first() {
    let receiver = Receiver::start();
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "5", "--allow-private-webhooks"]);
    // The first organization's resources, one of each kind.
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let endpoint = daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*",
    ]);
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&common::contacts_to_clients("m", &hubspot, &jobber));
    let job = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery = wait_for(Duration::from_secs(15), || {
        let deliveries = daemon.ctl_json(&["webhook", "deliveries", &endpoint]);
        deliveries.as_array()?.first()?["id"].as_str().map(str::to_owned)
    })
    .expect("a delivery");
    let event = daemon.ctl_json(&["events", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (member, _) = join(&daemon, "m@example.com", "member");
    let invitation = daemon.ctl_json(&["org", "invite", "later@example.com"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = daemon.ctl_json(&["org", "tokens"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let second = daemon.ctl_json(&["org", "create", "other"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id: HashMap<&str, &str> = HashMap::from([
        ("GetConnection", hubspot.as_str()),
        ("DeleteConnection", hubspot.as_str()),
        ("RefreshConnection", hubspot.as_str()),
        ("GetConnectionWebhooks", hubspot.as_str()),
        ("ListFields", hubspot.as_str()),
        ("GetMapping", mapping.as_str()),
        ("DeleteMapping", mapping.as_str()),
        ("ActivateMapping", mapping.as_str()),
        ("DeactivateMapping", mapping.as_str()),
        ("PreviewMapping", mapping.as_str()),
        ("RunSync", mapping.as_str()),
        ("GetSync", job.as_str()),
        ("CancelSync", job.as_str()),
        ("WatchSync", job.as_str()),
        ("ListSyncErrors", job.as_str()),
        ("ListSyncConflicts", job.as_str()),
        ("GetWebhookEndpoint", endpoint.as_str()),
        ("DeleteWebhookEndpoint", endpoint.as_str()),
        ("EnableWebhookEndpoint", endpoint.as_str()),
        ("DisableWebhookEndpoint", endpoint.as_str()),
        ("RevealWebhookSecret", endpoint.as_str()),
        ("RotateWebhookSecret", endpoint.as_str()),
        ("TestWebhookEndpoint", endpoint.as_str()),
        ("ListWebhookDeliveries", endpoint.as_str()),
        ("RecoverWebhookDeliveries", endpoint.as_str()),
        ("GetWebhookDelivery", delivery.as_str()),
        ("RedeliverWebhook", delivery.as_str()),
        ("GetEvent", event.as_str()),
        ("RemoveMember", member.as_str()),
        ("RevokeApiToken", token.as_str()),
        ("RevokeInvitation", invitation.as_str()),
    ]);
    let mut leaks = Vec::new();
    for method in common::every_rpc() {
        let name = method.rsplit('/').next().unwrap();
        let Some(id) = by_id.get(name) else { continue };
        let code = call(
            &daemon,
            Some(&second),
            &method,
            Field1 {
                value: (*id).to_owned(),
            },
        )
        .await;
        if code != Code::NotFound {
            leaks.push(format!("{name}({id}): {code:?}"));
        }
    }
    let set_role = MemberAndRole {
        member_id: member.clone(),
        role: 3,
    };
    let code = call(
        &daemon,
        Some(&second),
        "/fluxcascade.v1.OrganizationService/SetMemberRole",
        set_role,
    )
    .await;
    if code != Code::NotFound {
        leaks.push(format!("SetMemberRole: {code:?}"));
    }
    let mint = NameAndMember {
        name: "x".into(),
        member_id: member.clone(),
    };
    let code = call(
        &daemon,
        Some(&second),
        "/fluxcascade.v1.OrganizationService/CreateApiToken",
        mint,
    )
    .await;
    if code != Code::NotFound {
        leaks.push(format!("CreateApiToken for another org's member: {code:?}"));
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
    // Lists show the second organization only what it has: nothing.
    for list in [
        vec!["connection", "list"],
        vec!["mapping", "list"],
        vec!["sync", "list"],
        vec!["webhook", "list"],
        vec!["events", "list"],
        vec!["org", "invitations"],
        vec!["audit"],
    ] {
        let mut args = list.clone();
        args.extend(["-o", "json"]);
        let out = as_token(&daemon, &second, &args);
        assert!(out.success(), "{list:?}: {}", out.stderr());
        let value: Value = serde_json::from_str(&out.stdout()).unwrap();
        assert!(value.as_array().unwrap().is_empty(), "{list:?}: {value}");
    }
    // And the first organization's resources are untouched.
    assert_eq!(daemon.ctl_json(&["connection", "get", &hubspot])["status"], "active");
    assert_eq!(daemon.ctl_json(&["mapping", "get", &mapping])["active"], true);
    assert_eq!(daemon.ctl_json(&["webhook", "get", &endpoint])["enabled"], true);
}

#[test]
fn usage_is_counted_per_organization_and_mutations_are_audited() {
    let receiver = Receiver::start();
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "5", "--allow-private-webhooks"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*",
    ]);
    let mapping = daemon.create_mapping(&common::contacts_to_clients("m", &hubspot, &jobber));
    let job = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"]);
    let written = job["stats"]["created"].as_u64().unwrap() + job["stats"]["updated"].as_u64().unwrap();
    assert_eq!(written, 5, "{job}");
    let usage = wait_for(Duration::from_secs(15), || {
        let usage = daemon.ctl_json(&["org", "usage"]);
        (usage["webhookDeliveries"].as_u64()? >= 2).then_some(usage)
    })
    .expect("sync.started and sync.completed delivered and counted");
    assert_eq!(usage["syncRuns"], 1, "{usage}");
    assert_eq!(usage["recordsCreated"], job["stats"]["created"], "{usage}");
    assert_eq!(usage["recordsUpdated"], job["stats"]["updated"], "{usage}");
    let other = daemon.ctl_json(&["org", "create", "other"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs: Value =
        serde_json::from_str(&as_token(&daemon, &other, &["org", "usage", "-o", "json"]).stdout()).unwrap();
    assert_eq!(theirs["syncRuns"], 0, "{theirs}");
    let bad = daemon.ctl(&["org", "usage", "--month", "2026-13"]);
    assert!(bad.stderr().contains("month"), "{}", bad.stderr());
    let metrics = common::metric(&daemon, "fluxd_org_usage", &["kind=\"sync_runs\""]);
    assert_eq!(metrics, 1.0);

    let audit = daemon.ctl_json(&["audit"]);
    let methods: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    for expected in [
        "CreateOrganization",
        "RunSync",
        "CreateMapping",
        "CreateWebhookEndpoint",
        "CreateConnection",
    ] {
        assert!(methods.contains(&expected), "{expected} in {methods:?}");
    }
    assert!(
        !methods.contains(&"ListMappings") && !methods.contains(&"GetStatus"),
        "reads are not audited"
    );
    let created = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"].as_str().unwrap().ends_with("/CreateMapping"))
        .unwrap();
    assert_eq!(created["resourceId"], mapping.as_str(), "{created}");
    assert!(created["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{created}");
    let owner = created["memberId"].as_str().unwrap();
    let (_, member) = join(&daemon, "m@example.com", "member");
    assert!(as_token(&daemon, &member, &["sync", "run", &mapping]).success());
    let mine = daemon.ctl_json(&["audit", "--actor", owner]);
    assert!(mine.as_array().unwrap().iter().all(|e| e["memberId"] == owner));
    assert!(
        !daemon
            .ctl_json(&["audit", "--since", "1h"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let db = std::fs::read(daemon.data_dir().join("fluxd.redb")).unwrap();
    assert!(
        !db.windows(member.len()).any(|w| w == member.as_bytes()),
        "no token in the store in plaintext"
    );
}

#[test]
fn an_owner_deletes_an_organization_whole_and_its_tokens_stop_working() {
    let daemon = TestDaemon::start(&["--sandbox", "--allow-private-webhooks"]);
    let created = daemon.ctl_json(&["org", "create", "doomed"]);
    let (org, token) = (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
    let started = as_token(
        &daemon,
        &token,
        &[
            "connection",
            "create",
            "--provider",
            "hubspot",
            "--no-wait",
            "-o",
            "json",
        ],
    );
    let started: Value = serde_json::from_str(&started.stdout()).unwrap();
    let (status, page) = common::http_get(started["authorizeUrl"].as_str().unwrap());
    assert_eq!(status, 200, "{page}");
    let hook = as_token(
        &daemon,
        &token,
        &["webhook", "create", "--url", "http://127.0.0.1:9/hook"],
    );
    assert!(hook.success(), "{}", hook.stderr());
    let status: Value = serde_json::from_str(&as_token(&daemon, &token, &["status", "-o", "json"]).stdout()).unwrap();
    assert_eq!(
        (status["connections"].as_u64(), status["webhookEndpoints"].as_u64()),
        (Some(1), Some(1))
    );

    let unconfirmed = as_token(&daemon, &token, &["org", "delete", "org_other"]);
    assert!(!unconfirmed.success());
    assert!(unconfirmed.stderr().contains("id"), "{}", unconfirmed.stderr());
    let deleted = as_token(&daemon, &token, &["org", "delete", &org, "-o", "json"]);
    assert!(deleted.success(), "{}", deleted.stderr());
    let deleted: Value = serde_json::from_str(&deleted.stdout()).unwrap();
    assert_eq!(deleted["grantsRevoked"], 1, "{deleted}");
    let after = as_token(&daemon, &token, &["status"]);
    assert!(after.stderr().contains("unauthenticated"), "{}", after.stderr());
    assert_eq!(daemon.ctl_json(&["org", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(
        common::metric(&daemon, "fluxd_live_actors", &["supervisor=\"connections\""]),
        0.0,
        "the deleted organization's actors stopped"
    );
    // The operator's organization stays: deleting it would lock the daemon's operator out.
    let first = daemon.ctl_json(&["org", "get"])["id"].as_str().unwrap().to_owned();
    let refused = daemon.ctl(&["org", "delete", &first]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("operator"), "{}", refused.stderr());
}
