//! A clap-free parser for the call that every kubectl, flytekit and git invocation makes: `iap-token
//! token` with long options. Building clap's command tree costs more than the rest of a cache hit, so
//! `main` tries this parser first. Anything it does not fully understand (another subcommand, short or
//! global flags, `--help`, an unknown or repeated option, a value that does not parse or starts with `-`,
//! a boolean flag or an empty value in the environment, text that is not UTF-8) goes to clap, which also
//! owns every error message. Both produce the same [`Cli`]; the tests below hold them to that, option by
//! option, in argv and in the environment.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::{
    AuthArgs, CacheArgs, Cli, Command, FormatArg, LoginArgs, NetArgs, OutputArgs, SourceArg, StoreArg, StoreArgs,
    TokenArgs, TokenTypeArg,
};
use crate::config::Environment;
use crate::secret::Secret;

/// Each option of `token`, by its long name and environment variable.
const OPTIONS: &[(&str, &str)] = &[
    ("url", "IAP_TOKEN_URL"),
    ("profile", "IAP_TOKEN_PROFILE"),
    ("audience", "IAP_TOKEN_AUDIENCE"),
    ("source", "IAP_TOKEN_SOURCE"),
    ("token-type", "IAP_TOKEN_TOKEN_TYPE"),
    ("client-id", "IAP_TOKEN_CLIENT_ID"),
    ("account", "IAP_TOKEN_ACCOUNT"),
    ("client-secret", "IAP_TOKEN_CLIENT_SECRET"),
    ("client-secret-file", "IAP_TOKEN_CLIENT_SECRET_FILE"),
    ("client-secret-from-secret-manager", "IAP_TOKEN_CLIENT_SECRET_FROM_SECRET_MANAGER"),
    ("service-account-key", "IAP_TOKEN_SERVICE_ACCOUNT_KEY"),
    ("impersonate-service-account", "IAP_TOKEN_IMPERSONATE_SERVICE_ACCOUNT"),
    ("format", "IAP_TOKEN_FORMAT"),
    ("header-name", "IAP_TOKEN_HEADER_NAME"),
    ("min-ttl", "IAP_TOKEN_MIN_TTL"),
    ("cache-dir", "IAP_TOKEN_CACHE_DIR"),
    ("state-dir", "IAP_TOKEN_STATE_DIR"),
    ("store", "IAP_TOKEN_STORE"),
    ("browser", "IAP_TOKEN_BROWSER"),
    ("listen-port", "IAP_TOKEN_LISTEN_PORT"),
    ("login-timeout", "IAP_TOKEN_LOGIN_TIMEOUT"),
    ("ca-file", "IAP_TOKEN_CA_FILE"),
    ("timeout", "IAP_TOKEN_TIMEOUT"),
    ("auth-uri", "IAP_TOKEN_AUTH_URI"),
    ("token-uri", "IAP_TOKEN_TOKEN_URI"),
    ("revoke-uri", "IAP_TOKEN_REVOKE_URI"),
    ("secret-manager-endpoint", "IAP_TOKEN_SECRET_MANAGER_ENDPOINT"),
    ("iam-credentials-endpoint", "IAP_TOKEN_IAM_CREDENTIALS_ENDPOINT"),
];

/// The boolean flags of `token`, and the global quiet flag: given on the command line they are plain
/// `--name`; set in the environment they go to clap, which decides what counts as true.
const FLAGS: &[(&str, &str)] = &[
    ("force-refresh", "IAP_TOKEN_FORCE_REFRESH"),
    ("no-browser", "IAP_TOKEN_NO_BROWSER"),
    ("non-interactive", "IAP_TOKEN_NON_INTERACTIVE"),
];
const GLOBAL_FLAG_ENVS: &[&str] = &["IAP_TOKEN_QUIET"];

