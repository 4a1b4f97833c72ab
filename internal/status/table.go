package status

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable renders a report like `ipvsadm -Ln --stats`, annotated with
// Services, types and real server states.
func WriteTable(w io.Writer, r *Report, now time.Time) error {
	health := "healthy"
	if !r.Healthy {
		health = "UNHEALTHY"
		if r.Unhealthy != "" {
			health += " (" + r.Unhealthy + ")"
		}
	}
	last := "never"
	if !r.LastSync.IsZero() {
		last = fmt.Sprintf("%s (%s ago)", r.LastSync.UTC().Format(time.RFC3339), now.Sub(r.LastSync).Round(time.Second))
	}
	fmt.Fprintf(w, "node %s: %s, last successful sync %s\n\n", r.Node, health, last)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSERVICE\tVIRTUAL SERVER\tSCHEDULER\tCONNS\tINPKTS\tOUTPKTS\tINBYTES\tOUTBYTES")
	for _, vs := range r.VirtualServers {
		sched := vs.Scheduler
		if len(vs.Flags) > 0 {
			sched += " (" + strings.Join(vs.Flags, ",") + ")"
		}
		if p := vs.Persistence; p != nil {
			sched += fmt.Sprintf(" persistent %d", p.TimeoutSeconds)
		}
		target := vs.Protocol + " " + hostPort(vs.Address, vs.Port)
		if vs.FWMark != 0 {
			target = fmt.Sprintf("FWM %d", vs.FWMark)
			if strings.Contains(vs.Address, ":") {
				target += " IPv6"
			}
		}
		if !vs.InKernel {
			target += " [not in kernel]"
		}
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", vs.Type, vs.Service, vs.PortName, target, sched,
			vs.Stats.Conns, vs.Stats.InPackets, vs.Stats.OutPackets, vs.Stats.InBytes, vs.Stats.OutBytes)
		for _, rs := range vs.RealServers {
			fmt.Fprintf(tw, "\t  -> %s\tweight %d\t%s\tactive %d\tinactive %d\t\t\t\n", hostPort(rs.Address, rs.Port), rs.Weight, rs.State, rs.ActiveConns, rs.InactiveConns)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\nnot programmed as written:\n")
		for _, p := range r.Problems {
			for _, e := range p.Errors {
				fmt.Fprintf(w, "  %s: %s\n", p.Service, e)
			}
		}
	}
	return nil
}

func hostPort(addr string, port uint16) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(a, port).String()
	}
	return fmt.Sprintf("%s:%d", addr, port)
}
