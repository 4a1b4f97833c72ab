package config

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// locate finds the field of raw that does not decode into a value of type t
// and returns its path ("ipvs.syncPeriod") and the decoder's complaint, so
// that a type error names its field the way the file spells it.
func locate(raw map[string]any, t reflect.Type, prefix string) (string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.StructField{}
	collectFields(t, fields)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			continue // unknown fields are warnings, reported elsewhere
		}
		b, _ := json.Marshal(raw[k])
		if err := json.Unmarshal(b, reflect.New(f.Type).Interface()); err != nil {
			if sub, ok := raw[k].(map[string]any); ok && underlying(f.Type).Kind() == reflect.Struct {
				if path, e := locate(sub, f.Type, prefix+k+"."); path != "" {
					return path, e
				}
			}
			return prefix + k, err
		}
	}
	return "", nil
}

// collectFields maps JSON names to fields, flattening inline structs.
func collectFields(t reflect.Type, out map[string]reflect.StructField) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			collectFields(underlying(f.Type), out)
			continue
		}
		if name != "" && name != "-" {
			out[name] = f
		}
	}
}

func underlying(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
