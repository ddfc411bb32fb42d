package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithPasswordFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "db")
	if err := os.WriteFile(file, []byte("s3cr3t-Pa55\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := withPasswordFile("database", "postgres://herald@db:5432/herald?sslmode=disable", "database-password-file", file)
	if err != nil || got != "postgres://herald:s3cr3t-Pa55@db:5432/herald?sslmode=disable" {
		t.Fatalf("got %q, %v", got, err)
	}
	if r := redactURL(got); strings.Contains(r, "s3cr3t") || !strings.Contains(r, "herald:xxxxx@db") {
		t.Fatalf("redacted %q", r)
	}
	for _, tc := range []struct{ url, file, want string }{
		{"postgres://db:5432/herald", file, "needs a user name"},
		{"postgres://herald:other@db/herald", file, "give one"},
		{"postgres://herald@db/herald", filepath.Join(dir, "missing"), "no such file"},
		{"postgres://herald@db/herald", empty, "first line is empty"},
		{"postgres://herald:other@db/%zz", file, "not a URL"},
	} {
		_, err := withPasswordFile("database", tc.url, "database-password-file", tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "other")) {
			t.Errorf("%s: error shows a password: %v", tc.url, err)
		}
	}
}

func TestServeUserFlags(t *testing.T) {
	// A missing password file fails before anything starts, naming the flag.
	_, err := runCLI(t, "serve", "user", "--database", "postgres://herald@127.0.0.1:1/x",
		"--database-password-file", filepath.Join(t.TempDir(), "none"), "--broker", "mem://", "--registry", "")
	if err == nil || !strings.Contains(err.Error(), "--database-password-file") {
		t.Fatalf("serve user with a missing password file: %v", err)
	}
}
