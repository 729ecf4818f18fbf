# Homebrew formula for iap-token: the release's prebuilt binaries (signed on macOS, static on Linux), so
# that every upgrade keeps the same code signature and the Keychain does not ask again. The release
# workflow's SHA256SUMS gives the checksums to fill in for each version (docs/releasing.md).
class IapToken < Formula
  desc "Google OIDC ID tokens for services behind Identity-Aware Proxy"
  homepage "https://github.com/OWNER/iap-token"
  version "0.1.0"
  license "Apache-2.0"

  base = "https://github.com/OWNER/iap-token/releases/download/v#{version}/iap-token-v#{version}"
  on_macos do
    on_arm do
      url "#{base}-aarch64-apple-darwin.tar.gz"
      sha256 "REPLACE_WITH_SHA256_OF_aarch64-apple-darwin"
    end
    on_intel do
      url "#{base}-x86_64-apple-darwin.tar.gz"
      sha256 "REPLACE_WITH_SHA256_OF_x86_64-apple-darwin"
    end
  end
  on_linux do
    on_arm do
      url "#{base}-aarch64-unknown-linux-musl.tar.gz"
      sha256 "REPLACE_WITH_SHA256_OF_aarch64-unknown-linux-musl"
    end
    on_intel do
      url "#{base}-x86_64-unknown-linux-musl.tar.gz"
      sha256 "REPLACE_WITH_SHA256_OF_x86_64-unknown-linux-musl"
    end
  end

  def install
    bin.install "iap-token"
    generate_completions_from_executable(bin/"iap-token", "completions")
  end

  test do
    assert_match "iap-token #{version}", shell_output("#{bin}/iap-token --version")
    # No credentials anywhere: one error line and exit 2 (the audience is missing).
    assert_match "--audience is required", shell_output("#{bin}/iap-token token 2>&1", 2)
  end
end
