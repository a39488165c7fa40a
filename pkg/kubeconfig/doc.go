// Package kubeconfig writes kubeconfig files for regente's own clients (the
// admin file and the control-plane components' files), with the certificate
// data embedded so each file stands alone, written atomically with the mode
// the caller asks for.
package kubeconfig
