package netpol

import (
	"fmt"
	"os"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// errNoQueue explains a kernel without nftables queue support, on which
// the controller cannot hold packets for a verdict.
const errNoQueue = "this kernel cannot queue packets from nftables (the nft_queue module, CONFIG_NFT_QUEUE, is missing): load it with `modprobe nft_queue`, or pass --disable-network-policy on the server if you do not use NetworkPolicy"

// probeQueue checks, in this network namespace, that nftables accepts a
// queue rule, the one kind of rule the controller cannot work without: a
// throwaway table holding one queue rule is created and deleted.
func probeQueue() error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	table := conn.AddTable(&nftables.Table{Name: "regente-probe-" + strconv.Itoa(os.Getpid()), Family: nftables.TableFamilyINet})
	chain := conn.AddChain(&nftables.Chain{Name: "probe", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{&expr.Queue{Num: queueID, Flag: expr.QueueFlagBypass}}})
	flushErr := conn.Flush()
	conn.DelTable(table)
	if err := conn.Flush(); err != nil && flushErr == nil {
		return fmt.Errorf("remove the nftables probe table: %w", err)
	}
	if flushErr != nil {
		return fmt.Errorf("%s (%v)", errNoQueue, flushErr)
	}
	return nil
}
