package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// helpHint points at the verb's flag list.
func helpHint(verb string) string {
	return fmt.Sprintf(`run "regente %s --help" for the list of flags`, verb)
}

// setting is the value a flag gets from config files or the environment,
// before it is applied to the flag.
type setting struct {
	scalar string   // for single-value flags
	list   []string // for list flags
	from   string   // where the value came from, for error messages
}

// LoadServer builds a Server from, in rising precedence: the defaults, the
// config file and its drop-ins, REGENTE_* environment variables (read through
// lookupEnv, normally os.LookupEnv; nil means none), and the command line
// args (without the program and subcommand names). A flag given on the
// command line is never touched by files or environment; for list flags the
// command line replaces their values rather than adding to them.
//
// The config file is --config, else REGENTE_CONFIG, else DefaultConfigFile,
// which alone may be missing; --config "" reads no files. Within one file a
// "key+" entry appends to "key" regardless of their order in the file. An
// environment variable set to "" counts as unset, so empty lines in systemd
// environment files do not override anything.
//
// --help yields an error wrapping pflag.ErrHelp. LoadServer does not call
// Complete or Validate.
func LoadServer(args []string, lookupEnv func(string) (string, bool)) (*Server, error) {
	s := NewServer()
	fs := pflag.NewFlagSet("regente server", pflag.ContinueOnError)
	s.AddFlags(fs)
	if err := loadFlags("server", fs, &s.ConfigFile, args, lookupEnv); err != nil {
		return nil, err
	}
	return s, nil
}

// loadFlags parses args into fs, then fills every flag not given on the command
// line from the config files and the environment; configFile is the
// --config flag's variable.
func loadFlags(verb string, fs *pflag.FlagSet, configFile *string, args []string, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	// Errors are returned, not printed: the caller decides how to show them.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return flagError(verb, fs, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: regente %s takes only flags (a value must follow its flag, e.g. --data-dir /x); %s",
			RedactEndpoint(fs.Arg(0)), verb, helpHint(verb))
	}

	explicit := fs.Changed("config")
	if !explicit {
		if v, ok := lookupEnv(envName("config")); ok && v != "" {
			*configFile, explicit = v, true
		}
	}

	merged := map[string]*setting{}
	var errs []error
	// --config "" turns config files off altogether.
	if *configFile != "" {
		files, err := dropIns(*configFile)
		if err != nil {
			return err
		}
		errs = append(errs, mergeFile(verb, fs, merged, *configFile, !explicit))
		for _, f := range files {
			errs = append(errs, mergeFile(verb, fs, merged, f, false))
		}
	}
	mergeEnv(fs, merged, lookupEnv)

	fs.VisitAll(func(f *pflag.Flag) {
		st := merged[f.Name]
		if st == nil || f.Changed {
			return
		}
		// Replace, not Set: Set on a list flag appends to the default.
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			errs = append(errs, sv.Replace(slices.Clone(st.list)))
			return
		}
		if err := f.Value.Set(st.scalar); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid value %q: --%s expects %s", st.from, st.scalar, f.Name, typeHint(f.Value.Type())))
		}
	})
	return errors.Join(errs...)
}

// flagError turns a pflag parse error into one that tells the user what to do.
func flagError(verb string, fs *pflag.FlagSet, err error) error {
	if errors.Is(err, pflag.ErrHelp) {
		return err
	}
	var notExist *pflag.NotExistError
	if errors.As(err, &notExist) {
		name := "--" + notExist.GetSpecifiedName()
		if notExist.GetSpecifiedShortnames() != "" {
			name = "-" + notExist.GetSpecifiedName()
		} else if s := suggest(fs, notExist.GetSpecifiedName()); s != "" {
			name += fmt.Sprintf(" (did you mean --%s?)", s)
		}
		return fmt.Errorf("unknown flag %s: %s", name, helpHint(verb))
	}
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		return fmt.Errorf("%w; --%s expects %s", err, invalid.GetFlag().Name, typeHint(invalid.GetFlag().Value.Type()))
	}
	return fmt.Errorf("%w; %s", err, helpHint(verb))
}

