package mailbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Errors.
var (
	// ErrNotFound: no mail has the ID.
	ErrNotFound = errors.New("mailbox: mail not found")
	// ErrBadID: the string is not a mail ID.
	ErrBadID = errors.New("mailbox: invalid mail id")
	// ErrTooLarge: a mail is larger than the limit.
	ErrTooLarge = errors.New("mailbox: mail too large")
)

// Maildir's three directories.
const (
	dirTmp = "tmp"
	dirNew = "new"
	dirCur = "cur"
)

// Init creates the Maildir directories under dir when missing.
func Init(dir string) error {
	for _, d := range []string{dirTmp, dirNew, dirCur} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("mailbox: %w", err)
		}
	}
	return nil
}

// Deliver writes the mail read from r into the Maildir dir and returns its
// ID. It writes to tmp/, syncs, and renames into new/, so readers never see
// a partial mail. With limit > 0, a mail longer than limit bytes is not
// kept and the error wraps [ErrTooLarge]; an error from r is returned as is
// (wrapped), and nothing is kept either.
func Deliver(dir string, r io.Reader, limit int64) (id string, err error) {
	if err := Init(dir); err != nil {
		return "", err
	}
	id, err = newID(time.Now())
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, dirTmp, id)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	src := r
	if limit > 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return "", fmt.Errorf("mailbox: write: %w", err)
	}
	if limit > 0 && n > limit {
		return "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("mailbox: sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("mailbox: close: %w", err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, dirNew, id)); err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	syncDir(filepath.Join(dir, dirNew))
	return id, nil
}

// syncDir makes the rename durable where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// newID makes "<unix nanoseconds>.<random hex>.<host>".
func newID(t time.Time) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, host)
	if host == "" {
		host = "localhost"
	}
	if len(host) > 64 {
		host = host[:64]
	}
	return fmt.Sprintf("%019d.%s.%s", t.UnixNano(), hex.EncodeToString(b[:]), host), nil
}

// ValidateID returns nil when id can be a mail ID: 1 to 255 bytes of ASCII
// letters, digits, '.', '-' and '_', not starting with '.', so that it never
// names a path outside the mailbox.
func ValidateID(id string) error {
	if id == "" || len(id) > 255 || id[0] == '.' {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("%w: %q has %q at byte %d", ErrBadID, id, c, i)
		}
	}
	return nil
}

// idTime returns the delivery time an ID of [newID] carries.
func idTime(id string) (time.Time, bool) {
	ns, _, ok := strings.Cut(id, ".")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
