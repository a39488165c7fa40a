package agent

import (
	"fmt"
	"net"
	"os"
	"strings"

	"regente.io/regente/pkg/config"
)

// NodeIPs returns --node-ip, or else the address of the interface on the
// default route.
func NodeIPs(cfg config.Node) ([]net.IP, error) {
	var ips []net.IP
	for _, s := range cfg.NodeIPs {
		ips = append(ips, net.ParseIP(s))
	}
	if len(ips) == 0 {
		ip := defaultRouteIP()
		if ip == nil {
			return nil, fmt.Errorf("cannot find this node's IP: there is no default route; pass --node-ip")
		}
		ips = []net.IP{ip}
	}
	return ips, nil
}

// NodeName is --node-name, or the hostname in lower case (node names
// are DNS subdomains).
func NodeName(cfg config.Node) (string, error) {
	if cfg.NodeName != "" {
		return cfg.NodeName, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("read hostname for the node name (or pass --node-name): %w", err)
	}
	return strings.ToLower(h), nil
}

// defaultRouteIP finds the source address the kernel would use to reach a
// public address. Dialling UDP sends no packet.
func defaultRouteIP() net.IP {
	conn, err := net.Dial("udp4", "192.0.2.1:9") // TEST-NET-1: never contacted
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP
}
