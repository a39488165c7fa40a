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
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"regente.io/regente/pkg/redact"
	"regente.io/regente/pkg/suggest"
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
	// A config file shared with agents may hold agent options.
	agentFlags := pflag.NewFlagSet("regente agent", pflag.ContinueOnError)
	NewAgent().AddFlags(agentFlags)
	notes, err := loadFlags(loadRules{verb: "server", otherRole: agentFlags, otherVerb: "agent"}, fs, &s.ConfigFile, args, lookupEnv)
	if err != nil {
		return nil, err
	}
	s.notes = notes
	return s, nil
}

// loadRules says how loadFlags treats config file keys and environment
// variables that are not the flags of the verb it loads.
type loadRules struct {
	verb string
	// only, when not nil, are the flags that config files and the
	// environment may set; every other key belongs to server or agent and
	// is skipped without a word. Day-2 verbs read only where the node's
	// state is, never a --token meant for the server.
	only []string
	// otherRole holds the flags of the other long-running verb: a key of
	// a shared config file that only it knows is skipped with a note.
	otherRole *pflag.FlagSet
	otherVerb string
	// positional lets args hold subcommands and their operands.
	positional bool
}

// reads reports whether files and the environment may set flag name.
func (r loadRules) reads(name string) bool {
	return r.only == nil || slices.Contains(r.only, name)
}

// loadFlags parses args into fs, then fills every flag not given on the command
// line from the config files and the environment; configFile is the
// --config flag's variable. It returns notes for the user about keys it
// skipped: an unknown key in a file is a note, as in k3s, while an unknown
// flag on the command line is an error.
func loadFlags(r loadRules, fs *pflag.FlagSet, configFile *string, args []string, lookupEnv func(string) (string, bool)) ([]string, error) {
	verb := r.verb
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	// Errors are returned, not printed: the caller decides how to show them.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, flagError(verb, fs, err)
	}
	if fs.NArg() > 0 && !r.positional {
		return nil, fmt.Errorf("unexpected argument %q: regente %s takes only flags (a value must follow its flag, e.g. --data-dir /x); %s",
			redact.Endpoint(fs.Arg(0)), verb, helpHint(verb))
	}

	explicit := fs.Changed("config")
	if !explicit {
		if _, v, ok := lookupEnvOf("config", lookupEnv); ok {
			*configFile, explicit = v, true
		}
	}

	merged := map[string]*setting{}
	var errs []error
	var notes []string
	note := func(s string) { notes = append(notes, s) }
	// --config "" turns config files off altogether.
	if *configFile != "" {
		files, err := dropIns(*configFile)
		if err != nil {
			return nil, err
		}
		errs = append(errs, mergeFile(r, fs, merged, *configFile, !explicit, note))
		for _, f := range files {
			errs = append(errs, mergeFile(r, fs, merged, f, false, note))
		}
	}
	mergeEnv(r, fs, merged, lookupEnv)

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
	return notes, errors.Join(errs...)
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
		} else if s := didYouMean(fs, notExist.GetSpecifiedName()); s != "" {
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
func mergeFile(r loadRules, fs *pflag.FlagSet, merged map[string]*setting, path string, optional bool, note func(string)) error {
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
		val := m[key]
		if _, isNum := val.(json.Number); isNum && strings.TrimSuffix(key, "+") == "write-kubeconfig-mode" {
			// YAML 1.1 reads an unquoted 0644 as the octal number 420;
			// the digits as typed are what the user meant.
			if raw, ok := rawScalar(data, key); ok {
				val = raw
			}
		}
		if err := mergeKey(r, fs, merged, key, val, path, note); err != nil {
			errs = append(errs, fmt.Errorf("config file %s, key %q: %w", path, key, err))
		}
	}
	return errors.Join(errs...)
}

