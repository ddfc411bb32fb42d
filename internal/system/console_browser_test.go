package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
)

// chromiumPath is Debian's chromium, which scripts/install-chromium.sh
// installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium for the test, or skips it.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s is absent (run scripts/install-chromium.sh as root to install Debian's chromium)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// screenshotDir is where the screenshots go: HERALD_SCREENSHOTS (the
// repository keeps them in docs/screenshots), else a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("HERALD_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func shot(ctx context.Context, t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, tg)
		return chromedp.Void{}, err
	}
}

// waitFor polls a JavaScript predicate in the page for up to 20 seconds.
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

func step(ctx context.Context, t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// clearInput empties the input sel.
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Evaluate[chromedp.Void](`document.querySelector(` + js(sel) + `).value = ""`))
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestConsoleInBrowser drives the console in headless chromium: a
// registration with a bad email shows the user service's message next to
// the field; a good one is listed and its welcome mail appears in the
// mailbox view; a poison event shows in the DLQ view and leaves it when
// purged; a dead letter whose cause is fixed leaves it when replayed, and
// its mail arrives.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := screenshotDir(t)
	s, _ := start(t)
	base := "http://" + s.AdminAddr + "/"

	// Every form control has a label.
	step(ctx, t, "open the console", chromedp.Navigate(base+"#users"), chromedp.WaitVisible(chromedp.CSS("#register")))
	unlabelled, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("input, select")].filter(i => !document.querySelector('label[for="' + i.id + '"]')).length`))
	if err != nil || unlabelled != 0 {
		t.Fatalf("%d form controls without a label (%v)", unlabelled, err)
	}

	step(ctx, t, "register with a bad email",
		chromedp.SendKeys(chromedp.CSS("#reg-name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#reg-email"), "ada-at-example"),
		chromedp.SendKeys(chromedp.CSS("#reg-password"), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS("#register button[type=submit]")),
		waitFor(`document.querySelector("#reg-email-err").textContent.includes("not a plain address") && document.querySelector("#reg-email").getAttribute("aria-invalid") === "true"`),
	)
	shot(ctx, t, dir, "register-errors")

	step(ctx, t, "register",
		clearInput("#reg-email"),
		chromedp.SendKeys(chromedp.CSS("#reg-email"), "ada@example.com"),
		clearInput("#reg-password"),
		chromedp.SendKeys(chromedp.CSS("#reg-password"), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS("#register button[type=submit]")),
		waitFor(`document.querySelector("#register-status").textContent.includes("Registered Ada Lovelace")`),
		waitFor(`[...document.querySelectorAll("#user-table td")].some(td => td.textContent === "ada@example.com")`),
		waitFor(`document.querySelector("#reg-email-err").textContent === ""`),
	)
	shot(ctx, t, dir, "users")

	step(ctx, t, "the mail in the mailbox",
		chromedp.Navigate(base+"#mailbox"),
		waitFor(`[...document.querySelectorAll("#mail-list button")].some(b => b.textContent === "Welcome to Herald, Ada Lovelace")`),
		chromedp.Click(chromedp.CSS("#mail-list li:first-child button")),
		waitFor(`document.querySelector("#mail-view pre") && document.querySelector("#mail-view pre").textContent.includes("Hello Ada Lovelace,")`),
	)
	shot(ctx, t, dir, "mailbox")

	// A poison event: the email service cannot decode it and dead-letters
	// it at once.
	poison := &broker.Message{Header: broker.Header{"content-type": "application/json"}, Body: []byte(`{"not":"an event"}`)}
	if err := s.Broker.Publish(context.Background(), events.TopicUserRegistered, poison); err != nil {
		t.Fatal(err)
	}
	// A dead letter whose cause is gone: a good event that failed before.
	good, err := events.NewUserRegistered("herald/user", events.UserRegistered{
		ID: "01a21362-0000-7000-8000-000000000001", Name: "Charles Babbage", Email: "charles@example.com", RegisteredAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	good.Topic, good.Attempt = events.TopicUserRegistered, 10
	opts, err := broker.NewSubscribeOptions(events.TopicUserRegistered, func(context.Context, *broker.Message) error { return nil }, broker.Queue("email"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Broker.Publish(context.Background(), opts.DeadLetterTopic, broker.NewDeadLetter(good, opts, fmt.Errorf("smtp: 421 try again later"))); err != nil {
		t.Fatal(err)
	}

	step(ctx, t, "live events", chromedp.Navigate(base+"#events"),
		waitFor(`document.querySelector("#event-list").textContent.includes(`+js(poison.ID)+`)`),
		waitFor(`[...document.querySelectorAll("#flow-table td")].some(td => td.textContent === "email")`),
		waitFor(`document.querySelector("#outbox").textContent.includes("user: 0 waiting")`),
	)
	shot(ctx, t, dir, "events")

	row := func(id string) string { return `#dlq-list li[data-id="` + id + `"]` }
	step(ctx, t, "both dead letters in the DLQ view", chromedp.Navigate(base+"#dlq"),
		waitFor(`document.querySelector(`+js(row(poison.ID))+`)`),
		chromedp.Click(chromedp.CSS("#dlq-form button")),
		waitFor(`document.querySelector(`+js(row(poison.ID))+`) && document.querySelector(`+js(row(good.ID))+`)`),
		waitFor(`document.querySelector(`+js(row(poison.ID))+`).textContent.includes("bad event")`),
	)
	shot(ctx, t, dir, "dlq")

	step(ctx, t, "replay the fixed one",
		chromedp.Click(chromedp.CSS(row(good.ID)+` button[aria-label^="Replay"]`)),
		waitFor(`document.querySelector("#dlq-status").textContent.startsWith("Replayed")`),
		waitFor(`!document.querySelector(`+js(row(good.ID))+`)`),
	)
	mails := waitMails(t, s.MailboxDir, 2)
	if mails[1].Subject != "Welcome to Herald, Charles Babbage" && mails[0].Subject != "Welcome to Herald, Charles Babbage" {
		t.Fatalf("the replayed event sent no mail: %+v", mails)
	}
	step(ctx, t, "purge the poison",
		chromedp.Click(chromedp.CSS(row(poison.ID)+` button[aria-label^="Purge"]`)),
		waitFor(`document.querySelector("#dlq-status").textContent.startsWith("Purged")`),
		waitFor(`!document.querySelector(`+js(row(poison.ID))+`)`),
	)

	step(ctx, t, "health", chromedp.Navigate(base+"#health"),
		waitFor(`document.querySelectorAll("#health-list li").length === 4 && document.querySelectorAll("#health-list .ok").length === 4`))
	shot(ctx, t, dir, "health")

	// Keyboard: from a fresh page, Tab reaches the skip link, then the
	// views; Enter on a view's link shows it.
	step(ctx, t, "keyboard", chromedp.Navigate("about:blank"), chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#register")),
		chromedp.KeyEvent("\t"),
		waitFor(`document.activeElement && document.activeElement.classList.contains("skip")`),
		chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"),
		waitFor(`document.activeElement && document.activeElement.getAttribute("href") === "#mailbox"`),
		chromedp.KeyEvent("\r"),
		waitFor(`document.querySelector("#mailbox").classList.contains("active") && document.activeElement.id === "mailbox-h"`))

	// Phone width: nothing wider than the screen.
	step(ctx, t, "phone width", chromedp.EmulateViewport(375, 800), chromedp.Navigate(base+"#users"),
		chromedp.WaitVisible(chromedp.CSS("#register")),
		waitFor(`[...document.querySelectorAll("#user-table td")].some(td => td.textContent === "ada@example.com")`))
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || wide {
		t.Fatalf("the page scrolls sideways at 375px (%v)", err)
	}
	shot(ctx, t, dir, "users-phone")
}
