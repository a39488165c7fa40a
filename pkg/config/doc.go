// Package config owns the options of `regente server`: their flags, defaults,
// the YAML config file format, the REGENTE_* environment variables, the
// precedence between those sources (defaults < config files < environment <
// command line), derived defaults, validation, and the layout of the data
// directory.
//
// Nothing here touches the network or starts anything; the package only turns
// user input into a checked Server value.
package config
