package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/broker"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/services/email/mailbox"
)

//go:embed static
var static embed.FS

// User is a row of the users list.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Check is one line of the health view: Probe returns nil when the part
// is healthy, and a short detail either way.
type Check struct {
	Name  string
	Probe func(ctx context.Context) (detail string, err error)
}

// Config is what a [Console] shows. Every field but Broker is optional: a
// view whose source is missing says so.
type Config struct {
	// Broker carries the live event flow; it is also the DLQ browser when
	// it implements [broker.DeadLetterBrowser].
	Broker broker.Broker
	// Topics are the topics whose events the live view shows (each one's
	// dead-letter topic is watched too).
	Topics []string
	// Users lists the users whose name or email contains query (all when
	// empty), newest first, at most limit.
	Users func(ctx context.Context, query string, limit int) ([]User, error)
	// Client registers users through the user service.
	Client userv1connect.UserServiceClient
	// MailboxDir is the SMTP sink's mailbox.
	MailboxDir string
	// Metrics is where the live view reads the broker's counters and the
	// outbox backlog.
	Metrics prometheus.Gatherer
	// Health lists the parts whose health the console shows.
	Health []Check
	// Logger receives the console's warnings (discard when nil).
	Logger *slog.Logger
}

// Console serves the web console. Make one with [New], [Console.Start] its
// event subscriptions, and [Console.Stop] them.
type Console struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	hub *hub
}

// New returns a console for cfg. Serve it with [Console.ServeHTTP] at the
// root of a listener.
func New(cfg Config) (*Console, error) {
	if cfg.Broker == nil {
		return nil, errors.New("web: Config.Broker is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), hub: newHub(200)}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	c.mux.Handle("GET /", http.FileServerFS(sub))
	c.mux.HandleFunc("GET /api/users", c.listUsers)
	c.mux.HandleFunc("POST /api/users", c.register)
	c.mux.HandleFunc("GET /api/mails", c.listMails)
	c.mux.HandleFunc("GET /api/mails/{id}", c.getMail)
	c.mux.HandleFunc("GET /api/events", c.events)
	c.mux.HandleFunc("GET /api/stats", c.statsJSON)
	c.mux.HandleFunc("GET /api/dlq", c.listDLQ)
	c.mux.HandleFunc("POST /api/dlq/replay", c.replayDLQ)
	c.mux.HandleFunc("POST /api/dlq/purge", c.purgeDLQ)
	c.mux.HandleFunc("GET /api/health", c.health)
	return c, nil
}

// ServeHTTP serves the page and its API.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost {
		// Changes come only from the console's own page: JSON (which a
		// cross-site form cannot send without a CORS preflight the console
		// never answers), from the same origin when the browser says.
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
			fail(w, http.StatusUnsupportedMediaType, "invalid_argument", "send application/json")
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				fail(w, http.StatusForbidden, "permission_denied", "cross-origin request refused")
				return
			}
		}
	}
	c.mux.ServeHTTP(w, r)
}

// Start subscribes to the topics and their dead-letter topics (broadcast:
// the console takes nothing from the services' queue groups).
func (c *Console) Start(ctx context.Context) error {
	return c.hub.start(ctx, c.cfg.Broker, c.cfg.Topics)
}