// mergeKey folds one config file entry into merged. Its errors lack the file
// and key, which the caller adds; a key it skips is reported through note.
func mergeKey(r loadRules, fs *pflag.FlagSet, merged map[string]*setting, key string, val any, path string, note func(string)) error {
	name, appending := strings.CutSuffix(key, "+")
	if name == "config" {
		return errors.New("the config file cannot be chosen from a config file: set it with --config or REGENTE_CONFIG")
	}
	if !r.reads(name) {
		return nil // server's or agent's, not this verb's
	}
	f := fs.Lookup(name)
	switch {
	case f == nil && r.otherRole != nil && r.otherRole.Lookup(name) != nil:
		note(fmt.Sprintf("config file %s: key %q is an option of regente %s; regente %s ignores it", path, key, r.otherVerb, r.verb))
		return nil
	case f == nil:
		hint := ""
		if s := didYouMean(fs, name); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s+strings.TrimPrefix(key, name))
		}
		note(fmt.Sprintf("config file %s: unknown key %q ignored; %skeys are the flag names listed by \"regente %s --help\"", path, key, hint, r.verb))
		return nil
	}
	from := fmt.Sprintf("config file %s, key %q", path, key)

	if _, isList := f.Value.(pflag.SliceValue); !isList {
		if appending {
			return fmt.Errorf("a trailing \"+\" appends to list flags only, and %s takes a single value: write \"%s:\"", name, name)
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
func mergeEnv(r loadRules, fs *pflag.FlagSet, merged map[string]*setting, lookupEnv func(string) (string, bool)) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || !r.reads(f.Name) { // config is resolved before any file is read
			return
		}
		env, v, ok := lookupEnvOf(f.Name, lookupEnv)
		if !ok {
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

// envAlias is the second name a flag's variable answers to where k3s's
// name differs from its flag's (K3S_URL for --server, K3S_KUBECONFIG_MODE
// for --write-kubeconfig-mode, ...): k3s's name with our prefix, so a k3s
// user's environment file works once the prefix changes. The S3 keys
// answer to AWS's own variables, as in k3s.
func envAlias(flag string) string {
	switch flag {
	case "etcd-s3-access-key":
		return "AWS_ACCESS_KEY_ID"
	case "etcd-s3-secret-key":
		return "AWS_SECRET_ACCESS_KEY"
	case "server":
		return "REGENTE_URL"
	case "write-kubeconfig":
		return "REGENTE_KUBECONFIG_OUTPUT"
	case "write-kubeconfig-mode":
		return "REGENTE_KUBECONFIG_MODE"
	case "config":
		return "REGENTE_CONFIG_FILE"
	}
	return ""
}

// lookupEnvOf returns the variable that sets flag and its value: its own
// name first, then its k3s alias. An empty value counts as unset.
func lookupEnvOf(flag string, lookupEnv func(string) (string, bool)) (string, string, bool) {
	for _, env := range []string{envName(flag), envAlias(flag)} {
		if env == "" {
			continue
		}
		if v, ok := lookupEnv(env); ok && v != "" {
			return env, v, true
		}
	}
	return "", "", false
}

// rawScalar returns the text of a top-level scalar key as written in
// the YAML document data, before YAML 1.1 reads 0644 as a number.
func rawScalar(data []byte, key string) (string, bool) {
	var doc yamlv3.Node
	if yamlv3.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return "", false
	}
	m := doc.Content[0]
	if m.Kind != yamlv3.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yamlv3.ScalarNode {
			return m.Content[i+1].Value, true
		}
	}
	return "", false
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

// didYouMean returns the flag name closest to name: within edit distance 2, or
// else the only flag that name is a prefix of. "" if there is none.
func didYouMean(fs *pflag.FlagSet, name string) string {
	var names, prefixed []string
	fs.VisitAll(func(f *pflag.Flag) {
		names = append(names, f.Name)
		if name != "" && strings.HasPrefix(f.Name, name) {
			prefixed = append(prefixed, f.Name)
		}
	})
	best := suggest.Closest(name, names)
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	return best
}
