// Command kstatus-eval reads Kubernetes objects as JSON on stdin (one object, a JSON array, a
// kind: List, or several objects one after another) and prints, for each, one line
// "<kind>/<name> <Status> <message>" where Status is what kstatus (the library Flux and
// kubectl-style waiters use) computes: Current, InProgress, Failed, Terminating, Unknown.
// It exists so that tests can check that kinfer's InferenceService status reads right to Flux
// without running Flux. Exit status: 0 on success, 2 on unreadable input.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// ints turns json.Number into int64 (or float64 when it has a fraction), as the API machinery's own
// JSON decoding does; kstatus reads generation fields as int64 and refuses float64.
func ints(v interface{}) interface{} {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case []interface{}:
		for i := range t {
			t[i] = ints(t[i])
		}
	case map[string]interface{}:
		for k := range t {
			t[k] = ints(t[k])
		}
	}
	return v
}

func flatten(v interface{}) ([]map[string]interface{}, error) {
	switch t := v.(type) {
	case []interface{}:
		var out []map[string]interface{}
		for _, e := range t {
			sub, err := flatten(e)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
		return out, nil
	case map[string]interface{}:
		if k, _ := t["kind"].(string); strings.HasSuffix(k, "List") {
			if items, ok := t["items"]; ok {
				return flatten(items)
			}
		}
		if _, ok := t["kind"].(string); !ok {
			return nil, errors.New("object without a kind")
		}
		return []map[string]interface{}{t}, nil
	default:
		return nil, fmt.Errorf("expected an object or an array, got %T", v)
	}
}

func main() {
	dec := json.NewDecoder(os.Stdin)
	dec.UseNumber()
	n := 0
	for {
		var v interface{}
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus-eval: bad JSON: %v\n", err)
			os.Exit(2)
		}
		objs, err := flatten(ints(v))
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus-eval: %v\n", err)
			os.Exit(2)
		}
		for _, o := range objs {
			u := &unstructured.Unstructured{Object: o}
			res, err := status.Compute(u)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kstatus-eval: %s/%s: %v\n", u.GetKind(), u.GetName(), err)
				os.Exit(2)
			}
			fmt.Printf("%s/%s %s %s\n", u.GetKind(), u.GetName(), res.Status, res.Message)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(os.Stderr, "kstatus-eval: no objects on stdin")
		os.Exit(2)
	}
}
