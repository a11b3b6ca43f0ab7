// Command kstatus evaluates Kubernetes objects with the kstatus library
// (sigs.k8s.io/cli-utils/pkg/kstatus), the status logic of kpt, Config Sync, Flux and
// `kubectl`-adjacent tooling. It reads one object or a List (as `kubectl get -o json` prints
// it) on stdin and prints one JSON line per object: kind, name, status, message.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var object unstructured.Unstructured
	// apimachinery's decoder keeps integers int64, as kstatus expects of generations.
	if err := utiljson.Unmarshal(data, &object.Object); err != nil {
		fail(err)
	}
	items := []unstructured.Unstructured{object}
	if object.IsList() {
		list, err := object.ToList()
		if err != nil {
			fail(err)
		}
		items = list.Items
	}
	encoder := json.NewEncoder(os.Stdout)
	for i := range items {
		computed, err := status.Compute(&items[i])
		if err != nil {
			fail(err)
		}
		if err := encoder.Encode(result{
			Kind:    items[i].GetKind(),
			Name:    items[i].GetName(),
			Status:  computed.Status.String(),
			Message: computed.Message,
		}); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
