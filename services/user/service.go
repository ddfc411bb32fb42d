package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
)

// Source is the CloudEvents source of the events the service publishes.
const Source = "herald/user"

// DefaultMaxRequestBytes bounds a request's message.
const DefaultMaxRequestBytes = 64 << 10

// Service implements the UserService API on a gorm database. It is safe
// for concurrent use.
type Service struct {
	store    *store
	cost     int
	slots    int
	hasher   *hasher
	log      *slog.Logger
	notify   func()
	maxBytes int64
	limiter  *createLimiter // nil: Create is not rate-limited
}

var _ userv1connect.UserServiceHandler = (*Service)(nil)

// Option configures a [Service].
type Option func(*Service) error

// WithBcryptCost sets the bcrypt cost (bcrypt.MinCost to bcrypt.MaxCost;
// default [DefaultBcryptCost]).
func WithBcryptCost(cost int) Option {
	return func(s *Service) error {
		if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
			return fmt.Errorf("user: %w: bcrypt cost must be in [%d, %d], not %d", broker.ErrInvalidOption, bcrypt.MinCost, bcrypt.MaxCost, cost)
		}
		s.cost = cost
		return nil
	}
}

// WithHashConcurrency sets how many passwords may be hashed at once (n ≥ 1;
// default runtime.GOMAXPROCS(0)). Registrations beyond it wait their turn.
// With every core hashing, other requests wait for the Go scheduler to
// preempt a hash (every 10 ms) at each step; GOMAXPROCS-1 keeps a core for
// them at the cost of registration throughput.
func WithHashConcurrency(n int) Option {
	return func(s *Service) error {
		if n < 1 {
			return fmt.Errorf("user: %w: hash concurrency must be >= 1, not %d", broker.ErrInvalidOption, n)
		}
		s.slots = n
		return nil
	}
}

// WithLogger sets the logger (discard by default). The service logs each
// call's procedure, code and duration at debug level, registrations at info
// level and database errors at warn level; never a password, a hash or a
// request message.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("user: %w: nil logger", broker.ErrInvalidOption)
		}
		s.log = l
		return nil
	}
}

// WithNotify sets a function called after each committed registration,
// typically the outbox relay's Notify.
func WithNotify(f func()) Option {
	return func(s *Service) error {
		s.notify = f
		return nil
	}
}

// WithMaxRequestBytes bounds the size of a request's message (default
// [DefaultMaxRequestBytes]); larger requests get ResourceExhausted.
func WithMaxRequestBytes(n int64) Option {
	return func(s *Service) error {
		if n < 1024 {
			return fmt.Errorf("user: %w: max request bytes must be >= 1024, not %d", broker.ErrInvalidOption, n)
		}
		s.maxBytes = n
		return nil
	}
}

// NewService returns the service on db, whose tables [Migrate] created.
func NewService(db *gorm.DB, opts ...Option) (*Service, error) {
	if db == nil {
		return nil, fmt.Errorf("user: %w: nil database", broker.ErrInvalidOption)
	}
	s := &Service{
		store:    newStore(db, Source),
		cost:     DefaultBcryptCost,
		log:      slog.New(slog.DiscardHandler),
		notify:   func() {},
		maxBytes: DefaultMaxRequestBytes,
		limiter:  newCreateLimiter(DefaultCreateRate, DefaultCreateBurst, DefaultCreateMaxWait),
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	s.hasher = newHasher(s.cost, s.slots)
	return s, nil
}

// Create implements UserService.Create.
func (s *Service) Create(ctx context.Context, req *connect.Request[userv1.CreateRequest]) (*connect.Response[userv1.CreateResponse], error) {
	if s.limiter != nil {
		if err := s.limiter.wait(ctx, req.Peer().Addr); err != nil {
			return nil, err
		}
	}
	in, errs := validateCreate(req.Msg.GetId(), req.Msg.GetName(), req.Msg.GetEmail(), req.Msg.GetPassword())
	if len(errs) > 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New(errs.String()))
	}
	// Cheap checks before the expensive hash; the unique keys decide races.
	if taken, err := s.store.exists(ctx, "email_key = ?", in.key); err != nil {
		return nil, s.storeError(ctx, "create", err)
	} else if taken {
		return nil, s.storeError(ctx, "create", errEmailTaken)
	}
	if in.id != "" {
		if taken, err := s.store.exists(ctx, "id = ?", in.id); err != nil {
			return nil, s.storeError(ctx, "create", err)
		} else if taken {
			return nil, s.storeError(ctx, "create", errIDTaken)
		}
	} else {
		in.id = broker.NewID()
	}
	hash, err := s.hasher.hash(ctx, in.password)
	if err != nil {
		if ctx.Err() != nil {
			return nil, connect.NewError(connect.CodeOf(ctx.Err()), errors.New("cancelled while waiting to hash the password"))
		}
		// bcrypt fails only on input validation already refused; say
		// nothing about the password.
		s.log.Error("user: hash password failed", "err_type", fmt.Sprintf("%T", err))
		return nil, connect.NewError(connect.CodeInternal, errors.New("could not hash the password"))
	}
	r := record{
		ID:           in.id,
		Name:         in.name,
		Email:        in.email,
		EmailKey:     in.key,
		PasswordHash: string(hash),
		// Stored to the millisecond, the finest every engine keeps, so
		// Create, Get and the event show the same instant.
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := s.store.create(ctx, &r); err != nil {
		return nil, s.storeError(ctx, "create", err)
	}
	s.notify()
	s.log.InfoContext(ctx, "user registered", "user_id", r.ID)
	return connect.NewResponse(&userv1.CreateResponse{User: toProto(r)}), nil
}

