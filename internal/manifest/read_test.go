package manifest

import (
	"reflect"
	"strings"
	"testing"
)

const serviceYAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  clusterIP: 10.96.0.80
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`

const serviceJSON = `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "prod"},
 "spec": {"clusterIP": "10.96.0.80", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
`

// Documents in JSON form (decoded without the YAML parser) give the same
// objects, errors and warnings as their YAML form.
func TestJSONDocumentsReadLikeYAML(t *testing.T) {
	fromYAML := Read("a.yaml", []byte(serviceYAML))
	fromJSON := Read("a.yaml", []byte("---\n"+serviceJSON+"---\n"))
	if len(fromYAML.Services) != 1 || len(fromJSON.Services) != 1 || len(fromJSON.Errors) > 0 {
		t.Fatalf("YAML: %+v; JSON: %+v", fromYAML, fromJSON)
	}
	if !reflect.DeepEqual(fromYAML.Services[0], fromJSON.Services[0]) {
		t.Errorf("JSON form differs:\n%+v\n%+v", fromJSON.Services[0], fromYAML.Services[0])
	}

	// A flow-style YAML mapping starts with { too but is not JSON.
	flow := Read("b.yaml", []byte(`{apiVersion: v1, kind: Service, metadata: {name: web, namespace: prod}, spec: {clusterIP: 10.96.0.80, ports: [{port: 80}]}}`))
	if len(flow.Services) != 1 || len(flow.Errors) > 0 {
		t.Errorf("flow-style YAML: %+v", flow)
	}

	bad := Read("c.yaml", []byte(strings.Replace(serviceJSON, `"port": 80`, `"port": "eighty"`, 1)))
	if len(bad.Services) != 0 || len(bad.Errors) != 1 || !strings.Contains(bad.Errors[0].Error(), "port") {
		t.Errorf("a JSON type error: %+v", bad)
	}
	unknown := Read("d.yaml", []byte(strings.Replace(serviceJSON, `"clusterIP"`, `"clusterIPX": 1, "clusterIP"`, 1)))
	if len(unknown.Services) != 1 || len(unknown.Warnings) != 1 || !strings.Contains(unknown.Warnings[0], "clusterIPX") {
		t.Errorf("an unknown JSON field: %+v", unknown)
	}
}
