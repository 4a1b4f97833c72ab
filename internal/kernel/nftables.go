package kernel

import (
	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// NFTVerb is what a transaction does with an object.
type NFTVerb uint8

// The verbs ipvs-proxy uses (nft add, flush, delete).
const (
	// NFTAdd creates the object if it is missing (an element: adds it; a
	// rule: appends it).
	NFTAdd NFTVerb = iota + 1
	// NFTFlush empties a chain or a set.
	NFTFlush
	// NFTDelete removes the object; ENOENT if it is missing.
	NFTDelete
)

// NFTOp is one command of a transaction on ipvs-proxy's table.
type NFTOp struct {
	Verb NFTVerb
	Obj  knftables.Object
}

// NFTContent is what ipvs-proxy's table of one family holds.
type NFTContent struct {
	// Chains maps each chain to the comments of its rules, in order ("" for
	// a rule without one). nft gives the rules themselves back only in a
	// form of its own.
	Chains map[string][]string
	// Sets maps each set to its elements' keys.
	Sets map[string][][]string
	// Maps maps each map to its elements.
	Maps map[string][]NFTMapElement
}

// NFTMapElement is an element of a map: its key's fields and its value.
type NFTMapElement struct {
	Key, Value []string
}

// NFTables is ipvs-proxy's own nftables table in each family: `ip
// ipvs-proxy` and `ip6 ipvs-proxy`. Nothing else is read or written.
type NFTables interface {
	// Read returns what the table of family f holds, nil if there is no
	// table: one listing of the table, then one per set (nft list table,
	// nft list set).
	Read(f state.Family) (*NFTContent, error)
	// Run applies the ops to the table of family f as one transaction
	// (nft -f): all of them or, on any error, none.
	Run(f state.Family, ops []NFTOp) error
	// Check asks the kernel whether the transaction would succeed without
	// applying it (nft --check -f): whether it has what the ops need.
	Check(f state.Family, ops []NFTOp) error
}
