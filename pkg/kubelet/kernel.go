package kubelet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
)

// KernelTunable is one kernel setting the kubelet sets at start, or with
// protect-kernel-defaults requires.
type KernelTunable struct {
	Name  string // as below /proc/sys, e.g. "vm/overcommit_memory"
	Value int
}

// Key is the tunable as sysctl(8) names it, e.g. "vm.overcommit_memory".
func (t KernelTunable) Key() string { return strings.ReplaceAll(t.Name, "/", ".") }

// KernelDefaults are the tunables the kubelet manages, with upstream's
// names and values (k8s.io/component-helpers/node/util/sysctl).
func KernelDefaults() []KernelTunable {
	return []KernelTunable{
		{utilsysctl.VMOvercommitMemory, utilsysctl.VMOvercommitMemoryAlways},
		{utilsysctl.VMPanicOnOOM, utilsysctl.VMPanicOnOOMInvokeOOMKiller},
		{utilsysctl.KernelPanic, utilsysctl.KernelPanicRebootTimeout},
		{utilsysctl.KernelPanicOnOops, utilsysctl.KernelPanicOnOopsAlways},
		{utilsysctl.RootMaxKeys, utilsysctl.RootMaxKeysSetting},
		{utilsysctl.RootMaxBytes, utilsysctl.RootMaxBytesSetting},
	}
}

// SysctlFile is where CheckKernelDefaults's fix puts the tunables.
const SysctlFile = "/etc/sysctl.d/90-regente-kubelet.conf"

// CheckKernelDefaults reads the tunables below procSys ("/proc/sys" on a
// host) and returns an error naming each one that differs from
// KernelDefaults, with the commands that set them for good. The kubelet
// makes the same check with protect-kernel-defaults, but it fails after
// regente has started everything else, with one line per tunable in its
// log and no fix.
func CheckKernelDefaults(procSys string) error {
	var wrong, want []string
	for _, t := range KernelDefaults() {
		want = append(want, fmt.Sprintf("%s=%d", t.Key(), t.Value))
		data, err := os.ReadFile(filepath.Join(procSys, t.Name))
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("%s cannot be read (%v)", t.Key(), err))
			continue
		}
		got := strings.TrimSpace(string(data))
		if v, err := strconv.Atoi(got); err != nil || v != t.Value {
			wrong = append(wrong, fmt.Sprintf("%s is %s, the kubelet needs %d", t.Key(), got, t.Value))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	return fmt.Errorf("--protect-kernel-defaults (set by --profile cis too) forbids the kubelet to set kernel tunables, and %s: set them with printf '%s\\n' > %s && sysctl --system",
		strings.Join(wrong, "; "), strings.Join(want, `\n`), SysctlFile)
}
