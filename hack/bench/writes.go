package main

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
)

// benchIdleWrites measures what an idle cluster writes to disk: first a
// server with --disable-agent, then (with agent) a single node with its
// agent and default add-ons, on disk and with --datastore-in-memory. Each
// gets warmup to settle after it is ready, then its writes are counted
// over window.
func benchIdleWrites(bin string, warmup, window time.Duration, agent bool) ([]row, error) {
	rows, err := idleWritesControlPlane(bin, warmup, window)
	if err != nil || !agent {
		return rows, err
	}
	nodeRows, err := idleWritesNode(bin, warmup, window, false)
	rows = append(rows, nodeRows...)
	if err != nil {
		return rows, err
	}
	nodeRows, err = idleWritesNode(bin, warmup, window, true)
	return append(rows, nodeRows...), err
}

func idleWritesControlPlane(bin string, warmup, window time.Duration) ([]row, error) {
	return onControlPlane(bin, func(s *instance) ([]row, error) {
		return measureIdleWrites(s, "server --disable-agent", "≤ 5 MiB/hour", warmup, window)
	})
}

// idleWritesNode measures a single node; inMemory adds
// --datastore-in-memory at its default save interval, whose saves (one an
// hour at most, of the whole database) a window shorter than that does
// not see: they are added from the size of the save at stop.
func idleWritesNode(bin string, warmup, window time.Duration, inMemory bool) ([]row, error) {
	s, err := newInstance(bin)
	if err != nil {
		return nil, err
	}
	s.agent = true
	what, target := "single node with agent and add-ons", "≤ 20 MiB/hour"
	if inMemory {
		s.extra = append(s.extra, "--datastore-in-memory")
		what, target = "the same with --datastore-in-memory", "-"
	}
	defer cleanupNode(s)
	begin := time.Now()
	if _, err := s.startToNodeReady(); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.stop()
		}
	}()
	if _, err := s.addonsReady(begin); err != nil {
		return nil, err
	}
	rows, err := measureIdleWrites(s, what, target, warmup, window)
	if err != nil || !inMemory {
		return rows, err
	}
	s.stop()
	stopped = true
	saved := fileSize(datadir.New(filepath.Join(s.dir, "data"), "").Server.SQLiteFile)
	return append(rows, row{"  plus its hourly save (the whole database, as saved at stop)", rate(saved, time.Hour), "-"}), nil
}

