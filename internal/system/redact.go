package system

import "net/url"

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); !has {
		return rawURL // Redacted would also turn "mem://" into "mem:"
	}
	return u.Redacted()
}
