// Package config owns the options of `regente server`, `regente agent`, the
// --etcd-s3* options the server and `regente etcd-snapshot` share (S3), and
// the data and run dirs every day-2 verb needs (Dirs): their flags,
// defaults, the YAML config file format, the REGENTE_* environment
// variables and their k3s-named aliases, the precedence between those
// sources (defaults < config files < environment < command line), derived
// defaults and validation. Unknown config-file keys are notes, not errors;
// unknown flags are errors. The directory layout itself is pkg/datadir's.
//
// Nothing here touches the network or starts anything; the package only
// turns user input into checked Server, Agent and Dirs values.
package config
