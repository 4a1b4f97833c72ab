// Package e2e holds the end-to-end scenarios: they run inside the qemu guest
// (make e2e, scripts/e2e.sh) against a real kernel with IPVS. Outside the
// guest they are skipped. See package framework for the toolkit and the
// addressing plan.
package e2e

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
