package system

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/services/user"
	"github.com/herald-dev/herald/web"
)

// startConsole opens what the web console reads (a second handle on the
// users' database) and starts it on the system's parts.
func (s *System) startConsole(ctx context.Context, usersDB string) (*web.Console, error) {
	g, err := db.Open(ctx, usersDB)
	if err != nil {
		return nil, fmt.Errorf("console: users database: %w", err)
	}
	s.stops = append(s.stops, func(context.Context) error {
		sqlDB, err := g.DB()
		if err != nil {
			return err
		}
		return sqlDB.Close()
	})
	c, err := web.New(web.Config{
		Broker:     s.Broker,
		Topics:     []string{events.TopicUserRegistered},
		Users:      listUsers(g),
		Client:     userv1connect.NewUserServiceClient(&http.Client{Timeout: 30 * time.Second}, "http://"+s.UserAddr),
		MailboxDir: s.MailboxDir,
		Metrics:    s.Metrics,
		Health: []web.Check{
			{Name: "broker", Probe: s.probeBroker},
			{Name: "registry", Probe: s.probeRegistry},
			{Name: "database", Probe: func(ctx context.Context) (string, error) {
				sqlDB, err := g.DB()
				if err != nil {
					return "", err
				}
				if err := sqlDB.PingContext(ctx); err != nil {
					return "", err
				}
				return g.Dialector.Name() + " answers", nil
			}},
			{Name: "smtp", Probe: s.probeSMTP},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// listUsers lists users by name or email, newest first; never the hash.
func listUsers(g *gorm.DB) func(ctx context.Context, q string, limit int) ([]web.User, error) {
	return func(ctx context.Context, q string, limit int) ([]web.User, error) {
		var users []web.User
		tx := g.WithContext(ctx).Table(user.Table).Select("id", "name", "email", "created_at")
		if q != "" {
			like := "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(strings.ToLower(q)) + "%"
			tx = tx.Where("LOWER(name) LIKE ? ESCAPE '!' OR LOWER(email) LIKE ? ESCAPE '!'", like, like)
		}
		err := tx.Order("created_at DESC").Limit(limit).Scan(&users).Error
		return users, err
	}
}

func (s *System) probeBroker(context.Context) (string, error) {
	var nc *natsgo.Conn
	if broker.As(s.Broker, &nc) {
		if !nc.IsConnected() {
			return "", fmt.Errorf("NATS connection is %s", nc.Status())
		}
		return "NATS connected to " + nc.ConnectedUrlRedacted(), nil
	}
	return "open (this backend has no probe)", nil
}

func (s *System) probeRegistry(ctx context.Context) (string, error) {
	inst, err := s.Registry.Lookup(ctx, user.ServiceName)
	if err != nil {
		return "", err
	}
	if len(inst) == 0 {
		return "", fmt.Errorf("no instance of %s registered", user.ServiceName)
	}
	return fmt.Sprintf("%d instance(s) of %s", len(inst), user.ServiceName), nil
}

func (s *System) probeSMTP(ctx context.Context) (string, error) {
	u, err := url.Parse(s.SMTPURL)
	if err != nil || u.Host == "" {
		return "", errors.New("SMTP URL has no host")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return "", err
	}
	conn.Close()
	return u.Scheme + "://" + u.Host + " accepts connections", nil
}
