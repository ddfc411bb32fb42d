package user

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the fields of a user.
const (
	MaxNameChars      = 100
	MaxEmailBytes     = 254 // RFC 5321's limit on a forward path, less the brackets
	MaxLocalPartBytes = 64
	MinPasswordChars  = 8
	MaxPasswordBytes  = 72 // bcrypt's limit: longer passwords are refused, never truncated
	MaxIDBytes        = 64
)

// fieldErrors collects what is wrong with a request, one message per field,
// each starting with the field's name.
type fieldErrors []string

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, field+": "+fmt.Sprintf(format, args...))
}

func (f fieldErrors) String() string { return strings.Join(f, "; ") }

// quote shows a user's input in an error message: quoted, escaped, and cut
// to a readable length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// validID reports whether id is 1 to [MaxIDBytes] ASCII letters, digits,
// '-' or '_' (a UUID qualifies).
func validID(id string) bool {
	if id == "" || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func checkID(errs *fieldErrors, id string) {
	if !validID(id) {
		errs.add("id", "%s is not valid: want 1 to %d ASCII letters, digits, '-' or '_' (a UUID fits)", quote(id), MaxIDBytes)
	}
}

// normaliseName trims raw and checks it is 1 to [MaxNameChars] characters
// of valid UTF-8 without control characters.
func normaliseName(errs *fieldErrors, raw string) string {
	name := strings.TrimSpace(raw)
	if !utf8.ValidString(name) {
		errs.add("name", "is not valid UTF-8")
		return ""
	}
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		errs.add("name", "is required (1 to %d characters)", MaxNameChars)
		return ""
	case n > MaxNameChars:
		errs.add("name", "is %d characters, more than %d", n, MaxNameChars)
		return ""
	}
	for i, r := range name {
		if forbiddenInName(r) {
			errs.add("name", "has the control character %U at byte %d", r, i)
			return ""
		}
	}
	return name
}

// forbiddenInName reports control characters (C0, DEL, C1), line and
// paragraph separators, and the bidirectional overrides and isolates that
// can make a name display as something else.
func forbiddenInName(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// normaliseEmail checks that raw, trimmed, is a plain address
// (local@domain, no display name, no comments, no domain literal) of at most
// [MaxEmailBytes] bytes, and returns it with the domain in lower case.
//
// The local part keeps the case it was given: the address is shown and
// mailed as the user typed it. Uniqueness and look-ups ignore case in the
// whole address, local part included (see [emailKey]): RFC 5321 lets a mail
// server treat local parts case-sensitively, but in practice none does, and
// two accounts that differ only by the case of a letter are a trap.
func normaliseEmail(errs *fieldErrors, raw string) string {
	email := strings.TrimSpace(raw)
	switch {
	case email == "":
		errs.add("email", "is required")
		return ""
	case !utf8.ValidString(email):
		errs.add("email", "is not valid UTF-8")
		return ""
	case len(email) > MaxEmailBytes:
		errs.add("email", "is %d bytes, more than %d", len(email), MaxEmailBytes)
		return ""
	}
	for i, r := range email {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			errs.add("email", "has the character %U at byte %d: want a plain address like name@example.com", r, i)
			return ""
		}
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		errs.add("email", "%s is not a plain address like name@example.com", quote(email))
		return ""
	}
	at := strings.LastIndexByte(email, '@')
	local, domain := email[:at], email[at+1:]
	if len(local) > MaxLocalPartBytes {
		errs.add("email", "the part before '@' is %d bytes, more than %d", len(local), MaxLocalPartBytes)
		return ""
	}
	if !validDomain(domain) {
		errs.add("email", "the domain %s is not a host name like example.com", quote(domain))
		return ""
	}
	return local + "@" + strings.ToLower(domain)
}

// validDomain reports whether d is a host name: dot-separated labels of 1
// to 63 bytes, of letters, digits and '-' (not at either end), or non-ASCII
// letters (an internationalised name).
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !domainRune(r) {
				return false
			}
		}
	}
	return true
}

func domainRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-'
	}
	return unicode.In(r, unicode.L, unicode.Nd, unicode.Mn, unicode.Mc)
}

// emailKey is what makes an email unique: the SHA-256 of the normalised
// address in lower case, hex-encoded. A fixed-size ASCII key compares the
// same way on every database (no collation makes "É" equal "E" on one
// engine and not on another) and fits any index.
func emailKey(normalised string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(normalised)))
	return hex.EncodeToString(sum[:])
}

// checkPassword checks the password's length: at least [MinPasswordChars]
// characters and at most [MaxPasswordBytes] bytes. The message never
// contains the password.
func checkPassword(errs *fieldErrors, pw string) {
	switch n := utf8.RuneCountInString(pw); {
	case !utf8.ValidString(pw):
		errs.add("password", "is not valid UTF-8")
	case n < MinPasswordChars:
		errs.add("password", "is %d characters, fewer than %d", n, MinPasswordChars)
	case len(pw) > MaxPasswordBytes:
		errs.add("password", "is %d bytes, more than %d (bcrypt's limit; a longer password is refused, not truncated)", len(pw), MaxPasswordBytes)
	}
}

// createInput is a validated, normalised Create request.
type createInput struct {
	id, name, email, key, password string
}

func validateCreate(id, name, email, password string) (createInput, fieldErrors) {
	var errs fieldErrors
	in := createInput{id: id, password: password}
	if id != "" {
		checkID(&errs, id)
	}
	in.name = normaliseName(&errs, name)
	in.email = normaliseEmail(&errs, email)
	if in.email != "" {
		in.key = emailKey(in.email)
	}
	checkPassword(&errs, password)
	return in, errs
}