/// `Some` when `args` (with the program name first) is a `token` call this parser fully understands.
pub fn parse(args: &[OsString], env: &dyn Environment) -> Option<Cli> {
    let mut words = args.iter().skip(1).map(|word| word.to_str());
    if words.next()?? != "token" {
        return None;
    }
    let mut values: [Option<String>; OPTIONS.len()] = Default::default();
    let mut flags = [false; FLAGS.len()];
    while let Some(word) = words.next() {
        let body = word?.strip_prefix("--")?;
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        if let Some(index) = FLAGS.iter().position(|(long, _)| *long == name) {
            if inline.is_some() || flags[index] {
                return None;
            }
            flags[index] = true;
            continue;
        }
        let index = OPTIONS.iter().position(|(long, _)| *long == name)?;
        let value = match inline {
            Some(value) => value,
            None => words.next()??,
        };
        if values[index].is_some() || value.is_empty() || value.starts_with('-') {
            return None;
        }
        values[index] = Some(value.to_string());
    }
    if FLAGS.iter().map(|(_, env)| *env).chain(GLOBAL_FLAG_ENVS.iter().copied()).any(|name| env.is_set(name)) {
        return None;
    }
    for (value, (_, name)) in values.iter_mut().zip(OPTIONS) {
        if value.is_none() && env.is_set(name) {
            *value = Some(env.var(name)?);
        }
    }
    let [
        url,
        profile,
        audience,
        source,
        token_type,
        client_id,
        account,
        client_secret,
        client_secret_file,
        client_secret_from_secret_manager,
        service_account_key,
        impersonate_service_account,
        format,
        header_name,
        min_ttl,
        cache_dir,
        state_dir,
        store,
        browser,
        listen_port,
        login_timeout,
        ca_file,
        timeout,
        auth_uri,
        token_uri,
        revoke_uri,
        secret_manager_endpoint,
        iam_credentials_endpoint,
    ] = values;
    let [force_refresh, no_browser, non_interactive] = flags;
    let path = |value: Option<String>| value.map(PathBuf::from);
    let token = TokenArgs {
        auth: AuthArgs {
            url,
            profile,
            audience,
            source: choice(source, SourceArg::Auto)?,
            token_type: choice(token_type, TokenTypeArg::IdToken)?,
            client_id,
            account,
            client_secret: client_secret.map(Secret::new),
            client_secret_file: path(client_secret_file),
            client_secret_from_secret_manager,
            service_account_key: path(service_account_key),
            impersonate_service_account,
        },
        output: OutputArgs {
            format: choice(format, FormatArg::Auto)?,
            header_name: header_name.unwrap_or_else(|| "Authorization".into()),
        },
        cache: CacheArgs {
            min_ttl: number(min_ttl, 300)?,
            force_refresh,
            dirs: StoreArgs {
                cache_dir: path(cache_dir),
                state_dir: path(state_dir),
                store: choice(store, StoreArg::Auto)?,
            },
        },
        login: LoginArgs {
            no_browser,
            non_interactive,
            browser,
            listen_port: number(listen_port, 0)?,
            login_timeout: number(login_timeout, 300)?,
        },
        net: NetArgs {
            ca_file: path(ca_file),
            timeout: number(timeout, 30)?,
            auth_uri,
            token_uri,
            revoke_uri,
            secret_manager_endpoint,
            iam_credentials_endpoint,
        },
    };
    Some(Cli { verbose: 0, quiet: false, command: Command::Token(token) })
}

fn choice<T: ValueEnum>(value: Option<String>, default: T) -> Option<T> {
    match value {
        Some(value) => T::from_str(&value, false).ok(),
        None => Some(default),
    }
}

