package helmchart

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/strvals"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// values merges a chart's user values the way k3s's helm job passes them
// to helm: the HelmChart's valuesContent, values and values Secrets, then
// the HelmChartConfig's, each overriding the one before; spec.set last.
func (r *reconciler) values(ctx context.Context, chart *helmv1.HelmChart, config *helmv1.HelmChartConfig) (map[string]any, error) {
	layers := []valueLayer{{"spec.valuesContent", chart.Spec.ValuesContent, chart.Spec.Values, chart.Spec.ValuesSecrets}}
	if config != nil {
		layers = append(layers, valueLayer{"HelmChartConfig spec.valuesContent", config.Spec.ValuesContent, config.Spec.Values, config.Spec.ValuesSecrets})
	}
	vals := map[string]any{}
	for _, l := range layers {
		secrets := map[string]map[string][]byte{}
		for _, ref := range l.secrets {
			secret, err := r.client.CoreV1().Secrets(chart.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ref.IgnoreUpdates {
				continue
			}
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("values Secret %s/%s of HelmChart %s does not exist: create it, or set ignoreUpdates to make it optional", chart.Namespace, ref.Name, chart.Name)
			}
			if err != nil {
				return nil, fmt.Errorf("read values Secret %s/%s: %w", chart.Namespace, ref.Name, err)
			}
			secrets[ref.Name] = secret.Data
		}
		merged, err := l.merge(vals, secrets)
		if err != nil {
			return nil, fmt.Errorf("%w: HelmChart %s/%s: %v", errNoRetry, chart.Namespace, chart.Name, err)
		}
		vals = merged
	}
	if err := applySet(vals, chart.Spec.Set); err != nil {
		return nil, fmt.Errorf("%w: HelmChart %s/%s: %v", errNoRetry, chart.Namespace, chart.Name, err)
	}
	return vals, nil
}

// valueLayer is one resource's values: inline YAML, structured values and
// Secrets, applied in that order.
type valueLayer struct {
	what    string
	content string
	values  *apiextv1.JSON
	secrets []helmv1.SecretSpec
}

// merge returns vals with the layer applied; secrets holds the data of the
// layer's Secrets that exist.
func (l valueLayer) merge(vals map[string]any, secrets map[string]map[string][]byte) (map[string]any, error) {
	if strings.TrimSpace(l.content) != "" {
		v, err := loader.LoadValues(strings.NewReader(l.content))
		if err != nil {
			return nil, fmt.Errorf("%s is not valid YAML: %w", l.what, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	if l.values != nil && len(l.values.Raw) > 0 {
		v := map[string]any{}
		if err := json.Unmarshal(l.values.Raw, &v); err != nil {
			return nil, fmt.Errorf("%s: values must be a map: %w", strings.TrimSuffix(l.what, "Content"), err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	for _, ref := range l.secrets {
		data, ok := secrets[ref.Name]
		if !ok {
			continue
		}
		for _, key := range ref.Keys {
			content, ok := data[key]
			if !ok {
				return nil, fmt.Errorf("values Secret %s has no key %q", ref.Name, key)
			}
			v, err := loader.LoadValues(strings.NewReader(string(content)))
			if err != nil {
				return nil, fmt.Errorf("key %q of values Secret %s is not valid YAML: %w", key, ref.Name, err)
			}
			vals = loader.MergeMaps(vals, v)
		}
	}
	return vals, nil
}

// applySet applies spec.set as helm's --set does, in key order; a string
// other than true or false is set as a string (--set-string), so "010"
// stays "010".
func applySet(vals map[string]any, set map[string]intstr.IntOrString) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := set[k]
		var err error
		switch {
		case v.Type == intstr.Int:
			err = strvals.ParseInto(fmt.Sprintf("%s=%d", k, v.IntVal), vals)
		case v.StrVal == "true" || v.StrVal == "false":
			err = strvals.ParseInto(k+"="+v.StrVal, vals)
		default:
			err = strvals.ParseIntoString(k+"="+v.StrVal, vals)
		}
		if err != nil {
			return fmt.Errorf("spec.set[%q]: %w", k, err)
		}
	}
	return nil
}
