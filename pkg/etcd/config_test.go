package etcd

import (
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs([]string{"quota-backend-bytes=4294967296", "--heartbeat-interval=250", "auto-compaction-mode=revision"})
	if err != nil {
		t.Fatal(err)
	}
	if got["quota-backend-bytes"] != float64(4294967296) || got["heartbeat-interval"] != float64(250) || got["auto-compaction-mode"] != "revision" {
		t.Errorf("ParseArgs = %#v", got)
	}
	for arg, want := range map[string]string{
		"no-equals":                   "write it as key=value",
		"listen-client-urls=http://x": "regente sets listen-client-urls itself",
		"not-an-etcd-setting=1":       "is not an etcd setting",
		"heartbeat-interval=fast":     "is not an etcd setting",
	} {
		if _, err := ParseArgs([]string{arg}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseArgs(%q) = %v, want %q", arg, err, want)
		}
	}
}

func TestNodeOfMember(t *testing.T) {
	for member, node := range map[string]string{
		NewMemberName("srv-1"): "srv-1",
		"srv-1-0a1b2c3d":       "srv-1",
		"srv":                  "",
		"srv-abc":              "",
	} {
		if got := NodeOfMember(member); got != node {
			t.Errorf("NodeOfMember(%q) = %q, want %q", member, got, node)
		}
	}
}