// dropIns lists <configFile>.d/*.yaml in name order; a missing directory is
// not an error.
func dropIns(configFile string) ([]string, error) {
	dir := configFile + ".d"
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listing config drop-ins: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// mergeFile folds one config file into merged. optional is true only for the
// default config file, which may be absent.
func mergeFile(verb string, fs *pflag.FlagSet, merged map[string]*setting, path string, optional bool) error {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && optional:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("config file %s does not exist: create it, or point --config or REGENTE_CONFIG at an existing file", path)
	case err != nil:
		return fmt.Errorf("reading config file: %w", err)
	}
	var doc any
	// Strict rejects duplicate keys; UseNumber keeps numbers as typed (no
	// float64 rounding, so 6443 stays "6443").
	useNumber := func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }
	if err := yaml.UnmarshalStrict(data, &doc, useNumber); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	if doc == nil { // empty, or only comments
		return nil
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("config file %s: the top level must be a mapping of flag names to values, like \"data-dir: /var/lib/regente\", not a %s", path, kindOf(doc))
	}
	var errs []error
	// Sorted keys make errors deterministic and put "x" before "x+", so that
	// within one file the append applies to the replaced value.
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if err := mergeKey(verb, fs, merged, key, m[key], path); err != nil {
			errs = append(errs, fmt.Errorf("config file %s, key %q: %w", path, key, err))
		}
	}
	return errors.Join(errs...)
}

// mergeKey folds one config file entry into merged. Its errors lack the file
// and key, which the caller adds.
func mergeKey(verb string, fs *pflag.FlagSet, merged map[string]*setting, key string, val any, path string) error {
	name, appending := strings.CutSuffix(key, "+")
	if name == "config" {
		return errors.New("the config file cannot be chosen from a config file: set it with --config or REGENTE_CONFIG")
	}
	f := fs.Lookup(name)
	if f == nil {
		hint := ""
		if s := suggest(fs, name); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s+strings.TrimPrefix(key, name))
		}
		return fmt.Errorf("unknown key; %skeys are the flag names listed by \"regente %s --help\"", hint, verb)
	}
	from := fmt.Sprintf("config file %s, key %q", path, key)

	if _, isList := f.Value.(pflag.SliceValue); !isList {
		if appending {
			return fmt.Errorf("a trailing \"+\" appends to list flags only, and %s takes a single value: write \"%s:\"", name, name)
		}
		if _, isNum := val.(json.Number); isNum && name == "write-kubeconfig-mode" {
			// YAML 1.1 reads 0600 as the octal number 384; the digits the user
			// typed are gone, so guessing would be wrong for "600".
			return errors.New(`YAML reads an unquoted mode as a number and loses its octal digits: quote it, e.g. write-kubeconfig-mode: "0600"`)
		}
		v, ok := scalar(val)
		if !ok {
			return fmt.Errorf("got a %s, but %s takes a single value: give just one", kindOf(val), name)
		}
		merged[name] = &setting{scalar: v, from: from}
		return nil
	}

	items, ok := val.([]any)
	if !ok {
		items = []any{val} // a scalar is a one-element list
		if val == nil {
			items = nil // "key:" with no value clears the list
		}
	}
	var list []string
	if cur := merged[name]; appending && cur != nil {
		list = slices.Clone(cur.list)
	}
	for i, item := range items {
		v, ok := scalar(item)
		if !ok {
			return fmt.Errorf("item %d is a %s; %s wants a list of strings", i+1, kindOf(item), name)
		}
		list = append(list, v)
	}
	merged[name] = &setting{list: list, from: from}
	return nil
}

// mergeEnv lets REGENTE_* variables override config file values.
func mergeEnv(fs *pflag.FlagSet, merged map[string]*setting, lookupEnv func(string) (string, bool)) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" { // resolved before any file is read
			return
		}
		env := envName(f.Name)
		v, ok := lookupEnv(env)
		if (!ok || v == "") && f.Name == "server" {
			// k3s users set K3S_URL to make a node join; REGENTE_URL is
			// that habit, and what install.sh documents.
			env = "REGENTE_URL"
			v, ok = lookupEnv(env)
		}
		if !ok || v == "" {
			return
		}
		st := &setting{from: "environment variable " + env}
		switch f.Value.Type() {
		case "stringArray": // *-arg values may hold commas themselves
			st.list = []string{v}
		case "stringSlice":
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					st.list = append(st.list, item)
				}
			}
		default:
			st.scalar = v
		}
		merged[f.Name] = st
	})
}

// envName is the environment variable for a flag: data-dir -> REGENTE_DATA_DIR.
func envName(flag string) string {
	return "REGENTE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// scalar renders a YAML scalar as it would be typed on the command line.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case map[string]any:
		return "mapping"
	}
	return "single value"
}

func typeHint(flagType string) string {
	switch flagType {
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	}
	return "a " + flagType
}

// suggest returns the flag name closest to name: within edit distance 2, or
// else the only flag that name is a prefix of. "" if there is none.
func suggest(fs *pflag.FlagSet, name string) string {
	var names, prefixed []string
	fs.VisitAll(func(f *pflag.Flag) {
		names = append(names, f.Name)
		if name != "" && strings.HasPrefix(f.Name, name) {
			prefixed = append(prefixed, f.Name)
		}
	})
	best := Closest(name, names)
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	return best
}

// Closest returns the known name within edit distance 2 of name, the
// nearest first, or "": the "did you mean" of a mistyped key.
func Closest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
