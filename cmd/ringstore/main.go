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
