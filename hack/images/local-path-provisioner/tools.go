//go:build tools

// Package tools pins upstream's local-path provisioner, a package main
// that hack/payload.sh builds by its import path (see main-package).
package tools

import _ "github.com/rancher/local-path-provisioner"
