package user_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/outbox"
)

// post sends body to procedure of the UserService with the given content
// type, checks the HTTP status and returns the response body.
func post(t *testing.T, e *env, procedure, contentType, body string, status int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/herald.user.v1.UserService/"+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != status {
		t.Fatalf("POST %s (%s): status %d, want %d: %s", procedure, contentType, res.StatusCode, status, b)
	}
	return string(b)
}

// TestBadInputs sends bad registrations through the real server, with the
// Connect client and as raw HTTP, and checks that each gets its code and a
// message naming the field, and that nothing is stored or published.
func TestBadInputs(t *testing.T) {
	url := dbtest.URL(t, dbtest.Engines()[0])
	e := start(t, url)
	var sec secrets
	const (
		name  = "Valid Name"
		email = "valid@example.com"
		pw    = "valid-password"
	)
	sec.add(pw)
	long := func(s string, n int) string { return strings.Repeat(s, n) }

	fields := []struct {
		what                string
		id, name, email, pw string
		field               string
	}{
		{"empty name", "", "", email, pw, "name"},
		{"blank name", "", " \t ", email, pw, "name"},
		{"name of 101 characters", "", long("é", 101), email, pw, "name"},
		{"NUL in name", "", "Ada\x00Lovelace", email, pw, "name"},
		{"newline in name", "", "Ada\nBcc: x@y.z", email, pw, "name"},
		{"escape in name", "", "Ada \x1b[31mred", email, pw, "name"},
		{"DEL in name", "", "Ada\x7f", email, pw, "name"},
		{"C1 control in name", "", "Ada\u0085Lovelace", email, pw, "name"},
		{"bidi override in name", "", "Ada \u202Egnp.exe", email, pw, "name"},
		{"line separator in name", "", "Ada\u2028Lovelace", email, pw, "name"},
		{"empty email", "", name, "", pw, "email"},
		{"email without @", "", name, "ada.example.com", pw, "email"},
		{"email with a display name", "", name, "Ada <ada@example.com>", pw, "email"},
		{"email with a comment", "", name, "ada@example.com (Ada)", pw, "email"},
		{"email over 254 bytes", "", name, long("a", 60) + "@" + long("b", 190) + ".example.com", pw, "email"},
		{"local part over 64 bytes", "", name, long("a", 65) + "@example.com", pw, "email"},
		{"header injection in email", "", name, "ada@example.com\r\nBcc: all@example.com", pw, "email"},
		{"domain literal", "", name, "ada@[127.0.0.1]", pw, "email"},
		{"bad domain", "", name, "ada@-example-.com", pw, "email"},
		{"two @", "", name, "ada@@example.com", pw, "email"},
		{"SQL in email", "", name, "' OR '1'='1'--@example.com", pw, "email"},
		{"SQL after email", "", name, "ada@example.com'; DROP TABLE users;--", pw, "email"},
		{"empty password", "", name, email, "", "password"},
		{"short password", "", name, email, sec.add("short7!"), "password"},
		{"password of 73 bytes", "", name, email, sec.add(long("p", 73)), "password"},
		{"password over 72 bytes in few characters", "", name, email, sec.add(long("密", 25)), "password"},
		{"id with a space", "has space", name, email, pw, "id"},
		{"id of 65 bytes", long("i", 65), name, email, pw, "id"},
		{"path in id", "../../etc/passwd", name, email, pw, "id"},
		{"SQL in id", "1; DROP TABLE users", name, email, pw, "id"},
		{"non-ASCII id", "ïd", name, email, pw, "id"},
	}
	ctx := context.Background()
	n := 0
	for _, c := range fields {
		t.Run(c.what, func(t *testing.T) {
			n++
			_, err := create(ctx, e.client, c.id, c.name, c.email, c.pw)
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("Create = %v, want InvalidArgument", err)
			}
			if msg := connectMessage(err); !strings.HasPrefix(msg, c.field+":") {
				t.Fatalf("message %q does not start with the field %q", msg, c.field)
			}
			sec.check(t, "the error", err.Error())
		})
	}

	// Several bad fields: each is named.
	_, err := create(ctx, e.client, "bad id", "", "nope", "short")
	for _, f := range []string{"id:", "name:", "email:", "password:"} {
		if !strings.Contains(connectMessage(err), f) {
			t.Errorf("message %q does not name %s", connectMessage(err), f)
		}
	}
	n++

	// Raw HTTP: what a client library would never send.
	valid := fmt.Sprintf(`{"name":%q,"email":%q,"password":%q}`, name, email, pw)
	raw := []struct {
		what, contentType, body string
		status                  int
		code                    connect.Code
		mention                 string
	}{
		{"text/plain", "text/plain", valid, http.StatusUnsupportedMediaType, connect.CodeInvalidArgument, "content-type"},
		{"XML", "application/xml", "<user/>", http.StatusUnsupportedMediaType, connect.CodeInvalidArgument, "content-type"},
		{"form", "application/x-www-form-urlencoded", "name=a", http.StatusUnsupportedMediaType, connect.CodeInvalidArgument, "content-type"},
		{"no content type", "", valid, http.StatusUnsupportedMediaType, connect.CodeInvalidArgument, "content-type"},
		{"malformed JSON", "application/json", `{"name":`, http.StatusBadRequest, connect.CodeInvalidArgument, "unmarshal"},
		{"JSON array", "application/json", `[1,2]`, http.StatusBadRequest, connect.CodeInvalidArgument, "unmarshal"},
		// Connect ignores unknown fields (forward compatibility); a misspelt
		// field is then a missing one, and named.
		{"misspelt field", "application/json", `{"name":"a","emial":"a@b.c","password":"12345678"}`, http.StatusBadRequest, connect.CodeInvalidArgument, "email: is required"},
		{"wrong type", "application/json", `{"name":5,"email":"a@b.c","password":"12345678"}`, http.StatusBadRequest, connect.CodeInvalidArgument, "name"},
		{"invalid UTF-8 in JSON", "application/json", "{\"name\":\"\xff\xfe\",\"email\":\"a@b.c\",\"password\":\"12345678\"}", http.StatusBadRequest, connect.CodeInvalidArgument, "UTF-8"},
		{"invalid UTF-8 in proto", "application/proto", string(protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "\xff\xfe")), http.StatusBadRequest, connect.CodeInvalidArgument, "UTF-8"},
		{"oversized body", "application/json", fmt.Sprintf(`{"name":%q,"email":%q,"password":%q}`, long("n", 70<<10), email, pw), http.StatusTooManyRequests, connect.CodeResourceExhausted, "larger than"},
		{"SQL as the body", "application/json", `'; DROP TABLE users; --`, http.StatusBadRequest, connect.CodeInvalidArgument, "unmarshal"},
	}
	for _, c := range raw {
		t.Run("raw "+c.what, func(t *testing.T) {
			n++
			body := post(t, e, "Create", c.contentType, c.body, c.status)
			var ce struct{ Code, Message string }
			if err := json.Unmarshal([]byte(body), &ce); err != nil {
				t.Fatalf("response %q is not a Connect error: %v", body, err)
			}
			if ce.Code != c.code.String() || !strings.Contains(ce.Message, c.mention) {
				t.Fatalf("got %s %q; want %s mentioning %q", ce.Code, ce.Message, c.code, c.mention)
			}
			sec.check(t, "the response", body)
		})
	}
	if n < 25 {
		t.Fatalf("only %d bad inputs", n)
	}

	// Nothing stored, nothing pending, nothing published. A valid request
	// afterwards works and is the only thing published: the relay was live.
	u, err := create(ctx, e.client, "", name, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	// The relay publishes, then marks the row sent: wait for both.
	g := dbtest.Open(t, url)
	eventually(t, 10*time.Second, "the valid request's event, its outbox row marked sent", func() bool {
		var pending int64
		if err := g.Table(outbox.Table).Count(&pending).Error; err != nil {
			t.Fatal(err)
		}
		return len(eventsFor(t, e, u.GetId())) == 1 && pending == 0
	})
	users, pending := counts(t, url)
	if users != 1 || pending != 0 || len(e.broker.messages()) != 1 {
		t.Fatalf("after %d bad inputs and 1 good: %d users, %d pending, %d published; want 1, 0, 1", n, users, pending, len(e.broker.messages()))
	}
	got, err := e.client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: email}))
	if err != nil || got.Msg.GetUser().GetName() != name {
		t.Fatalf("GetByEmail = %v, %v", got, err)
	}
	sec.checkAll(t, e)
}