// measureIdleWrites waits warmup, then counts for window the bytes the
// process tree of s writes to disk, the kine rows it adds to SQLite and
// the keys they are for, and the frames appended to SQLite's WAL.
func measureIdleWrites(s *instance, what, target string, warmup, window time.Duration) ([]row, error) {
	fmt.Fprintf(os.Stderr, "idle writes, %s: warm-up %s, then measuring %s\n", what, warmup, window)
	time.Sleep(warmup)
	layout := datadir.New(filepath.Join(s.dir, "data"), datadir.DefaultRunDir)
	// With --datastore-in-memory kine writes the copy on the tmpfs.
	dbFile := datastore.LiveSQLiteFile(layout.Server.SQLiteFile, layout.Run.DatastoreDir)
	db, err := sql.Open("sqlite3", "file:"+dbFile+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dbFile, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	keys := &keyCounter{db: db}
	if err := keys.start(); err != nil {
		return nil, err
	}
	wal := &walCounter{file: dbFile + "-wal"}
	wal.sample()
	before := processTree(s.cmd.Process.Pid, s.dir)
	logFile := filepath.Join(s.dir, "server.log")
	logBefore := fileSize(logFile)

	// Kine compacts away superseded rows, so the keys are read while the
	// window runs, not only at its end; the WAL is sampled often enough to
	// see each generation before SQLite restarts it from the top.
	walTick, keyTick := time.NewTicker(250*time.Millisecond), time.NewTicker(5*time.Second)
	defer walTick.Stop()
	defer keyTick.Stop()
	deadline := time.After(window)
	for measuring := true; measuring; {
		select {
		case <-walTick.C:
			wal.sample()
		case <-keyTick.C:
			if err := keys.read(); err != nil {
				return nil, err
			}
		case <-deadline:
			measuring = false
		}
	}
	after := processTree(s.cmd.Process.Pid, s.dir)
	logGrowth := fileSize(logFile) - logBefore
	wal.sample()
	if err := keys.read(); err != nil {
		return nil, err
	}

	// A process that appears in the window counts from 0; one that ends
	// in it is left out (its parent, reaping it, takes over its counts).
	byName := map[string]int64{}
	var total int64
	for id, p := range after {
		n := p.written - before[id].written
		total += n
		byName[p.name] += n
	}
	perMin := func(n int) string { return fmt.Sprintf("%.1f/min", float64(n)/window.Minutes()) }
	rows := []row{{fmt.Sprintf("idle disk writes, %s (process tree, write_bytes, %s after %s warm-up)", what, window, warmup), rate(total, window), target}}
	if len(byName) > 1 {
		names := make([]string, 0, len(byName))
		for name := range byName {
			names = append(names, name)
		}
		sort.Slice(names, func(i, j int) bool {
			if byName[names[i]] != byName[names[j]] {
				return byName[names[i]] > byName[names[j]]
			}
			return names[i] < names[j]
		})
		var idle []string
		for _, name := range names {
			if byName[name] == 0 {
				idle = append(idle, name)
				continue
			}
			rows = append(rows, row{"  of which " + name, rate(byName[name], window), "-"})
		}
		if len(idle) > 0 {
			rows = append(rows, row{"  nothing from " + strings.Join(idle, ", "), "0", "-"})
		}
	}
	// regente's stdout and stderr go to this file here; under systemd they
	// go to the journal instead, which writes them all the same.
	rows = append(rows, row{"  of which regente's log (klog, all components)", rate(logGrowth, window), "-"})
	rows = append(rows, row{"  datastore rows written (kine in SQLite)", perMin(keys.rows), "-"})
	if wal.frames > 0 {
		perRow := "-"
		if keys.rows > 0 {
			perRow = fmt.Sprintf("%.1f", float64(wal.frames)/float64(keys.rows))
		}
		where := ""
		if dbFile != layout.Server.SQLiteFile {
			where = ", on the tmpfs: none reach the disk"
		}
		rows = append(rows, row{fmt.Sprintf("  SQLite WAL frames appended (%d-byte page + 24-byte header each%s)", wal.pageSize, where),
			fmt.Sprintf("%s (%s per datastore row), %s", perMin(int(wal.frames)), perRow, rate(wal.frames*(wal.pageSize+24), window)), "-"})
	}
	if len(keys.resources) > 0 {
		rows = append(rows, row{"  datastore rows by resource", keys.byResource(window), "-"})
	}
	for _, k := range keys.top(10) {
		rows = append(rows, row{"  writes to " + k, perMin(keys.names[k]), "-"})
	}
	return rows, nil
}

// rate is bytes over d as KiB/s and MiB/hour.
func rate(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.2f KiB/s (%.1f MiB/hour)", float64(bytes)/1024/d.Seconds(), float64(bytes)/(1<<20)/d.Hours())
}

// procID tells a process from a later one that reuses its pid.
type procID struct {
	pid   int
	start string // field 22 of /proc/<pid>/stat, jiffies since boot
}

type procInfo struct {
	name    string // comm, with " (pod)" for a pod's processes
	written int64  // write_bytes of /proc/<pid>/io
}

// processTree returns regente (pid) and every process below it through
// parent links, and the processes whose command line names dir (the
// containerd shims, which leave containerd for init as they start) and
// everything below them: the pods' processes.
func processTree(pid int, dir string) map[procID]procInfo {
	type stat struct {
		id   procID
		name string
		ppid int
	}
	stats := map[int]stat{}
	children := map[int][]int{}
	roots := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		// comm is in parentheses and may hold spaces and parentheses itself.
		open, end := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		stats[n] = stat{procID{n, f[19]}, string(b[open+1 : end]), ppid}
		children[ppid] = append(children[ppid], n)
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n)); n != pid && strings.Contains(string(cmd), dir) {
			roots = append(roots, n)
		}
	}
	tree := map[procID]procInfo{}
	seen := map[int]bool{}
	for len(roots) > 0 {
		n := roots[0]
		roots = roots[1:]
		st, ok := stats[n]
		if !ok || seen[n] {
			continue
		}
		seen[n] = true
		roots = append(roots, children[n]...)
		p := procInfo{name: st.name, written: writeBytes(n)}
		if cgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", n)); strings.Contains(string(cgroup), "kubepods") {
			p.name += " (pod)"
		}
		tree[st.id] = p
	}
	return tree
}

