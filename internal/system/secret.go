package system

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// WithHTTPSecret returns brokerURL with a secret_file for an HTTP broker
// that has no secret: a random one kept in dataDir (0600), made on first use,
// so a one-process `herald up --broker http://` signs its deliveries without
// set-up. A URL with a secret, or HERALD_BROKER_SECRET set, is left alone.
func WithHTTPSecret(brokerURL, dataDir string) (string, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return brokerURL, nil // the opener reports it
	}
	s := strings.ToLower(u.Scheme)
	q := u.Query()
	if (s != "http" && s != "https") || q.Has("secret") || q.Has("secret_file") || os.Getenv("HERALD_BROKER_SECRET") != "" {
		return brokerURL, nil
	}
	path := filepath.Join(dataDir, "broker.secret")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("broker secret: %w", err)
		}
	}
	q.Set("secret_file", path)
	if !q.Has("spool") {
		q.Set("spool", filepath.Join(dataDir, "spool"))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
