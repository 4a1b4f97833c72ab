package cli

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
)

// followReadsFile makes the reads named in a file fail, re-reading it every
// second (testing only: lets a scenario fail the node address read for a
// while). The file holds names separated by spaces, commas or lines, e.g.
// "node-addresses"; an empty or missing file fails nothing.
func followReadsFile(ctx context.Context, path string, inj *fault.Injector, log *zap.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last []string
	first := true
	for {
		var names []string
		if b, err := os.ReadFile(path); err == nil {
			for _, n := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
				if slices.Contains(fault.Reads, n) {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		if first || !slices.Equal(names, last) {
			inj.SetFailingReads(names...)
			log.Warn("fault injection: failing reads changed", zap.Strings("reads", names))
			last, first = names, false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
