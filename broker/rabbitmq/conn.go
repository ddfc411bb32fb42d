package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// connector keeps one AMQP connection open: it dials again, with a backoff,
// whenever the connection is lost, and runs setup (declaring the exchange)
// on each new connection. Users get the current connection with get, which
// waits while there is none.
type connector struct {
	url   string
	cfg   amqp.Config
	name  string // "publish" or "consume", for the logs
	setup func(*amqp.Connection) error
	log   *slog.Logger

	mu    sync.Mutex
	conn  *amqp.Connection
	ready chan struct{} // closed while conn is set
	lost  error         // why the last connection ended, for get's errors

	quit chan struct{}
	done chan struct{}
}

// errClosing is returned by get after close.
var errClosing = errors.New("connection closing")

// dial connects to url (bounded by ctx) and keeps the connection open until
// close.
func dial(ctx context.Context, url, name string, cfg amqp.Config, setup func(*amqp.Connection) error, log *slog.Logger) (*connector, error) {
	c := &connector{url: url, cfg: cfg, name: name, setup: setup, log: log, ready: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	close(c.ready)
	go c.keep()
	return c, nil
}

// connect dials once and runs setup, bounded by ctx.
func (c *connector) connect(ctx context.Context) (*amqp.Connection, error) {
	cfg := c.cfg
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	cfg.Dial = amqp.DefaultDial(timeout)
	cfg.Properties = amqp.NewConnectionProperties()
	cfg.Properties.SetClientConnectionName("herald-" + c.name)
	type result struct {
		conn *amqp.Connection
		err  error
	}
	res := make(chan result, 1)
	go func() {
		conn, err := amqp.DialConfig(c.url, cfg)
		if err == nil {
			if err = c.setup(conn); err != nil {
				_ = conn.Close()
				conn = nil
			}
		}
		res <- result{conn, err}
	}()
	select {
	case r := <-res:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-res; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// keep watches the connection and dials again when it is lost.
func (c *connector) keep() {
	defer close(c.done)
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}
	for {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.quit:
			_ = conn.Close()
			return
		case err := <-closed:
			c.mu.Lock()
			c.conn = nil
			c.ready = make(chan struct{})
			c.lost = fmt.Errorf("connection lost: %v", err)
			c.mu.Unlock()
			c.log.Warn("rabbitmq: connection lost; reconnecting", "connection", c.name, "err", err)
		}
		for n := 1; ; n++ {
			t := time.NewTimer(backoff.Delay(n))
			select {
			case <-c.quit:
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := c.connect(ctx)
			cancel()
			if err != nil {
				c.mu.Lock()
				c.lost = fmt.Errorf("reconnecting: %w", err)
				c.mu.Unlock()
				if n == 1 || n%10 == 0 {
					c.log.Warn("rabbitmq: cannot reconnect yet", "connection", c.name, "attempt", n, "err", err)
				}
				continue
			}
			c.mu.Lock()
			c.conn = conn
			c.lost = nil
			close(c.ready)
			c.mu.Unlock()
			c.log.Info("rabbitmq: reconnected", "connection", c.name, "attempts", n)
			break
		}
	}
}

// get returns the open connection, waiting for one while reconnecting,
// until ctx is done.
func (c *connector) get(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		conn, ready, lost := c.conn, c.ready, c.lost
		c.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		if conn != nil {
			// Closed, and keep has not seen it yet: wait for the new one.
			ready = make(chan struct{})
		}
		select {
		case <-ready:
		case <-c.quit:
			return nil, errClosing
		case <-ctx.Done():
			if lost != nil {
				return nil, errors.Join(ctx.Err(), lost)
			}
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// current returns the connection, or nil while there is none.
func (c *connector) current() *amqp.Connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// close closes the connection and stops reconnecting.
func (c *connector) close() {
	select {
	case <-c.quit:
		return
	default:
	}
	close(c.quit)
	<-c.done
}

// transient reports whether err may pass once the connection is back: the
// connection or channel closed, the server unreachable, a timeout.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		// Soft channel errors (404, 406…) are the caller's; connection
		// forced (320), internal errors and resource errors pass.
		switch ae.Code {
		case amqp.ConnectionForced, amqp.InternalError, amqp.ResourceError, amqp.ChannelError, amqp.FrameError:
			return true
		}
		return ae.Recover || errors.Is(err, amqp.ErrClosed)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, amqp.ErrClosed) || errors.Is(err, context.DeadlineExceeded)
}
