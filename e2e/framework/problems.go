package framework

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// Problems returns what the daemon at addr reports on /status as not
// programmed as written, by Service ("namespace/name"): each error names
// the object and the field. A scenario reads rejected input here, not from
// the log.
func Problems(addr string) (map[string][]string, error) {
	code, body, err := httpGet("", "http://"+addr+"/status")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/status answered %d: %s", code, body)
	}
	var rep status.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		return nil, fmt.Errorf("/status: %w", err)
	}
	out := map[string][]string{}
	for _, p := range rep.Problems {
		out[p.Service] = append(out[p.Service], p.Errors...)
	}
	return out, nil
}

// HasProblem says whether the Service's problems include an error
// containing want.
func HasProblem(problems map[string][]string, service, want string) bool {
	return slices.ContainsFunc(problems[service], func(e string) bool { return strings.Contains(e, want) })
}
