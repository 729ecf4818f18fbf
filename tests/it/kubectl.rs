//! The real kubectl (1.27 and 1.33, called directly, not through the gcloud dispatcher) running `iap-token`
//! as its exec credential plugin against a fake API server over HTTPS: both exec apiVersions, per-cluster
//! audiences from the kubeconfig cluster extension, the non-interactive sign-in failure as kubectl shows it,
//! and kubectl's re-run of the plugin after a 401.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::*;
use crate::fake_google::*;
use crate::fake_kube::{FakeKube, VERSION};

/// Where the machine image keeps the versioned kubectl binaries.
const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";
const OTHER_AUD: &str = "789-other-web.apps.googleusercontent.com";
/// No kubectl run here needs more than a few seconds; this only turns a hang into a failure.
const KUBECTL_DEADLINE: Duration = Duration::from_secs(60);

/// The real kubectl binary of `version` ("1.27"), named `kubectl.1.27`: in the directory
/// `IAP_TOKEN_TEST_KUBECTL`, else the image's /usr/lib/google-cloud-sdk/bin, else on PATH. A missing binary
/// fails the test, it never skips it.
fn kubectl_path(version: &str) -> PathBuf {
    let name = format!("kubectl.{version}");
    let mut dirs: Vec<PathBuf> = std::env::var_os("IAP_TOKEN_TEST_KUBECTL").map(PathBuf::from).into_iter().collect();
    dirs.push(PathBuf::from(KUBECTL_DIR));
    dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    dirs.iter().map(|dir| dir.join(&name)).find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} is missing: these tests need the real kubectl {version} as a file named {name} in \
             $IAP_TOKEN_TEST_KUBECTL, {KUBECTL_DIR} or on PATH (install the Google Cloud SDK kubectl component, \
             or download https://dl.k8s.io/release/v{version}.0/bin/linux/amd64/kubectl and name it {name})"
        )
    })
}

/// Runs `kubectl --kubeconfig K ARGS` with the harness's clean environment, which kubectl passes on
/// to the plugin (HOME, cache and state dirs, file store, no metadata server, no proxy for loopback).
fn kubectl(h: &Harness, version: &str, kubeconfig: &Path, args: &[&str]) -> Run {
    let plugin = h.command(&[]);
    let env = plugin.get_envs().filter_map(|(name, value)| Some((name, value?)));
    let (stdout, stderr) = (h.path("kubectl.stdout"), h.path("kubectl.stderr"));
    let mut child = Command::new(kubectl_path(version))
        .env_clear()
        .envs(env)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "20s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("kubectl stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("kubectl stderr file"))
        .spawn()
        .expect("start kubectl");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kubectl") {
            break status;
        }
        if started.elapsed() > KUBECTL_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kubectl {args:?} still running after {KUBECTL_DEADLINE:?}: {}", read(&stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run { code: status.code().unwrap_or(-1), stdout: read(&stdout), stderr: read(&stderr) }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// A kubeconfig `clusters` entry for `kube`, with the exec extension `{audience}` when given.
fn cluster(name: &str, kube: &FakeKube, audience: Option<&str>) -> Value {
    let mut cluster = json!({"server": kube.url(), "certificate-authority-data": STANDARD.encode(kube.ca_pem())});
    if let Some(audience) = audience {
        cluster["extensions"] = json!([{"name": EXEC_EXTENSION, "extension": {"audience": audience}}]);
    }
    json!({"name": name, "cluster": cluster})
}

/// Writes a kubeconfig with `clusters`, one user `iap` whose `exec` is `exec`, and one context per cluster
/// named after it (the first is current); returns its path.
fn kubeconfig(h: &Harness, clusters: &[Value], exec: Value) -> PathBuf {
    let contexts: Vec<Value> =
        clusters.iter().map(|c| json!({"name": c["name"], "context": {"cluster": c["name"], "user": "iap"}})).collect();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": "iap", "user": {"exec": exec}}],
        "contexts": contexts,
        "current-context": clusters[0]["name"],
        "preferences": {},
    });
    h.write("kubeconfig", &serde_json::to_string_pretty(&config).expect("kubeconfig JSON"))
}

/// The token of `Bearer <token>`, asserting that it is an ID token of the fake Google for `audience`.
fn verified_bearer(authorization: &Option<String>, audience: &str) -> String {
    let value = authorization.as_deref().expect("an Authorization header");
    let token = value.strip_prefix("Bearer ").unwrap_or_else(|| panic!("not a bearer: {value}"));
    let (_, claims) = verify_google_jwt(token).expect("signed by the fake Google");
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["email"], SA_EMAIL);
    token.to_string()
}

