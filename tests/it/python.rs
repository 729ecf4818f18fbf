//! The Python package as users get it: the wheel is built once per test run with maturin (zig, for
//! manylinux2014), installed with `pip install --no-index` into a fresh venv, checked (under 5 MB, the
//! installed `iap-token` is the native binary itself), and then python/tests runs with pytest in that venv
//! against the fake Google and a fake IAP. The test clients (maturin, ziglang, pytest, requests, httpx,
//! grpcio, flytekit, mypy) come from target/test-venv (scripts/install-test-deps): the fresh venv sees them
//! through a `.pth` line, after its own site-packages, so `iap_token` is only the installed wheel's.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::*;
use crate::fake_google::*;
use crate::fake_iap::FakeIap;

const MAX_WHEEL_BYTES: u64 = 5 * 1024 * 1024;
const TEST_CLIENTS: &str = "import maturin, ziglang, pytest, requests, httpx, grpc, flytekit, mypy";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/test-venv, with every test client importable; fails naming the script that installs them.
fn test_venv() -> PathBuf {
    let venv = root().join("target/test-venv");
    let python = venv.join("bin/python");
    let ok =
        python.exists() && Command::new(&python).args(["-c", TEST_CLIENTS]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "target/test-venv lacks maturin, ziglang, pytest, requests, httpx, grpcio, flytekit or mypy: run scripts/install-test-deps"
    );
    venv
}

/// What building and installing produced, shared by the tests of one run.
struct Installed {
    wheel: PathBuf,
    venv: PathBuf,
    build_secs: f64,
    install_secs: f64,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let (wheel, build_secs) = build_wheel(&test_venv());
        // Under target/, made anew each run: a static is never dropped, so a temp dir would be left behind.
        let venv = root().join("target/wheel-test-venv");
        if venv.exists() {
            std::fs::remove_dir_all(&venv).expect("remove the previous run's venv");
        }
        let install_secs = install(&wheel, &venv);
        Installed { wheel, venv, build_secs, install_secs }
    })
}

/// `maturin build --release --zig --compatibility manylinux2014`, under a file lock so that concurrent
/// test runs build one at a time; its own target dir keeps it off the lock of the debug build.
fn build_wheel(test_venv: &Path) -> (PathBuf, f64) {
    let out = root().join("target/wheels");
    std::fs::create_dir_all(&out).expect("target/wheels");
    let lock = File::create(out.join(".build.lock")).expect("the build lock file");
    lock.lock().expect("lock target/wheels");
    for old in wheels_in(&out) {
        std::fs::remove_file(old).expect("remove an old wheel");
    }
    let path = format!("{}:{}", test_venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let mut maturin = Command::new(test_venv.join("bin/maturin"));
    maturin
        .args(["build", "--release", "--zig", "--compatibility", "manylinux2014", "--out"])
        .arg(&out)
        .current_dir(root())
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", root().join("target/wheel-build"));
    if std::env::var_os("CARGO_BUILD_JOBS").is_none() {
        // One core for the release build, one for the tests that run beside it (some measure time).
        maturin.env("CARGO_BUILD_JOBS", "1");
    }
    let output = maturin.output().expect("run maturin");
    let secs = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "maturin build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let wheels = wheels_in(&out);
    assert_eq!(wheels.len(), 1, "one wheel in {}: {wheels:?}", out.display());
    (wheels[0].clone(), secs)
}

fn wheels_in(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).expect("read target/wheels");
    entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "whl")).collect()
}

/// A fresh venv with the wheel installed from the file alone, and the test clients visible after it;
/// returns the seconds `pip install` took.
fn install(wheel: &Path, venv: &Path) -> f64 {
    let made = Command::new("python3").arg("-m").arg("venv").arg(venv).output().expect("python3 -m venv");
    assert!(made.status.success(), "python3 -m venv: {}", String::from_utf8_lossy(&made.stderr));
    let started = Instant::now();
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--no-index", "--disable-pip-version-check", "-q"])
        .arg(wheel)
        .output()
        .expect("run pip");
    let secs = started.elapsed().as_secs_f64();
    assert!(pip.status.success(), "pip install: {}", String::from_utf8_lossy(&pip.stderr));
    let site = site_packages(&venv.join("bin/python"));
    let clients = site_packages(&test_venv().join("bin/python"));
    std::fs::write(Path::new(&site).join("zz_test_clients.pth"), format!("{clients}\n")).expect("write the .pth");
    secs
}

