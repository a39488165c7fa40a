// Package ingress is regente's ingress controller, the program of the
// ingress system image: it serves the Ingresses (networking.k8s.io/v1) of
// its IngressClass on one HTTP and one HTTPS port, proxying each request to
// the ClusterIP of the Service its rule names (kube-proxy then picks the
// pod), with TLS certificates from the Ingresses' Secrets, and publishes
// its own LoadBalancer Service's address in their status.
//
// It owns the translation from Ingress rules to routes (the matching rules
// of the Ingress API: exact and wildcard hosts, Exact and Prefix paths,
// longest match first, the default backend) and the proxying. It does not
// implement any controller's annotations or custom resources, and it reads
// the API only: it writes nothing but the Ingresses' status.
package ingress
