// Command client registers a user through the tutorial's user service and
// reads it back, over Go Micro RPC. The password is read from the first line
// of standard input, never from a flag:
//
//	echo 'correct horse battery' | go run ./examples/tutorial/cmd/client --user_name Ada --user_email ada@example.com
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	userv1 "github.com/herald-dev/herald/gomicro/examples/tutorial/gen/tutorial/user/v1"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/user"
	"github.com/urfave/cli/v2"
	"go-micro.dev/v5"
)

func main() {
	var name, email string
	service := micro.NewService(
		micro.Name("user.client"),
		micro.Flags(
			&cli.StringFlag{Name: "user_name", Usage: "the new user's name", Destination: &name},
			&cli.StringFlag{Name: "user_email", Usage: "the new user's email", Destination: &email},
		),
	)
	service.Init()
	if err := run(service, name, email); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(service micro.Service, name, email string) error {
	if name == "" || email == "" {
		return errors.New("--user_name and --user_email are required; the password comes on standard input")
	}
	password, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && password == "" {
		return fmt.Errorf("read the password from standard input: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	users := userv1.NewUserService(user.ServiceName, service.Client())
	created, err := users.Create(ctx, &userv1.CreateRequest{Name: name, Email: email, Password: password})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	got, err := users.Get(ctx, &userv1.GetRequest{Id: created.GetUser().GetId()})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	u := got.GetUser()
	fmt.Printf("registered %s <%s> as %s at %s\n", u.GetName(), u.GetEmail(), u.GetId(), u.GetCreatedAt().AsTime().Format(time.RFC3339))
	return nil
}
