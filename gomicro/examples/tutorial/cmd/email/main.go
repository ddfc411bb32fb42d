// Command email runs the tutorial's email service: a Go Micro subscriber of
// user.registered on Herald that sends the welcome mails through SMTP.
//
//	HERALD_BROKER_URL=nats://127.0.0.1:4222 SMTP_ADDR=127.0.0.1:2525 go run ./examples/tutorial/cmd/email
//
// Run several: the queue group "email" gives each event to one of them.
package main

import (
	"log/slog"
	"os"

	herald "github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/gomicro"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/email"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/internal/heraldmux"
	"go-micro.dev/v5"
)

func main() {
	addr := os.Getenv("SMTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:2525" // `herald up`'s SMTP sink
	}
	service := micro.NewService(
		micro.Name(email.ServiceName),
		// Herald instead of Go Micro's broker; its subscriptions log their
		// dead letters (and, at debug level, their retries).
		micro.Broker(gomicro.NewURL(heraldmux.New(), heraldmux.URL(),
			gomicro.WithLogger(slog.Default()),
			gomicro.WithSubscribeDefaults(herald.WithLogger(slog.Default())))),
	)
	service.Init()
	sub := email.New(email.SMTP{Addr: addr, From: "welcome@herald.local"})
	if err := email.Register(service, sub); err != nil {
		slog.Error("email: register the subscriber", "err", err)
		os.Exit(1)
	}
	if err := service.Run(); err != nil {
		slog.Error("email: run", "err", err)
		os.Exit(1)
	}
}
