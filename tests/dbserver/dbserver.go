// Package dbserver runs throwaway PostgreSQL and MariaDB servers from
// Debian's packages (hack/deps.sh installs them) for the shared-datastore
// tests and the datastore benchmark: each in a fresh directory, on one
// address, started by the caller and stopped with Stop. It never touches a
// system-wide database.
package dbserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"regente.io/regente/tests/nscluster"
)

// maxConnections leaves room for several servers: each kine opens a
// connection per concurrent request, and an API server starting up lists
// every resource at once, past PostgreSQL's default of 100.
const maxConnections = "1000"

// Server is a running database server.
type Server struct {
	cmd  *exec.Cmd
	top  string
	stop syscall.Signal // the signal that shuts it down fast
	log  *nscluster.Buffer
	done chan struct{}
}

// Stop shuts the server down and removes its files.
func (s *Server) Stop() {
	s.cmd.Process.Signal(s.stop)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.top)
}

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Postgres starts PostgreSQL on host:port with trust authentication for
// the host's /24, user postgres.
func Postgres(host string, port int) (*Server, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return nil, errors.New("PostgreSQL not found: install Debian's postgresql package (hack/deps.sh does)")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	// Not under a test's temp dir: its parent is root's alone, and
	// PostgreSQL runs as its own user.
	top, err := scratch("regente-pg-", "postgres")
	if err != nil {
		return nil, err
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("user postgres: %v (Debian's postgresql package creates it)", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGKILL}
		cmd.Dir = top
		return cmd
	}
	dir := filepath.Join(top, "data")
	if out, err := asPostgres("initdb", "-D", dir, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	hba, err := os.OpenFile(filepath.Join(dir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(hba, "host all all %s.0/24 trust\n", host[:strings.LastIndex(host, ".")])
	hba.Close()
	s, err := start(asPostgres("postgres", "-D", dir, "-h", host, "-p", strconv.Itoa(port), "-k", dir, "-c", "max_connections="+maxConnections), top, syscall.SIGINT)
	if err != nil {
		return nil, err
	}
	return s, s.listening(host, port)
}

// MariaDB starts MariaDB on host:port with a database "regente" that the
// user regente, with password, may use from anywhere.
func MariaDB(host string, port int, password string) (*Server, error) {
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
		return nil, errors.New("MariaDB not found: install Debian's mariadb-server package (hack/deps.sh does)")
	}
	top, err := scratch("regente-mariadb-", "mysql")
	if err != nil {
		return nil, err
	}
	dir, socket := filepath.Join(top, "data"), filepath.Join(top, "mysqld.sock")
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+dir,
		"--auth-root-authentication-method=socket", "--skip-test-db").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v: %s", err, out)
	}
	cmd := exec.Command("/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", "--datadir="+dir, "--socket="+socket,
		"--bind-address="+host, "--port="+strconv.Itoa(port), "--pid-file="+filepath.Join(top, "mysqld.pid"), "--skip-log-bin", "--max-connections="+maxConnections)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s, err := start(cmd, top, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	setup := fmt.Sprintf("CREATE DATABASE regente; CREATE USER 'regente'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON regente.* TO 'regente'@'%%';", password)
	var out []byte
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if out, err = exec.Command("mariadb", "--no-defaults", "--socket="+socket, "-u", "root", "-e", setup).CombinedOutput(); err == nil {
			return s, s.listening(host, port)
		}
	}
	s.Stop()
	return nil, fmt.Errorf("create the regente database: %v: %s\n%s", err, out, s.Log())
}

// scratch makes a directory the database's own user owns.
func scratch(prefix, owner string) (string, error) {
	top, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("chown", "-R", owner+":"+owner, top).CombinedOutput(); err != nil {
		os.RemoveAll(top)
		return "", fmt.Errorf("chown: %v: %s", err, out)
	}
	return top, nil
}

func start(cmd *exec.Cmd, top string, stop syscall.Signal) (*Server, error) {
	s := &Server{cmd: cmd, top: top, stop: stop, log: &nscluster.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(top)
		return nil, err
	}
	go func() { cmd.Wait(); close(s.done) }()
	return s, nil
}

// listening waits until the server accepts connections.
func (s *Server) listening(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c.Close()
		}
	}
	s.Stop()
	return fmt.Errorf("database not listening on %s after a minute:\n%s", addr, s.Log())
}
