// Command ctlbench is the measuring client of `make bench-controller` (test/bench/controller_bench.py).
//
//	ctlbench create -kubeconfig K -n NS -count N -parallel P [-wait-ready] [-out FILE] [-objects FILE]
//	    Creates N InferenceServices bench-0000.. in parallel. With -wait-ready it watches the
//	    namespace's Deployments, Services, HPAs and InferenceServices (watches opened before the
//	    first create) and records when each child first appears and when each InferenceService's
//	    Ready condition turns True for its generation. -objects writes the created objects (with
//	    their uids) as JSON lines, for the floor's children.
//	ctlbench apply -kubeconfig K -n NS -f CHILDREN.jsonl -parallel P [-out FILE]
//	    The floor: server-side applies every object of CHILDREN.jsonl (field manager
//	    kinfer-floor, force) with P workers sharing one HTTP/2 connection, then waits until every
//	    Deployment has all its replicas ready.
//
// Both print one JSON object of timings. Rate limiting is off (QPS 1e6) so the client is never
// the bottleneck: this is the floor that kinfer-controller is compared against.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	gvrISVC = schema.GroupVersionResource{Group: "serving.kinfer.dev", Version: "v1beta1", Resource: "inferenceservices"}
	gvrDep  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrSvc  = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrHPA  = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "ctlbench: "+format+"\n", a...)
	os.Exit(1)
}

func client(kubeconfig string) dynamic.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		die("kubeconfig %s: %v", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		die("client: %v", err)
	}
	return c
}

// parallel runs fn(i) for i in [0,n) on p workers; returns the first error.
func parallel(n, p int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func pct(d []float64, p float64) float64 {
	if len(d) == 0 {
		return -1
	}
	s := append([]float64(nil), d...)
	sort.Float64s(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

// stamps records, per key, the first time something happened (seconds since t0).
type stamps struct {
	mu sync.Mutex
	t0 time.Time
	m  map[string]float64
}

func newStamps(t0 time.Time) *stamps { return &stamps{t0: t0, m: map[string]float64{}} }
func (s *stamps) mark(k string) {
	s.mu.Lock()
	if _, ok := s.m[k]; !ok {
		s.m[k] = time.Since(s.t0).Seconds()
	}
	s.mu.Unlock()
}
func (s *stamps) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.m) }
func (s *stamps) get(k string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}
func (s *stamps) max() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0.0
	for _, v := range s.m {
		if v > m {
			m = v
		}
	}
	return m
}

// watchAll runs a watch on gvr in ns until ctx ends, calling fn for every ADDED/MODIFIED object,
// restarting from the last resourceVersion when the server closes the stream.
func watchAll(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, ns string, ready chan<- struct{},
	fn func(*unstructured.Unstructured)) {
	list, err := c.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		die("list %s: %v", gvr.Resource, err)
	}
	for i := range list.Items {
		fn(&list.Items[i])
	}
	rv := list.GetResourceVersion()
	ready <- struct{}{}
	for ctx.Err() == nil {
		w, err := c.Resource(gvr).Namespace(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				rv = u.GetResourceVersion()
				if ev.Type == watch.Added || ev.Type == watch.Modified {
					fn(u)
				}
			}
		}
	}
}

func isvcReady(u *unstructured.Unstructured) bool {
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if og != u.GetGeneration() {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]interface{})
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func depReady(u *unstructured.Unstructured) bool {
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	ready, _, _ := unstructured.NestedInt64(u.Object, "status", "readyReplicas")
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return og >= u.GetGeneration() && ready >= want
}

func isvcOf(u *unstructured.Unstructured) string {
	return u.GetLabels()["serving.kinfer.dev/inferenceservice"]
}

func writeOut(path string, v interface{}) {
	b, _ := json.MarshalIndent(v, "", "  ")
	if path == "" || path == "-" {
		fmt.Println(string(b))
		return
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		die("%s: %v", path, err)
	}
}

func manifest(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "serving.kinfer.dev/v1beta1", "kind": "InferenceService",
		"metadata": map[string]interface{}{"name": name, "namespace": ns},
		"spec": map[string]interface{}{"predictor": map[string]interface{}{
			"minReplicas": int64(1), "maxReplicas": int64(2),
			"model": map[string]interface{}{
				"modelFormat": map[string]interface{}{"name": "onnx"},
				"storageUri":  "s3://bench/" + name,
				"resources": map[string]interface{}{
					"requests": map[string]interface{}{"cpu": "1m", "memory": "1Mi"},
					"limits":   map[string]interface{}{"cpu": "10m", "memory": "16Mi"},
				},
			},
		}},
	}}
}

