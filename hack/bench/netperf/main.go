// Command netperf is the bench's network probe, run in pods: a server, a
// TCP round-trip measurement and a TCP throughput measurement.
//
//	netperf serve :5201           echo server (round trips) and sink (throughput)
//	netperf rtt <addr> <count>    prints "rtt p50=<µs> p99=<µs>"
//	netperf tput <addr> <seconds> prints "tput <Mbit/s>"
//	netperf http <addr>           HTTP server answering every request "ok"
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netperf:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: netperf serve <addr> | rtt <addr> <count> | tput <addr> <seconds> | http <addr>")
	}
	switch args[0] {
	case "serve":
		return serve(args[1])
	case "http":
		srv := &http.Server{Addr: args[1], ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		})}
		return srv.ListenAndServe()
	case "rtt", "tput":
		if len(args) != 3 {
			return fmt.Errorf("%s needs an address and a number", args[0])
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n <= 0 {
			return fmt.Errorf("%s: %q is not a positive number", args[0], args[2])
		}
		if args[0] == "rtt" {
			return rtt(args[1], n)
		}
		return tput(args[1], time.Duration(n)*time.Second)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// serve answers each connection by its first byte: 'e' echoes every
// following byte back, 's' discards everything.
func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			mode := make([]byte, 1)
			if _, err := io.ReadFull(conn, mode); err != nil {
				return
			}
			if mode[0] == 'e' {
				_, _ = io.Copy(conn, conn)
				return
			}
			_, _ = io.Copy(io.Discard, conn)
		}()
	}
}

func rtt(addr string, count int) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	if _, err := conn.Write([]byte{'e'}); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	samples := make([]time.Duration, 0, count)
	buf := []byte{'x'}
	for range count + 10 { // the first ten warm up
		begin := time.Now()
		if _, err := conn.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		samples = append(samples, time.Since(begin))
	}
	samples = samples[10:]
	slices.Sort(samples)
	fmt.Printf("rtt p50=%d p99=%d\n", samples[len(samples)/2].Microseconds(), samples[len(samples)*99/100].Microseconds())
	return nil
}

func tput(addr string, d time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{'s'}); err != nil {
		return err
	}
	buf := make([]byte, 128<<10)
	var sent int64
	begin := time.Now()
	for time.Since(begin) < d {
		n, err := conn.Write(buf)
		sent += int64(n)
		if err != nil {
			return err
		}
	}
	fmt.Printf("tput %.0f\n", float64(sent)*8/time.Since(begin).Seconds()/1e6)
	return nil
}
