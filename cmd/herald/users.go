package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/services/user"
)

// usersClient is how the users commands reach the user service.
type usersClient struct {
	registryURL string
	addr        string
	asJSON      bool
	timeout     time.Duration
}

func newUsersCmd() *cobra.Command {
	c := &usersClient{}
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Register and look up users through the user service",
		Long: `Calls the user service, found as herald.user in --registry, or at --addr.

Errors print the RPC code and message, and exit non-zero.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.registryURL, "registry", "nats://127.0.0.1:4222", "registry URL to find herald.user in")
	pf.StringVar(&c.addr, "addr", "", "the user service's address (host:port or URL), instead of asking the registry")
	pf.BoolVar(&c.asJSON, "json", false, "print JSON")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long a command may take")
	cmd.AddCommand(c.registerCmd(), c.getCmd())
	return cmd
}

func (c *usersClient) registerCmd() *cobra.Command {
	var (
		id, name, email string
		passwordStdin   bool
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a user",
		Long: `Registers a user. The password is read from a no-echo prompt when stdin is a
terminal, or from stdin with --password-stdin (the first line, without its line
ending). There is no password flag: command lines end up in shell histories and
process listings.`,
		Example: `  herald users register --name 'Ada Lovelace' --email ada@example.com
  printf '%s\n' "$PASSWORD" | herald users register --name Ada --email ada@example.com --password-stdin --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, passwordStdin)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			client, err := c.client(ctx)
			if err != nil {
				return err
			}
			res, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{Id: id, Name: name, Email: email, Password: pw}))
			if err != nil {
				return c.fail(cmd, err)
			}
			return c.print(cmd, res.Msg.GetUser())
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the user's name (required)")
	f.StringVar(&email, "email", "", "the user's email address (required)")
	f.StringVar(&id, "id", "", "the user's id (default: generated)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

func (c *usersClient) getCmd() *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "get [ID]",
		Short: "Show a user, by id or by --email",
		Example: `  herald users get 0193a5b2-7c1e-7d3f-9a4b-2c8d1e0f3a5b
  herald users get --email ada@example.com --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (email != "") {
				return errors.New("give either an ID or --email")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			client, err := c.client(ctx)
			if err != nil {
				return err
			}
			var u *userv1.User
			if email != "" {
				res, err := client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: email}))
				if err != nil {
					return c.fail(cmd, err)
				}
				u = res.Msg.GetUser()
			} else {
				res, err := client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: args[0]}))
				if err != nil {
					return c.fail(cmd, err)
				}
				u = res.Msg.GetUser()
			}
			return c.print(cmd, u)
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "look the user up by email (case does not matter)")
	return cmd
}

// client returns a client of the user service at --addr, or of an instance
// of herald.user found in the registry.
func (c *usersClient) client(ctx context.Context) (userv1connect.UserServiceClient, error) {
	addr := c.addr
	if addr == "" {
		if c.registryURL == "" {
			return nil, errors.New("no --addr and no --registry: cannot find the user service")
		}
		reg, err := openRegistry(ctx, c.registryURL)
		if err != nil {
			return nil, fmt.Errorf("--registry %s: %w", redactURL(c.registryURL), err)
		}
		defer reg.Close(context.WithoutCancel(ctx))
		insts, err := reg.Lookup(ctx, user.ServiceName)
		if err != nil {
			return nil, fmt.Errorf("find %s in %s: %w (is `herald serve user` or `herald up` running?)", user.ServiceName, redactURL(c.registryURL), err)
		}
		if len(insts) == 0 {
			return nil, fmt.Errorf("find %s in %s: no instance", user.ServiceName, redactURL(c.registryURL))
		}
		addr = insts[rand.IntN(len(insts))].Addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return userv1connect.NewUserServiceClient(http.DefaultClient, addr), nil
}

// fail prints an RPC error as its code and message (as JSON with --json)
// and returns an error, so the command exits non-zero.
func (c *usersClient) fail(cmd *cobra.Command, err error) error {
	code, msg := connect.CodeOf(err), err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	if c.asJSON {
		b, _ := json.Marshal(map[string]map[string]string{"error": {"code": code.String(), "message": msg}})
		fmt.Fprintln(cmd.OutOrStdout(), string(b))
	}
	return fmt.Errorf("%s: %s", code, msg)
}

func (c *usersClient) print(cmd *cobra.Command, u *userv1.User) error {
	w := cmd.OutOrStdout()
	if c.asJSON {
		b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(u)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	fmt.Fprintf(w, "id          %s\n", u.GetId())
	fmt.Fprintf(w, "name        %s\n", u.GetName())
	fmt.Fprintf(w, "email       %s\n", u.GetEmail())
	fmt.Fprintf(w, "created_at  %s\n", u.GetCreatedAt().AsTime().Format(time.RFC3339Nano))
	return nil
}

// readPassword reads the password from stdin (--password-stdin) or from a
// no-echo prompt on the terminal, asked twice.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return "", errors.New("--password-stdin: stdin held no password")
		}
		return line, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal: pipe the password in with --password-stdin")
	}
	prompt := cmd.ErrOrStderr()
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	again, err := ask("Repeat password: ")
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}
