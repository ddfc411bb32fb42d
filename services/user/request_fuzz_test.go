package user_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/services/user"
)

// FuzzCreateRequest posts arbitrary bodies to Create through the service's
// HTTP handler (Connect's JSON and binary protocols, decoded by connect-go
// and protobuf), in process. Whatever the body, the service must not panic
// or answer 5xx, must answer an error as a Connect error with a code, and
// must never echo a hash.
func FuzzCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada","email":"ada@example.com","password":"correct horse"}`,
		`{"id":"abc","name":"Ada","email":"ADA@Example.com","password":"correct horse battery"}`,
		`{"name":1}`, `{}`, `[]`, `null`, ``, `{"name":"\u0000","email":"a@b","password":"x"}`,
		`{"name":"A","email":"a@b.c","password":"12345678","extra":true}`,
		"\x0a\x03Ada\x12\x0fada@example.com\x1a\x0dcorrect horse",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	ctx := context.Background()
	g := dbtest.Open(f, "sqlite://:memory:")
	if err := user.Migrate(ctx, g); err != nil {
		f.Fatal(err)
	}
	svc, err := user.NewService(g, user.WithBcryptCost(4), user.WithCreateRateLimit(0, 0, 0))
	if err != nil {
		f.Fatal(err)
	}
	h := svc.Handler()
	f.Fuzz(func(t *testing.T, body string, asJSON bool) {
		ct := "application/proto"
		if asJSON {
			ct = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, "/herald.user.v1.UserService/Create", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out := rec.Body.String()
		if rec.Code >= 500 {
			t.Fatalf("%s %q: HTTP %d %s", ct, body, rec.Code, out)
		}
		if strings.Contains(out, "$2a$") || strings.Contains(out, "$2b$") {
			t.Fatalf("%s %q: the answer holds a hash: %s", ct, body, out)
		}
		if rec.Code != http.StatusOK {
			var e struct{ Code, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("%s %q: HTTP %d without a Connect error: %q", ct, body, rec.Code, out)
			}
		}
	})
}
