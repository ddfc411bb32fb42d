package chaos_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/outbox"
	"github.com/herald-dev/herald/registry/etcd"
	"github.com/herald-dev/herald/services/email/smtpsink"
	"github.com/herald-dev/herald/services/user"
)

// startHTTPSystem runs the user service and the email service as separate
// processes on the HTTP broker (the original's default, peer to peer: no
// broker process), finding each other through the etcd of
// HERALD_TEST_ETCD_URL under a key prefix of this run, and sharing one
// broker secret through HERALD_BROKER_SECRET. Each process has its own
// spool.
func startHTTPSystem(t *testing.T) *system {
	t.Helper()
	raw := os.Getenv("HERALD_TEST_ETCD_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_ETCD_URL is not set (e.g. etcd://127.0.0.1:2379; scripts/servers/start-etcd.sh starts one): the HTTP broker's processes need a shared registry")
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	prefix := "/herald-chaos/" + broker.NewID() + "/"
	registryURL := raw + sep + "prefix=" + url.QueryEscape(prefix)
	// The broker's queue-group records have no lease: delete what the run
	// leaves in the shared etcd (registered first, so it runs last).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u, err := url.Parse(registryURL)
		if err != nil {
			t.Errorf("clean up etcd: %v", err)
			return
		}
		r, err := etcd.OpenURL(ctx, u)
		if err != nil {
			t.Errorf("clean up etcd: %v", err)
			return
		}
		defer r.Close(ctx)
		if _, err := r.Client().Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			t.Errorf("clean up etcd: delete the run's keys: %v", err)
		}
	})
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	t.Setenv("HERALD_BROKER_SECRET", hex.EncodeToString(secret)) // inherited by the processes
	s := &system{t: t, dir: t.TempDir(), httpBroker: true}
	httpURL := func(spool string) string {
		// A short lease, so that a killed subscriber's entry goes soon.
		return "http://?registry=" + url.QueryEscape(registryURL) + "&spool=" + url.QueryEscape(filepath.Join(s.dir, spool)) + "&ttl=3s"
	}
	s.brokerURL, s.emailBrokerURL = httpURL("spool-user"), httpURL("spool-email")
	sink, err := smtpsink.Start("127.0.0.1:0", filepath.Join(s.dir, "mailbox"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	s.sink = sink
	s.user, s.userAddr = startProc(t, "user", userReady, "serve", "user",
		"--listen", freeAddr(t), "--database", "sqlite://"+filepath.Join(s.dir, "users.db"),
		"--broker", s.brokerURL, "--registry", "", "--bcrypt-cost", "4", "--create-rate", "0", "--log-level", "warn")
	s.email, _ = startProc(t, "email", emailReady, s.emailArgs()...)
	return s
}

// publishedFromOutbox is the number of events the user service's outbox
// handed to the broker: the users registered minus the outbox rows left.
func (s *system) publishedFromOutbox() int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := db.Open(ctx, "sqlite://"+filepath.Join(s.dir, "users.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := g.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	var users, pending int64
	if err := g.WithContext(ctx).Table(user.Table).Count(&users).Error; err != nil {
		s.t.Fatal(err)
	}
	if err := g.WithContext(ctx).Table(outbox.Table).Count(&pending).Error; err != nil {
		s.t.Fatal(err)
	}
	return int(users - pending)
}

// TestHTTPBrokerEmailKilled is the registration run on the HTTP broker:
// the email service (the subscriber) is SIGKILLed once a third of the mails
// are out and started again (on a new port, found through etcd); the user
// service's spool keeps what the dead subscriber did not acknowledge and
// delivers it to the new one: every user gets exactly one mail.
func TestHTTPBrokerEmailKilled(t *testing.T) {
	s := startHTTPSystem(t)
	n := registrations()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wait, _ := s.registerInBackground(ctx, n)
	deadline := time.Now().Add(60 * time.Second)
	for {
		total, _ := s.mails()
		if total >= n/3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a mailbox
	}
	s.email.kill()
	before, _ := s.mails()
	t.Logf("email service (HTTP broker subscriber) SIGKILLed with %d of %d mails out", before, n)
	s.email.start(emailReady)
	registered := wait()
	s.waitMails(registered, 3*time.Minute)
	s.report("http-broker-email-sigkill", registered)
}
