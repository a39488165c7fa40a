package helmchart

import (
	"reflect"
	"strings"
	"testing"
	"time"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValueLayersOverrideInOrder(t *testing.T) {
	chart := valueLayer{what: "spec.valuesContent", content: "a: 1\nnested: {x: chart, z: chart}\n",
		values: &apiextv1.JSON{Raw: []byte(`{"b": "values"}`)}, secrets: []helmv1.SecretSpec{{Name: "s", Keys: []string{"v.yaml"}}}}
	config := valueLayer{what: "HelmChartConfig spec.valuesContent", content: "nested: {z: config}\n"}
	vals, err := chart.merge(map[string]any{}, map[string]map[string][]byte{"s": {"v.yaml": []byte("a: 2\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if vals, err = config.merge(vals, nil); err != nil {
		t.Fatal(err)
	}
	if err := applySet(vals, map[string]intstr.IntOrString{"n": intstr.FromInt32(3), "s": intstr.FromString("010"), "t": intstr.FromString("true")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": float64(2), "b": "values", "nested": map[string]any{"x": "chart", "z": "config"}, "n": int64(3), "s": "010", "t": true}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("values = %#v\nwant %#v", vals, want)
	}
}

func TestValueLayerErrorsNameTheInput(t *testing.T) {
	for _, tc := range []struct {
		layer   valueLayer
		secrets map[string]map[string][]byte
		want    string
	}{
		{valueLayer{what: "spec.valuesContent", content: "a: [unclosed"}, nil, "spec.valuesContent is not valid YAML"},
		{valueLayer{what: "spec.valuesContent", values: &apiextv1.JSON{Raw: []byte(`[1]`)}}, nil, "spec.values: values must be a map"},
		{valueLayer{what: "spec.valuesContent", secrets: []helmv1.SecretSpec{{Name: "s", Keys: []string{"k"}}}}, map[string]map[string][]byte{"s": {}}, `values Secret s has no key "k"`},
	} {
		_, err := tc.layer.merge(map[string]any{}, tc.secrets)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("merge error %v, want %q", err, tc.want)
		}
	}
}

func TestStaticFileStaysInDir(t *testing.T) {
	if got, err := staticFile("/d/static", "charts/x.tgz"); err != nil || got != "/d/static/charts/x.tgz" {
		t.Errorf("staticFile = %q, %v", got, err)
	}
	for _, bad := range []string{"../tls/server.key", "charts/../../x", ""} {
		if got, err := staticFile("/d/static", bad); err == nil {
			t.Errorf("staticFile(%q) = %q, want an error", bad, got)
		}
	}
}

func TestOptionsConfigOverrides(t *testing.T) {
	force := true
	chart := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Timeout: &metav1.Duration{Duration: time.Minute}, ServerSide: helmv1.ServerSideFalse}}
	if o := optionsOf(chart, nil); o.failurePolicy != helmv1.FailurePolicyReinstall || o.timeout != time.Minute || o.serverSide != helmv1.ServerSideFalse {
		t.Errorf("defaults: %+v", o)
	}
	config := &helmv1.HelmChartConfig{Spec: helmv1.HelmChartConfigSpec{FailurePolicy: helmv1.FailurePolicyAbort, ServerSide: helmv1.ServerSideTrue, ForceConflicts: &force}}
	if o := optionsOf(chart, config); o.failurePolicy != helmv1.FailurePolicyAbort || o.serverSide != helmv1.ServerSideTrue || !o.forceConflicts {
		t.Errorf("with config: %+v", o)
	}
}

func TestFingerprintFollowsInputs(t *testing.T) {
	spec := helmv1.HelmChartSpec{Chart: "c"}
	a, _ := fingerprint(spec, nil, map[string]any{"a": 1}, "")
	b, _ := fingerprint(spec, nil, map[string]any{"a": 2}, "")
	c, _ := fingerprint(spec, nil, map[string]any{"a": 1}, "digest")
	again, _ := fingerprint(spec, nil, map[string]any{"a": 1}, "")
	if a == b || a == c || a != again || len(a) > 63 {
		t.Errorf("fingerprints: %s %s %s %s", a, b, c, again)
	}
}
