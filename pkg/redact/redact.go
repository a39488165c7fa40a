package redact

import "strings"

// Endpoint returns a datastore endpoint fit for logs and errors: the
// password in user:password@ and the value of any password= parameter become
// "***". It over-redacts rather than risk a leak, and works on text because
// valid DSNs are not always valid URLs.
func Endpoint(endpoint string) string {
	prefix, rest := "", endpoint
	if i := strings.Index(endpoint, "://"); i >= 0 {
		prefix, rest = endpoint[:i+3], endpoint[i+3:]
	}
	// The last "@" ends the user info even if the password holds "@" or "/".
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			rest = rest[:colon+1] + "***" + rest[at:]
		}
	}
	const key = "password="
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i+len(key) <= len(rest); i++ {
		if !strings.EqualFold(rest[i:i+len(key)], key) {
			continue
		}
		end := i + len(key)
		n := strings.IndexAny(rest[end:], "& ")
		if n < 0 {
			n = len(rest) - end
		}
		b.WriteString(rest[:end] + "***")
		rest, i = rest[end+n:], -1
	}
	b.WriteString(rest)
	return b.String()
}
