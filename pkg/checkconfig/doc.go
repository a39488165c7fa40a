// Package checkconfig owns `regente check-config`: it inspects a host for
// what regente needs (kernel version and modules, cgroups, overlayfs, host
// tools, swap, AppArmor and SELinux, IP forwarding, free ports, disk) and
// reports each finding with the command that fixes it, plus whether regente
// can run at all.
//
// It only reads: it loads no module, writes no sysctl and keeps no port
// open, so it is safe to run on a node that is already in service. Every
// file it reads is under Options.Root, so tests can hand it a fake /proc and
// /sys. It must not decide how regente configures its components; the
// lists of host tools come from the packages that run them.
package checkconfig
