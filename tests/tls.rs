//! TLS and mutual TLS on the gRPC listener, with fluxctl's `--ca-cert`, `--client-cert` and
//! `--client-key`.

mod common;

use std::path::Path;

use common::TestDaemon;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, and certificates it signed, written as PEM files into `dir`.
struct Pki {
    ca: std::path::PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> (Pki, CertificateParams, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        (Pki { ca: path }, params, key)
    }
}

/// A certificate for `names` signed by the CA; returns the cert and key paths.
fn issue(dir: &Path, stem: &str, names: &[&str], ca: &CertificateParams, ca_key: &KeyPair) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let issuer = Issuer::from_params(ca, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        cert_path.to_str().unwrap().to_owned(),
        key_path.to_str().unwrap().to_owned(),
    )
}

#[test]
fn grpc_over_tls_and_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, ca, ca_key) = Pki::new(dir.path());
    let (cert, key) = issue(dir.path(), "server", &["localhost", "127.0.0.1"], &ca, &ca_key);
    let config = dir.path().join("fluxd.toml");
    std::fs::write(
        &config,
        format!("[grpc]\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n"),
    )
    .unwrap();
    let daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let ca_path = pki.ca.to_str().unwrap();
    // endpoints.json says TLS, so fluxctl speaks https; it trusts the CA it is given.
    let status = daemon.ctl(&["--ca-cert", ca_path, "status", "-o", "json"]);
    assert!(status.success(), "{}", status.stderr());
    let untrusted = daemon.ctl(&["status"]);
    assert!(!untrusted.success(), "a certificate from an unknown CA is refused");
    let plain = daemon.ctl(&["--addr", &format!("http://{}", daemon.grpc), "status"]);
    assert!(!plain.success(), "plaintext is refused");
    drop(daemon);

    // Mutual TLS: only clients with a certificate from the client CA get in.
    let (client_cert, client_key) = issue(dir.path(), "client", &["fluxctl"], &ca, &ca_key);
    std::fs::write(
        &config,
        format!("[grpc]\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\nclient_ca_file = {ca_path:?}\n"),
    )
    .unwrap();
    let daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let anonymous = daemon.ctl(&["--ca-cert", ca_path, "status"]);
    assert!(!anonymous.success(), "no client certificate, no connection");
    // fluxctl with the client certificate and then `args`.
    let with_cert = |args: &[&str]| {
        let mut all = vec![
            "--ca-cert",
            ca_path,
            "--client-cert",
            &client_cert,
            "--client-key",
            &client_key,
        ];
        all.extend_from_slice(args);
        daemon.ctl(&all)
    };
    let mutual = with_cert(&["status"]);
    assert!(mutual.success(), "{}", mutual.stderr());
    // The audit log still knows where calls come from.
    let created = with_cert(&["org", "rename", "tls"]);
    assert!(created.success(), "{}", created.stderr());
    let audit = with_cert(&["audit", "-o", "json"]);
    let audit: serde_json::Value = serde_json::from_str(&audit.stdout()).unwrap();
    assert!(audit[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{audit}");
}

#[test]
fn a_half_configured_tls_refuses_to_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fluxd.toml");
    std::fs::write(&config, "[grpc]\ntls_cert_file = \"/nonexistent/cert.pem\"\n").unwrap();
    let out = std::process::Command::new(common::FLUXD)
        .args(["--config", config.to_str().unwrap()])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grpc.tls_key_file"), "{stderr}");
}
