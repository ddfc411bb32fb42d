package user_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/outbox"
)

// tcpProxy forwards loopback connections to a database server and can take
// it away: down cuts every open connection and resets new ones until up.
// Armed with a pattern, it goes down by itself the moment a client sends
// bytes matching it, before forwarding them: a database that dies in the
// middle of a transaction.
type tcpProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	trip  *regexp.Regexp
	trips atomic.Int64
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	done := make(chan struct{})
	go p.accept(done)
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.setDown(true)
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept(done chan struct{}) {
	defer close(done)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close() // the server is gone: the client's handshake fails
			continue
		}
		p.mu.Unlock()
		var d net.Dialer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := d.DialContext(ctx, "tcp", p.target)
		cancel()
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pipe(s, c, true) // client → server, watched for the trip pattern
		go p.pipe(c, s, false)
	}
}

// pipe copies src to dst until either side fails, then closes both.
func (p *tcpProxy) pipe(dst, src net.Conn, watch bool) {
	defer func() {
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if watch {
				p.mu.Lock()
				trip := p.trip
				p.mu.Unlock()
				if trip != nil {
					window := append(tail, buf[:n]...)
					if trip.Match(window) {
						p.trips.Add(1)
						p.setDown(true) // the statement never reaches the server
						return
					}
					tail = append([]byte(nil), window[max(0, len(window)-128):]...)
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// setDown takes the database away (cutting every open connection) or
// brings it back.
func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		p.trip = nil
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// arm makes the proxy go down when a client sends bytes matching re.
func (p *tcpProxy) arm(re *regexp.Regexp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trip = re
}

// viaProxy returns rawURL with its host:port replaced by the proxy's.
func viaProxy(t *testing.T, rawURL string, p *tcpProxy) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr()
	return u.String()
}

// serverTarget is the host:port of the database server rawURL names.
func serverTarget(t *testing.T, rawURL string, defaultPort string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defaultPort)
	}
	return u.Host
}

// TestDatabaseUnreachable runs the user service on a real MariaDB/MySQL or
// PostgreSQL server reached through a TCP proxy, and takes the database
// away twice: in the middle of a registration's transaction (the
// connection dies right before the outbox row's INSERT reaches the server)
// and for a registration made while it is down. Both get Unavailable with a
// message saying so; once the database is back, neither left a user row or
// an outbox row, and no event was published for them; a registration after
// the outage works and publishes its one event.
func TestDatabaseUnreachable(t *testing.T) {
	for _, e := range dbtest.Engines() {
		if e.Env == "" {
			continue // SQLite has no server to take away (TestDatabaseDown covers it)
		}
		t.Run(e.Name, func(t *testing.T) {
			direct := dbtest.URL(t, e, tables...)
			port := "5432"
			if strings.HasPrefix(direct, "mysql") {
				port = "3306"
			}
			p := startProxy(t, serverTarget(t, direct, port))
			env := start(t, viaProxy(t, direct, p))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// 1. The connection dies inside the transaction, after the user
			// row's INSERT and before the outbox row's.
			p.arm(regexp.MustCompile("(?i)INSERT INTO .?" + outbox.Table))
			_, err := create(ctx, env.client, "", "Cut", "cut@example.com", "password-cut")
			if p.trips.Load() != 1 {
				t.Fatalf("the proxy never saw the outbox INSERT (trips=%d); Create returned %v", p.trips.Load(), err)
			}
			checkUnavailable(t, "Create cut mid-transaction", err)

			// 2. A registration while the database is down.
			_, err = create(ctx, env.client, "", "Down", "down@example.com", "password-down")
			checkUnavailable(t, "Create with the database down", err)

			// The database comes back: nothing of either was written.
			p.setDown(false)
			users, rows := counts(t, direct)
			if users != 0 || rows != 0 {
				t.Fatalf("after the outage: %d user rows and %d outbox rows, want 0 and 0", users, rows)
			}
			for _, email := range []string{"cut@example.com", "down@example.com"} {
				_, err := env.client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: email}))
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Fatalf("GetByEmail(%s) after the outage = %v, want NotFound", email, err)
				}
			}

			// 3. The service recovers: the next registration is stored and
			// its event, and only it, is published.
			var after *userv1.User
			eventually(t, 20*time.Second, "a registration once the database is back", func() bool {
				after, err = create(ctx, env.client, "", "After", "after@example.com", "password-after")
				return err == nil
			})
			eventually(t, 20*time.Second, "the event of the registration after the outage", func() bool {
				return len(env.broker.messages()) >= 1
			})
			if msgs := env.broker.messages(); len(msgs) != 1 || len(eventsFor(t, env, after.GetId())) != 1 {
				t.Fatalf("%d events published, want exactly 1, for %s", len(msgs), after.GetId())
			}
			if users, _ := counts(t, direct); users != 1 {
				t.Fatalf("%d user rows, want 1", users)
			}
			t.Logf("%s: Create cut mid-transaction and Create while down → Unavailable; 0 rows written; 1 event after recovery", e.Name)
		})
	}
}

func checkUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("%s = %v, want Unavailable", what, err)
	}
	if !strings.Contains(ce.Message(), "database is unavailable") {
		t.Fatalf("%s: message %q does not say the database is unavailable", what, ce.Message())
	}
}
