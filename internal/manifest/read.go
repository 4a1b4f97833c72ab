// Package manifest reads Kubernetes objects from a directory of manifest
// files: the source of ipvs-proxy's standalone mode and of `ipvs-proxy plan`.
//
// Every *.yaml, *.yml and *.json file under the directory is read, with
// multi-document YAML and `kind: List`. Services, EndpointSlices and
// ServiceCIDRs are kept; v1 Endpoints are turned into EndpointSlices the way
// Kubernetes' mirroring controller would; other kinds are ignored. A malformed document gives an
// error naming the file, the object and the field, and the rest is still read.
package manifest

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8sjson "sigs.k8s.io/json"

	"github.com/ipvs-proxy/ipvs-proxy/internal/untrusted"
)

// Objects is what a directory holds.
type Objects struct {
	Services       []*v1.Service
	EndpointSlices []*discovery.EndpointSlice
	// ServiceCIDRs are the ranges ClusterIPs come from (cluster-scoped).
	ServiceCIDRs []*networking.ServiceCIDR
	// Errors are malformed files and objects; each names file, object and field.
	Errors []error
	// Warnings are things skipped on purpose (unknown fields, other kinds).
	Warnings []string
}

// MaxFileSize bounds a manifest file; larger ones are refused.
const MaxFileSize = 64 << 20

// IsManifestFile reports whether a path names a manifest (.yaml, .yml, .json).
func IsManifestFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// ReadFile reads one manifest file. Only an unreadable file is an error
// (not a regular file, over MaxFileSize, missing); malformed documents are
// reported in Objects.Errors.
func ReadFile(path string) (*Objects, error) {
	data, err := untrusted.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Read(path, data), nil
}

// Read parses manifests from one stream; name is used in errors.
func Read(name string, data []byte) *Objects {
	r := newReader()
	r.data(name, data)
	return r.finish()
}

type reader struct {
	out       Objects
	endpoints []located[*v1.Endpoints]
}

type located[T any] struct {
	where string
	obj   T
}

func newReader() *reader { return &reader{} }

func (r *reader) data(name string, data []byte) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: document %d: %w", name, doc, err))
			return
		}
		r.document(fmt.Sprintf("%s: document %d", name, doc), raw)
	}
}

// header is what every object has, decoded leniently to name it in errors.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []stdjson.RawMessage `json:"items"`
}

// document reads one YAML document: a JSON stream of one or more objects,
// or YAML. An empty document (only comments, "---", "null"; what `helm
// template` writes for an empty template) is nothing, not an error.
func (r *reader) document(where string, raw []byte) {
	if untrusted.Empty(raw) {
		return
	}
	// A document in JSON form is decoded as such: JSON is YAML too, but
	// converting it through the YAML parser takes three times as long, most
	// of a cold start in standalone mode with thousands of Services. A file
	// may hold several JSON objects one after the other (kubectl reads them
	// all); the YAML parser would read the first and drop the rest silently.
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		if objs, ok := jsonStream(t); ok {
			for i, js := range objs {
				w := where
				if len(objs) > 1 {
					w = fmt.Sprintf("%s: object %d", where, i+1)
				}
				r.object(w, js, false)
			}
			return
		}
	}
	js, err := untrusted.YAMLToJSON(raw, MaxFileSize)
	if err != nil {
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: not valid YAML or JSON: %w", where, err))
		return
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return
	}
	r.object(where, js, false)
}

// jsonStream splits a stream of JSON values; ok is false unless it is one
// or more JSON values and nothing else (a flow-style YAML mapping also
// starts with "{").
func jsonStream(t []byte) ([][]byte, bool) {
	dec := stdjson.NewDecoder(bytes.NewReader(t))
	var out [][]byte
	for {
		var v stdjson.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, len(out) > 0
		}
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
}