fn assert_version(run: &Run) {
    assert_eq!(run.code, 0, "kubectl failed: {}", run.stderr);
    let body: Value = serde_json::from_str(&run.stdout).expect("the /version JSON on kubectl's stdout");
    assert_eq!(body, serde_json::from_str::<Value>(VERSION).expect("VERSION is JSON"));
}

/// kubectl `version` with exec `api_version` sends the plugin's token; a second kubectl process gets the
/// same token from the plugin's cache.
fn bearer_round_trip(version: &str, api_version: &str) {
    let h = Harness::new();
    let kube = FakeKube::start(AUD);
    let key = h.key_file();
    let mut exec = json!({
        "apiVersion": api_version,
        "command": BIN,
        "args": ["token", "--audience", AUD, "--service-account-key", key],
    });
    if api_version == V1 {
        exec["interactiveMode"] = json!("IfAvailable");
    }
    let config = kubeconfig(&h, &[cluster("iap", &kube, None)], exec);

    let first = kubectl(&h, version, &config, &["get", "--raw", "/version"]);
    assert_version(&first);
    assert_eq!(first.stderr, "", "neither kubectl nor the plugin has anything to say");
    let second = kubectl(&h, version, &config, &["get", "--raw", "/version"]);
    assert_version(&second);

    let authorizations = kube.authorizations();
    assert_eq!(authorizations.len(), 2, "one request per kubectl run: {:?}", kube.paths());
    let token = verified_bearer(&authorizations[0], AUD);
    assert_eq!(verified_bearer(&authorizations[1], AUD), token, "the second run is served from the cache");
    assert_eq!(h.google.count(Endpoint::Token), 1, "the second kubectl run made no token request");
}

#[test]
fn kubectl_1_27_exec_v1_sends_a_verified_token_and_reuses_the_cache() {
    bearer_round_trip("1.27", V1);
}

#[test]
fn kubectl_1_27_exec_v1beta1_sends_a_verified_token_and_reuses_the_cache() {
    bearer_round_trip("1.27", V1BETA1);
}

#[test]
fn kubectl_1_33_exec_v1_sends_a_verified_token_and_reuses_the_cache() {
    bearer_round_trip("1.33", V1);
}

#[test]
fn kubectl_1_33_exec_v1beta1_sends_a_verified_token_and_reuses_the_cache() {
    bearer_round_trip("1.33", V1BETA1);
}

#[test]
fn one_user_stanza_serves_two_clusters_with_audiences_from_their_extensions() {
    let h = Harness::new();
    let (kube_a, kube_b) = (FakeKube::start(AUD), FakeKube::start(OTHER_AUD));
    let key = h.key_file();
    // No --audience: it comes from each cluster's extension. The key comes through the exec env list.
    let exec = json!({
        "apiVersion": V1,
        "command": BIN,
        "args": ["token"],
        "env": [{"name": "IAP_TOKEN_SERVICE_ACCOUNT_KEY", "value": key}],
        "interactiveMode": "Never",
        "provideClusterInfo": true,
    });
    let clusters = [cluster("a", &kube_a, Some(AUD)), cluster("b", &kube_b, Some(OTHER_AUD))];
    let config = kubeconfig(&h, &clusters, exec);
    for version in ["1.33", "1.27"] {
        for context in ["a", "b"] {
            let run = kubectl(&h, version, &config, &["--context", context, "get", "--raw", "/version"]);
            assert_version(&run);
        }
    }
    let (seen_a, seen_b) = (kube_a.authorizations(), kube_b.authorizations());
    assert_eq!((seen_a.len(), seen_b.len()), (2, 2));
    for authorization in &seen_a {
        verified_bearer(authorization, AUD);
    }
    for authorization in &seen_b {
        verified_bearer(authorization, OTHER_AUD);
    }
    assert_eq!(h.google.count(Endpoint::Token), 2, "one token per audience, then the cache");
}

#[test]
fn interactive_mode_never_without_a_stored_sign_in_fails_with_the_login_command_and_exit_3() {
    let h = Harness::new();
    let kube = FakeKube::start(AUD);
    let exec = json!({
        "apiVersion": V1,
        "command": BIN,
        "args": ["token", "--audience", AUD, "--client-id", DESKTOP_CLIENT, "--client-secret", DESKTOP_SECRET],
        "interactiveMode": "Never",
    });
    let config = kubeconfig(&h, &[cluster("iap", &kube, None)], exec);
    for version in ["1.33", "1.27"] {
        let run = kubectl(&h, version, &config, &["get", "--raw", "/version"]);
        assert_ne!(run.code, 0, "kubectl must fail: {run:?}");
        assert_eq!(run.stdout, "");
        let plugin_line = run
            .stderr
            .lines()
            .find(|line| line.starts_with("iap-token: error: "))
            .unwrap_or_else(|| panic!("kubectl {version} shows the plugin's error line: {}", run.stderr));
        assert!(plugin_line.contains(&format!("; run: iap-token login --client-id {DESKTOP_CLIENT}")), "{plugin_line}");
        assert!(!run.stderr.contains(DESKTOP_SECRET), "the secret is never shown: {}", run.stderr);
        let kubectl_line = format!(
            "Unable to connect to the server: getting credentials: exec: executable {BIN} failed with exit code 3"
        );
        assert!(run.stderr.lines().any(|line| line == kubectl_line), "{}", run.stderr);
    }
    assert!(kube.authorizations().is_empty(), "kubectl sent nothing without a credential");
    assert!(h.google.requests().is_empty(), "no sign-in started, nothing sent to Google");
}

