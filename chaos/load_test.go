package chaos_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/services/email/mailbox"
)

var (
	upUserReady = regexp.MustCompile(`user +http://(127\.0\.0\.1:\d+)`)
	upMailbox   = regexp.MustCompile(`mailbox (\S+)\)`)
)

// TestLoadUp (HERALD_LONG=1 only) runs `herald up` on its defaults, with a
// bcrypt cost of 4 (the load is on messaging, not hashing) and the Create
// rate limit off (one client address makes every call), and registers
// 10,000 users at concurrency 64. Errors other than back-pressure
// (ResourceExhausted, retried) fail it; every user must get exactly one
// mail; it reports the throughput and the herald process's peak RSS
// (VmHWM).
func TestLoadUp(t *testing.T) {
	if os.Getenv("HERALD_LONG") != "1" {
		t.Skip("HERALD_LONG=1 runs the 10,000-registration load test")
	}
	const (
		n           = 10000
		concurrency = 64
	)
	dir := t.TempDir()
	up, userAddr := startProc(t, "up", upUserReady, "up", "--data-dir", dir,
		"--nats-listen", "127.0.0.1:0", "--smtp-listen", "127.0.0.1:0", "--user-listen", "127.0.0.1:0",
		"--admin-listen", "", "--bcrypt-cost", "4", "--create-rate", "0", "--log-level", "warn")
	m := upMailbox.FindStringSubmatch(up.out.String())
	if m == nil {
		t.Fatalf("no mailbox in the output of herald up:\n%s", up.out.String())
	}
	box := m[1]
	pid := up.cmd.Process.Pid

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	client := userv1connect.NewUserServiceClient(&http.Client{Timeout: 30 * time.Second}, "http://"+userAddr)
	var (
		wg         sync.WaitGroup
		work       = make(chan int)
		backoffs   atomic.Int64
		errMu      sync.Mutex
		errs       = map[connect.Code]int{}
		firstErr   = map[connect.Code]string{}
		peakDuring atomic.Int64
	)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				for ctx.Err() == nil {
					_, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{
						Name: fmt.Sprintf("Load %05d", i), Email: loadAddress(i), Password: "correct horse battery staple"}))
					if err == nil {
						break
					}
					if connect.CodeOf(err) == connect.CodeResourceExhausted {
						backoffs.Add(1) // documented back-pressure: retry
						time.Sleep(50 * time.Millisecond)
						continue
					}
					errMu.Lock()
					errs[connect.CodeOf(err)]++
					if firstErr[connect.CodeOf(err)] == "" {
						firstErr[connect.CodeOf(err)] = err.Error()
					}
					errMu.Unlock()
					break
				}
			}
		})
	}
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() { // VmRSS sampled while the load runs, beside the kernel's VmHWM
		defer close(rssDone)
		for {
			if kb := procStatusKB(pid, "VmRSS"); kb > peakDuring.Load() {
				peakDuring.Store(kb)
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(200 * time.Millisecond): // sampling interval
			}
		}
	}()
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	registerTime := time.Since(start)

	deadline := time.Now().Add(10 * time.Minute)
	for countMaildir(t, box) < n && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond) // polling a mailbox
	}
	mailTime := time.Since(start)
	close(stopRSS)
	<-rssDone

	ms, err := mailbox.List(box)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, m := range ms {
		for _, to := range m.To {
			if a, err := mail.ParseAddress(to); err == nil {
				by[a.Address]++
			}
		}
	}
	lost, dup := 0, 0
	for i := range n {
		switch c := by[loadAddress(i)]; {
		case c == 0:
			lost++
		case c > 1:
			dup += c - 1
		}
	}
	hwm, rss := procStatusKB(pid, "VmHWM"), procStatusKB(pid, "VmRSS")
	line := fmt.Sprintf("load: herald-up registrations=%d concurrency=%d errors=%v backpressure_retries=%d register_s=%.1f registrations_per_sec=%.0f all_mails_s=%.1f mails=%d lost=%d duplicated=%d peak_rss_mib=%.1f sampled_peak_rss_mib=%.1f rss_end_mib=%.1f",
		n, concurrency, errs, backoffs.Load(), registerTime.Seconds(), float64(n)/registerTime.Seconds(), mailTime.Seconds(),
		len(ms), lost, dup, float64(hwm)/1024, float64(peakDuring.Load())/1024, float64(rss)/1024)
	fmt.Println(line)
	t.Log(line)
	for code, msg := range firstErr {
		t.Errorf("%d calls failed with %v, e.g. %s", errs[code], code, msg)
	}
	if lost != 0 || dup != 0 {
		t.Errorf("%s: want every user to get exactly one mail\n%s", line, lastLines(up.out.String(), 20))
	}
}

func loadAddress(i int) string { return fmt.Sprintf("load%05d@example.com", i) }

// countMaildir counts the mails delivered to a maildir (new and cur).
func countMaildir(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// procStatusKB reads a "kB" field of /proc/<pid>/status (0 if unreadable).
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}
