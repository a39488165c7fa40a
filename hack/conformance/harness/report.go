package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
)

// skip is a row of SKIPS.md: a spec the runs skip, and why.
type skip struct{ spec, reason string }

// readSkips reads the table rows of SKIPS.md: "| <spec name> | <reason> |".
func readSkips(path string) ([]skip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []skip
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 4 || cells[0] != "" || cells[3] != "" {
			continue
		}
		spec, reason := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		spec = strings.Trim(spec, "`")
		if spec == "" || spec == "spec" || strings.HasPrefix(spec, "---") {
			continue
		}
		if reason == "" {
			return nil, fmt.Errorf("%s: %q has no reason", path, spec)
		}
		out = append(out, skip{spec, reason})
	}
	return out, nil
}

// result is one spec's outcome.
type result struct {
	name, status, message string // status: passed, failed, skipped
	seconds               float64
}

type junitSuites struct {
	Suites []struct {
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Time    float64 `xml:"time,attr"`
			Status  string  `xml:"status,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit reads ginkgo's JUnit report, leaving out the suite's own
// setup nodes and the specs the filters did not select.
func readJUnit(path string) ([]result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j junitSuites
	if err := xml.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []result
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			name := strings.TrimPrefix(c.Name, "[It] ")
			// ginkgo appends the spec's labels, e.g. " [sig-node, Conformance]".
			if i := strings.LastIndex(name, " ["); i > 0 && strings.HasSuffix(name, "]") && strings.Contains(name[i:], ", ") {
				name = name[:i]
			}
			switch {
			case strings.HasPrefix(c.Name, "[ReportBeforeSuite]"), strings.HasPrefix(c.Name, "[SynchronizedBeforeSuite]"), strings.HasPrefix(c.Name, "[SynchronizedAfterSuite]"),
				strings.HasPrefix(c.Name, "[BeforeSuite]"), strings.HasPrefix(c.Name, "[AfterSuite]"), strings.HasPrefix(c.Name, "[ReportAfterSuite]"),
				strings.HasPrefix(c.Name, "[DeferCleanup"):
				if c.Failure != nil || c.Error != nil {
					out = append(out, result{name: c.Name, status: "failed", message: message(c.Failure, c.Error)})
				}
				continue
			}
			r := result{name: name, seconds: c.Time, status: "passed"}
			switch {
			case c.Failure != nil || c.Error != nil:
				r.status, r.message = "failed", message(c.Failure, c.Error)
			case c.Skipped != nil:
				// Specs left out by the filters are listed as skipped too,
				// with no reason; those a spec skips itself at run time
				// say why, after "[SKIPPED]".
				if !strings.HasPrefix(c.Skipped.Message, "[SKIPPED]") {
					continue
				}
				r.status, r.message = "skipped", c.Skipped.Message
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func message(f, e *struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}) string {
	for _, x := range []*struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	}{f, e} {
		if x != nil {
			return strings.TrimSpace(x.Message + "\n" + x.Body)
		}
	}
	return ""
}

func countOf(rs []result, status string) int {
	n := 0
	for _, r := range rs {
		if r.status == status {
			n++
		}
	}
	return n
}

func failed(rs []result) int { return countOf(rs, "failed") }

func counts(rs []result) string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", countOf(rs, "passed"), countOf(rs, "failed"), countOf(rs, "skipped"))
}

func printFailures(rs []result) {
	for _, r := range rs {
		if r.status == "failed" {
			msg := r.message
			if len(msg) > 1500 {
				msg = msg[:1500] + "..."
			}
			fmt.Printf("FAILED: %s\n  %s\n", r.name, strings.ReplaceAll(msg, "\n", "\n  "))
		}
	}
}

func writeSummary(rs []result, skips []skip, path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Conformance results\n\n%s\n\n| result | spec | seconds |\n| --- | --- | --- |\n", counts(rs))
	sorted := append([]result(nil), rs...)
	order := map[string]int{"failed": 0, "skipped": 1, "passed": 2}
	sort.SliceStable(sorted, func(i, j int) bool { return order[sorted[i].status] < order[sorted[j].status] })
	for _, r := range sorted {
		fmt.Fprintf(&b, "| %s | %s | %.1f |\n", r.status, strings.ReplaceAll(r.name, "|", `\|`), r.seconds)
	}
	if len(skips) > 0 {
		b.WriteString("\n## Skipped on purpose (SKIPS.md)\n\n")
		for _, s := range skips {
			fmt.Fprintf(&b, "- %s: %s\n", s.spec, s.reason)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
