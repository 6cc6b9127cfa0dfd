// coredns is the testbed's cluster DNS: CoreDNS with only the plugins the
// real-node tests use (kubernetes, rewrite, bind, errors, log, reload), so it
// builds from few modules. The remote cluster's pods resolve Services through
// it, as through any cluster's DNS.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
)

func init() {
	// The directives a Corefile may use, in the order CoreDNS runs them.
	dnsserver.Directives = []string{"bind", "reload", "errors", "log", "rewrite", "kubernetes"}
}

func main() {
	coremain.Run()
}
