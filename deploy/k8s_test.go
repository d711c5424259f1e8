package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// k8sObject is the part of a Kubernetes manifest these checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		// Deployment
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service (selector is a plain map there)
		Ports []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// ScaledObject
		ScaleTargetRef struct {
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Triggers []struct {
			Type       string            `yaml:"type"`
			MetricType string            `yaml:"metricType"`
			Metadata   map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
	raw map[string]any
}

type podSpec struct {
	Containers []struct {
		Name string   `yaml:"name"`
		Args []string `yaml:"args"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
	SecurityContext struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
		RunAsGroup   *int64 `yaml:"runAsGroup"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadK8s reads every manifest the kustomization lists.
func loadK8s(t *testing.T) map[string]*k8sObject {
	t.Helper()
	dir := filepath.Join("k8s")
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &kust); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(kust.Resources, b) {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}
	objs := map[string]*k8sObject{}
	for _, res := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(dir, res))
		if err != nil {
			t.Fatalf("kustomization resource: %v", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			o := &k8sObject{}
			if err := node.Decode(o); err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if err := node.Decode(&o.raw); err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: an object without kind, apiVersion or name", res)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if objs[key] != nil {
				t.Fatalf("%s: %s defined twice", res, key)
			}
			objs[key] = o
		}
	}
	return objs
}

// emptySource is a metrics.TenantSource with no tenants.
type emptySource struct{}

func (emptySource) Tenants(context.Context) ([]dispatcher.TenantStatus, error) { return nil, nil }

