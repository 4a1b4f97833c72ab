package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// statusCommand asks the running daemon for its status and prints it.
func statusCommand(stdout io.Writer) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [--address HOST:PORT] [--output table|json] [--service NS/NAME]",
		Short: "Show the running daemon's virtual servers, annotated",
		Long: `Shows each virtual server with its Service, type, scheduler, real servers (weight, state, connections) and
counters, and every Service that could not be programmed as written, and why.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runStatus(&f, stdout) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "address", config.DefaultMetricsBindAddress, "the daemon's metrics address (metricsBindAddress)")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fs.StringVar(&f.service, "service", "", "only this Service (namespace/name)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the daemon")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

type statusFlags struct {
	addr, output, service string
	timeout               time.Duration
}

func runStatus(f *statusFlags, stdout io.Writer) error {
	if f.output != "table" && f.output != "json" {
		return fail(exitUsage, "--output %q: want table or json", f.output)
	}
	u := url.URL{Scheme: "http", Host: f.addr, Path: "/status"}
	if f.service != "" {
		u.RawQuery = url.Values{"service": {f.service}}.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(exitError, "is ipvs-proxy running? %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fail(exitError, "%s: %s %v", u.String(), resp.Status, string(body))
	}
	if f.output == "json" {
		_, _ = stdout.Write(body)
		return nil
	}
	var rep status.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return fail(exitError, "bad answer from %s: %v", u.String(), err)
	}
	if err := status.WriteTable(stdout, &rep, time.Now()); err != nil {
		return fail(exitError, "%v", err)
	}
	return nil
}
