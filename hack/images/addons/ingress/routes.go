package ingress

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// route is one path of one host rule, resolved to where it proxies.
type route struct {
	path    string // as written; "" for a default backend
	exact   bool   // pathType Exact; Prefix and ImplementationSpecific match by path elements
	backend *url.URL
	source  string // namespace/name of the Ingress, for logs
}

// Table holds the routes of every Ingress served, by host. It is built
// whole from the informers' caches on each change and never modified
// after, so requests read it without locks.
type Table struct {
	exact    map[string][]route // by host
	wildcard map[string][]route // by the suffix after "*", e.g. ".example.com"
	anyHost  []route            // rules without a host
	fallback *route             // the oldest Ingress's defaultBackend
}

// Services finds a Service by namespace and name.
type Services func(namespace, name string) (*corev1.Service, error)

// Problem is an Ingress part that could not be served, for the log.
type Problem struct {
	Ingress string
	Err     error
}

// BuildTable resolves the Ingresses' rules into a table. Ingresses are
// taken oldest first, so where two name the same host, path and path type,
// the older one keeps it, as users of other controllers expect. Rules
// whose backend cannot be resolved are left out and reported.
func BuildTable(ingresses []*networkingv1.Ingress, services Services) (*Table, []Problem) {
	t := &Table{exact: map[string][]route{}, wildcard: map[string][]route{}}
	var problems []Problem
	for _, ing := range oldestFirst(ingresses) {
		source := ing.Namespace + "/" + ing.Name
		resolve := func(b networkingv1.IngressBackend) (*url.URL, bool) {
			u, err := resolveBackend(ing.Namespace, b, services)
			if err != nil {
				problems = append(problems, Problem{Ingress: source, Err: err})
				return nil, false
			}
			return u, true
		}
		if b := ing.Spec.DefaultBackend; b != nil && t.fallback == nil {
			if u, ok := resolve(*b); ok {
				t.fallback = &route{backend: u, source: source}
			}
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				u, ok := resolve(p.Backend)
				if !ok {
					continue
				}
				r := route{path: cmp.Or(p.Path, "/"), exact: p.PathType != nil && *p.PathType == networkingv1.PathTypeExact, backend: u, source: source}
				t.add(strings.ToLower(rule.Host), r)
			}
		}
	}
	for _, routes := range t.exact {
		sortRoutes(routes)
	}
	for _, routes := range t.wildcard {
		sortRoutes(routes)
	}
	sortRoutes(t.anyHost)
	return t, problems
}

// oldestFirst orders Ingresses by creation, then by name: the order in
// which conflicts between them are settled.
func oldestFirst(ingresses []*networkingv1.Ingress) []*networkingv1.Ingress {
	sorted := slices.Clone(ingresses)
	slices.SortFunc(sorted, func(a, b *networkingv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return sorted
}

func (t *Table) add(host string, r route) {
	same := func(o route) bool { return o.path == r.path && o.exact == r.exact }
	switch {
	case host == "":
		if !slices.ContainsFunc(t.anyHost, same) {
			t.anyHost = append(t.anyHost, r)
		}
	case strings.HasPrefix(host, "*."):
		suffix := host[1:]
		if !slices.ContainsFunc(t.wildcard[suffix], same) {
			t.wildcard[suffix] = append(t.wildcard[suffix], r)
		}
	default:
		if !slices.ContainsFunc(t.exact[host], same) {
			t.exact[host] = append(t.exact[host], r)
		}
	}
}

// sortRoutes puts the longest path first and, for the same path, Exact
// before Prefix: the first match is then the one the Ingress API says wins.
func sortRoutes(routes []route) {
	slices.SortStableFunc(routes, func(a, b route) int {
		if c := cmp.Compare(len(strings.TrimSuffix(b.path, "/")), len(strings.TrimSuffix(a.path, "/"))); c != 0 {
			return c
		}
		if a.exact != b.exact {
			if a.exact {
				return -1
			}
			return 1
		}
		return 0
	})
}

// Lookup returns the backend for a request's host (without port) and path:
// the rules of that exact host, then of a wildcard one label deep, then
// those without a host, then the default backend.
func (t *Table) Lookup(host, path string) (*url.URL, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if r, ok := match(t.exact[host], path); ok {
		return r.backend, true
	}
	if _, suffix, ok := strings.Cut(host, "."); ok {
		if r, ok := match(t.wildcard["."+suffix], path); ok {
			return r.backend, true
		}
	}
	if r, ok := match(t.anyHost, path); ok {
		return r.backend, true
	}
	if t.fallback != nil {
		return t.fallback.backend, true
	}
	return nil, false
}

func match(routes []route, path string) (route, bool) {
	for _, r := range routes {
		if r.exact && path == r.path || !r.exact && prefixMatch(r.path, path) {
			return r, true
		}
	}
	return route{}, false
}

// prefixMatch is the Ingress API's Prefix: element by element, split on
// "/", ignoring a trailing slash; "/foo" matches "/foo" and "/foo/bar" but
// not "/foobar".
func prefixMatch(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// resolveBackend turns a Service backend into the URL of its ClusterIP and
// port (or its external name, for an ExternalName Service).
func resolveBackend(namespace string, b networkingv1.IngressBackend, services Services) (*url.URL, error) {
	if b.Service == nil {
		return nil, fmt.Errorf("backend %v: only Service backends are served", b.Resource)
	}
	svc, err := services(namespace, b.Service.Name)
	if err != nil {
		return nil, fmt.Errorf("backend service %s/%s: %w", namespace, b.Service.Name, err)
	}
	port := b.Service.Port.Number
	if name := b.Service.Port.Name; name != "" {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("backend service %s/%s has no port named %q", namespace, svc.Name, name)
		}
		port = svc.Spec.Ports[i].Port
	}
	host := svc.Spec.ClusterIP
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		host = svc.Spec.ExternalName
	case host == "" || host == corev1.ClusterIPNone:
		return nil, fmt.Errorf("backend service %s/%s has no ClusterIP (headless): give it one", namespace, svc.Name)
	}
	if port == 0 {
		return nil, fmt.Errorf("backend service %s/%s: no port given", namespace, svc.Name)
	}
	return &url.URL{Scheme: "http", Host: joinHostPort(host, port)}, nil
}

func joinHostPort(host string, port int32) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