fn number<T: std::str::FromStr>(value: Option<String>, default: T) -> Option<T> {
    match value {
        Some(value) if value.bytes().all(|b| b.is_ascii_digit()) => value.parse().ok(),
        Some(_) => None,
        None => Some(default),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::{CommandFactory, Parser};

    use super::*;

    /// A fixed environment.
    struct FakeEnv(HashMap<&'static str, &'static str>);

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).filter(|v| !v.is_empty()).map(|v| v.to_string())
        }

        fn is_set(&self, name: &str) -> bool {
            self.0.contains_key(name)
        }
    }

    fn no_env() -> FakeEnv {
        FakeEnv(HashMap::new())
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("iap-token").chain(words.iter().copied()).map(OsString::from).collect()
    }

    /// clap's result for the same words, with the environment given as the options it stands for.
    fn by_clap(words: &[&str]) -> String {
        let cli = Cli::try_parse_from(argv(words)).unwrap_or_else(|e| panic!("clap refuses {words:?}: {e}"));
        format!("{cli:?} secret={:?}", secret_of(&cli))
    }

    fn by_fast(words: &[&str], env: &FakeEnv) -> Option<String> {
        parse(&argv(words), env).map(|cli| format!("{cli:?} secret={:?}", secret_of(&cli)))
    }

    /// The client secret in clear: `Debug` redacts it, so the comparisons add it explicitly.
    fn secret_of(cli: &Cli) -> Option<String> {
        match &cli.command {
            Command::Token(token) => token.auth.client_secret.as_ref().map(|s| s.expose().clone()),
            _ => None,
        }
    }

    /// A valid value for each option.
    fn sample(name: &str) -> &'static str {
        match name {
            "source" => "service-account-key",
            "token-type" => "signed-jwt",
            "url" => "https://flyte.example.com/console",
            "format" => "exec-credential",
            "store" => "file",
            "min-ttl" => "120",
            "listen-port" => "8085",
            "login-timeout" => "60",
            "timeout" => "7",
            "auth-uri" | "token-uri" | "revoke-uri" => "https://oauth2.example.com/x",
            "secret-manager-endpoint" | "iam-credentials-endpoint" => "https://api.example.com",
            "client-secret-from-secret-manager" => "projects/p/secrets/s",
            _ => "some value/with.path",
        }
    }

    #[test]
    fn knows_exactly_the_options_of_token() {
        let mut command = Cli::command();
        command.build();
        let token = command.find_subcommand("token").expect("token");
        let mut clap_options: Vec<(String, Option<String>)> = token
            .get_arguments()
            .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version" | "verbose" | "quiet"))
            .map(|arg| {
                let long = arg.get_long().expect("long options only").to_string();
                (long, arg.get_env().map(|e| e.to_string_lossy().into_owned()))
            })
            .collect();
        clap_options.sort();
        let mut ours: Vec<(String, Option<String>)> =
            OPTIONS.iter().chain(FLAGS).map(|(long, env)| (long.to_string(), Some(env.to_string()))).collect();
        ours.sort();
        assert_eq!(ours, clap_options);
        let quiet = command.get_arguments().find(|a| a.get_id() == "quiet").unwrap();
        assert_eq!(quiet.get_env().unwrap(), GLOBAL_FLAG_ENVS[0]);
    }

    #[test]
    fn agrees_with_clap_on_defaults_each_option_and_combinations() {
        assert_eq!(by_fast(&["token"], &no_env()).unwrap(), by_clap(&["token"]));
        for (long, _) in OPTIONS {
            let value = sample(long);
            let spaced = ["token", &format!("--{long}"), value];
            assert_eq!(by_fast(&spaced, &no_env()).as_deref(), Some(by_clap(&spaced).as_str()), "--{long} {value}");
            let joined = format!("--{long}={value}");
            assert_eq!(by_fast(&["token", &joined], &no_env()).unwrap(), by_clap(&["token", &joined]));
        }
        for (long, _) in FLAGS {
            let words = ["token", &format!("--{long}")];
            assert_eq!(by_fast(&words, &no_env()).unwrap(), by_clap(&words));
        }
        // Pseudo-random combinations of options and flags, in both spellings.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            let mut words = vec!["token".to_string()];
            for (long, _) in OPTIONS.iter().chain(FLAGS) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                match seed >> 61 {
                    0 | 1 => {}
                    2 if FLAGS.iter().all(|(f, _)| f != long) => {
                        words.push(format!("--{long}={}", sample(long)));
                    }
                    _ if FLAGS.iter().any(|(f, _)| f == long) => words.push(format!("--{long}")),
                    _ => {
                        words.push(format!("--{long}"));
                        words.push(sample(long).to_string());
                    }
                }
            }
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            assert_eq!(by_fast(&words, &no_env()).unwrap(), by_clap(&words), "{words:?}");
        }
    }

    #[test]
    fn the_environment_stands_for_missing_options_and_the_command_line_wins() {
        for (long, name) in OPTIONS {
            let value = sample(long);
            let env = FakeEnv(HashMap::from([(*name, value)]));
            let from_env = by_fast(&["token"], &env).unwrap();
            assert_eq!(from_env, by_clap(&["token", &format!("--{long}={value}")]), "{name}");
        }
        let env = FakeEnv(HashMap::from([("IAP_TOKEN_AUDIENCE", "from-env")]));
        assert_eq!(by_fast(&["token", "--audience", "flag"], &env).unwrap(), by_clap(&["token", "--audience", "flag"]));
    }

    #[test]
    fn hands_everything_else_to_clap() {
        let env = no_env();
        for words in [
            &["login"][..],
            &[],
            &["token", "--help"],
            &["token", "-h"],
            &["token", "-v"],
            &["-v", "token"],
            &["token", "--verbose"],
            &["token", "--quiet"],
            &["token", "--version"],
            &["token", "--audience"],
            &["token", "--audience", "a", "--audience", "b"],
            &["token", "--audience", "-x"],
            &["token", "--audience="],
            &["token", "--unknown", "x"],
            &["token", "positional"],
            &["token", "--", "--audience", "a"],
            &["token", "--format", "yaml"],
            &["token", "--min-ttl", "-1"],
            &["token", "--min-ttl", "+5"],
            &["token", "--listen-port", "70000"],
            &["token", "--force-refresh=true"],
            &["token", "--force-refresh", "--force-refresh"],
        ] {
            assert!(by_fast(words, &env).is_none(), "{words:?} must go to clap");
        }
        for name in ["IAP_TOKEN_FORCE_REFRESH", "IAP_TOKEN_QUIET", "IAP_TOKEN_AUDIENCE"] {
            let env = FakeEnv(HashMap::from([(name, "")]));
            assert!(by_fast(&["token"], &env).is_none(), "{name} set but empty goes to clap");
        }
        let env = FakeEnv(HashMap::from([("IAP_TOKEN_NO_BROWSER", "1")]));
        assert!(by_fast(&["token"], &env).is_none());
        let not_utf8 = vec![OsString::from("iap-token"), OsString::from("token"), {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![0xff])
        }];
        assert!(parse(&not_utf8, &env).is_none());
    }
}
