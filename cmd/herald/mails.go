package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/services/email/mailbox"
)

func newMailsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "mails",
		Short: "Read the mails the embedded SMTP sink received",
		Long: `Reads the local mailbox (a Maildir) the SMTP sink of "herald up" writes to. It can
be read while the sink writes: mails appear whole or not at all.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "mailbox", ".herald/mailbox", "mailbox directory (Maildir)")

	var listJSON bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the mails, newest first",
		Example: `  herald mails list
  herald mails list --json | jq -r '.[].subject'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mails, err := mailbox.List(dir)
			if err != nil {
				return fmt.Errorf("--mailbox %s: %w", dir, err)
			}
			if limit > 0 && len(mails) > limit {
				mails = mails[:limit]
			}
			if listJSON {
				if mails == nil {
					mails = []mailbox.Mail{}
				}
				return writeJSON(cmd.OutOrStdout(), mails)
			}
			return printMailList(cmd.OutOrStdout(), mails)
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	list.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one mail, with its text; ID may be any unique prefix",
		Example: `  herald mails show 1764064800123456789.9f86d081884c.myhost
  herald mails show 17640648 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := getMail(dir, args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return writeJSON(cmd.OutOrStdout(), m)
			}
			return printMail(cmd.OutOrStdout(), m)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	cmd.AddCommand(list, show)
	return cmd
}

// getMail finds the mail id, or the one mail whose ID starts with id.
func getMail(dir, id string) (mailbox.Mail, error) {
	m, err := mailbox.Get(dir, id)
	if !errors.Is(err, mailbox.ErrNotFound) {
		return m, err
	}
	mails, lerr := mailbox.List(dir)
	if lerr != nil {
		return m, err
	}
	var found []string
	for _, mm := range mails {
		if strings.HasPrefix(mm.ID, id) {
			found = append(found, mm.ID)
		}
	}
	switch len(found) {
	case 0:
		return m, fmt.Errorf("no mail %q in %s", id, dir)
	case 1:
		return mailbox.Get(dir, found[0])
	}
	return m, fmt.Errorf("%q names %d mails; give more of the ID", id, len(found))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func printMailList(w io.Writer, mails []mailbox.Mail) error {
	if len(mails) == 0 {
		_, err := fmt.Fprintln(w, "no mail")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tTO\tSUBJECT")
	for _, m := range mails {
		to := strings.Join(m.To, ", ")
		if to == "" {
			to = strings.Join(m.Rcpt, ", ")
		}
		subject := m.Subject
		if m.Problem != "" && subject == "" {
			subject = "(" + m.Problem + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.Received.Local().Format(time.DateTime), terminalSafe(cut(to, 40)), terminalSafe(cut(subject, 60)))
	}
	return tw.Flush()
}

func printMail(w io.Writer, m mailbox.Mail) error {
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%-11s %s\n", name+":", terminalSafe(value))
		}
	}
	field("ID", m.ID)
	field("From", m.From)
	field("To", strings.Join(m.To, ", "))
	field("Delivered", strings.Join(m.Rcpt, ", "))
	field("Subject", m.Subject)
	if !m.Date.IsZero() {
		field("Date", m.Date.Format(time.RFC1123Z))
	}
	field("Received", m.Received.Local().Format(time.RFC1123Z))
	field("Message-ID", m.MessageID)
	field("Size", fmt.Sprintf("%d bytes", m.Size))
	field("Problem", m.Problem)
	_, err := fmt.Fprintf(w, "\n%s", terminalSafe(m.Body))
	if err == nil && m.Body != "" && !strings.HasSuffix(m.Body, "\n") {
		_, err = fmt.Fprintln(w)
	}
	return err
}

// terminalSafe drops the control characters (escape sequences…) a mail from
// outside could use against the terminal, keeping line breaks and tabs.
func terminalSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
