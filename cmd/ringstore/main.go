// Command ringstore runs an S3-compatible object store node and its tools.
//
//	ringstore server   run a node (alone it is a complete store)
//	ringstore admin    inspect and change a running cluster
//	ringstore bench    measure any S3 endpoint
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "ringstore",
		Short:         "An S3-compatible object store on a consistent-hash ring",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd())
	root.AddCommand(adminCmd())
	root.AddCommand(benchCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ringstore:", err)
		os.Exit(1)
	}
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// secretValue is a string flag whose default, taken from the environment,
// is never shown: --help prints every flag's default, and a secret's
// default is the secret. It is a pflag.Value; String reports what help
// shows, not the value.
type secretValue struct{ p *string }

// secretDefault sets *p to def and returns the flag value that holds it.
func secretDefault(p *string, def string) secretValue {
	*p = def
	return secretValue{p}
}

func (s secretValue) String() string     { return "" }
func (s secretValue) Set(v string) error { *s.p = v; return nil }
func (s secretValue) Type() string       { return "string" }
