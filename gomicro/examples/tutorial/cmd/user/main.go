// Command user runs the tutorial's user service: Go Micro RPC on Herald.
//
//	HERALD_BROKER_URL=nats://127.0.0.1:4222 go run ./examples/tutorial/cmd/user
//
// Services find each other through Go Micro's registry (mdns by default;
// MICRO_REGISTRY and MICRO_REGISTRY_ADDRESS choose another).
package main

import (
	"log/slog"
	"os"

	"github.com/herald-dev/herald/gomicro"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/internal/heraldmux"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/user"
	"go-micro.dev/v5"
)

func main() {
	service := micro.NewService(
		micro.Name(user.ServiceName),
		micro.Broker(gomicro.NewURL(heraldmux.New(), heraldmux.URL())), // Herald instead of Go Micro's broker
	)
	service.Init()
	h := user.New(micro.NewEvent(user.Topic, service.Client()))
	if err := user.Register(service, h); err != nil {
		slog.Error("user: register the handler", "err", err)
		os.Exit(1)
	}
	if err := service.Run(); err != nil {
		slog.Error("user: run", "err", err)
		os.Exit(1)
	}
}
