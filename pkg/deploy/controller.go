package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
)

const (
	fieldManager = "regente-deploy"
	// recordLabel marks the ConfigMaps that record what a file applied.
	recordLabel     = "regente.io/manifest-record"
	recordNamespace = metav1.NamespaceSystem
	// resync re-reads the directory even without a file event, to retry
	// what failed (a CRD not yet established, the API briefly away).
	resync = 30 * time.Second
)

// ref names one applied object.
type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// record is what one file applied, kept in a ConfigMap.
type record struct {
	file    string
	sha256  string
	objects []ref
}

// controller applies the files of one directory.
type controller struct {
	dir    string
	client kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newController(dir string, client kubernetes.Interface, dyn dynamic.Interface) *controller {
	return &controller{
		dir:    dir,
		client: client,
		dyn:    dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery())),
	}
}

// run syncs at start, on every change in the directory, and every resync.
func (c *controller) run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifests dir: %w", err)
	}
	defer watcher.Close()
	if err := watcher.Add(c.dir); err != nil {
		return fmt.Errorf("watch %s: %w", c.dir, err)
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Cannot sync the manifests dir; retrying", "dir", c.dir)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-watcher.Events:
			// Editors write in several steps: let them finish.
			settle(ctx, watcher.Events, 300*time.Millisecond)
		case err := <-watcher.Errors:
			logger.Error(err, "Watching the manifests dir", "dir", c.dir)
		}
	}
}

// settle drains events until none came for quiet.
func settle(ctx context.Context, events <-chan fsnotify.Event, quiet time.Duration) {
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			timer.Reset(quiet)
		case <-timer.C:
			return
		}
	}
}

// sync applies new and changed files and deletes what removed files and
// removed objects leave behind. A bad file is reported by name and does not
// stop the others.
func (c *controller) sync(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	files, err := manifestFiles(c.dir)
	if err != nil {
		return err
	}
	records, err := c.records(ctx)
	if err != nil {
		return err
	}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(c.dir, file))
		if err != nil {
			logger.Error(err, "Cannot read manifest", "file", file)
			continue
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		old, known := records[file]
		if known && old.sha256 == hash {
			continue
		}
		objects, err := decode(data)
		if err != nil {
			logger.Error(err, "Manifest is not valid YAML or JSON; skipped until it changes", "file", file)
			continue
		}
		applied, err := c.applyAll(ctx, objects)
		if err != nil {
			logger.Error(err, "Cannot apply manifest; retrying", "file", file)
			continue
		}
		if known {
			c.deleteAll(ctx, file, missing(old.objects, applied))
		}
		if err := c.saveRecord(ctx, record{file: file, sha256: hash, objects: applied}); err != nil {
			return err
		}
		logger.Info("Applied manifest", "file", file, "objects", len(applied))
	}
	for file, old := range records {
		if slices.Contains(files, file) {
			continue
		}
		c.deleteAll(ctx, file, old.objects)
		if err := c.client.CoreV1().ConfigMaps(recordNamespace).Delete(ctx, recordName(file), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the record of %s: %w", file, err)
		}
		logger.Info("Deleted the objects of a removed manifest", "file", file, "objects", len(old.objects))
	}
	return nil
}

// manifestFiles lists the files sync applies, in name order.
func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests dir: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		switch filepath.Ext(name) {
		case ".yaml", ".yml", ".json":
			files = append(files, name)
		}
	}
	sort.Strings(files)
	return files, nil
}

// decode splits a YAML stream or JSON document into objects; empty
// documents are skipped, a List's items are unpacked.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(raw) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: raw}
		if obj.IsList() {
			list, err := obj.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
			for j := range list.Items {
				out = append(out, &list.Items[j])
			}
			continue
		}
		if obj.GetKind() == "" || obj.GetAPIVersion() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("document %d: apiVersion, kind and metadata.name are required", i)
		}
		out = append(out, obj)
	}
}

func (c *controller) applyAll(ctx context.Context, objects []*unstructured.Unstructured) ([]ref, error) {
	applied := make([]ref, 0, len(objects))
	for _, obj := range objects {
		r, err := c.apply(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		applied = append(applied, r)
	}
	return applied, nil
}

func (c *controller) apply(ctx context.Context, obj *unstructured.Unstructured) (ref, error) {
	res, namespaced, err := c.resource(obj.GroupVersionKind())
	if err != nil {
		return ref{}, err
	}
	if namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	if !namespaced {
		obj.SetNamespace("")
	}
	r := ref{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	data, err := json.Marshal(obj)
	if err != nil {
		return r, err
	}
	force := true
	_, err = c.dyn.Resource(res).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force})
	return r, err
}

// resource maps a kind to its API resource, refreshing discovery once
// when the kind is new (a CRD applied a moment ago).
func (c *controller) resource(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, false, err
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// deleteAll deletes objects, logging what it cannot delete: they are no
// longer in any file, so nothing retries them.
func (c *controller) deleteAll(ctx context.Context, file string, objects []ref) {
	logger := klog.FromContext(ctx)
	policy := metav1.DeletePropagationBackground
	for _, o := range objects {
		gv, err := schema.ParseGroupVersion(o.APIVersion)
		if err != nil {
			continue
		}
		res, _, err := c.resource(gv.WithKind(o.Kind))
		if err == nil {
			err = c.dyn.Resource(res).Namespace(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
		}
		if err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			logger.Error(err, "Cannot delete an object a manifest no longer holds", "file", file, "kind", o.Kind, "namespace", o.Namespace, "name", o.Name)
		}
	}
}

// missing returns the refs in old that are not in current.
func missing(old, current []ref) []ref {
	var out []ref
	for _, o := range old {
		if !slices.Contains(current, o) {
			out = append(out, o)
		}
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// recordName is the ConfigMap recording file; the file's own name is kept
// in the data, since this one is lowercased and may collide.
func recordName(file string) string {
	sum := sha256.Sum256([]byte(file))
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(file), "-"), "-")
	if len(base) > 36 { // keeps the name within 63 characters, a label's limit
		base = base[:36]
	}
	return "regente-manifest-" + base + "-" + hex.EncodeToString(sum[:4])
}

func (c *controller) records(ctx context.Context) (map[string]record, error) {
	list, err := c.client.CoreV1().ConfigMaps(recordNamespace).List(ctx, metav1.ListOptions{LabelSelector: recordLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list manifest records: %w", err)
	}
	out := map[string]record{}
	for _, cm := range list.Items {
		r := record{file: cm.Data["file"], sha256: cm.Data["sha256"]}
		if err := json.Unmarshal([]byte(cm.Data["objects"]), &r.objects); err != nil || r.file == "" {
			continue
		}
		out[r.file] = r
	}
	return out, nil
}

func (c *controller) saveRecord(ctx context.Context, r record) error {
	objects, err := json.Marshal(r.objects)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: recordName(r.file), Namespace: recordNamespace, Labels: map[string]string{recordLabel: "true"}},
		Data:       map[string]string{"file": r.file, "sha256": r.sha256, "objects": string(objects)},
	}
	data, err := json.Marshal(cm)
	if err != nil {
		return err
	}
	force := true
	_, err = c.client.CoreV1().ConfigMaps(recordNamespace).Patch(ctx, cm.Name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("record what %s applied: %w", r.file, err)
	}
	return nil
}
