package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
)

// dlqFlags are the flags every dlq command shares.
type dlqFlags struct {
	broker string
	topic  string
}

func newDLQCmd() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and purge dead letters",
		Long: `Dead letters are the events a consumer gave up on: its handler failed for good
(broker.Permanent) or failed on every one of its attempts. They wait on a
dead-letter topic (the topic + ".dlq") with the reason, the attempt count and the
original topic in their headers.

"herald dlq" reads them without consuming them, so it needs a broker backend that can
browse a topic (NATS JetStream, mem). Replay publishes each dead letter again, with
its original ID, to its original topic and only then deletes it: a crash in between
can only duplicate it, and consumers deduplicate by ID. Fix what made it fail first.`,
	}
	cmd.PersistentFlags().StringVar(&f.broker, "broker", "nats://127.0.0.1:4222", "broker URL")
	cmd.PersistentFlags().StringVar(&f.topic, "topic", broker.DefaultDeadLetterTopic(events.TopicUserRegistered), "dead-letter topic")

	var listJSON bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the dead letters, oldest first",
		Example: `  herald dlq list
  herald dlq list --topic user.registered.dlq --json | jq -r '.[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd.Context(), func(ctx context.Context, dl broker.DeadLetterBrowser) error {
				ms, err := dl.DeadLetters(ctx, f.topic, limit)
				if err != nil {
					return err
				}
				if listJSON {
					return writeJSON(cmd.OutOrStdout(), deadLettersJSON(ms))
				}
				return printDeadLetters(cmd.OutOrStdout(), f.topic, ms)
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	list.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead letter with its headers and body; ID may be any unique prefix",
		Example: `  herald dlq show 019abc12-…
  herald dlq show 019abc --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.with(cmd.Context(), func(ctx context.Context, dl broker.DeadLetterBrowser) error {
				ms, err := dl.DeadLetters(ctx, f.topic, 0)
				if err != nil {
					return err
				}
				m, err := findDeadLetter(ms, args[0], f.topic)
				if err != nil {
					return err
				}
				if showJSON {
					return writeJSON(cmd.OutOrStdout(), toDeadLetterJSON(m))
				}
				return printDeadLetter(cmd.OutOrStdout(), m)
			})
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var replayAll, replayJSON bool
	replay := &cobra.Command{
		Use:   "replay [ID...|--all]",
		Short: "Publish dead letters again to their original topic, then delete them",
		Example: `  herald dlq replay 019abc12-…
  herald dlq replay --all --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSelection(args, replayAll); err != nil {
				return err
			}
			return f.with(cmd.Context(), func(ctx context.Context, dl broker.DeadLetterBrowser) error {
				ms, err := selectDeadLetters(ctx, dl, f.topic, args, replayAll)
				if err != nil {
					return err
				}
				res, err := replayDeadLetters(ctx, dl.(broker.Broker), dl, f.topic, ms, newProgress(cmd.ErrOrStderr(), len(ms), "replaying"))
				if replayJSON {
					if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
						return errors.Join(err, jerr)
					}
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "replayed %d of %d dead letters from %s\n", len(res.Replayed), len(ms), f.topic)
				}
				return err
			})
		},
	}
	replay.Flags().BoolVar(&replayAll, "all", false, "replay every dead letter of the topic")
	replay.Flags().BoolVar(&replayJSON, "json", false, "print JSON")

	var purgeAll, yes bool
	purge := &cobra.Command{
		Use:   "purge [ID...|--all]",
		Short: "Delete dead letters for good",
		Example: `  herald dlq purge 019abc12-…
  herald dlq purge --all --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSelection(args, purgeAll); err != nil {
				return err
			}
			return f.with(cmd.Context(), func(ctx context.Context, dl broker.DeadLetterBrowser) error {
				ms, err := selectDeadLetters(ctx, dl, f.topic, args, purgeAll)
				if err != nil {
					return err
				}
				if len(ms) == 0 {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "no dead letters in %s\n", f.topic)
					return err
				}
				if !yes {
					fmt.Fprintf(cmd.OutOrStdout(), "delete %d dead letters from %s for good? [y/N] ", len(ms), f.topic)
					line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
						return errors.New("purge cancelled; nothing deleted (--yes skips the question)")
					}
				}
				n, err := dl.DeleteDeadLetters(ctx, f.topic, uniqueIDs(ms))
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letters from %s\n", n, f.topic)
				return err
			})
		},
	}
	purge.Flags().BoolVar(&purgeAll, "all", false, "purge every dead letter of the topic")
	purge.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")

	cmd.AddCommand(list, show, replay, purge)
	return cmd
}