func (r *reader) object(where string, js []byte, inList bool) {
	var h header
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(js, &h); err != nil {
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: not a Kubernetes object: want a mapping with apiVersion, kind and metadata", where))
		return
	}
	if h.Kind == "" {
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: kind: missing", where))
		return
	}
	ns := h.Metadata.Namespace
	if ns == "" {
		ns = v1.NamespaceDefault
	}
	id := fmt.Sprintf("%s: %s %s/%s", where, h.Kind, ns, h.Metadata.Name)
	switch {
	case strings.HasSuffix(h.Kind, "List") && h.APIVersion == "v1":
		if inList {
			// kubectl does not nest them either; each level would be decoded again
			r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: kind: a %s inside a List is not supported", where, h.Kind))
			return
		}
		for i, item := range h.Items {
			r.object(fmt.Sprintf("%s: items[%d]", where, i), item, true)
		}
		return
	case h.Metadata.Name == "" && isKnown(h.Kind):
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: %s: metadata.name: missing", where, h.Kind))
		return
	}
	switch {
	case h.Kind == "Service" && h.APIVersion == "v1":
		if svc, ok := decode[v1.Service](r, id, js); ok {
			svc.Namespace = ns
			r.out.Services = append(r.out.Services, svc)
		}
	case h.Kind == "EndpointSlice" && h.APIVersion == "discovery.k8s.io/v1":
		if es, ok := decode[discovery.EndpointSlice](r, id, js); ok {
			es.Namespace = ns
			r.out.EndpointSlices = append(r.out.EndpointSlices, es)
		}
	case h.Kind == "ServiceCIDR" && h.APIVersion == "networking.k8s.io/v1":
		if sc, ok := decode[networking.ServiceCIDR](r, fmt.Sprintf("%s: ServiceCIDR %s", where, h.Metadata.Name), js); ok {
			sc.Namespace = "" // cluster-scoped
			r.out.ServiceCIDRs = append(r.out.ServiceCIDRs, sc)
		}
	case h.Kind == "Endpoints" && h.APIVersion == "v1":
		if ep, ok := decode[v1.Endpoints](r, id, js); ok {
			ep.Namespace = ns
			r.endpoints = append(r.endpoints, located[*v1.Endpoints]{where: id, obj: ep})
		}
	case isKnown(h.Kind):
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: apiVersion: %q is not supported for %s (want %s)", id, h.APIVersion, h.Kind, wantVersion(h.Kind)))
	default:
		r.out.Warnings = append(r.out.Warnings, fmt.Sprintf("%s: ignored: ipvs-proxy reads only Services, EndpointSlices, Endpoints and ServiceCIDRs", id))
	}
}

func isKnown(kind string) bool {
	return kind == "Service" || kind == "EndpointSlice" || kind == "Endpoints" || kind == "ServiceCIDR"
}

func wantVersion(kind string) string {
	switch kind {
	case "EndpointSlice":
		return "discovery.k8s.io/v1"
	case "ServiceCIDR":
		return "networking.k8s.io/v1"
	}
	return "v1"
}

// decode decodes strictly: a type error skips the object with an error
// naming the field; unknown fields are warnings.
func decode[T any](r *reader, id string, js []byte) (*T, bool) {
	obj := new(T)
	strict, err := k8sjson.UnmarshalStrict(js, obj)
	if err != nil {
		r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: %w", id, err))
		return nil, false
	}
	for _, e := range strict {
		if strings.Contains(e.Error(), "duplicate field") {
			// which of the two counts is not obvious, and the API server refuses it
			r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: %w", id, e))
			return nil, false
		}
		r.out.Warnings = append(r.out.Warnings, fmt.Sprintf("%s: %v", id, e))
	}
	return obj, true
}

func (r *reader) finish() *Objects {
	selectors := map[string]bool{}
	for _, s := range r.out.Services {
		selectors[s.Namespace+"/"+s.Name] = len(s.Spec.Selector) > 0
	}
	for _, ep := range r.endpoints {
		key := ep.obj.Namespace + "/" + ep.obj.Name
		if selectors[key] {
			r.out.Warnings = append(r.out.Warnings, fmt.Sprintf("%s: ignored: Service %s has a selector, so its endpoints come from EndpointSlices, not from hand-written Endpoints", ep.where, key))
			continue
		}
		slices, errs := Mirror(ep.obj)
		r.out.EndpointSlices = append(r.out.EndpointSlices, slices...)
		for _, e := range errs {
			r.out.Errors = append(r.out.Errors, fmt.Errorf("%s: %w", ep.where, e))
		}
	}
	return &r.out
}
