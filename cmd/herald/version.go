package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion is what `herald version` reports, read from the build
// information the Go toolchain writes into every binary: the module version
// (a release tag for `go install …@v1.2.3`, a pseudo-version stamped from
// git for a build in a checkout, "(devel)" without either), the commit and
// its time, and the versions of the engines' client libraries, which is
// what an operator needs to match a binary to a bug report.
type buildVersion struct {
	Version   string            `json:"version"`
	Commit    string            `json:"commit,omitempty"`
	CommitAt  string            `json:"commit_time,omitempty"`
	Modified  bool              `json:"modified,omitempty"`
	Go        string            `json:"go"`
	Platform  string            `json:"platform"`
	Libraries map[string]string `json:"libraries,omitempty"`
}

// versionLibraries are the dependencies `herald version` lists: the engines'
// clients and servers whose behaviour Herald's guarantees rest on.
var versionLibraries = []string{
	"github.com/nats-io/nats-server/v2",
	"github.com/nats-io/nats.go",
	"github.com/rabbitmq/amqp091-go",
	"github.com/redis/go-redis/v9",
	"github.com/twmb/franz-go",
	"cloud.google.com/go/pubsub/v2",
	"github.com/aws/aws-sdk-go-v2/service/sqs",
	"go.etcd.io/etcd/client/v3",
	"gorm.io/gorm",
}

// readBuildVersion reads the running binary's build information.
func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitAt = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range info.Deps {
		for _, want := range versionLibraries {
			if d.Path == want {
				if v.Libraries == nil {
					v.Libraries = map[string]string{}
				}
				v.Libraries[d.Path] = d.Version
			}
		}
	}
	return v
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Herald's version, the commit it was built from and its engine libraries",
		Long: `Prints the version of this binary as the Go toolchain recorded it: the release
for a binary installed with go install …@version, a pseudo-version taken from git
for one built in a checkout (with the commit, its time and whether the tree had
uncommitted changes), "(devel)" when neither was available. Also prints the Go
version, the platform and the versions of the brokers' client libraries.`,
		Example: `  herald version
  herald version --json | jq -r .commit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readBuildVersion()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			return printVersion(cmd.OutOrStdout(), v)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVersion(w io.Writer, v buildVersion) error {
	var b strings.Builder
	fmt.Fprintf(&b, "herald %s\n", v.Version)
	if v.Commit != "" {
		modified := ""
		if v.Modified {
			modified = " (with uncommitted changes)"
		}
		fmt.Fprintf(&b, "  commit    %s %s%s\n", v.Commit, v.CommitAt, modified)
	}
	fmt.Fprintf(&b, "  go        %s %s\n", v.Go, v.Platform)
	for _, lib := range versionLibraries {
		if ver, ok := v.Libraries[lib]; ok {
			fmt.Fprintf(&b, "  %s %s\n", lib, ver)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
