package mailbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// List returns the mails of the Maildir dir, newest first, without their
// bodies. A mail whose header cannot be read is listed with what is known
// (ID, size, time) and Problem set. List fails when dir does not exist.
func List(dir string) ([]Mail, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	var mails []Mail
	for _, sub := range []string{dirNew, dirCur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("mailbox: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			m, ok := listOne(filepath.Join(dir, sub, e.Name()))
			if ok {
				mails = append(mails, m)
			}
		}
	}
	slices.SortFunc(mails, func(a, b Mail) int {
		if c := b.Received.Compare(a.Received); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return mails, nil
}

// listOne reads the header of the mail file at path; ok is false for a file
// that is not a mail (or is gone: another reader may move it to cur/).
func listOne(path string) (Mail, bool) {
	id, _, _ := strings.Cut(filepath.Base(path), ":")
	if ValidateID(id) != nil {
		return Mail{}, false
	}
	f, err := os.Open(path)
	if err != nil {
		return Mail{}, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Mail{}, false
	}
	m, err := parseHeader(f)
	if err != nil {
		m = Mail{Problem: err.Error()}
	}
	m.ID, m.Size, m.Received = id, st.Size(), received(id, st.ModTime())
	return m, true
}

func received(id string, mtime time.Time) time.Time {
	if t, ok := idTime(id); ok {
		return t
	}
	return mtime
}

// Get returns the mail id of the Maildir dir with its body. The error wraps
// [ErrBadID] for a string that cannot be an ID, [ErrNotFound] when no mail
// has it.
func Get(dir, id string) (Mail, error) {
	if err := ValidateID(id); err != nil {
		return Mail{}, err
	}
	path, err := find(dir, id)
	if err != nil {
		return Mail{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Mail{}, fmt.Errorf("mailbox: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Mail{}, fmt.Errorf("mailbox: %w", err)
	}
	if st.Size() > MaxMailBytes {
		return Mail{}, fmt.Errorf("%w: mail %s is %d bytes, more than %d", ErrTooLarge, id, st.Size(), MaxMailBytes)
	}
	raw := make([]byte, st.Size())
	if _, err := io.ReadFull(f, raw); err != nil {
		return Mail{}, fmt.Errorf("mailbox: read %s: %w", id, err)
	}
	m, err := Parse(raw)
	if err != nil {
		return Mail{}, fmt.Errorf("mailbox: mail %s: %w", id, err)
	}
	m.ID, m.Received = id, received(id, st.ModTime())
	return m, nil
}

// find returns the path of mail id in new/ or cur/ (where its name may carry
// an info suffix, "id:2,S").
func find(dir, id string) (string, error) {
	p := filepath.Join(dir, dirNew, id)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, dirCur))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); n == id || strings.HasPrefix(n, id+":") {
			return filepath.Join(dir, dirCur, n), nil
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	return "", fmt.Errorf("%w: %s", ErrNotFound, id)
}
