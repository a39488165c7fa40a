//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerRootfs assembles the container image's filesystem
// (hack/container-rootfs.sh, what the Dockerfile copies onto an empty
// base) and runs in it, as its only root, what the node runs: regente
// itself and the firewall and network tools, each in namespaces of its
// own as a container would be.
func TestContainerRootfs(t *testing.T) {
	bin := requirements(t)
	repo, _ := filepath.Abs("../..")
	if filepath.Clean(bin) != filepath.Join(repo, "bin/regente") {
		t.Skipf("REGENTE_BIN=%s: the rootfs is assembled from the tree's bin/regente", bin)
	}
	script := exec.Command("hack/container-rootfs.sh")
	script.Dir = repo
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("hack/container-rootfs.sh: %v\n%s", err, out)
	}
	root := filepath.Join(repo, "bin/container-rootfs")
	dockerfile, err := os.ReadFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	expectContains(t, "Dockerfile", string(dockerfile), "FROM scratch\n", "COPY bin/container-rootfs/ /", `ENTRYPOINT ["/bin/regente"]`)

	inside := `
set -e
mount -t proc proc /proc
mount -t sysfs sys /sys
ip link set lo up
regente --version
kubectl version --client
iptables --version
iptables -t nat -N REGENTE-TEST && iptables -t nat -A REGENTE-TEST -p tcp --dport 80 -j RETURN
iptables-save -t nat | grep -q 'REGENTE-TEST -p tcp -m tcp --dport 80 -j RETURN'
iptables -m conntrack --ctstate ESTABLISHED -A INPUT -j ACCEPT
nft list tables
conntrack --version
test -s /etc/ssl/certs/ca-certificates.crt
test "$(readlink /var/run)" = ../run
echo rootfs-ok
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--net", "--uts",
		"chroot", root, "/bin/sh", "-c", inside)
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"} // as the Dockerfile's ENV
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rootfs-ok") {
		t.Fatalf("in the container rootfs: %v\n%s", err, out)
	}
	expectContains(t, "output", string(out), "kubernetes v1.37", "Client Version: v1.37", "iptables v", "conntrack v")
	t.Log(tail(string(out)))
}
