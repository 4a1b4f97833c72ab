package proxier

import (
	"fmt"

	"rsc.io/script"
	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// nft prints the fake's IPv4 nftables table, its last transaction, or how
// many transactions ran since the last `nft transactions`.
func (h *scriptHarness) nft(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	switch args[0] {
	case "dump":
		return h.fk.NFTables.Dump(state.IPv4), nil
	case "last":
		return h.fk.NFTables.V4.LastTransaction.String(), nil
	case "transactions":
		n := h.fk.NFTables.Writes() - h.nftSeen
		h.nftSeen = h.fk.NFTables.Writes()
		return fmt.Sprintln(n), nil
	}
	return "", script.ErrUsage
}

// tamperNFT changes the IPv4 table directly.
func (h *scriptHarness) tamperNFT(args ...string) (string, error) {
	if len(args) == 0 {
		return "", script.ErrUsage
	}
	chain := func(name string) *knftables.Chain {
		return &knftables.Chain{Family: knftables.IPv4Family, Table: nft.TableName, Name: name}
	}
	var ops []kernel.NFTOp
	switch {
	case args[0] == "flush-chain" && len(args) == 2:
		ops = append(ops, kernel.NFTOp{Verb: kernel.NFTFlush, Obj: chain(args[1])})
	case args[0] == "del-element" && len(args) > 2:
		ops = append(ops, kernel.NFTOp{Verb: kernel.NFTDelete,
			Obj: &knftables.Element{Family: knftables.IPv4Family, Table: nft.TableName, Set: args[1], Key: args[2:]}})
	case args[0] == "add-chain" && len(args) == 2:
		ops = append(ops, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: chain(args[1])}, kernel.NFTOp{Verb: kernel.NFTAdd,
			Obj: &knftables.Rule{Family: knftables.IPv4Family, Table: nft.TableName, Chain: nft.ChainServices, Rule: "jump " + args[1]}})
	case args[0] == "del-table" && len(args) == 1:
		ops = append(ops, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: &knftables.Table{Family: knftables.IPv4Family, Name: nft.TableName}})
	default:
		return "", script.ErrUsage
	}
	return "", h.fk.NFTables.Tables.Run(state.IPv4, ops)
}
