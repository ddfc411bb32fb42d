package main

import "net/url"

// redactURL returns rawURL with any password replaced, for printing.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
