package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// statusCmd asks the running daemon for its status and prints it.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("address", config.DefaultMetricsBindAddress, "the daemon's metrics address (metricsBindAddress)")
	output := fs.StringP("output", "o", "table", "output format: table or json")
	service := fs.String("service", "", "only this Service (namespace/name)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the daemon")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ipvs-proxy status [--address HOST:PORT] [--output table|json] [--service NS/NAME]")
		fmt.Fprintln(stderr, "Shows each virtual server with its Service, type, scheduler, real servers (weight, state, connections) and counters,")
		fmt.Fprintln(stderr, "and every Service that could not be programmed as written, and why.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "status: --output %q: want table or json\n", *output)
		return 2
	}
	u := url.URL{Scheme: "http", Host: *addr, Path: "/status"}
	if *service != "" {
		u.RawQuery = url.Values{"service": {*service}}.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "status: is ipvs-proxy running? %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "status: %s: %s %v\n", u.String(), resp.Status, string(body))
		return 1
	}
	if *output == "json" {
		_, _ = stdout.Write(body)
		return 0
	}
	var rep status.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(stderr, "status: bad answer from %s: %v\n", u.String(), err)
		return 1
	}
	if err := status.WriteTable(stdout, &rep, time.Now()); err != nil {
		return 1
	}
	return 0
}
