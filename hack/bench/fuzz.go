package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// fuzzProgress is the fuzzer's last progress line's count of executions.
var fuzzProgress = regexp.MustCompile(`execs: (\d+) `)

// benchFuzz runs every fuzz target for fuzzTime each through
// hack/fuzz.sh, the long form of what make test runs, and reports the
// executions and the outcome of each.
func benchFuzz(fuzzTime string) ([]row, error) {
	cmd := exec.Command("hack/fuzz.sh", "all")
	cmd.Env = append(os.Environ(), "FUZZTIME="+fuzzTime)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	var rows []row
	var target, execs, result string
	finish := func() {
		if target != "" {
			rows = append(rows, row{"fuzz " + target + " for " + fuzzTime, execs + " executions: " + result, "no crash"})
		}
		target, execs, result = "", "0", "did not finish"
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== fuzz "):
			finish()
			target = strings.Fields(line)[2]
		case fuzzProgress.MatchString(line):
			execs = fuzzProgress.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "ok "):
			result = "no crash"
		case strings.Contains(line, "stopped at the deadline"):
			result = "no crash (Go's coordinator stopped it at the deadline, go.dev/issue/75804)"
		case strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL"):
			result = "FAILED (see the input written to the package's testdata/fuzz)"
		}
	}
	finish()
	if runErr != nil {
		fmt.Fprint(os.Stderr, out.String())
		return rows, fmt.Errorf("hack/fuzz.sh: %w", runErr)
	}
	return rows, nil
}
