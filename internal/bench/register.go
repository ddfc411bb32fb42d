package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/bcrypt"

	"github.com/herald-dev/herald/broker"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/services/email/mailbox"
)

// RegisterConfig is one `herald bench register` run against a running
// user service whose mails land in Mailbox.
type RegisterConfig struct {
	// Users is how many users register under saturation.
	Users int
	// Concurrency is how many registrations are in flight at once.
	Concurrency int
	// Latency is how many users register one at a time to measure
	// Create → mail in the mailbox.
	Latency int
	// BcryptCost must be the service's cost: the bound is measured with it.
	BcryptCost int
	// Mailbox is the SMTP sink's mailbox directory.
	Mailbox string
	// Progress, if set, is told of every registration done.
	Progress func(done int)
}

// RegisterResult is what a register run measured.
type RegisterResult struct {
	Users               int     `json:"users"`
	Concurrency         int     `json:"concurrency"`
	BcryptCost          int     `json:"bcrypt_cost"`
	Cores               int     `json:"cores"`
	BcryptBoundPerSec   float64 `json:"bcrypt_bound_per_sec"`
	RegistrationsPerSec float64 `json:"registrations_per_sec"`
	Ratio               float64 `json:"ratio"`
	GetP50ms            float64 `json:"get_p50_ms"`
	GetP99ms            float64 `json:"get_p99_ms"`
	Gets                int     `json:"gets"`
	HashMs              float64 `json:"hash_ms"`
	MailP50ms           float64 `json:"mail_p50_ms"`
	MailP99ms           float64 `json:"mail_p99_ms"`
	MailBeyondHashP99ms float64 `json:"mail_beyond_hash_p99_ms"`
	// MailAfterCreateP99ms is from Create's response to the mail.
	MailAfterCreateP99ms float64 `json:"mail_after_create_p99_ms"`
	Errors               int     `json:"errors"`
}

// BcryptBound measures how many bcrypt hashes of cost this process makes per
// second on all its cores: the ceiling of registration throughput.
func BcryptBound(cost int, d time.Duration) (perSec float64, oneHash time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Since(start) < d {
				if _, err := bcrypt.GenerateFromPassword([]byte("bench password"), cost); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t0 := time.Now()
	_, _ = bcrypt.GenerateFromPassword([]byte("bench password"), cost)
	return float64(n.Load()) / elapsed.Seconds(), time.Since(t0)
}

// Register measures the user service behind client: throughput against the
// bcrypt bound, Get latency while registrations saturate the CPU, and
// Create → mail latency one registration at a time.
func Register(ctx context.Context, client userv1connect.UserServiceClient, c RegisterConfig) (RegisterResult, error) {
	r := RegisterResult{Users: c.Users, Concurrency: c.Concurrency, BcryptCost: c.BcryptCost, Cores: runtime.GOMAXPROCS(0)}
	run := broker.NewID()[28:] // keeps one run's addresses apart from another's
	seed, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{
		Name: "Bench Seed", Email: "seed-" + run + "@bench.example", Password: "bench password"}))
	if err != nil {
		return r, fmt.Errorf("bench: seed user: %w", err)
	}
	seedID := seed.Msg.GetUser().GetId()

	bound, hash := BcryptBound(c.BcryptCost, 3*time.Second)
	r.BcryptBoundPerSec = math.Round(bound*10) / 10
	r.HashMs = ms(hash)

	// Registrations saturate the CPU while one reader measures Get.
	stopGets := make(chan struct{})
	var gets []time.Duration
	var getsDone sync.WaitGroup
	getsDone.Go(func() {
		for {
			select {
			case <-stopGets:
				return
			default:
			}
			t0 := time.Now()
			if _, err := client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: seedID})); err == nil {
				gets = append(gets, time.Since(t0))
			}
		}
	})
	var next, done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(1, c.Concurrency) {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(c.Users); i = next.Add(1) {
				_, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{
					Name: fmt.Sprintf("Bench %d", i), Email: fmt.Sprintf("b%d-%s@bench.example", i, run), Password: "bench password"}))
				if err != nil {
					failed.Add(1)
				}
				if c.Progress != nil {
					c.Progress(int(done.Add(1)))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopGets)
	getsDone.Wait()
	r.Errors = int(failed.Load())
	r.RegistrationsPerSec = math.Round(float64(c.Users-r.Errors)/elapsed.Seconds()*10) / 10
	if bound > 0 {
		r.Ratio = math.Round(r.RegistrationsPerSec/bound*100) / 100
	}
	slices.Sort(gets)
	r.Gets = len(gets)
	r.GetP50ms, r.GetP99ms = pct(gets, 0.5), pct(gets, 0.99)

	// Create → mail, one at a time on a quiet service. Each sample's own
	// hash time is measured just before it, so a noisy machine shifts both
	// alike.
	var total, beyond, afterCreate []time.Duration
	for i := range c.Latency {
		h0 := time.Now()
		_, _ = bcrypt.GenerateFromPassword([]byte("bench password"), c.BcryptCost)
		hashed := time.Since(h0)
		email := fmt.Sprintf("lat%d-%s@bench.example", i, run)
		t0 := time.Now()
		if _, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{
			Name: "Latency", Email: email, Password: "bench password"})); err != nil {
			return r, fmt.Errorf("bench: latency user: %w", err)
		}
		created := time.Now()
		at, err := waitMail(ctx, c.Mailbox, email, 30*time.Second)
		if err != nil {
			return r, err
		}
		total = append(total, at.Sub(t0))
		beyond = append(beyond, at.Sub(t0)-hashed)
		afterCreate = append(afterCreate, at.Sub(created))
	}
	for _, l := range [][]time.Duration{total, beyond, afterCreate} {
		slices.Sort(l)
	}
	r.MailP50ms, r.MailP99ms = pct(total, 0.5), pct(total, 0.99)
	r.MailBeyondHashP99ms = pct(beyond, 0.99)
	r.MailAfterCreateP99ms = pct(afterCreate, 0.99)
	return r, nil
}

// waitMail polls the mailbox until a mail to addr is there and returns when
// the sink received it.
func waitMail(ctx context.Context, dir, addr string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		mails, err := mailbox.List(dir)
		if err != nil {
			return time.Time{}, err
		}
		for _, m := range mails {
			if slices.Contains(m.Rcpt, addr) {
				return m.Received, nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("bench: no mail to %s after %v", addr, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := max(0, min(int(math.Ceil(p*float64(len(sorted))))-1, len(sorted)-1))
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
