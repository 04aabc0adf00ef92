package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpHidesSecretsFromEnvironment: --help shows each flag's default,
// and flags default to their environment variables; a secret taken from
// the environment must still not appear, while it stays the flag's value.
func TestHelpHidesSecretsFromEnvironment(t *testing.T) {
	const clusterSecret, accessSecret = "cluster-secret-from-env-0123", "access-secret-from-env-4567"
	t.Setenv("RINGSTORE_CLUSTER_SECRET", clusterSecret)
	t.Setenv("RINGSTORE_SECRET_ACCESS_KEY", accessSecret)
	t.Setenv("AWS_SECRET_ACCESS_KEY", accessSecret)
	for _, c := range []struct {
		cmd  *cobra.Command
		args []string
		flag string
	}{
		{serverCmd(), []string{"--help"}, "cluster-secret"},
		{adminCmd(), []string{"--help"}, "cluster-secret"},
		{adminCmd(), []string{"status", "--help"}, "cluster-secret"},
		{benchCmd(), []string{"--help"}, "secret-key"},
	} {
		var out strings.Builder
		c.cmd.SetOut(&out)
		c.cmd.SetErr(&out)
		c.cmd.SetArgs(c.args)
		if err := c.cmd.Execute(); err != nil {
			t.Fatalf("%s %v: %v", c.cmd.Name(), c.args, err)
		}
		help := out.String()
		if !strings.Contains(help, "--"+c.flag) {
			t.Fatalf("%s %v does not list --%s:\n%s", c.cmd.Name(), c.args, c.flag, help)
		}
		if strings.Contains(help, clusterSecret) || strings.Contains(help, accessSecret) {
			t.Errorf("%s %v shows a secret from the environment:\n%s", c.cmd.Name(), c.args, help)
		}
	}

	var v string
	val := secretDefault(&v, clusterSecret)
	if v != clusterSecret || val.String() != "" {
		t.Fatalf("default %q, shown as %q", v, val.String())
	}
	if err := val.Set("given"); err != nil || v != "given" {
		t.Fatalf("after Set: %q %v", v, err)
	}
}
