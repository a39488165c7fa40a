// Package faults puts a steady write load on a cluster while faults are
// injected into it (a killed server, a full disk), and counts what the
// faults cost: acknowledged writes lost, watch anomalies (a revision a
// watch skipped or delivered twice) and the time until writes were
// acknowledged again. The integration tests run its short form and the
// bench (-only faults) its long form.
//
// The writer creates and then updates ConfigMaps, each owned by one worker
// so that its acknowledged values only grow, and records the value and
// revision of every acknowledged write. A watcher follows the namespace
// from the start and resumes from its last revision whenever its watch
// ends; when the API server answers 410 Gone (its watch cache starts anew
// after a restart) it lists again, and the revisions between are covered by
// that list instead of by events. At the end every acknowledged write must
// be in the namespace with its value or a later one, and every acknowledged
// revision must have reached the watcher as an event or through a list.
//
// It must not start or kill servers itself: its callers own the processes
// and the faults.
package faults
