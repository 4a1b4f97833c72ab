package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialResult is agnhost netexec's /dial answer: what each try got.
type dialResult struct {
	Responses []string `json:"responses"`
	Errors    []string `json:"errors"`
}

// dialFromPod asks the netexec server of the pod at podIP to make tries HTTP requests for /hostname to
// host:port from inside the pod network (the way Kubernetes' e2e tests check Services from pods); host may be
// a name, resolved by the pod's DNS.
func dialFromPod(ctx context.Context, podIP, host string, port, tries int) (dialResult, error) {
	q := url.Values{"request": {"hostname"}, "protocol": {"http"}, "host": {host}, "port": {strconv.Itoa(port)},
		"tries": {strconv.Itoa(tries)}}
	u := "http://" + podIP + ":8080/dial?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(tries)*10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return dialResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return dialResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r dialResult
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("/dial answered %s: %s", resp.Status, body)
	}
	return r, nil
}

// outsideClient opens a new connection for every request, as curl on the node and agnhost's /dial do: with
// keep-alive every request would ride the first connection, i.e. reach the backend IPVS chose for it.
var outsideClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// httpGet makes one request from outside the nodes (the host's end of the cluster network) and returns the body.
func httpGet(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := outsideClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}

// answeredBy checks that every try was answered and that the answers came from exactly the backends.
func answeredBy(t *testing.T, what string, r dialResult, err error, backends []string) {
	t.Helper()
	answered(t, what, r, err, backends, true)
}

// answeredWithin checks that every try was answered by one of the backends, not that each answered: a client
// of a headless Service's name connects to the address its resolver puts first, and nothing (no proxy) spreads
// its requests: agnhost's /dial sent all 10 to one pod. What the name resolves to is checked apart.
func answeredWithin(t *testing.T, what string, r dialResult, err error, backends []string) {
	t.Helper()
	answered(t, what, r, err, backends, false)
}

func answered(t *testing.T, what string, r dialResult, err error, backends []string, each bool) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if len(r.Errors) > 0 || len(r.Responses) == 0 {
		t.Errorf("%s: %d answers, errors %v", what, len(r.Responses), r.Errors)
		return
	}
	seen := map[string]int{}
	for _, resp := range r.Responses {
		seen[resp]++
	}
	for _, b := range backends {
		if each && seen[b] == 0 {
			t.Errorf("%s: no answer from %s (answers %v)", what, b, seen)
		}
	}
	for who := range seen {
		if !slices.Contains(backends, who) {
			t.Errorf("%s: answer from %q, not a backend %v", what, who, backends)
		}
	}
	t.Logf("%s: %d requests, answers %v", what, len(r.Responses), seen)
}

// eventually retries check every second until it returns nil or timeout passes; it returns the last error.
func eventually(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
