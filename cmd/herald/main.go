// Command herald runs Herald's services, its embedded defaults and its tools.
//
// Every flag can also be set by an environment variable: HERALD_ followed by
// the flag's name in upper case with dashes as underscores (--broker is
// HERALD_BROKER). A flag given on the command line wins.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		stop()
		os.Exit(1)
	}
}
