package fake

import (
	"sync"

	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nftables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// NFTables is ipvs-proxy's nftables tables on knftables' own fake, which is
// transactional and strict (a rule naming a set or chain that does not
// exist, or deleting what is not there, fails the whole transaction), read
// and written through the real implementation's code.
type NFTables struct {
	*nftables.Tables
	// V4 and V6 are knftables' fakes of the two tables, for inspection.
	V4, V6 *knftables.Fake
	mu     sync.Mutex
	runs   int
}

var _ kernel.NFTables = (*NFTables)(nil)

// NewNFTables returns a node without ipvs-proxy's tables.
func NewNFTables() *NFTables {
	v4 := knftables.NewFake(knftables.IPv4Family, nft.TableName)
	v6 := knftables.NewFake(knftables.IPv6Family, nft.TableName)
	return &NFTables{Tables: nftables.With(v4, v6), V4: v4, V6: v6}
}

// Run implements kernel.NFTables, counting transactions.
func (f *NFTables) Run(fam state.Family, ops []kernel.NFTOp) error {
	f.mu.Lock()
	f.runs++
	f.mu.Unlock()
	return f.Tables.Run(fam, ops)
}

// Writes returns how many transactions were run.
func (f *NFTables) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

// Dump returns the table of family fam in nft syntax (knftables' Dump), "" if there is none.
func (f *NFTables) Dump(fam state.Family) string {
	fk := f.V4
	if fam == state.IPv6 {
		fk = f.V6
	}
	fk.RLock()
	exists := fk.Table != nil
	fk.RUnlock()
	if !exists {
		return ""
	}
	return fk.Dump()
}
