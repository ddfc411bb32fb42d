package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version", "--json")
	if err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json is not JSON: %v\n%s", err, out)
	}
	if v.Version == "" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json = %+v, want a version, Go %s on %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	if v.Libraries["github.com/nats-io/nats.go"] == "" {
		t.Errorf("version --json lists no nats.go version: %+v", v.Libraries)
	}

	text, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(text, "herald "+v.Version+"\n") || !strings.Contains(text, runtime.Version()) {
		t.Errorf("version = %q, %v; want it to start with %q and name %s", text, err, "herald "+v.Version, runtime.Version())
	}
	short, err := runCLI(t, "--version")
	if err != nil || short != "herald "+v.Version+"\n" {
		t.Errorf("--version = %q, %v; want %q", short, err, "herald "+v.Version+"\n")
	}
}
