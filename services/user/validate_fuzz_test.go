package user

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-dev/herald/events"
)

// FuzzValidateCreate checks the invariants of request validation on any
// input: what is accepted is within the limits and normalised (normalising
// again changes nothing), and every complaint names its field.
func FuzzValidateCreate(f *testing.F) {
	f.Add("", "Ada Lovelace", "Ada@Example.com", "correct horse")
	f.Add("0193a5b2-7c1e-7d3f-9a4b-2c8d1e0f3a5b", " x ", "a@b", "12345678")
	f.Add("bad id", "\x00", "Ada <a@b.c>", "short")
	f.Add("", "Robert'); DROP TABLE users;--", "x@[127.0.0.1]", strings.Repeat("密", 25))
	f.Fuzz(func(t *testing.T, id, name, email, pw string) {
		in, errs := validateCreate(id, name, email, pw)
		for _, e := range errs {
			field, _, ok := strings.Cut(e, ": ")
			if !ok || (field != "id" && field != "name" && field != "email" && field != "password") {
				t.Fatalf("complaint %q names no field", e)
			}
			echoed := strings.Contains(id, pw) || strings.Contains(name, pw) || strings.Contains(email, pw)
			if len(pw) >= MinPasswordChars && strings.Contains(e, pw) && !echoed {
				t.Fatalf("complaint %q shows the password", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		if n := utf8.RuneCountInString(in.name); n < 1 || n > MaxNameChars || in.name != strings.TrimSpace(in.name) {
			t.Fatalf("accepted name %q", in.name)
		}
		if len(in.email) > MaxEmailBytes || in.key != emailKey(in.email) {
			t.Fatalf("accepted email %q", in.email)
		}
		var again fieldErrors
		if e2 := normaliseEmail(&again, in.email); e2 != in.email || len(again) > 0 {
			t.Fatalf("normalising %q again gives %q, %v", in.email, e2, again)
		}
		if len(pw) > MaxPasswordBytes || utf8.RuneCountInString(pw) < MinPasswordChars {
			t.Fatalf("accepted a password of %d bytes", len(pw))
		}
		if id != "" && !validID(in.id) {
			t.Fatalf("accepted id %q", in.id)
		}
		// What is accepted makes an event the email service accepts.
		m, err := events.NewUserRegistered(Source, events.UserRegistered{ID: "u", Name: in.name, Email: in.email, RegisteredAt: time.Unix(1, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := events.DecodeUserRegistered(m); err != nil || ev.Email != in.email || ev.Name != in.name {
			t.Fatalf("event for %q <%s> decodes as %+v, %v", in.name, in.email, ev, err)
		}
	})
}