#[test]
fn a_401_makes_kubectl_rerun_the_plugin_which_answers_from_its_cache() {
    let h = Harness::new();
    let kube = FakeKube::start(AUD);
    let key = h.key_file();
    // A wrapper that counts the plugin's runs (run through sh: no freshly written executable to exec).
    let runs = h.path("plugin-runs");
    let wrapper = h.write("plugin.sh", &format!("echo run >> '{}'\nexec '{BIN}' \"$@\"\n", runs.display()));
    let exec = json!({
        "apiVersion": V1,
        "command": "/bin/sh",
        "args": [wrapper, "token", "--audience", AUD, "--service-account-key", key],
        "interactiveMode": "Never",
    });
    let config = kubeconfig(&h, &[cluster("iap", &kube, None)], exec);
    let plugin_runs = || read(&runs).lines().count();
    for version in ["1.33", "1.27"] {
        let before = (plugin_runs(), kube.authorizations().len());
        kube.reject_next(1);
        let rejected = kubectl(&h, version, &config, &["get", "--raw", "/version"]);
        assert_ne!(rejected.code, 0, "kubectl does not retry the request after a 401: {rejected:?}");
        assert_eq!(rejected.stderr, "error: You must be logged in to the server (Unauthorized)\n");
        assert_eq!(plugin_runs() - before.0, 2, "kubectl {version} re-ran the plugin once after the 401");
        assert_eq!(kube.authorizations().len() - before.1, 1, "one request, not a loop");

        let again = kubectl(&h, version, &config, &["get", "--raw", "/version"]);
        assert_version(&again);
    }
    let tokens: Vec<String> = kube.authorizations().iter().map(|a| verified_bearer(a, AUD)).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "every run served the one cached token");
    assert_eq!(h.google.count(Endpoint::Token), 1, "the re-runs answered from the cache");
}

#[test]
fn fake_api_server_rejects_missing_junk_foreign_and_forced_bearers() {
    let h = Harness::new();
    let kube = FakeKube::start(AUD);
    let right = format!("Bearer {}", h.key_token(&[]).token());
    let key = h.key_file();
    let foreign = h.run(&["token", "--audience", OTHER_AUD, "--service-account-key", key.to_str().unwrap()]).token();
    let foreign = format!("Bearer {foreign}");
    let ca = ureq::tls::Certificate::from_pem(kube.ca_pem().as_bytes()).expect("the CA PEM");
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![ca]));
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    let agent: ureq::Agent =
        ureq::Agent::config_builder().tls_config(tls).proxy(None).http_status_as_error(false).build().into();
    let get = |path: &str, authorization: Option<&str>| {
        let mut request = agent.get(format!("{}{path}", kube.url()));
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let mut response = request.call().expect("the fake API server answers over TLS");
        let body = response.body_mut().read_to_string().expect("a body");
        (response.status().as_u16(), serde_json::from_str::<Value>(&body).expect("a JSON body"))
    };
    let unauthorized = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    for authorization in [None, Some("Bearer junk"), Some(&foreign[..]), Some(&right[7..])] {
        assert_eq!(get("/version", authorization), (401, unauthorized.clone()), "{authorization:?}");
    }
    assert_eq!(get("/version", Some(&right)), (200, serde_json::from_str(VERSION).unwrap()));
    assert_eq!(get("/api", Some(&right)).0, 404);
    kube.reject_next(2);
    assert_eq!(get("/version", Some(&right)).0, 401);
    assert_eq!(get("/version", Some(&right)).0, 401);
    assert_eq!(get("/version", Some(&right)).0, 200);
    let seen = kube.authorizations();
    assert_eq!(seen.len(), 9);
    assert_eq!(seen[..3], [None, Some("Bearer junk".to_string()), Some(foreign.clone())]);
    assert!(seen[4..].iter().all(|a| a.as_deref() == Some(&right[..])));
}