func TestKubernetesManifests(t *testing.T) {
	objs := loadK8s(t)
	need := func(key string) *k8sObject {
		t.Helper()
		o := objs[key]
		if o == nil {
			t.Fatalf("no %s in deploy/k8s", key)
		}
		return o
	}
	api := need("Deployment/orgdispatch-api")
	worker := need("Deployment/orgdispatch-worker")
	svc := need("Service/orgdispatch-api")
	cm := need("ConfigMap/orgdispatch-tenants")
	secret := need("Secret/orgdispatch-client-secrets")
	need("Secret/orgdispatch-api-token")
	so := need("ScaledObject/orgdispatch-worker")

	for key, o := range objs {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s names namespace %q: the manifests must be namespace-agnostic", key, o.Metadata.Namespace)
		}
	}

	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[k] = true
	}
	for _, d := range []*k8sObject{api, worker} {
		name := d.Metadata.Name
		spec := d.Spec.Template.Spec
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match the pod labels", name, k, v)
			}
		}
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
		}
		c := spec.Containers[0]
		// The image's USER is the name "nonroot" (the compose test pins it):
		// with runAsNonRoot alone the kubelet cannot verify a non-numeric
		// user and refuses to start the container
		// (CreateContainerConfigError), so the pod must name the uid.
		if sc := spec.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", name)
		} else if sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.RunAsGroup == nil || *sc.RunAsGroup == 0 {
			t.Errorf("%s: runAsNonRoot without a numeric non-zero runAsUser and runAsGroup: the image's user is the name nonroot, which the kubelet cannot verify, so the pod never starts", name)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
			if strings.HasPrefix(e.Name, config.EnvPrefix+"_") && !known[e.Name] {
				t.Errorf("%s: %s is not a variable orgdispatch reads", name, e.Name)
			}
		}
		_, port, err := net.SplitHostPort(env["ORGDISPATCH_HTTP_ADDR"])
		if err != nil {
			t.Errorf("%s: ORGDISPATCH_HTTP_ADDR %q: %v (the worker serves metrics and probes only when it is set)", name, env["ORGDISPATCH_HTTP_ADDR"], err)
		}
		portNames := map[string]string{}
		for _, p := range c.Ports {
			portNames[p.Name] = fmt.Sprint(p.ContainerPort)
		}
		for what, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("%s: no %s probe", name, what)
				continue
			}
			if portNames[p.HTTPGet.Port] != port {
				t.Errorf("%s: %s probe port %q is not the HTTP port %s", name, what, p.HTTPGet.Port, port)
			}
			if p.HTTPGet.Path != "/readyz" && p.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: %s probe path %q", name, what, p.HTTPGet.Path)
			}
		}
		if a := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != port {
			t.Errorf("%s: prometheus.io/port %q, want the HTTP port %s", name, a, port)
		}

		// The tenants file as the pod sees it: the ConfigMap's file, with
		// client_secret_file paths resolved in the mounted Secret.
		mounts := map[string]string{} // mount path → "configmap:<name>" / "secret:<name>"
		for _, m := range c.VolumeMounts {
			if m.SubPath != "" {
				t.Errorf("%s: volume %s mounted with subPath: updates would never reach the pod", name, m.Name)
			}
			for _, v := range spec.Volumes {
				switch {
				case v.Name == m.Name && v.ConfigMap != nil:
					mounts[m.MountPath] = "ConfigMap/" + v.ConfigMap.Name
				case v.Name == m.Name && v.Secret != nil:
					mounts[m.MountPath] = "Secret/" + v.Secret.SecretName
				}
			}
		}
		readMounted := func(p string) ([]byte, error) {
			src, ok := mounts[path.Dir(p)]
			if !ok || objs[src] == nil {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			}
			o := objs[src]
			if v, ok := o.Data[path.Base(p)]; ok {
				return []byte(v), nil
			}
			if v, ok := o.StringData[path.Base(p)]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		tf := env["ORGDISPATCH_TENANTS_FILE"]
		if mounts[path.Dir(tf)] != "ConfigMap/"+cm.Metadata.Name {
			t.Errorf("%s: ORGDISPATCH_TENANTS_FILE %q is not in the mounted ConfigMap %s", name, tf, cm.Metadata.Name)
		}
		doc, err := readMounted(tf)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		f, err := tenants.Parse(doc, func(string) (string, bool) { return "", false }, readMounted)
		if err != nil {
			t.Errorf("%s: the tenants file does not load in the pod: %v", name, err)
			continue
		}
		for _, tn := range f.Tenants {
			if tn.ClientSecret.IsZero() {
				t.Errorf("%s: tenant %s has no secret", name, tn.ID)
			}
		}
		if len(f.Tenants) != len(secret.StringData) {
			t.Errorf("%d tenants but %d client secrets", len(f.Tenants), len(secret.StringData))
		}
	}
	if args := api.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"api"}) {
		t.Errorf("api args %q", args)
	}
	if args := worker.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"worker"}) {
		t.Errorf("worker args %q", args)
	}

	// The Service reaches the api pods.
	sel, _ := svc.raw["spec"].(map[string]any)["selector"].(map[string]any)
	if len(sel) == 0 {
		t.Error("Service orgdispatch-api has no selector")
	}
	for k, v := range sel {
		if api.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%v does not match the api pods", k, v)
		}
	}

	// KEDA scales the worker Deployment on a metric the api really exports.
	if so.Spec.ScaleTargetRef.Name != worker.Metadata.Name {
		t.Errorf("ScaledObject targets %q, want %s", so.Spec.ScaleTargetRef.Name, worker.Metadata.Name)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewTenantCollector(emptySource{}))
	metrics.New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range families {
		exported[mf.GetName()] = true
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "prometheus" {
		t.Fatalf("ScaledObject triggers %+v, want one prometheus trigger", so.Spec.Triggers)
	}
	query := so.Spec.Triggers[0].Metadata["query"]
	names := regexp.MustCompile(`orgdispatch_[a-z_]+`).FindAllString(query, -1)
	if !slices.Contains(names, "orgdispatch_replicas_wanted") {
		t.Errorf("KEDA query %q does not use orgdispatch_replicas_wanted", query)
	}
	// The query is a replica count: KEDA takes it as is with AverageValue
	// (its default) and a threshold of 1.
	if mt := so.Spec.Triggers[0].MetricType; mt != "" && mt != "AverageValue" {
		t.Errorf("KEDA trigger metricType %q, want AverageValue: the query is a replica count", mt)
	}
	if th := so.Spec.Triggers[0].Metadata["threshold"]; th != "1" {
		t.Errorf("KEDA threshold %q, want 1: the query is a replica count", th)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("KEDA query %q uses %s, which orgdispatch does not export", query, n)
		}
	}
}

// TestKubernetesPlaceholderTokenRefused: the API token Secret, applied
// unchanged, does not give a working token — the API refuses to start with
// it.
func TestKubernetesPlaceholderTokenRefused(t *testing.T) {
	objs := loadK8s(t)
	o := objs["Secret/orgdispatch-api-token"]
	if o == nil {
		t.Fatal("no Secret/orgdispatch-api-token in deploy/k8s")
	}
	token, ok := o.StringData["token"]
	if !ok {
		t.Fatal("Secret/orgdispatch-api-token has no token")
	}
	_, err := api.NewTokens(api.Token{Name: api.LegacyTokenName, Secret: token, Tenants: []string{api.AllTenants}, Rights: api.AllRights})
	if !errors.Is(err, api.ErrPlaceholderToken) {
		t.Errorf("the example's API token %v is accepted: want it refused as a placeholder", err)
	}
}
