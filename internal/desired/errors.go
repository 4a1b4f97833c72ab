package desired

import "fmt"

// ObjectError is invalid input: it names the object and the field.
type ObjectError struct {
	Kind      string // "Service", "EndpointSlice", ...
	Namespace string
	Name      string
	Field     string // e.g. "spec.ports[1].port"
	Msg       string
}

// Error renders `Service default/web: spec.ports[1].port: 0 is out of range 1-65535`.
func (e *ObjectError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s %s: %s", e.Kind, e.Object(), e.Msg)
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Kind, e.Object(), e.Field, e.Msg)
}

// Object returns "namespace/name", or "name" for a cluster-scoped object.
func (e *ObjectError) Object() string {
	if e.Namespace == "" {
		return e.Name
	}
	return e.Namespace + "/" + e.Name
}

// objErrs collects errors about one object.
type objErrs struct {
	kind, ns, name string
	errs           []error
}

func (o *objErrs) add(field, format string, args ...any) {
	o.errs = append(o.errs, &ObjectError{Kind: o.kind, Namespace: o.ns, Name: o.name, Field: field, Msg: fmt.Sprintf(format, args...)})
}
