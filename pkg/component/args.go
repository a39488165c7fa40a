package component

import "strings"

// MergeArgs merges upstream command-line flags ("--key=value"): an override
// replaces every default with the same key, so a user's
// --kube-apiserver-arg=enable-admission-plugins=X replaces our default list
// instead of being appended to it the way pflag would append to a slice flag.
// Overrides with the same key are all kept, in order, so repeatable upstream
// flags can still be given several times.
func MergeArgs(defaults, overrides []string) []string {
	overridden := map[string]bool{}
	for _, o := range overrides {
		overridden[argKey(o)] = true
	}
	merged := make([]string, 0, len(defaults)+len(overrides))
	for _, d := range defaults {
		if !overridden[argKey(d)] {
			merged = append(merged, d)
		}
	}
	return append(merged, overrides...)
}

func argKey(arg string) string {
	key, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return key
}