// with opens the broker, checks it can browse dead letters, runs f and
// closes the broker.
func (f *dlqFlags) with(ctx context.Context, run func(context.Context, broker.DeadLetterBrowser) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := broker.ValidateTopic(f.topic); err != nil {
		return fmt.Errorf("--topic: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	b, err := openBroker(octx, f.broker)
	cancel()
	if err != nil {
		return fmt.Errorf("broker %s: %w", redactURL(f.broker), err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()
	dl, ok := b.(broker.DeadLetterBrowser)
	if !ok {
		scheme := f.broker
		if u, err := url.Parse(f.broker); err == nil {
			scheme = u.Scheme + "://"
		}
		return fmt.Errorf("broker %s: the %s backend cannot browse dead letters (no broker.DeadLetterBrowser); "+
			"subscribe to %s to consume them instead", redactURL(f.broker), scheme, f.topic)
	}
	return run(ctx, dl)
}

// checkSelection checks that a command got IDs or --all, not both.
func checkSelection(ids []string, all bool) error {
	switch {
	case all && len(ids) > 0:
		return errors.New("give IDs or --all, not both")
	case !all && len(ids) == 0:
		return errors.New("give the IDs of the dead letters, or --all")
	}
	return nil
}

// selectDeadLetters returns every dead letter of topic (all) or those named
// by ids (each a unique prefix).
func selectDeadLetters(ctx context.Context, dl broker.DeadLetterBrowser, topic string, ids []string, all bool) ([]*broker.Message, error) {
	ms, err := dl.DeadLetters(ctx, topic, 0)
	if err != nil || all {
		return ms, err
	}
	var out []*broker.Message
	for _, id := range ids {
		m, err := findDeadLetter(ms, id, topic)
		if err != nil {
			return nil, err
		}
		for _, x := range ms { // every dead letter sharing the ID
			if x.ID == m.ID && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out, nil
}

// findDeadLetter finds the dead letter id, or the one whose ID starts with id.
func findDeadLetter(ms []*broker.Message, id, topic string) (*broker.Message, error) {
	var found []*broker.Message
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
		if strings.HasPrefix(m.ID, id) && !slices.ContainsFunc(found, func(x *broker.Message) bool { return x.ID == m.ID }) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no dead letter %q in %s", id, topic)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%q names %d dead letters; give more of the ID", id, len(found))
}

func uniqueIDs(ms []*broker.Message) []string {
	var ids []string
	for _, m := range ms {
		if !slices.Contains(ids, m.ID) {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// replayResult is what `dlq replay --json` prints.
type replayResult struct {
	Topic    string        `json:"topic"`
	Replayed []replayedOne `json:"replayed"`
	Failed   []replayedOne `json:"failed"`
}

type replayedOne struct {
	ID    string `json:"id"`
	To    string `json:"to"`
	Error string `json:"error,omitempty"`
}

// replayDeadLetters publishes each of ms with [broker.ReplayOf] to its
// original topic, then deletes it from topic: publish first, delete after,
// so that a crash can only duplicate. It goes on past a failure and returns
// the failures joined.
func replayDeadLetters(ctx context.Context, b broker.Broker, dl broker.DeadLetterBrowser, topic string, ms []*broker.Message, p *progress) (replayResult, error) {
	res := replayResult{Topic: topic, Replayed: []replayedOne{}, Failed: []replayedOne{}}
	var errs []error
	done := map[string]bool{}
	for i, d := range ms {
		p.set(i)
		if done[d.ID] { // a second dead letter of the same message: one replay is enough
			continue
		}
		to, m := broker.ReplayOf(d)
		one := replayedOne{ID: d.ID, To: to}
		err := func() error {
			if to == "" {
				return fmt.Errorf("has no %s header: not a dead letter", broker.HeaderDeadLetterTopic)
			}
			if err := b.Publish(ctx, to, m); err != nil {
				return err
			}
			_, err := dl.DeleteDeadLetters(ctx, topic, []string{d.ID})
			if err != nil {
				return fmt.Errorf("published again, but not deleted (a later replay duplicates it; consumers deduplicate): %w", err)
			}
			return nil
		}()
		if err != nil {
			one.Error = err.Error()
			res.Failed = append(res.Failed, one)
			errs = append(errs, fmt.Errorf("replay %s: %w", d.ID, err))
			continue
		}
		done[d.ID] = true
		res.Replayed = append(res.Replayed, one)
	}
	p.set(len(ms))
	p.finish()
	return res, errors.Join(errs...)
}

// deadLetterJSON is a dead letter as `dlq list|show --json` print it.
type deadLetterJSON struct {
	ID             string            `json:"id"`
	Topic          string            `json:"topic"`
	OriginalTopic  string            `json:"original_topic"`
	Queue          string            `json:"queue"`
	Attempts       string            `json:"attempts"`
	Reason         string            `json:"reason"`
	DeadLetteredAt string            `json:"dead_lettered_at"`
	PublishedAt    time.Time         `json:"published_at"`
	Header         map[string]string `json:"header"`
	Body           string            `json:"body"`
}

func toDeadLetterJSON(m *broker.Message) deadLetterJSON {
	h := map[string]string(m.Header)
	if h == nil {
		h = map[string]string{}
	}
	return deadLetterJSON{
		ID: m.ID, Topic: m.Topic,
		OriginalTopic:  m.Header.Get(broker.HeaderDeadLetterTopic),
		Queue:          m.Header.Get(broker.HeaderDeadLetterQueue),
		Attempts:       m.Header.Get(broker.HeaderDeadLetterAttempts),
		Reason:         m.Header.Get(broker.HeaderDeadLetterReason),
		DeadLetteredAt: m.Header.Get(broker.HeaderDeadLetterTime),
		PublishedAt:    m.PublishedAt, Header: h, Body: string(m.Body),
	}
}

func deadLettersJSON(ms []*broker.Message) []deadLetterJSON {
	out := make([]deadLetterJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, toDeadLetterJSON(m))
	}
	return out
}

func printDeadLetters(w io.Writer, topic string, ms []*broker.Message) error {
	if len(ms) == 0 {
		_, err := fmt.Fprintf(w, "no dead letters in %s\n", topic)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEAD-LETTERED\tATTEMPTS\tQUEUE\tTOPIC\tREASON")
	for _, m := range ms {
		at := m.Header.Get(broker.HeaderDeadLetterTime)
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			at = t.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(m.ID), cell(at),
			cell(m.Header.Get(broker.HeaderDeadLetterAttempts)), cell(m.Header.Get(broker.HeaderDeadLetterQueue)),
			cell(m.Header.Get(broker.HeaderDeadLetterTopic)), cell(cut(m.Header.Get(broker.HeaderDeadLetterReason), 60)))
	}
	return tw.Flush()
}

func printDeadLetter(w io.Writer, m *broker.Message) error {
	fmt.Fprintf(w, "%-15s %s\n", "id:", terminalSafe(m.ID))
	fmt.Fprintf(w, "%-15s %s\n", "topic:", terminalSafe(m.Topic))
	fmt.Fprintf(w, "%-15s %s\n", "published at:", m.PublishedAt.Local().Format(time.DateTime))
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-15s %s\n", terminalSafe(k)+":", terminalSafe(m.Header[k]))
	}
	_, err := fmt.Fprintf(w, "\n%s\n", terminalSafe(string(m.Body)))
	return err
}

// cell is s made safe for one cell of a table: no control characters, no
// line breaks or tabs.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, terminalSafe(s))
}
