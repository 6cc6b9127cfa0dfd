// Package vke2e runs virtual-kubelet's importable provider e2e suite
// (github.com/virtual-kubelet/virtual-kubelet/test/e2e) against an AK node.
//
// build/vk-e2e.sh compiles it with `go test -c`; tests/cluster/test_vk_e2e.py
// starts AK between two testbed clusters and runs the binary with the local
// admin kubeconfig, the node name and a fresh namespace. The suite's only way
// for a provider to leave a test out is its ShouldSkipTest hook (a bool), so
// the reasons live here, in one list, which -list prints for the Python test
// to hold docs/vk-e2e.md to.
package vke2e

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	vke2e "github.com/virtual-kubelet/virtual-kubelet/test/e2e"
)

// notForAK: the suite's tests that cannot apply to AK, and why. Keep in step
// with docs/vk-e2e.md (tests/cluster/test_vk_e2e.py checks that it is).
var notForAK = map[string]string{
	"TestGetStatsSummary": "reads /stats/summary through the local API server's pod proxy " +
		"(pods/https:<node name>:10250/proxy in the test namespace), i.e. from a pod named like " +
		"the node, because VK's own CI runs the virtual kubelet as that pod. AK runs outside the " +
		"local cluster (a binary on a bastion host; the Helm chart's pod is named after the " +
		"release), and the API server's pod proxy connects without credentials, which AK's " +
		"kubelet API refuses (401) as a kubelet without anonymous auth does. AK serves " +
		"/stats/summary on its kubelet port: tests/cluster/test_node_proxy.py reads it through " +
		"the node proxy.",
	"TestGetMetricsResource": "reads /metrics/resource the same way as TestGetStatsSummary " +
		"(a pod proxy to a pod named like the node, anonymously); AK serves /metrics/resource " +
		"on its kubelet port, read through the node proxy by tests/cluster/test_node_proxy.py.",
}

var (
	kubeconfig   = flag.String("kubeconfig", "", "kubeconfig of the cluster the virtual kubelet is a node of (empty: in-cluster config)")
	namespace    = flag.String("namespace", "", "namespace the suite creates its pods in")
	nodeName     = flag.String("node-name", "", "name of the virtual-kubelet node under test")
	watchTimeout = flag.Duration("watch-timeout", 2*time.Minute, "how long the suite waits for each condition")
	list         = flag.Bool("list", false, "print the suite's tests, one a line with a tab and the reason it is skipped (if it is), then exit")
)

// suiteTests: the tests the suite runs, found as suite.Run finds them
// (exported methods of *EndToEndTestSuite named Test*), so the list above is
// checked against the suite actually built rather than against a copy.
func suiteTests() []string {
	var names []string
	t := reflect.TypeOf(&vke2e.EndToEndTestSuite{})
	for i := 0; i < t.NumMethod(); i++ {
		if name := t.Method(i).Name; strings.HasPrefix(name, "Test") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func TestMain(m *testing.M) {
	flag.Parse()
	if *list {
		for _, name := range suiteTests() {
			fmt.Printf("%s\t%s\n", name, notForAK[name])
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSkipListIsCurrent fails when a skipped name is no longer in the suite
// (renamed upstream): the skip would then silently stop meaning anything.
func TestSkipListIsCurrent(t *testing.T) {
	known := map[string]bool{}
	for _, name := range suiteTests() {
		known[name] = true
	}
	for name := range notForAK {
		if !known[name] {
			t.Errorf("%s is skipped for AK but is not a test of this virtual-kubelet suite", name)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	if *namespace == "" || *nodeName == "" {
		t.Fatal("-namespace and -node-name are required (the suite would panic without them)")
	}
	suite := vke2e.NewEndToEndTestSuite(vke2e.EndToEndTestSuiteConfig{
		Kubeconfig:   *kubeconfig,
		Namespace:    *namespace,
		NodeName:     *nodeName,
		WatchTimeout: *watchTimeout,
		// AK is started (and stopped) by whoever runs this binary: nothing
		// provider-specific to set up here.
		ShouldSkipTest: func(name string) bool {
			reason, skip := notForAK[name]
			if skip {
				// The suite's own skip message says only "shouldSkipTest()": the
				// reason goes to the output next to it.
				fmt.Printf("vk-e2e: %s skipped for AK: %s\n", name, reason)
			}
			return skip
		},
	})
	suite.Run(t)
}