// Get implements UserService.Get.
func (s *Service) Get(ctx context.Context, req *connect.Request[userv1.GetRequest]) (*connect.Response[userv1.GetResponse], error) {
	id := req.Msg.GetId()
	if !validID(id) {
		var errs fieldErrors
		checkID(&errs, id)
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New(errs.String()))
	}
	r, err := s.store.get(ctx, "id", id)
	if errors.Is(err, errNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("id: no user has the id %s", quote(id)))
	}
	if err != nil {
		return nil, s.storeError(ctx, "get", err)
	}
	return connect.NewResponse(&userv1.GetResponse{User: toProto(r)}), nil
}

// GetByEmail implements UserService.GetByEmail.
func (s *Service) GetByEmail(ctx context.Context, req *connect.Request[userv1.GetByEmailRequest]) (*connect.Response[userv1.GetByEmailResponse], error) {
	var errs fieldErrors
	email := normaliseEmail(&errs, req.Msg.GetEmail())
	if len(errs) > 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New(errs.String()))
	}
	r, err := s.store.get(ctx, "email_key", emailKey(email))
	if errors.Is(err, errNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("email: no user has the email %s", quote(email)))
	}
	if err != nil {
		return nil, s.storeError(ctx, "get by email", err)
	}
	return connect.NewResponse(&userv1.GetByEmailResponse{User: toProto(r)}), nil
}

// storeError maps a store error to a Connect error. Anything the database
// did not answer cleanly is Unavailable: the request can be retried.
func (s *Service) storeError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, errEmailTaken):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("email: is already registered"))
	case errors.Is(err, errIDTaken):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("id: is already taken"))
	case ctx.Err() != nil:
		return connect.NewError(connect.CodeOf(ctx.Err()), fmt.Errorf("%s: %w", op, ctx.Err()))
	}
	s.log.Warn("user: database error", "op", op, "err", err)
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: the user database is unavailable; try again later", op))
}

func toProto(r record) *userv1.User {
	return &userv1.User{Id: r.ID, Name: r.Name, Email: r.Email, CreatedAt: timestamppb.New(r.CreatedAt)}
}

// Handler returns the service's HTTP handler: the Connect, gRPC and
// gRPC-Web protocols on the UserService paths (serve it with HTTP/2 over
// cleartext, as [Server] does, for gRPC). Requests whose message is larger
// than the limit get ResourceExhausted; requests with a content type none of
// the protocols uses get HTTP 415 with a Connect error naming the content
// type.
func (s *Service) Handler() http.Handler {
	path, h := userv1connect.NewUserServiceHandler(s,
		connect.WithReadMaxBytes(int(s.maxBytes)),
		connect.WithInterceptors(logInterceptor(s.log)),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, r any) error {
			s.log.Error("user: handler panicked", "procedure", spec.Procedure, "panic", fmt.Sprintf("%T", r))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
	mux := http.NewServeMux()
	mux.Handle(path, checkContentType(h))
	return mux
}