// Stop unsubscribes and ends the live streams, bounded by ctx.
func (c *Console) Stop(ctx context.Context) error { return c.hub.stop(ctx) }

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// apiError is the body of every failed API call.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields maps a field name to what is wrong with it, when the user
	// service named fields ("email: …; password: …").
	Fields map[string]string `json:"fields,omitempty"`
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func (c *Console) listUsers(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Users == nil {
		fail(w, http.StatusNotImplemented, "unimplemented", "no user database configured")
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 254 {
		fail(w, http.StatusBadRequest, "invalid_argument", "q: longer than 254 bytes")
		return
	}
	users, err := c.cfg.Users(r.Context(), q, 200)
	if err != nil {
		c.log.Warn("web: list users", "err", err)
		fail(w, http.StatusServiceUnavailable, "unavailable", "the user database is unavailable")
		return
	}
	if users == nil {
		users = []User{}
	}
	writeJSON(w, http.StatusOK, users)
}

// registerRequest is the register form. The password is passed on to the
// user service and never kept, logged or echoed.
type registerRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (c *Console) register(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Client == nil {
		fail(w, http.StatusNotImplemented, "unimplemented", "no user service configured")
		return
	}
	var in registerRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "invalid_argument", "the form is not valid JSON with name, email and password")
		return
	}
	res, err := c.cfg.Client.Create(r.Context(), connect.NewRequest(&userv1.CreateRequest{Name: in.Name, Email: in.Email, Password: in.Password}))
	if err != nil {
		code := connect.CodeOf(err)
		e := apiError{Code: code.String(), Message: err.Error(), Fields: map[string]string{}}
		var ce *connect.Error
		if errors.As(err, &ce) {
			e.Message = ce.Message()
		}
		for part := range strings.SplitSeq(e.Message, "; ") {
			if field, why, ok := strings.Cut(part, ": "); ok && (field == "name" || field == "email" || field == "password" || field == "id") {
				e.Fields[field] = why
			}
		}
		writeJSON(w, httpStatus(code), e)
		return
	}
	u := res.Msg.GetUser()
	writeJSON(w, http.StatusCreated, User{ID: u.GetId(), Name: u.GetName(), Email: u.GetEmail(), CreatedAt: u.GetCreatedAt().AsTime()})
}

// httpStatus is the HTTP status of a Connect code.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeAlreadyExists:
		return http.StatusConflict
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (c *Console) listMails(w http.ResponseWriter, r *http.Request) {
	if c.cfg.MailboxDir == "" {
		fail(w, http.StatusNotImplemented, "unimplemented", "no mailbox: mails go to an external SMTP server")
		return
	}
	mails, err := mailbox.List(c.cfg.MailboxDir)
	if err != nil {
		c.log.Warn("web: list mails", "err", err)
		fail(w, http.StatusServiceUnavailable, "unavailable", "the mailbox cannot be read")
		return
	}
	if mails == nil {
		mails = []mailbox.Mail{}
	}
	// Newest first.
	for i, j := 0, len(mails)-1; i < j; i, j = i+1, j-1 {
		mails[i], mails[j] = mails[j], mails[i]
	}
	writeJSON(w, http.StatusOK, mails)
}

func (c *Console) getMail(w http.ResponseWriter, r *http.Request) {
	if c.cfg.MailboxDir == "" {
		fail(w, http.StatusNotImplemented, "unimplemented", "no mailbox")
		return
	}
	m, err := mailbox.Get(c.cfg.MailboxDir, r.PathValue("id"))
	switch {
	case errors.Is(err, mailbox.ErrBadID):
		fail(w, http.StatusBadRequest, "invalid_argument", "id: not a mail id")
		return
	case errors.Is(err, mailbox.ErrNotFound):
		fail(w, http.StatusNotFound, "not_found", "no such mail")
		return
	case err != nil:
		c.log.Warn("web: get mail", "err", err)
		fail(w, http.StatusServiceUnavailable, "unavailable", "the mailbox cannot be read")
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// healthResult is one line of the health view.
type healthResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (c *Console) health(w http.ResponseWriter, r *http.Request) {
	res := make([]healthResult, len(c.cfg.Health))
	done := make(chan struct{}, len(c.cfg.Health))
	for i, ch := range c.cfg.Health {
		go func() {
			defer func() { done <- struct{}{} }()
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			detail, err := ch.Probe(ctx)
			res[i] = healthResult{Name: ch.Name, OK: err == nil, Detail: detail}
			if err != nil {
				res[i].Detail = err.Error()
			}
		}()
	}
	for range c.cfg.Health {
		<-done
	}
	writeJSON(w, http.StatusOK, res)
}
