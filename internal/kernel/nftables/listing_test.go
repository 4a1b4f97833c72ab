package nftables

import (
	"reflect"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
)

// A listing as nft 1.0.6 prints it (trimmed): a table with a base chain, a
// regular chain with two rules, and sets of each form of element.
const listing = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "ip", "name": "ipvs-proxy", "handle": 1, "comment": "rules of ipvs-proxy around IPVS"}},
{"set": {"family": "ip", "name": "cluster-ip", "table": "ipvs-proxy", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 7,
  "elem": [{"concat": ["10.96.0.10", "udp", 53]}, {"concat": ["10.96.0.10", "tcp", 80]}]}},
{"set": {"family": "ip", "name": "src", "table": "ipvs-proxy", "type": ["ipv4_addr", "inet_proto", "inet_service", "ipv4_addr"], "flags": ["interval"],
  "elem": [{"concat": ["10.96.0.10", "tcp", 80, {"prefix": {"addr": "10.0.0.0", "len": 8}}]}, {"concat": ["10.96.0.10", "tcp", 80, "192.168.0.1"]}]}},
{"set": {"family": "ip", "name": "np", "table": "ipvs-proxy", "type": "inet_service", "elem": [30080, {"elem": {"val": 30081, "comment": "x"}}]}},
{"set": {"family": "ip", "name": "empty", "table": "ipvs-proxy", "type": "ipv4_addr"}},
{"map": {"family": "ip", "name": "marks", "table": "ipvs-proxy", "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "mark",
  "elem": [[{"concat": ["10.0.0.1", "tcp", 80]}, 4]]}},
{"chain": {"family": "ip", "table": "ipvs-proxy", "name": "nat-output", "handle": 2, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}},
{"chain": {"family": "ip", "table": "ipvs-proxy", "name": "services", "handle": 3}},
{"chain": {"family": "ip", "table": "ipvs-proxy", "name": "empty-chain", "handle": 4}},
{"rule": {"family": "ip", "table": "ipvs-proxy", "chain": "nat-output", "handle": 9, "comment": "1a2b3c4d", "expr": [{"jump": {"target": "services"}}]}},
{"rule": {"family": "ip", "table": "ipvs-proxy", "chain": "services", "handle": 10, "comment": "aaaa0001", "expr": []}},
{"rule": {"family": "ip", "table": "ipvs-proxy", "chain": "services", "handle": 11, "expr": []}}
]}`

func TestParseListing(t *testing.T) {
	got, err := parseListing([]byte(listing))
	if err != nil {
		t.Fatal(err)
	}
	want := &kernel.NFTContent{
		Chains: map[string][]string{"nat-output": {"1a2b3c4d"}, "services": {"aaaa0001", ""}, "empty-chain": {}},
		Sets: map[string][][]string{
			"cluster-ip": {{"10.96.0.10", "udp", "53"}, {"10.96.0.10", "tcp", "80"}},
			"src":        {{"10.96.0.10", "tcp", "80", "10.0.0.0/8"}, {"10.96.0.10", "tcp", "80", "192.168.0.1"}},
			"np":         {{"30080"}, {"30081"}},
			"empty":      {},
		},
		Maps: map[string][]kernel.NFTMapElement{"marks": {{Key: []string{"10.0.0.1", "tcp", "80"}, Value: []string{"4"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseListing:\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{`{`, `{"nftables": [{"set": {"name": "x", "elem": [{"range": [1, 2]}]}}]}`} {
		if _, err := parseListing([]byte(bad)); err == nil {
			t.Errorf("parseListing(%s) succeeded", bad)
		}
	}
}