// writeBytes is what pid has caused to be written to storage, from
// /proc/<pid>/io, or 0 when it is gone.
func writeBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// keyCounter counts the kine rows added since start, by key.
type keyCounter struct {
	db        *sql.DB
	last      int64 // highest kine id read
	rows      int
	names     map[string]int
	resources map[string]int
}

func (k *keyCounter) start() error {
	if err := k.db.QueryRow("SELECT COALESCE(MAX(id), 0) FROM kine").Scan(&k.last); err != nil {
		return fmt.Errorf("read the last kine id: %w", err)
	}
	k.names, k.resources = map[string]int{}, map[string]int{}
	return nil
}

func (k *keyCounter) read() error {
	rows, err := k.db.Query("SELECT id, name FROM kine WHERE id > ? ORDER BY id", k.last)
	if err != nil {
		return fmt.Errorf("read kine rows after id %d: %w", k.last, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("read kine rows after id %d: %w", k.last, err)
		}
		// Kine's own bookkeeping rows (compact_rev_key, gap-) are counted
		// under their names.
		k.last = max(k.last, id)
		k.rows++
		k.names[name]++
		k.resources[resourceOf(name)]++
	}
	return rows.Err()
}

// resourceOf is the resource a key is for: /registry/leases/ns/name is
// "leases", /registry/apiregistration.k8s.io/apiservices/x is
// "apiregistration.k8s.io/apiservices".
func resourceOf(key string) string {
	f := strings.Split(strings.TrimPrefix(key, "/registry/"), "/")
	if len(f) > 1 && strings.Contains(f[0], ".") {
		return f[0] + "/" + f[1]
	}
	return f[0]
}

func (k *keyCounter) top(n int) []string {
	names := make([]string, 0, len(k.names))
	for name := range k.names {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if k.names[names[i]] != k.names[names[j]] {
			return k.names[names[i]] > k.names[names[j]]
		}
		return names[i] < names[j]
	})
	return names[:min(n, len(names))]
}

func (k *keyCounter) byResource(window time.Duration) string {
	var res []string
	for r := range k.resources {
		res = append(res, r)
	}
	sort.Slice(res, func(i, j int) bool { return k.resources[res[i]] > k.resources[res[j]] })
	var parts []string
	for _, r := range res {
		parts = append(parts, fmt.Sprintf("%s %.1f", r, float64(k.resources[r])/window.Minutes()))
	}
	return strings.Join(parts, ", ") + " per min"
}

// walCounter counts the frames appended to a SQLite WAL file between its
// samples. The WAL header's salts change each time SQLite restarts the
// log from the top; the frames of the current log are those from the top
// whose salts equal the header's (stale frames further down carry older
// salts). See https://www.sqlite.org/fileformat.html#the_write_ahead_log.
type walCounter struct {
	file     string
	pageSize int64
	salts    uint64 // of the last sample
	valid    int64  // frames in the current log at the last sample
	frames   int64  // appended since the first sample
	sampled  bool
}

func (w *walCounter) sample() {
	b, err := os.ReadFile(w.file)
	if err != nil || len(b) < 32 {
		return
	}
	pageSize := int64(binary.BigEndian.Uint32(b[8:12]))
	if pageSize < 512 {
		return
	}
	salts := binary.BigEndian.Uint64(b[16:24])
	var valid int64
	for off := int64(32); off+24+pageSize <= int64(len(b)); off += 24 + pageSize {
		if binary.BigEndian.Uint64(b[off+8:off+16]) != salts {
			break
		}
		valid++
	}
	switch {
	case !w.sampled:
	case salts != w.salts:
		// A restart: what was appended to the old log after the last
		// sample is lost, which sampling every 250ms keeps small.
		w.frames += valid
	case valid > w.valid:
		w.frames += valid - w.valid
	}
	w.pageSize, w.salts, w.valid, w.sampled = pageSize, salts, valid, true
}

// fileSize is the size of path, 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
