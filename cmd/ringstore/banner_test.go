package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBannerShowsOnlyAGeneratedSecret: the start-up banner prints the
// root secret only when this start generated it; otherwise it says where
// the secret is, and its try line still works.
func TestBannerShowsOnlyAGeneratedSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RINGSTORE_ACCESS_KEY_ID", "")
	t.Setenv("RINGSTORE_SECRET_ACCESS_KEY", "")
	banner := func(want credentialSource) (credentials, string) {
		t.Helper()
		c, from, err := loadCredentials(dir)
		if err != nil {
			t.Fatal(err)
		}
		if from != want {
			t.Fatalf("credentials from %d, want %d", from, want)
		}
		var sb strings.Builder
		printBanner(&sb, "https://127.0.0.1:9000", "us-east-1", c, from, dir)
		return c, sb.String()
	}

	c, out := banner(credsGenerated)
	if !strings.Contains(out, "secret access key: "+c.SecretAccessKey+"\n") || !strings.Contains(out, filepath.Join(dir, "credentials.json")) {
		t.Fatalf("a generated secret is shown with where it is saved:\n%s", out)
	}

	c, out = banner(credsFromFile)
	if strings.Contains(out, c.SecretAccessKey) || !strings.Contains(out, c.AccessKeyID) {
		t.Fatalf("a secret from an earlier start is not shown:\n%s", out)
	}
	if got := trySecret(t, out, nil); got != c.SecretAccessKey {
		t.Fatalf("the try line reads %q from the credentials file, want the secret", got)
	}

	t.Setenv("RINGSTORE_ACCESS_KEY_ID", "RSFROMENV")
	t.Setenv("RINGSTORE_SECRET_ACCESS_KEY", "env-secret/0123456789")
	c, out = banner(credsFromEnv)
	if strings.Contains(out, c.SecretAccessKey) || !strings.Contains(out, "RSFROMENV") || !strings.Contains(out, "RINGSTORE_SECRET_ACCESS_KEY") {
		t.Fatalf("a secret from the environment is not shown:\n%s", out)
	}
	if got := trySecret(t, out, []string{"RINGSTORE_SECRET_ACCESS_KEY=" + c.SecretAccessKey}); got != c.SecretAccessKey {
		t.Fatalf("the try line reads %q from the environment, want the secret", got)
	}
}

// trySecret runs the banner's try line in a shell, with echo in place of
// the aws CLI, and returns the secret it would have passed.
func trySecret(t *testing.T, banner string, env []string) string {
	t.Helper()
	_, line, ok := strings.Cut(banner, "try:\n")
	if !ok {
		t.Fatalf("no try line:\n%s", banner)
	}
	line = strings.Replace(strings.TrimSpace(line), " aws ", ` sh -c 'printf %s "$AWS_SECRET_ACCESS_KEY"' `, 1)
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}