func cmdCreate(args []string) {
	fs := flag.NewFlagSet("create", flag.ExitOnError)
	kc := fs.String("kubeconfig", "", "kubeconfig")
	ns := fs.String("n", "", "namespace")
	count := fs.Int("count", 1000, "InferenceServices to create")
	par := fs.Int("parallel", 16, "parallel creates")
	waitReady := fs.Bool("wait-ready", false, "watch children and Ready")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after")
	out := fs.String("out", "-", "timings JSON")
	objects := fs.String("objects", "", "write created objects as JSON lines")
	_ = fs.Parse(args)
	c := client(*kc)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	t0 := time.Now()
	created, deps, svcs, hpas, ready, depsReady := newStamps(t0), newStamps(t0), newStamps(t0), newStamps(t0),
		newStamps(t0), newStamps(t0)
	if *waitReady {
		started := make(chan struct{}, 4)
		go watchAll(ctx, c, gvrDep, *ns, started, func(u *unstructured.Unstructured) {
			deps.mark(isvcOf(u))
			if depReady(u) {
				depsReady.mark(isvcOf(u))
			}
		})
		go watchAll(ctx, c, gvrSvc, *ns, started, func(u *unstructured.Unstructured) { svcs.mark(isvcOf(u)) })
		go watchAll(ctx, c, gvrHPA, *ns, started, func(u *unstructured.Unstructured) { hpas.mark(isvcOf(u)) })
		go watchAll(ctx, c, gvrISVC, *ns, started, func(u *unstructured.Unstructured) {
			if isvcReady(u) {
				ready.mark(u.GetName())
			}
		})
		for i := 0; i < 4; i++ {
			<-started
		}
	}
	t0 = time.Now()
	for _, s := range []*stamps{created, deps, svcs, hpas, ready, depsReady} {
		s.t0 = t0
	}
	var mu sync.Mutex
	var objs []*unstructured.Unstructured
	err := parallel(*count, *par, func(i int) error {
		name := fmt.Sprintf("bench-%04d", i)
		o, err := c.Resource(gvrISVC).Namespace(*ns).Create(ctx, manifest(*ns, name), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		created.mark(name)
		mu.Lock()
		objs = append(objs, o)
		mu.Unlock()
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	tCreated := time.Since(t0).Seconds()
	if *objects != "" {
		f, err := os.Create(*objects)
		if err != nil {
			die("%v", err)
		}
		w := bufio.NewWriter(f)
		for _, o := range objs {
			b, _ := json.Marshal(o.Object)
			w.Write(append(b, '\n'))
		}
		w.Flush()
		f.Close()
	}
	res := map[string]interface{}{"count": *count, "parallel": *par, "created_s": tCreated}
	if *waitReady {
		for ctx.Err() == nil && (deps.count() < *count || svcs.count() < *count || hpas.count() < *count ||
			ready.count() < *count) {
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			die("timed out: %d deployments, %d services, %d hpas, %d ready of %d", deps.count(), svcs.count(),
				hpas.count(), ready.count(), *count)
		}
		var lat []float64
		for i := 0; i < *count; i++ {
			name := fmt.Sprintf("bench-%04d", i)
			a, _ := created.get(name)
			b, _ := deps.get(name)
			lat = append(lat, b-a)
		}
		res["all_children_s"] = maxf(deps.max(), svcs.max(), hpas.max())
		res["all_ready_s"] = ready.max()
		res["all_deployments_ready_s"] = depsReady.max()
		res["create_to_deployment_p50_s"] = pct(lat, 0.5)
		res["create_to_deployment_p99_s"] = pct(lat, 0.99)
	}
	writeOut(*out, res)
}

func maxf(v ...float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		if x > m {
			m = x
		}
	}
	return m
}

func cmdApply(args []string) {
	fs := flag.NewFlagSet("apply", flag.ExitOnError)
	kc := fs.String("kubeconfig", "", "kubeconfig")
	ns := fs.String("n", "", "namespace (must match the objects')")
	file := fs.String("f", "", "objects, JSON lines")
	par := fs.Int("parallel", 16, "parallel applies")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after")
	out := fs.String("out", "-", "timings JSON")
	_ = fs.Parse(args)
	c := client(*kc)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	f, err := os.Open(*file)
	if err != nil {
		die("%v", err)
	}
	var objs []*unstructured.Unstructured
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(sc.Bytes()); err != nil {
			die("%s: %v", *file, err)
		}
		objs = append(objs, u)
	}
	f.Close()
	ndeps := 0
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			ndeps++
		}
	}
	t0 := time.Now()
	depsReady := newStamps(t0)
	started := make(chan struct{}, 1)
	go watchAll(ctx, c, gvrDep, *ns, started, func(u *unstructured.Unstructured) {
		if depReady(u) {
			depsReady.mark(u.GetName())
		}
	})
	<-started
	t0 = time.Now()
	depsReady.t0 = t0
	force := true
	err = parallel(len(objs), *par, func(i int) error {
		o := objs[i]
		gvr := map[string]schema.GroupVersionResource{"Deployment": gvrDep, "Service": gvrSvc,
			"HorizontalPodAutoscaler": gvrHPA}[o.GetKind()]
		b, _ := json.Marshal(o.Object)
		_, err := c.Resource(gvr).Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.ApplyPatchType, b,
			metav1.PatchOptions{FieldManager: "kinfer-floor", Force: &force})
		if err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	tApplied := time.Since(t0).Seconds()
	for ctx.Err() == nil && depsReady.count() < ndeps {
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		die("timed out: %d of %d deployments ready", depsReady.count(), ndeps)
	}
	writeOut(*out, map[string]interface{}{"objects": len(objs), "parallel": *par, "all_applied_s": tApplied,
		"all_deployments_ready_s": depsReady.max()})
}

func main() {
	if len(os.Args) < 2 {
		die("usage: ctlbench create|apply [flags]")
	}
	switch os.Args[1] {
	case "create":
		cmdCreate(os.Args[2:])
	case "apply":
		cmdApply(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
