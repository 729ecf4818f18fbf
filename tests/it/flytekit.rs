//! Real flytekit (installed in a venv by scripts/install-test-deps) runs the built binary the way Flyte
//! does: `admin.proxyCommand` and `admin.command` from a config file, `FLYTE_CREDENTIALS_PROXY_COMMAND`
//! from the environment, through `CommandAuthenticator`, and shows our one-line error when it fails.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(python.exists(), "the flytekit venv is missing: run scripts/install-test-deps");
    python
}

const SCRIPT: &str = r#"
import json, os, sys
from flytekit.configuration import PlatformConfig
from flytekit.clients.auth_helper import get_authenticator, get_proxy_authenticator
from flytekit.clients.auth.authenticator import CommandAuthenticator
from flytekit.clients.auth.exceptions import AuthenticationError

out = {}
cfg = PlatformConfig.auto(config_file=sys.argv[1])
proxy = get_proxy_authenticator(cfg)
proxy.refresh_credentials()
out["proxy"] = list(proxy.fetch_grpc_call_auth_metadata())
command = get_authenticator(cfg, None)
command.refresh_credentials()
out["command"] = list(command.fetch_grpc_call_auth_metadata())
out["command_type"] = type(command).__name__
if os.environ.get("FLYTE_CREDENTIALS_PROXY_COMMAND"):
    env_cfg = PlatformConfig.auto()
    env_proxy = get_proxy_authenticator(env_cfg)
    env_proxy.refresh_credentials()
    out["env_proxy"] = list(env_proxy.fetch_grpc_call_auth_metadata())
    out["env_command"] = env_cfg.proxy_command
failing = CommandAuthenticator(command=sys.argv[2:], header_key="proxy-authorization")
try:
    failing.refresh_credentials()
    out["failure"] = None
except AuthenticationError as e:
    out["failure"] = str(e)
print(json.dumps(out))
"#;

#[test]
fn flytekit_command_authenticator_sends_our_token_as_proxy_authorization() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let script = h.write("flyte_auth.py", SCRIPT);
    let config = h.write(
        "flyte.yaml",
        &format!(
            "admin:\n  endpoint: dns:///flyte.example.com\n  authType: ExternalCommand\n  \
             command: [\"{BIN}\", \"token\", \"--audience\", \"{AUD}\", \"--service-account-key\", \"{key}\"]\n  \
             proxyCommand: [\"{BIN}\", \"generate-service-account-id-token\", \"--webapp_client_id\", \"{AUD}\", \"--service_account_key\", \"{key}\"]\n"
        ),
    );
    let output = Command::new(python())
        .arg(&script)
        .arg(&config)
        .args([BIN, "token", "--audience", AUD, "--service-account-key", "/nonexistent/key.json"])
        .env_clear()
        .envs(h.env_vars())
        .env("FLYTE_CREDENTIALS_PROXY_COMMAND", format!("{BIN},token,--audience,{AUD},--service-account-key,{key}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));

    let [key_name, value] = [&result["proxy"][0], &result["proxy"][1]];
    assert_eq!(key_name, "proxy-authorization");
    let token = value.as_str().unwrap().strip_prefix("Bearer ").expect("Bearer value");
    let (_, claims) = verify_google_jwt(token).expect("the fake Google's token");
    assert_eq!(claims["aud"], AUD);

    assert_eq!(result["command_type"], "CommandAuthenticator");
    assert_eq!(result["command"][0], "authorization");
    assert_eq!(result["command"][1], format!("Bearer {token}"), "admin.command got the same cached token");
    assert_eq!(result["env_proxy"][0], "proxy-authorization");
    assert_eq!(result["env_proxy"][1], format!("Bearer {token}"));
    assert_eq!(result["env_command"][1], "token", "FLYTE_CREDENTIALS_PROXY_COMMAND is split on commas");
    assert_eq!(h.google.count(Endpoint::Token), 1, "three commands, one token request");

    let failure = result["failure"].as_str().expect("the failing command raised AuthenticationError");
    assert!(failure.contains("stdout: \n"), "nothing on stdout: {failure}");
    let ours: Vec<&str> = failure.lines().filter(|l| l.contains("iap-token: error:")).collect();
    assert_eq!(ours.len(), 1, "{failure}");
    assert!(ours[0].contains("could not read the credential file /nonexistent/key.json"), "{failure}");
}
