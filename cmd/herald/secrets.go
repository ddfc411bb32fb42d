package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// withPasswordFile returns rawURL, given by --urlFlag, with the password read
// from path (the file's first line), given by --fileFlag. The URL must name
// a user and carry no password of its own. Errors never show the password.
func withPasswordFile(urlFlag, rawURL, fileFlag, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", fileFlag, err)
	}
	password, _, _ := strings.Cut(string(data), "\n")
	password = strings.TrimRight(password, "\r")
	if password == "" {
		return "", fmt.Errorf("--%s %s: the first line is empty", fileFlag, path)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("--%s %s: not a URL", urlFlag, redactURL(rawURL))
	}
	if u.User == nil || u.User.Username() == "" {
		return "", fmt.Errorf("--%s needs a user name in --%s (scheme://user@host/…)", fileFlag, urlFlag)
	}
	if _, has := u.User.Password(); has {
		return "", fmt.Errorf("--%s and a password in --%s: give one", fileFlag, urlFlag)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), nil
}
