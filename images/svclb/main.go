// Command svclb is the pod program of regente's service load balancer: one
// container per Service port, reached on the node's address through a
// hostPort, relays every connection (TCP) or datagram flow (UDP) to the
// Service's ClusterIP. It needs no privileges and no iptables.
//
// Environment: SRC_PORT (the container port), DEST_PROTO (TCP or UDP),
// DEST_IP (the ClusterIP), DEST_PORT (the Service port).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	src, proto, dest := os.Getenv("SRC_PORT"), strings.ToUpper(os.Getenv("DEST_PROTO")), net.JoinHostPort(os.Getenv("DEST_IP"), os.Getenv("DEST_PORT"))
	var err error
	switch proto {
	case "TCP", "":
		err = relayTCP(":"+src, dest)
	case "UDP":
		err = relayUDP(":"+src, dest)
	default:
		err = fmt.Errorf("DEST_PROTO %q: want TCP or UDP", proto)
	}
	fmt.Fprintln(os.Stderr, "svclb:", err)
	os.Exit(1)
}

func relayTCP(listen, dest string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "svclb: relaying tcp %s to %s\n", listen, dest)
	for {
		in, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer in.Close()
			out, err := net.DialTimeout("tcp", dest, 10*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, "svclb:", err)
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			pipe := func(w, r net.Conn) {
				_, _ = io.Copy(w, r) // either side closing ends the flow
				if tcp, ok := w.(*net.TCPConn); ok {
					_ = tcp.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
		}()
	}
}

// relayUDP keeps one upstream socket per client address, dropped after a
// minute without traffic.
func relayUDP(listen, dest string) error {
	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "svclb: relaying udp %s to %s\n", listen, dest)
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 65535)
	for {
		n, client, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		mu.Lock()
		up, ok := flows[client.String()]
		if !ok {
			up, err = net.Dial("udp", dest)
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[client.String()] = up
			go func() {
				reply := make([]byte, 65535)
				for {
					_ = up.SetReadDeadline(time.Now().Add(time.Minute)) // an idle flow ends at the next read
					m, err := up.Read(reply)
					if err != nil {
						break
					}
					_, _ = conn.WriteTo(reply[:m], client) // UDP: a lost reply is the client's to retry
				}
				mu.Lock()
				delete(flows, client.String())
				mu.Unlock()
				up.Close()
			}()
		}
		mu.Unlock()
		_, _ = up.Write(buf[:n]) // UDP: a lost datagram is the client's to retry
	}
}
