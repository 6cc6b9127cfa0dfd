// webhook is the testbed's admission and conversion webhook server: what a
// controller such as Crossplane serves to the API server, reduced to what the
// tests check. HTTPS on :8443 with /tls/tls.crt and /tls/tls.key.
//
//   - POST /validate: an AdmissionReview; refuses an object labelled
//     deny=true with the message "denied by <hostname>", allows the rest.
//   - POST /convert: a ConversionReview between <group>/v1 (spec.size) and
//     <group>/v2 (spec.replicas), recording who converted in an annotation.
//   - GET /healthz: 200, or 503 while /tmp/unready exists (a readiness probe
//     that an exec can flip).
//   - GET /: "hello from <hostname>" (plain traffic through a Service).
//
// Two more modes for east-west tests, where Go's own resolver (it reads
// resolv.conf's search list and ndots, which static busybox cannot) is the
// point: "webhook http ADDR" serves GET / over plain HTTP on ADDR, and
// "webhook get URL" prints the body of one GET (exit 1 on any error).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

var host, _ = os.Hostname()

type review struct {
	APIVersion string                 `json:"apiVersion"`
	Kind       string                 `json:"kind"`
	Request    map[string]interface{} `json:"request"`
	Response   map[string]interface{} `json:"response,omitempty"`
}

func decode(w http.ResponseWriter, r *http.Request) (*review, bool) {
	var rv review
	if err := json.NewDecoder(r.Body).Decode(&rv); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return &rv, true
}

func reply(w http.ResponseWriter, rv *review) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rv)
}

func validate(w http.ResponseWriter, r *http.Request) {
	rv, ok := decode(w, r)
	if !ok {
		return
	}
	obj, _ := rv.Request["object"].(map[string]interface{})
	meta, _ := obj["metadata"].(map[string]interface{})
	labels, _ := meta["labels"].(map[string]interface{})
	resp := map[string]interface{}{"uid": rv.Request["uid"], "allowed": true}
	if labels["deny"] == "true" {
		resp["allowed"] = false
		resp["status"] = map[string]interface{}{"code": 403, "message": "denied by " + host}
	}
	log.Printf("validate %v/%v: allowed=%v", meta["namespace"], meta["name"], resp["allowed"])
	rv.Request, rv.Response = nil, resp
	reply(w, rv)
}

func convert(w http.ResponseWriter, r *http.Request) {
	rv, ok := decode(w, r)
	if !ok {
		return
	}
	want, _ := rv.Request["desiredAPIVersion"].(string)
	objs, _ := rv.Request["objects"].([]interface{})
	out := []interface{}{}
	for _, o := range objs {
		obj, _ := o.(map[string]interface{})
		spec, _ := obj["spec"].(map[string]interface{})
		if spec == nil {
			spec = map[string]interface{}{}
		}
		if strings.HasSuffix(want, "/v2") {
			if v, ok := spec["size"]; ok {
				spec["replicas"] = v
				delete(spec, "size")
			}
		} else if v, ok := spec["replicas"]; ok {
			spec["size"] = v
			delete(spec, "replicas")
		}
		obj["spec"] = spec
		obj["apiVersion"] = want
		meta, _ := obj["metadata"].(map[string]interface{})
		if meta != nil {
			ann, _ := meta["annotations"].(map[string]interface{})
			if ann == nil {
				ann = map[string]interface{}{}
			}
			ann["converted-by"] = host
			meta["annotations"] = ann
		}
		out = append(out, obj)
	}
	log.Printf("convert %d objects to %s", len(out), want)
	rv.Response = map[string]interface{}{
		"uid": rv.Request["uid"], "convertedObjects": out,
		"result": map[string]interface{}{"status": "Success"},
	}
	rv.Request = nil
	reply(w, rv)
}

func hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "hello from %s\n", host)
}

func get(url string) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		get(os.Args[2])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "http" {
		log.Printf("%s serving plain HTTP on %s", host, os.Args[2])
		log.Fatal(http.ListenAndServe(os.Args[2], http.HandlerFunc(hello)))
	}
	http.HandleFunc("/validate", validate)
	http.HandleFunc("/convert", convert)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat("/tmp/unready"); err == nil {
			http.Error(w, "unready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/", hello)
	log.Printf("webhook %s listening on :8443", host)
	log.Fatal(http.ListenAndServeTLS(":8443", "/tls/tls.crt", "/tls/tls.key", nil))
}