fn site_packages(python: &Path) -> String {
    let output = Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        .output()
        .expect("run python");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn the_wheel_is_small_and_installs_the_native_binary_as_the_script() {
    let installed = installed();
    let size = std::fs::metadata(&installed.wheel).expect("the wheel").len();
    let name = installed.wheel.file_name().unwrap().to_string_lossy().into_owned();
    eprintln!(
        "wheel {name}: {size} bytes; maturin build {:.1} s; pip install --no-index {:.2} s",
        installed.build_secs, installed.install_secs
    );
    assert!(name.starts_with("iap_token-") && name.contains("manylinux2014_x86_64"), "{name}");
    assert!(name.contains("py3-none"), "one wheel for every Python 3: {name}");
    assert!(size < MAX_WHEEL_BYTES, "the wheel is {size} bytes, over 5 MB");

    let script = installed.venv.join("bin/iap-token");
    let head = std::fs::read(&script).expect("the installed iap-token");
    assert_eq!(&head[..4], b"\x7fELF", "the installed iap-token is the binary itself, not a Python shim");
    let version = Command::new(&script).arg("--version").output().expect("run it");
    assert_eq!(String::from_utf8_lossy(&version.stdout), format!("iap-token {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_package_passes_its_tests_against_the_fakes() {
    let installed = installed();
    let h = Harness::new();
    let iap = FakeIap::start(AUD, &h.google.auth_uri());
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h.google.set_secret("projects/test-project/secrets/py-secret/versions/latest", b"py-s3cret\n", None);
    h.google.set_secret("projects/test-project/secrets/py-secret/versions/2", b"second", None);
    let key = h.key_file();
    let browser = approving_browser(&h);
    let bin = installed.venv.join("bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new(bin.join("python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"])
        .current_dir(root())
        .env_clear()
        .envs(h.env_vars())
        .env("PATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("IAP_TEST_IAP_URL", iap.url())
        .env("IAP_TEST_GOOGLE_URL", h.google.url())
        .env("IAP_TEST_TOKEN_URI", h.google.token_uri())
        .env("IAP_TEST_AUDIENCE", AUD)
        .env("IAP_TEST_KEY_FILE", &key)
        .env("IAP_TEST_SA_EMAIL", SA_EMAIL)
        .env("IAP_TEST_DESKTOP_CLIENT", DESKTOP_CLIENT)
        .env("IAP_TEST_DESKTOP_SECRET", DESKTOP_SECRET)
        .env("IAP_TEST_BROWSER", &browser)
        .env("IAP_TEST_REAL_BINARY", bin.join("iap-token"))
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed"), "{stdout}");
    eprintln!("{}", stdout.lines().last().unwrap_or_default());
}

/// A `$BROWSER` that approves the consent screen: it follows the sign-in URL to the loopback redirect.
fn approving_browser(h: &Harness) -> String {
    use std::os::unix::fs::PermissionsExt;
    let script = h.write(
        "approve.sh",
        "#!/bin/sh\nloc=$(curl -s -o /dev/null -w '%{redirect_url}' \"$1\")\ncurl -s -o /dev/null \"$loc\"\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.to_str().unwrap().to_string()
}

/// The sdist (what pip builds where no wheel fits) carries the Rust sources, the lock file and the
/// Python package. Building from it is a full release build, left to the release workflow.
#[test]
fn the_sdist_carries_what_a_build_from_source_needs() {
    let venv = test_venv();
    let out = tempfile::tempdir().expect("temp dir");
    let path = format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let sdist = Command::new(venv.join("bin/maturin"))
        .args(["sdist", "--out"])
        .arg(out.path())
        .current_dir(root())
        .env("PATH", path)
        .output()
        .expect("run maturin sdist");
    assert!(sdist.status.success(), "maturin sdist: {}", String::from_utf8_lossy(&sdist.stderr));
    let archive = out.path().join(format!("iap_token-{}.tar.gz", env!("CARGO_PKG_VERSION")));
    let listing = Command::new("tar").arg("tzf").arg(&archive).output().expect("run tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let top = format!("iap_token-{}/", env!("CARGO_PKG_VERSION"));
    for needed in [
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "src/commands/secret_manager_secret.rs",
        "python/iap_token/__init__.py",
        "python/iap_token/py.typed",
    ] {
        assert!(listing.lines().any(|line| line == format!("{top}{needed}")), "{needed} missing from the sdist");
    }
    assert!(!listing.contains("/target/"), "no build output in the sdist");
}
